// Paging (SDM vol. 3 ch. 4) through the one MMU: walks, A/D bits, #PF error codes and CR2,
// protection (U/S, R/W with CR0.WP, NX, SMEP, SMAP), large pages, the TLB and its flushes,
// the 32-bit and PAE structures, MMIO and nested-page faults with exact 64-bit addresses.
import { expect } from 'chai';
import { buildKernel, Kernel } from './kernel';
import { assemble, assembleProgram, makeCpu } from '../helpers/asm';
import { u64, u64ToBigInt } from '../../vmm/u64';
import { Cpu } from '../../vmm/cpu/cpu';
import { translate, ACC_READ, ACC_WRITE, ACC_PROBE } from '../../vmm/cpu/mmu';
import { BOOT_CR3 } from '../../vmm/cpu/boot-page-tables';
import type { AccessSize, DeviceEffect, MmioDevice } from '../../vmm/devices/device';

const MEM = 4 << 20;
const PML4 = 0x300000, PDPT = 0x301000, PD = 0x302000, PT = 0x303000;
const P = 1, RW = 2, US = 4, PS = 0x80, G = 0x100, A = 0x20, D = 0x40;

function q(cpu: Cpu, addr: number, lo: number, hi = 0): void {
  cpu.mem.view.setUint32(addr, lo >>> 0, true);
  cpu.mem.view.setUint32(addr + 4, hi >>> 0, true);
}
function rdq(cpu: Cpu, addr: number): number {
  return cpu.mem.view.getUint32(addr, true);
}

/** 4-level tables in RAM: 0-2 MiB in 4 KiB pages (PT), 2-4 MiB as one 2 MiB page. */
function paged(body: string, userAll = false): Kernel {
  const k = buildKernel(body, { memSize: MEM });
  const c = k.cpu;
  const u = userAll ? US : 0;
  q(c, PML4, PDPT | P | RW | US);
  q(c, PDPT, PD | P | RW | US);
  q(c, PD, PT | P | RW | US);
  q(c, PD + 8, 0x200000 | P | RW | PS | u);
  for (let i = 0; i < 512; i++) q(c, PT + i * 8, i * 0x1000 | P | RW | u);
  c.setReg('cr3', u64(PML4));
  return k;
}
const pte = (page: number): number => PT + page * 8;

function pf(k: Kernel): [number, number, string] {
  const e = k.log()[0];
  expect(e, 'a #PF was logged').to.not.equal(undefined);
  return [e.vector, e.error, '0x' + u64ToBigInt(k.cpu.getReg('cr2')).toString(16)];
}

