// PCID (SDM Vol. 3 4.10.1, 4.10.4.1; Vol. 2 MOV CR, INVPCID): CR4.PCIDE only in IA-32e mode
// with CR3[11:0] = 0, CR3[11:0] as the PCID, bit 63 of the MOV-to-CR3 source not stored,
// CR0.PG not clearable under PCIDE, INVPCID types 0-3 with their #GP conditions, and CPUID.
import { expect } from 'chai';
import { buildKernel, Kernel } from './kernel';
import { u64 } from '../../vmm/u64';
import { Cpu } from '../../vmm/cpu/cpu';
import { emulateCpuid } from '../../vmm/hypervisor/guest-abi';

const MEM = 4 << 20;
const PML4 = 0x300000, PDPT = 0x301000, PD = 0x302000, PT = 0x303000;
const P = 1, RW = 2, G = 0x100;
const PAGE_A = 0x20000, PAGE_B = 0x21000; // a linear page and another physical page

function q(cpu: Cpu, addr: number, lo: number, hi = 0): void {
  cpu.mem.view.setUint32(addr, lo >>> 0, true);
  cpu.mem.view.setUint32(addr + 4, hi >>> 0, true);
}

/** 4-level tables: 0-2 MiB identity-mapped in 4 KiB pages, 2-4 MiB in one large page; `desc` = a 16-byte INVPCID descriptor. */
function paged(body: string): Kernel {
  const k = buildKernel(body, { memSize: MEM, extra: '.balign 16\n desc: .quad 0, 0\n' });
  const c = k.cpu;
  q(c, PML4, PDPT | P | RW);
  q(c, PDPT, PD | P | RW);
  q(c, PD, PT | P | RW);
  q(c, PD + 8, 0x200000 | P | RW | 0x80); // 2-4 MiB (the stack) as one 2 MiB page
  for (let i = 0; i < 512; i++) q(c, PT + i * 8, i * 0x1000 | P | RW);
  c.setReg('cr3', u64(PML4));
  c.mem.view.setUint32(PAGE_A, 0xaaaa, true);
  c.mem.view.setUint32(PAGE_B, 0xbbbb, true);
  return k;
}
const pte = (a: number): number => PT + (a >>> 12) * 8;
const PCIDE = 1 << 17;

function faults(k: Kernel): [number, number, number][] {
  return k.log().map((e) => [e.vector, e.error, e.rip]);
}

/** Sets CR4.PCIDE, then CR3 = PML4 | pcid (with the no-flush bit 63). */
const enable = (pcid: number): string => `movq %cr4, %rax\n orq $${PCIDE}, %rax\n movq %rax, %cr4
  movabsq $${0x8000000000000000n + BigInt(PML4 + pcid)}, %rax\n movq %rax, %cr3\n`;

/**
 * Reads PAGE_A (its translation is cached), remaps it to PAGE_B in the page table (no flush
 * yet), then runs `flush` and reads it again into %rbx; %rcx holds the read before the flush.
 */
function remapAround(flush: string, global = false): string {
  return `movl ${PAGE_A}, %eax
  movq $${pte(PAGE_A)}, %rdi\n movq $${PAGE_B | P | RW | (global ? G : 0)}, (%rdi)
  movl ${PAGE_A}, %ecx
  ${flush}
  movl ${PAGE_A}, %ebx\n`;
}

