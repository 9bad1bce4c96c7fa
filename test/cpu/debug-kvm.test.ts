// kvm-unit-tests x86/debug.c, case by case (see shared/reference/kvm-unit-tests-debug.md):
// the executable specification of #DB, DR6 and single-step validated on real hardware.
import { expect } from 'chai';
import { buildKernel, Kernel, rip } from './kernel';

const SET_TF = 'pushfq\n popq %rax\n orq $0x100, %rax\n pushq %rax\n popfq\n';
const DR6_ZERO = 'xorl %ecx, %ecx\n movq %rcx, %dr6\n';

function dbs(k: Kernel): Array<[number, number]> {
  return k.log().filter((e) => e.vector === 1).map((e) => [e.rip, e.dr6]);
}

describe('cpu debug architecture: kvm-unit-tests x86/debug.c cases', () => {
  it('case 2: DR4 aliases DR6 when CR4.DE=0 (SDM 17.2.2)', () => {
    const k = buildKernel(`movq %cr4, %rax\n andq $~8, %rax\n movq %rax, %cr4\n xorl %eax, %eax\n movq %rax, %dr4
      movl $0xffff4ff2, %eax\n movq %rax, %dr6\n movq %dr4, %rbx`);
    expect(k.run().kind).to.equal('hlt');
    expect(k.log()).to.deep.equal([]);
    expect(k.cpu.getGpr(3).lo).to.equal(0xffff4ff2);
  });

  it('case 3: MOV from DR4 with CR4.DE=1 is #UD, a fault (SDM 17.2.2, MOV DR)', () => {
    const k = buildKernel(`movq %cr4, %rax\n orq $8, %rax\n movq %rax, %cr4\n ud_here: movq %dr4, %rbx`);
    k.run();
    expect(k.log().map((e) => [e.vector, e.rip])).to.deep.equal([[6, k.labels.ud_here]]);
  });

  it('case 4: INT3 is #BP with RIP after it (trap)', () => {
    const k = buildKernel('int3\nsw_bp: nop');
    expect(k.run().kind).to.equal('hlt');
    expect(k.log().map((e) => [e.vector, e.rip])).to.deep.equal([[3, k.labels.sw_bp]]);
  });

  it('case 5: instruction breakpoint in DR2 is fault-like, DR6 = B2 only (SDM 17.3.1.1)', () => {
    const k = buildKernel(`${DR6_ZERO} leaq hw_bp1(%rip), %rax\n movq %rax, %dr2\n movl $0x420, %eax\n movq %rax, %dr7\n hw_bp1: nop`);
    expect(k.run().kind).to.equal('hlt');
    expect(dbs(k)).to.deep.equal([[k.labels.hw_bp1, 0xffff0ff4]]);
  });

  it('case 6: B0-B3 are replaced, BS stays sticky (SDM 17.2.3)', () => {
    const k = buildKernel(`leaq hw_bp2(%rip), %rax\n movq %rax, %dr2\n movl $0x420, %eax\n movq %rax, %dr7
      movl $0x4002, %eax\n movq %rax, %dr6\n hw_bp2: nop`);
    k.run();
    expect(dbs(k)).to.deep.equal([[k.labels.hw_bp2, 0xffff4ff4]]);
  });

  it('case 7: single-step after each instruction that began with TF=1; none after the POPF that sets TF (SDM 17.3.1.4)', () => {
    const k = buildKernel(`${DR6_ZERO} ${SET_TF} andq $~0x100, %rax\n S: pushq %rax\n S1: popfq\n S2: nop`);
    k.run();
    const L = k.labels;
    expect(dbs(k)).to.deep.equal([[L.S, 0xffff4ff0], [L.S1, 0xffff4ff0], [L.S2, 0xffff4ff0]]);
  });

  it('case 8: single-step traps once after each emulated instruction (CPUID, IN) via completeEmulatedInstruction', () => {
    const k = buildKernel(`${DR6_ZERO} ${SET_TF} andq $~0x100, %rax\n S: pushq %rax\n a1: xorq %rax, %rax\n a2: cpuid\n a3: movl $0x3fd, %edx
      a4: inb %dx, %al\n a5: popfq\n a6: nop`);
    k.run();
    const L = k.labels;
    expect(dbs(k).map((d) => d[0])).to.deep.equal([L.S, L.a1, L.a2, L.a3, L.a4, L.a5, L.a6]);
    expect(dbs(k).every((d) => d[1] === 0xffff4ff0)).to.equal(true);
  });

  it('case 9: the STI shadow does not suppress single-step (SDM 6.8.3, kvm "STI blocking")', () => {
    const k = buildKernel(`${DR6_ZERO} cli\n ${SET_TF} sti\n S: andq $~0x100, %rax\n a1: pushq %rax\n a2: popfq\n a3: nop`);
    k.run();
    const L = k.labels;
    expect(dbs(k).map((d) => d[0])).to.deep.equal([L.S, L.a1, L.a2, L.a3]);
  });

  it('case 10: MOV SS holds the single-step trap until after the next instruction (SDM 6.8.3)', () => {
    const k = buildKernel(`${DR6_ZERO} pushfq\n popq %rax\n orq $0x100, %rax\n pushq %rax\n movw %ss, %ax\n popfq\n movw %ax, %ss
      andq $~0x100, %rax\n S: pushq %rax\n S1: popfq\n S2: nop`);
    k.run();
    const L = k.labels;
    expect(dbs(k)).to.deep.equal([[L.S, 0xffff4ff0], [L.S1, 0xffff4ff0], [L.S2, 0xffff4ff0]]);
  });

  it('case 11: ICEBP in the MOV SS shadow: one #DB with no DR6 status bit, no separate BS (kvm "icebp")', () => {
    const k = buildKernel(`${DR6_ZERO} pushfq\n popq %rax\n orq $0x100, %rax\n pushq %rax\n movw %ss, %ax\n popfq\n movw %ax, %ss
      .byte 0xf1\n S: .byte 0xf1\n S1: andq $~0x100, %rax\n S7: pushq %rax\n S8: popfq\n S9: nop`);
    k.run();
    const L = k.labels;
    expect(dbs(k)).to.deep.equal([[L.S, 0xffff0ff0], [L.S1, 0xffff0ff0], [L.S7, 0xffff4ff0], [L.S8, 0xffff4ff0], [L.S9, 0xffff4ff0]]);
  });

  it('case 12: general detect is a fault not blocked by MOV SS; GD cleared on delivery; BD not cleared by the CPU (SDM 17.2.4)', () => {
    const k = buildKernel(`${DR6_ZERO} movl $0x2000, %eax\n movq %rax, %dr7\n xorl %ebx, %ebx
      pushfq\n popq %rax\n orq $0x100, %rax\n pushq %rax\n movw %ss, %ax\n popfq\n movw %ax, %ss
      S: movq %rbx, %dr6\n S3: andq $~0x100, %rax\n S9: pushq %rax\n S10: popfq\n S11: nop`);
    k.run();
    const L = k.labels;
    expect(dbs(k)).to.deep.equal([[L.S, 0xffff2ff0], [L.S3, 0xffff4ff0], [L.S9, 0xffff4ff0], [L.S10, 0xffff4ff0], [L.S11, 0xffff4ff0]]);
    expect(k.log()[0].dr7).to.equal(0x400);
  });

  it('case 13: single-step over STI;HLT: the trap after HLT comes when the interrupt wakes it, before the interrupt', () => {
    const k = buildKernel(`${DR6_ZERO} cli\n ${SET_TF} sti\n S: hlt\n S1: andq $~0x100, %rax\n S7: pushq %rax\n S8: popfq\n S9: nop\n hlt`);
    const e = k.run();
    expect(e).to.deep.equal({ kind: 'hlt', length: 1 });
    expect(rip(k.cpu)).to.equal(k.labels.S);
    k.cpu.completeEmulatedInstruction(1);
    k.cpu.halted = true;
    expect(k.run().kind).to.equal('budget'); // halted, nothing to wake it
    k.cpu.requestInterrupt(0xee);
    expect(k.run().kind).to.equal('hlt');
    const L = k.labels;
    expect(k.log().map((x) => [x.vector, x.rip])).to.deep.equal([[1, L.S], [1, L.S1], [0xee, L.S1], [1, L.S7], [1, L.S8], [1, L.S9]]);
  });

  it('case 14: data write breakpoint is trap-like after the store, BS kept (SDM 17.3.1.2)', () => {
    const k = buildKernel(`xorl %eax, %eax\n movq %rax, %dr0\n leaq value(%rip), %rax\n movq %rax, %dr1\n movl $0x4000, %eax\n movq %rax, %dr6
      movl $0x00d0040a, %eax\n movq %rax, %dr7\n movq $42, %rax\n movq %rax, value(%rip)\n hw_wp1: nop`);
    k.run();
    expect(dbs(k)).to.deep.equal([[k.labels.hw_wp1, 0xffff4ff2]]);
  });

  it('case 15: data write breakpoint does not set BS', () => {
    const k = buildKernel(`${DR6_ZERO} leaq value(%rip), %rax\n movq %rax, %dr1\n movl $0x00d0040a, %eax\n movq %rax, %dr7
      movq $42, %rax\n movq %rax, value(%rip)\n hw_wp2: nop`);
    k.run();
    expect(dbs(k)).to.deep.equal([[k.labels.hw_wp2, 0xffff0ff2]]);
  });

  it('case 16: ICEBP (F1) is a trap-like #DB with no DR6 status bit', () => {
    const k = buildKernel(`${DR6_ZERO} .byte 0xf1\n sw_icebp: nop`);
    k.run();
    expect(dbs(k)).to.deep.equal([[k.labels.sw_icebp, 0xffff0ff0]]);
  });

  const RAW_DB = `db_raw:\n stc\n nop\n nop\n nop\n rclq $1, n(%rip)\n iretq\n .balign 8\n n: .quad 1\n`;
  const MOVSS_SETUP = `movl $0x400, %eax\n movq %rax, %dr7\n movq $0x10, value(%rip)\n leaq value(%rip), %rax\n movq %rax, %dr1
    movl $0x00f0040a, %eax\n movq %rax, %dr7\n`;

  it('case 17: MOV SS + read watchpoint + ICEBP: one #DB, entered at the handler start (CVE-2018-8897)', () => {
    const k = buildKernel(`${MOVSS_SETUP} clc\n movw value(%rip), %ss\n .byte 0x2e, 0x2e, 0xf1\n nop`, { extra: RAW_DB, gates: { 1: 'db_raw' } });
    expect(k.run().kind).to.equal('hlt');
    expect(Number(k.cpu.mem.view.getBigUint64(k.labels.n, true))).to.equal(3);
  });

  it('case 18: MOV SS + watchpoint + INT 1: the handler runs twice, the delayed #DB on its first instruction', () => {
    const k = buildKernel(`${MOVSS_SETUP} clc\n movw value(%rip), %ss\n int $1\n nop`, { extra: RAW_DB, gates: { 1: 'db_raw' } });
    expect(k.run().kind).to.equal('hlt');
    expect(Number(k.cpu.mem.view.getBigUint64(k.labels.n, true))).to.equal(7);
  });

  it('case 19: MOV SS + watchpoint + 12-byte INT3: #BP with RIP after it, then the delayed #DB once', () => {
    const k = buildKernel(`${MOVSS_SETUP} movw value(%rip), %ss\n .byte 0x2e,0x2e,0x2e,0x2e,0x2e,0x2e,0x2e,0x2e,0x2e,0x2e,0x2e,0xcc\n sw_bp2: nop`,
      { extra: RAW_DB, gates: { 1: 'db_raw' } });
    expect(k.run().kind).to.equal('hlt');
    expect(Number(k.cpu.mem.view.getBigUint64(k.labels.n, true))).to.equal(3);
    expect(k.log().map((e) => [e.vector, e.rip])).to.deep.equal([[3, k.labels.sw_bp2]]);
  });
});