describe('cpu: paging (4-level, PAE, 32-bit) through the MMU', () => {
  it('a walk sets A on every level, D only on the written page; a bare CPU starts on the ROM identity map', () => {
    expect(makeCpu(assemble('hlt')).getReg('cr3')).to.deep.equal(u64(BOOT_CR3 % 2 ** 32, Math.floor(BOOT_CR3 / 2 ** 32)));
    const k = paged('movq 0x5000, %rax\n movq %rax, 0x6000');
    k.cpu.mem.view.setUint32(0x5000, 77, true);
    expect(k.run().kind).to.equal('hlt');
    expect(rdq(k.cpu, 0x6000)).to.equal(77);
    for (const e of [PML4, PDPT, PD]) expect(rdq(k.cpu, e) & A, `A at 0x${e.toString(16)}`).to.equal(A);
    expect(rdq(k.cpu, pte(5)) & (A | D)).to.equal(A);
    expect(rdq(k.cpu, pte(6)) & (A | D)).to.equal(A | D);
    expect(rdq(k.cpu, pte(7)) & (A | D)).to.equal(0);
  });

  it('#PF: not present (read 0, write 2), CR2 = the address, RIP at the instruction, nothing written', () => {
    let k = paged('x: movq 0x5008, %rax');
    q(k.cpu, pte(5), 0);
    k.run();
    expect(pf(k)).to.deep.equal([14, 0, '0x5008']);
    expect(k.log()[0].rip).to.equal(k.labels.x);
    k = paged('movq $1, %rax\n x: movq %rax, 0x6ffc');  // 8 bytes across into the absent page 7
    q(k.cpu, pte(7), 0);
    k.run();
    expect(pf(k)).to.deep.equal([14, 2, '0x7000']);
    expect(k.cpu.mem.view.getUint32(0x6ffc, true)).to.equal(0);
  });

  it('R/W: a supervisor write to a read-only page faults (error 3) with CR0.WP=1 and succeeds with WP=0', () => {
    let k = paged('movq $9, 0x6000');
    q(k.cpu, pte(6), 0x6000 | P);
    k.run();
    expect(pf(k)).to.deep.equal([14, 3, '0x6000']);
    k = paged('movq $9, 0x6000');
    q(k.cpu, pte(6), 0x6000 | P);
    k.cpu.setReg('cr0', u64(k.cpu.getReg('cr0').lo & ~0x10000));
    expect(k.run().kind).to.equal('hlt');
    expect(k.log()).to.deep.equal([]);
    expect(rdq(k.cpu, 0x6000)).to.equal(9);
  });

  it('read-modify-write on a read-only page: #PF with W/R = 1 (error 3) before the flags change, fast and generic forms, BTS/BTR/BTC', () => {
    // Flags set to a known state (ZF, PF) by the XOR; each RMW would leave ZF clear.
    const forms = ['addl $1, 0x6000', 'addq $1, 0x6000', 'addl %ecx, 0x6000', 'incl 0x6000', 'negl 0x6000',
      'xaddl %ecx, 0x6000', 'cmpxchgl %ecx, 0x6000', 'shll $1, 0x6000', 'notl 0x6000',
      // bit 0 of 5 is set: each would set CF
      'btsl $0, 0x6000', 'btrq $0, 0x6000', 'btcl %eax, 0x6000', 'btsq %rax, 0x6000'];
    for (const form of forms) {
      const k = paged(`movl $1, %ecx\n xorl %eax, %eax\n x: ${form}`);
      q(k.cpu, pte(6), 0x6000 | P);
      k.cpu.mem.view.setUint32(0x6000, 5, true);
      k.run();
      expect(pf(k), form).to.deep.equal([14, 3, '0x6000']);
      const e = k.log()[0];
      expect(e.rip, form).to.equal(k.labels.x);
      expect(e.rflags & 0x8d5, `${form}: the flags the XOR left`).to.equal(0x44);
      expect(k.cpu.mem.view.getUint32(0x6000, true), form).to.equal(5);
    }
  });

  it('NX: a fetch from an XD page faults with P|I (0x11) when EFER.NXE=1; XD with NXE=0 is a reserved-bit fault (9)', () => {
    let k = paged('movq $0x7000, %rax\n jmp *%rax');
    q(k.cpu, pte(7), 0x7000 | P | RW, 0x80000000);
    expect(k.cpu.writeMsr(0xc0000080, u64(0xd00))).to.equal(true);
    k.run();
    expect(pf(k)).to.deep.equal([14, 0x11, '0x7000']);
    expect(k.log()[0].rip).to.equal(0x7000);
    k = paged('movq 0x7000, %rax');
    q(k.cpu, pte(7), 0x7000 | P | RW, 0x80000000);
    k.run();
    expect(pf(k)).to.deep.equal([14, 9, '0x7000']);
  });

  it('U/S at CPL 3: a user read of a supervisor page faults with P|U (5); a user write to a read-only user page with P|W|U (7) even with WP=0', () => {
    // #PF is intercepted (an exception exit): no privilege change to deliver it
    let k = paged('movq 0x5000, %rax', true);
    q(k.cpu, pte(5), 0x5000 | P | RW);
    k.cpu.cpl = 3;
    k.cpu.intercepts.exceptionBitmap = 1 << 14;
    expect(k.run()).to.include({ kind: 'exception', vector: 14, errorCode: 5 });
    expect(k.cpu.getReg('cr2')).to.deep.equal(u64(0x5000));
    k = paged('movq %rax, 0x5000', true);
    q(k.cpu, pte(5), 0x5000 | P | US);
    k.cpu.setReg('cr0', u64(k.cpu.getReg('cr0').lo & ~0x10000));
    k.cpu.cpl = 3;
    k.cpu.intercepts.exceptionBitmap = 1 << 14;
    expect(k.run()).to.include({ kind: 'exception', vector: 14, errorCode: 7 });
  });

  it('U/S on fetch at CPL 3: code on a supervisor page is a #PF with P|U (5, I only with NXE or SMEP), not a fault escaping the run loop', () => {
    const k = paged('nop');
    k.cpu.cpl = 3;
    k.cpu.intercepts.exceptionBitmap = 1 << 14;
    expect(k.run()).to.include({ kind: 'exception', vector: 14, errorCode: 5 });
    expect(k.cpu.getReg('cr2')).to.deep.equal(u64(0x1000));
  });

  it('SMEP: a supervisor fetch from a user page faults (0x11); SMAP: a supervisor read of a user page faults unless RFLAGS.AC=1', () => {
    let k = paged('movq $0x7000, %rax\n jmp *%rax');
    q(k.cpu, pte(7), 0x7000 | P | RW | US);
    k.cpu.setReg('cr4', u64(k.cpu.getReg('cr4').lo | (1 << 20)));
    k.run();
    expect(pf(k)).to.deep.equal([14, 0x11, '0x7000']);
    k = paged('movq 0x5000, %rax');
    q(k.cpu, pte(5), 0x5000 | P | RW | US);
    k.cpu.setReg('cr4', u64(k.cpu.getReg('cr4').lo | (1 << 21)));
    k.run();
    expect(pf(k)).to.deep.equal([14, 1, '0x5000']);
    k = paged('movq 0x5000, %rax');
    q(k.cpu, pte(5), 0x5000 | P | RW | US);
    k.cpu.mem.view.setUint32(0x5000, 42, true);
    k.cpu.setReg('cr4', u64(k.cpu.getReg('cr4').lo | (1 << 21)));
    k.cpu.setReg('rflags', u64(0x40002));
    expect(k.run().kind).to.equal('hlt');
    expect(k.log()).to.deep.equal([]);
    expect(k.cpu.getGpr(0).lo).to.equal(42);
  });

  it('2 MiB and 1 GiB pages map their whole range at an offset', () => {
    const k = paged('movq 0x405008, %rax\n movabsq $0x40005008, %rbx\n movq (%rbx), %rbx\n movq %rcx, 0x405010');
    q(k.cpu, PD + 16, 0 | P | RW | PS);          // 4 MiB.. -> physical 0 (2 MiB page)
    q(k.cpu, PDPT + 8, 0 | P | RW | PS);         // 1 GiB.. -> physical 0 (1 GiB page)
    k.cpu.mem.view.setUint32(0x5008, 0xabcd, true);
    k.cpu.setGpr(1, u64(0x5151));
    expect(k.run().kind).to.equal('hlt');
    expect(k.cpu.getGpr(0).lo).to.equal(0xabcd);
    expect(k.cpu.getGpr(3).lo).to.equal(0xabcd);
    expect(rdq(k.cpu, 0x5010)).to.equal(0x5151);
    expect(rdq(k.cpu, PD + 16) & (A | D)).to.equal(A | D);
  });

  it('TLB: a changed PTE is not seen until INVLPG; a CR3 load flushes it, but not a global page with CR4.PGE', () => {
    const body = `
      movq 0x5000, %rax          # cache page 5 (global) and page 6
      movq 0x6000, %rbx
      movq $0x8003, 0x303028     # page 5 -> physical 0x8000, no INVLPG
      movq $0x9003, 0x303030     # page 6 -> physical 0x9000
      movq 0x5000, %rcx          # stale: 1
      movq %cr3, %rdx
      movq %rdx, %cr3            # flushes page 6, keeps the global page 5
      movq 0x5000, %rsi          # still 1
      movq 0x6000, %rdi          # now 4
      invlpg 0x5000
      movq 0x5000, %r8           # now 3`;
    const k = paged(body);
    q(k.cpu, pte(5), 0x5000 | P | RW | G);
    for (const [a, v] of [[0x5000, 1], [0x6000, 2], [0x8000, 3], [0x9000, 4]]) k.cpu.mem.view.setUint32(a, v, true);
    k.cpu.setReg('cr4', u64(k.cpu.getReg('cr4').lo | 0x80));
    expect(k.run().kind).to.equal('hlt');
    expect([0, 3, 1, 6, 7, 8].map((r) => k.cpu.getGpr(r as 0).lo)).to.deep.equal([1, 2, 1, 1, 4, 3]);
  });

  it('paging-structure cache: a PDE changed to another page table is used after INVLPG of any page or a CR3 load', () => {
    // PT2: the same identity map as PT but pages 8, 9 and 10 -> physical 0xa000, 0xb000, 0xc000
    const PT2 = 0x304000;
    const body = `
      movq 0x7000, %rax          # a walk through PT: its region's PDE is cached
      movq $${PT2 | P | RW | US}, 0x302000
      movq 0x8000, %rbx          # a TLB miss in that region still reads PT's PTE: 8
      invlpg 0x1000              # another page: empties the paging-structure cache too
      movq 0x9000, %rcx          # through PT2: 11
      movq $${PT | P | RW | US}, 0x302000
      movq 0x7000, %rdx          # page 7 is still in the TLB: 7
      movq %cr3, %rsi
      movq %rsi, %cr3
      movq 0x9000, %rdi          # the CR3 load emptied both: PT again, 9
      movq $${PT2 | P | RW | US}, 0x302000
      movq %rsi, %cr3
      movq 0xa000, %r8           # PT2: 12`;
    const k = paged(body);
    for (let i = 0; i < 512; i++) q(k.cpu, PT2 + i * 8, i * 0x1000 | P | RW);
    for (const [i, phys] of [[8, 0xa000], [9, 0xb000], [10, 0xc000]]) q(k.cpu, PT2 + i * 8, phys | P | RW);
    for (let page = 7; page <= 12; page++) k.cpu.mem.view.setUint32(page * 0x1000, page, true);
    expect(k.run().kind).to.equal('hlt');
    expect([0, 3, 1, 2, 7, 8].map((r) => k.cpu.getGpr(r as 0).lo)).to.deep.equal([7, 8, 11, 7, 9, 12]);
  });

  it('32-bit paging (4 KiB pages, 4 MiB PSE pages with PSE-36 bits) and PAE (2 MiB pages) walks', () => {
    const cpu = makeCpu(assemble('hlt'), { memSize: MEM });
    const d4 = (a: number, v: number): void => cpu.mem.view.setUint32(a, v >>> 0, true);
    // 32-bit: PD at 0x310000; PDE0 -> PT 0x311000; PDE1 = 4 MiB page at 0; PDE2 = 4 MiB page at 4 GiB (PSE-36)
    d4(0x310000, 0x311000 | P | RW); d4(0x310004, 0 | P | RW | PS); d4(0x310008, (1 << 13) | P | RW | PS);
    d4(0x311000 + 5 * 4, 0x9000 | P | RW);
    cpu.efer = 0; // legacy paging (no LMA): the walker alone, the mode switch is not under test
    cpu.setReg('cr4', u64(0x10));
    cpu.setReg('cr3', u64(0x310000));
    expect(translate(cpu, 0x5123, 0, ACC_READ | ACC_PROBE)).to.equal(0x9123);
    expect(translate(cpu, 0x401234, 0, ACC_READ | ACC_PROBE)).to.equal(0x1234);
    expect(translate(cpu, 0x800010, 0, ACC_READ | ACC_PROBE)).to.equal(2 ** 32 + 0x10);
    expect(translate(cpu, 0x6000, 0, ACC_READ | ACC_PROBE)).to.equal(-1);
    // PAE: PDPT at 0x312000 (4 entries); PDPTE0 -> PD 0x313000; PD0 -> PT 0x314000; PD2 = 2 MiB page at 2 MiB
    q(cpu, 0x312000, 0x313000 | P);
    q(cpu, 0x313000, 0x314000 | P | RW); q(cpu, 0x313010, 0x200000 | P | RW | PS);
    q(cpu, 0x314000 + 5 * 8, 0xa000 | P | RW);
    cpu.setReg('cr4', u64(0x20));
    cpu.setReg('cr3', u64(0x312000));
    expect(translate(cpu, 0x5123, 0, ACC_READ | ACC_PROBE)).to.equal(0xa123);
    expect(translate(cpu, 0x412345, 0, ACC_WRITE | ACC_PROBE)).to.equal(0x212345);
    expect(translate(cpu, 0x40000000, 0, ACC_READ | ACC_PROBE)).to.equal(-1);
    // paging off: linear = physical
    cpu.setReg('cr0', u64(0x11));
    expect(translate(cpu, 0x123456, 0, ACC_READ | ACC_PROBE)).to.equal(0x123456);
  });

  it('MMIO: an access outside RAM that hits a registered region goes to the device; 8-byte accesses are two 4-byte ones', () => {
    const log: string[] = [];
    const dev: MmioDevice = {
      name: 'test-dev',
      mmioRead(off: number, size: AccessSize): number { log.push(`r ${off} ${size}`); return 0x1000 + off; },
      mmioWrite(off: number, size: AccessSize, v: number): DeviceEffect { log.push(`w ${off} ${size} ${v.toString(16)}`); return null; },
    };
    const cpu = makeCpu(assemble('movl $0xfee00000, %ebx\n movl $0x12345678, 0x20(%rbx)\n movl 0x30(%rbx), %eax\n movq (%rbx), %rcx\n movw %ax, 2(%rbx)\n hlt'));
    cpu.mem.mmio.register(0xfee00000, 0x1000, dev);
    expect(cpu.run(100).kind).to.equal('hlt');
    expect(log).to.deep.equal(['w 32 4 12345678', 'r 48 4', 'r 0 4', 'r 4 4', 'w 2 2 1030']);
    expect(u64ToBigInt(cpu.getGpr(1))).to.equal(0x0000100400001000n);
    expect(() => cpu.mem.mmio.register(0xfee00800, 16, dev)).to.throw(/overlaps/);
  });

  it('nested-page faults carry the exact 64-bit physical address; a fetch at -1 is a #PF with CR2 = 2^64-1', () => {
    let cpu = makeCpu(assemble('movabsq $0x7000000010, %rbx\n movl (%rbx), %eax'));
    expect(cpu.run(100)).to.deep.equal({ kind: 'npf', address: 0x7000000010, write: false, fetch: false });
    const k = paged('movq 0x5008, %rax');
    q(k.cpu, pte(5), 0xfffff000 | P | RW, 0xfffff); // physical 0xffffffffff000 (52 bits)
    expect(k.run()).to.deep.equal({ kind: 'npf', address: 0xffffffffff008, write: false, fetch: false });
    cpu = makeCpu(assemble('movq $-1, %rax\n jmp *%rax'));
    cpu.intercepts.exceptionBitmap = 1 << 14;
    const e = cpu.run(100);
    expect(e).to.include({ kind: 'exception', vector: 14, errorCode: 0 });
    expect(u64ToBigInt(cpu.getReg('cr2'))).to.equal(0xffffffffffffffffn);
    expect(u64ToBigInt(cpu.getReg('rip'))).to.equal(0xffffffffffffffffn);
  });
});