describe('cpu: PCID and INVPCID', () => {
  it('CPUID reports PCID (1:ECX.17) and INVPCID (7:EBX.10)', () => {
    const out = new Uint32Array(4);
    emulateCpuid('vmx', 1, 0, 0, 1, out);
    expect(out[2] & (1 << 17)).to.equal(1 << 17);
    emulateCpuid('svm', 7, 0, 0, 1, out);
    expect(out[1] & (1 << 10)).to.equal(1 << 10);
  });

  it('CR4.PCIDE: #GP(0) with CR3[11:0] != 0 or outside IA-32e mode; then CR3[11:0] is the PCID and bit 63 is not stored', () => {
    let k = paged(`movq $${PML4 + 8}, %rax\n movq %rax, %cr3\n movq %cr4, %rax\n orq $${PCIDE}, %rax\n x: movq %rax, %cr4`);
    k.run();
    expect(faults(k)).to.deep.equal([[13, 0, k.labels.x]]);
    expect(k.cpu.getReg('cr4').lo & PCIDE).to.equal(0);
    k = paged(`${enable(5)}\n movq %cr3, %rbx`);
    expect(k.run().kind).to.equal('hlt');
    expect(faults(k)).to.deep.equal([]);
    expect(k.cpu.getReg('cr4').lo & PCIDE).to.equal(PCIDE);
    expect(k.cpu.getGpr(3)).to.deep.equal(u64(PML4 + 5));
  });

  it('CR3 reserved bits (above MAXPHYADDR 40) are #GP(0); bit 63 too without PCIDE; CR0.PG cannot be cleared under PCIDE', () => {
    let k = paged(`movabsq $${0x8000000000000000n + BigInt(PML4)}, %rax\n x: movq %rax, %cr3`);
    k.run();
    expect(faults(k)).to.deep.equal([[13, 0, k.labels.x]]);
    k = paged(`${enable(0)} movabsq $${0x10000000000n + BigInt(PML4)}, %rax\n x: movq %rax, %cr3`);
    k.run();
    expect(faults(k)).to.deep.equal([[13, 0, k.labels.x]]);
    k = paged(`${enable(1)} movq %cr0, %rax\n btrq $31, %rax\n x: movq %rax, %cr0`);
    k.run();
    expect(faults(k)).to.deep.equal([[13, 0, k.labels.x]]);
  });

  it('INVPCID type 0 drops the address\'s translation, type 2 also global ones; a CR3 load without the no-flush bit drops non-global ones', () => {
    // the stale read before the flush shows that the translation was cached
    let k = paged(`${enable(3)}\n movq $3, desc(%rip)\n movq $${PAGE_A}, desc+8(%rip)\n movq $0, %rdx
      ${remapAround('invpcid desc(%rip), %rdx')}`);
    expect(k.run().kind).to.equal('hlt');
    expect(faults(k)).to.deep.equal([]);
    expect([k.cpu.getGpr(1).lo, k.cpu.getGpr(3).lo]).to.deep.equal([0xaaaa, 0xbbbb]);
    k = paged(`movq %cr4, %rax\n orq $0x80, %rax\n movq %rax, %cr4\n ${enable(3)}\n movq $2, %rdx
      ${remapAround('invpcid desc(%rip), %rdx', true)}`);
    expect(k.run().kind).to.equal('hlt');
    expect(faults(k)).to.deep.equal([]);
    expect(k.cpu.getGpr(3).lo).to.equal(0xbbbb);
    k = paged(`${enable(3)}\n ${remapAround(`movq $${PML4 + 3}, %rax\n movq %rax, %cr3`)}`);
    expect(k.run().kind).to.equal('hlt');
    expect(k.cpu.getGpr(3).lo).to.equal(0xbbbb);
  });

  it('INVPCID #GP(0): type > 3, descriptor bits 63:12, a non-canonical type-0 address, PCID != 0 without PCIDE (types 0, 1), CPL 3', () => {
    const cases: [string, string][] = [
      ['type 4', 'movq $4, %rdx'],
      ['reserved descriptor bits', 'movq $0x1000, desc(%rip)\n movq $2, %rdx'],
      ['non-canonical address', 'movabsq $0x0000800000000000, %rax\n movq %rax, desc+8(%rip)\n movq $0, %rdx'],
      ['PCID 1 without PCIDE, type 0', 'movq $1, desc(%rip)\n movq $0, %rdx'],
      ['PCID 1 without PCIDE, type 1', 'movq $1, desc(%rip)\n movq $1, %rdx'],
    ];
    for (const [name, setup] of cases) {
      const k = paged(`${setup}\n x: invpcid desc(%rip), %rdx`);
      k.run();
      expect(faults(k), name).to.deep.equal([[13, 0, k.labels.x]]);
    }
    const ok = paged('movq $1, %rdx\n invpcid desc(%rip), %rdx\n movq $3, %rdx\n invpcid desc(%rip), %rdx');
    expect(ok.run().kind).to.equal('hlt');
    expect(faults(ok)).to.deep.equal([]);
    const user = buildKernel('movq $2, %rdx\n x: invpcid desc(%rip), %rdx', { extra: '.balign 16\n desc: .quad 0, 0\n' });
    user.cpu.cpl = 3; // the boot identity map is user-accessible
    user.cpu.intercepts.exceptionBitmap = 1 << 13;
    expect(user.run()).to.include({ kind: 'exception', vector: 13, errorCode: 0 });
  });

  it('INVPCID needs a memory operand and the 66 prefix (else #UD)', () => {
    const k = paged('x: .byte 0x0f, 0x38, 0x82, 0x15, 0, 0, 0, 0');
    k.run();
    expect(faults(k)).to.deep.equal([[6, 0, k.labels.x]]);
    const k2 = paged('x: .byte 0x66, 0x0f, 0x38, 0x82, 0xd2');
    k2.run();
    expect(faults(k2)).to.deep.equal([[6, 0, k2.labels.x]]);
  });
});
