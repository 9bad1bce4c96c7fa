// Alignment checking (SDM Vol. 3 6.15 "Interrupt 17", Table 6-7): #AC(0) for a misaligned
// 2-, 4- or 8-byte data or stack access at CPL 3 while CR0.AM = 1 and RFLAGS.AC = 1; never
// for bytes, 16-byte SSE operands (MOVAPS keeps its #GP), implicit supervisor accesses
// (descriptor-table reads) or at CPL 0. POPF switching AC on takes effect at once, also on
// pages whose translation is already cached.
import { expect } from 'chai';
import { buildKernel, Kernel } from './kernel';
import { u64 } from '../../vmm/u64';
import { GDT, GDT_ENTRIES, setup, toUser } from './user-mode';

const AC = 0x40000;
const CR0_AM = 0x40000;
const CR4_OSFXSR = 0x200;

/** A kernel that enters CPL 3 (RFLAGS = flags) at `user:` with %rbx = buf (16-byte aligned). */
function user(code: string, flags = AC | 2, prefix = ''): Kernel {
  const k = buildKernel(`${prefix}\n${toUser('user', flags)}\n user: leaq buf(%rip), %rbx\n ${code}\n done:`);
  setup(k);
  return k;
}

function faults(k: Kernel): [number, number, number][] {
  return k.log().map((e) => [e.vector, e.error, e.rip]);
}

/** The run ended at the final HLT (a #GP(0) at CPL 3) with no other event. */
function clean(k: Kernel): [number, number, number][] {
  return [[13, 0, k.labels.done]];
}

const enableSse = `movq %cr4, %rax\n orq $${CR4_OSFXSR}, %rax\n movq %rax, %cr4`;

describe('cpu: alignment check #AC (CR0.AM, RFLAGS.AC, CPL 3)', () => {
  const faulting: [string, string, string?][] = [
    ['a word read at an odd address', 'x: movw 1(%rbx), %ax'],
    ['a dword write at 2 mod 4', 'x: movl %eax, 2(%rbx)'],
    ['a qword read-modify-write at 4 mod 8 (nothing written)', 'movq $5, %rax\n x: addq %rax, 4(%rbx)'],
    ['a push with RSP at 4 mod 8', 'leaq 68(%rbx), %rsp\n x: pushq %rax'],
    ['a string MOVSW from an odd address', 'leaq 1(%rbx), %rsi\n leaq 32(%rbx), %rdi\n x: movsw'],
    ['a far-pointer load (m16:32 offset) at 2 mod 4', 'x: lfs 2(%rbx), %eax'],
    ['an 8-byte SSE load (MOVSD) at 4 mod 8', 'x: movsd 4(%rbx), %xmm0', enableSse],
  ];
  for (const [name, code, prefix] of faulting) {
    it(`#AC(0) for ${name}, RIP at the instruction`, () => {
      const k = user(code, AC | 2, prefix ?? '');
      k.run();
      expect(faults(k)).to.deep.equal([[17, 0, k.labels.x]]);
      expect(k.cpu.mem.view.getUint32(k.labels.buf + 4, true)).to.equal(0);
    });
  }

  const fine: [string, string, string?][] = [
    ['aligned word, dword and qword accesses', 'movw 2(%rbx), %ax\n movl %eax, 4(%rbx)\n addq %rax, 8(%rbx)\n pushq %rax\n popq %rax'],
    ['byte accesses at any address', 'movb 3(%rbx), %al\n incb 5(%rbx)'],
    ['a 16-byte MOVUPS at 4 mod 16', 'movups 4(%rbx), %xmm0\n movups %xmm0, 36(%rbx)', enableSse],
  ];
  for (const [name, code, prefix] of fine) {
    it(`no #AC for ${name}`, () => {
      const k = user(code, AC | 2, prefix ?? '');
      k.run();
      expect(faults(k)).to.deep.equal(clean(k));
    });
  }

  it('MOVAPS at 4 mod 16 stays #GP(0), not #AC', () => {
    const k = user('x: movaps 4(%rbx), %xmm0', AC | 2, enableSse);
    k.run();
    expect(faults(k)).to.deep.equal([[13, 0, k.labels.x]]);
  });

  it('no #AC with RFLAGS.AC = 0, with CR0.AM = 0, or at CPL 0', () => {
    const k = user('movw 1(%rbx), %ax\n movq 4(%rbx), %rax', 2);
    k.run();
    expect(faults(k), 'AC = 0').to.deep.equal(clean(k));
    const k2 = user('movw 1(%rbx), %ax\n movq 4(%rbx), %rax');
    k2.cpu.setReg('cr0', u64(k2.cpu.getReg('cr0').lo & ~CR0_AM));
    k2.run();
    expect(faults(k2), 'AM = 0').to.deep.equal(clean(k2));
    const k3 = buildKernel('leaq buf(%rip), %rbx\n pushfq\n orl $0x40000, (%rsp)\n popfq\n movw 1(%rbx), %ax\n movq 4(%rbx), %rax\n done: nop');
    expect(k3.run().kind).to.equal('hlt');
    expect(faults(k3), 'CPL 0').to.deep.equal([]);
  });

  it('POPF at CPL 3 switches checking on and off at once, also for a page already in the TLB', () => {
    const k = user('movw 2(%rbx), %ax\n pushfq\n orl $0x40000, (%rsp)\n popfq\n x: movw 1(%rbx), %ax', 2);
    k.run();
    expect(faults(k)).to.deep.equal([[17, 0, k.labels.x]]);
    const k2 = user('movw 2(%rbx), %ax\n pushfq\n andl $~0x40000, (%rsp)\n popfq\n movw 1(%rbx), %ax');
    k2.run();
    expect(faults(k2)).to.deep.equal(clean(k2));
  });

  it('implicit supervisor accesses are not checked: a segment load at CPL 3 reads its descriptor from a misaligned GDT', () => {
    const k = user('movw $0x23, %ax\n movw %ax, %ds\n movw %ax, %es');
    const GDT2 = GDT + 0x4003;
    const dv = k.cpu.mem.view;
    GDT_ENTRIES.forEach(([lo, hi], n) => { dv.setUint32(GDT2 + n * 8, lo, true); dv.setUint32(GDT2 + n * 8 + 4, hi, true); });
    dv.setUint32(GDT2 + 0x30, dv.getUint32(GDT + 0x30, true), true); // the TSS descriptor
    dv.setUint32(GDT2 + 0x34, dv.getUint32(GDT + 0x34, true), true);
    k.cpu.setReg('gdtr_base', u64(GDT2));
    k.run();
    expect(faults(k)).to.deep.equal(clean(k));
    expect(k.cpu.getReg('es').lo).to.equal(0x23);
  });
});