describe('cpu: the decoded-code cache', () => {
  it('stores to data on a code page (outside the decoded lines) keep the decoded code; a store into the code drops it', () => {
    const prog = assembleProgram(`
      movl $20000, %ecx
    1:
      incq var(%rip)
      decl %ecx
      jnz 1b
      movb $0x90, patch(%rip)    # self-modifying: the INT3 below becomes a NOP
    patch:
      int3
      hlt
      .balign 64
    var: .quad 0`);
    const cpu = makeCpu(prog.code);
    cpu.intercepts.exceptionBitmap = 1 << 3;
    const e = cpu.run(1_000_000);
    expect(e.kind).to.equal('hlt');
    expect(cpu.decodes).to.be.lessThan(30);
    expect(cpu.mem.view.getUint32(prog.labels.var, true)).to.equal(20000);
    expect(prog.labels.var >>> 12).to.equal(prog.labels.patch >>> 12); // same page
  });

  it('code that runs once (a first-run block, not cached) sees a store into its own next instruction', () => {
    const prog = assembleProgram(`
      movb $0x90, patch(%rip)    # the INT3 below becomes a NOP before it runs
    patch:
      int3
      movl $7, %eax
      hlt`);
    const cpu = makeCpu(prog.code);
    cpu.intercepts.exceptionBitmap = 1 << 3;
    expect(cpu.run(1000).kind).to.equal('hlt');
    expect(cpu.getGpr(0).lo).to.equal(7);
    expect(cpu.cachedInstructions).to.equal(0);
  });

  it('a zero sled through all of RAM ends in a fetch nested-page fault with the cache bounded', () => {
    const mem = 16 << 20;
    const cpu = makeCpu(assemble('nop'), { memSize: mem });
    cpu.setGpr(0, u64(0)); // add %al,(%rax): rewrites byte 0, outside the sled's pages
    let e = cpu.run(50_000_000);
    while (e.kind === 'budget') e = cpu.run(50_000_000);
    expect(e).to.deep.equal({ kind: 'npf', address: mem, write: false, fetch: true });
    expect(cpu.cachedInstructions).to.be.at.most(1 << 17);
  });

  it('pushes in a loop run down through RAM (overwriting the loop) and end in a nested-page fault', () => {
    const cpu = makeCpu(assemble('1: push %rax\n jmp 1b'), { memSize: 1 << 20 });
    let e = cpu.run(10_000_000);
    while (e.kind === 'budget') e = cpu.run(10_000_000);
    expect(e.kind).to.equal('npf');
    expect(cpu.cachedInstructions).to.be.at.most(1 << 17);
  });
});
