// The debug architecture rules of SDM Vol. 3 ch. 17 (and 6.9), one test per rule.
import { expect } from 'chai';
import { buildKernel, rip } from './kernel';
import { u64 } from '../../vmm/u64';

const DR6_ZERO = 'xorl %ecx, %ecx\n movq %rcx, %dr6\n';
function setDr7(v: number): string { return `movl $0x${(v >>> 0).toString(16)}, %eax\n movq %rax, %dr7\n`; }
function dbs(k: ReturnType<typeof buildKernel>): Array<[number, number]> {
  return k.log().filter((e) => e.vector === 1).map((e) => [e.rip, e.dr6]);
}

describe('cpu debug architecture: SDM 17 rules', () => {
  describe('17.2.5 Table 17-1 breakpoint field recognition', () => {
    // DR0 = A0001H R/W=11 LEN=1; DR2 = B0002H R/W=11 LEN=2; DR3 = C0000H R/W=01 LEN=4 (scaled
    // into our RAM as 0xA0001, 0xB0002, 0xC0000).
    const setup = `movq $0xa0001, %rax\n movq %rax, %dr0\n movq $0xb0002, %rax\n movq %rax, %dr2\n movq $0xc0000, %rax\n movq %rax, %dr3
      ${DR6_ZERO} ${setDr7(0x02 | 0x20 | 0x80 | (0x3 << 16) | (0x7 << 24) | (0xd << 28))}`;
    const cases: Array<[string, boolean]> = [
      ['movw 0xa0001, %ax', true], ['movl 0xa0003, %eax', false] /* 4-byte read at A0003H: no */,
      ['movw 0xb0002, %ax', true], ['movl 0xb0001, %eax', true], ['movb 0xb0004, %al', false],
      ['movw %ax, 0xc0001', true], ['movw 0xc0000, %ax', false] /* R/W=01: reads do not trap */,
      ['movb %al, 0xc0003', true], ['movb %al, 0xc0004', false], ['movq %rax, 0xbfff9', true] /* 8 bytes ending at C0000H */,
    ];
    for (const [insn, traps] of cases) {
      it(`${insn}: ${traps ? 'traps' : 'no trap'}`, () => {
        const k = buildKernel(`${setup} ${insn}\n after: nop`, { memSize: 1 << 21 });
        k.run();
        expect(dbs(k).length, JSON.stringify(k.log())).to.equal(traps ? 1 : 0);
        if (traps) expect(dbs(k)[0][0]).to.equal(k.labels.after);
      });
    }
  });

  it('17.2.4 LEN=10 is an 8-byte range, aligned down (LEN mask 7)', () => {
    const k = buildKernel(`leaq value+5(%rip), %rax\n movq %rax, %dr1\n ${DR6_ZERO} ${setDr7(0x8 | (0x9 << 20))}
      movb %al, value(%rip)\n a1: movb %al, value+8(%rip)\n a2: nop`);
    k.run();
    expect(dbs(k)).to.deep.equal([[k.labels.a1, 0xffff0ff2]]);
  });

  it('17.3.1.2 [base+disp] MOV loads and stores (the inlined fast path) hit data breakpoints', () => {
    const k = buildKernel(`leaq value(%rip), %rbx\n movq %rbx, %dr0\n leaq value+8(%rip), %rax\n movq %rax, %dr1\n ${DR6_ZERO}
      ${setDr7(0x2 | 0x8 | (0x9 << 16) | (0xf << 20))}
      movq %rax, 0(%rbx)\n a1: movl 4(%rbx), %ecx\n a2: movl 8(%rbx), %ecx\n a3: movl %ecx, 12(%rbx)\n a4: nop`);
    k.run();
    // DR0: write, 8 bytes at value; DR1: read/write, 4 bytes at value+8
    expect(dbs(k)).to.deep.equal([[k.labels.a1, 0xffff0ff1], [k.labels.a3, 0xffff0ff2]]);
  });

  it('17.3.1.2 a PUSH that writes a watched stack slot traps after the push', () => {
    const k = buildKernel(`leaq -8(%rsp), %rax\n movq %rax, %dr0\n ${DR6_ZERO} ${setDr7(0x2 | (0xd << 16))}
      pushq %rbx\n a: popq %rbx`);
    k.run();
    expect(dbs(k)).to.deep.equal([[k.labels.a, 0xffff0ff1]]);
  });

  it('17.3.1.2 REP string: trap after the iteration that hit, RIP at the REP instruction, RF=1 pushed, RCX = remaining', () => {
    const k = buildKernel(`leaq buf+16(%rip), %rax\n movq %rax, %dr0\n ${DR6_ZERO} ${setDr7(0x2 | (0x1 << 16))}
      leaq buf(%rip), %rdi\n movl $64, %ecx\n xorl %eax, %eax\n cld\n r: rep stosb\n done: movq %rcx, %r12`);
    k.run();
    const [e] = k.log();
    expect([e.vector, e.rip, e.dr6]).to.deep.equal([1, k.labels.r, 0xffff0ff1]);
    expect(e.rflags & 0x10000).to.equal(0x10000);
    // the handler returned (with RF=1) into the REP, which completed: no second #DB
    expect(k.log().length).to.equal(1);
    expect(k.cpu.getGpr(12).lo).to.equal(0);
    expect(k.cpu.getGpr(7).lo).to.equal(k.labels.buf + 64);
  });

  it('17.2.4 I/O breakpoints (R/W=10) match only with CR4.DE=1, trap after the emulated IN/OUT', () => {
    const body = `movq $0x3f8, %rax\n movq %rax, %dr2\n ${DR6_ZERO} ${setDr7(0x20 | (0xe << 24))}
      movw $0x3fa, %dx\n outb %al, %dx\n a1: inb $0xf9, %al\n a2: movw $0x3f9, %dx\n outw %ax, %dx\n a3: nop`;
    const k = buildKernel(body);
    k.run();
    expect(dbs(k)).to.deep.equal([]); // CR4.DE = 0: undefined, we never match
    const k2 = buildKernel(`movq %cr4, %rax\n orq $8, %rax\n movq %rax, %cr4\n ${body}`);
    k2.run();
    // LEN=4 covers ports 3F8-3FB: OUT 3FA and OUT 3F9 (word) hit, IN F9 does not
    expect(dbs(k2)).to.deep.equal([[k2.labels.a1, 0xffff0ff4], [k2.labels.a3, 0xffff0ff4]]);
  });

  it('17.2.3 several breakpoints hit by one access are reported together; disabled matching ones too (as Bochs)', () => {
    const k = buildKernel(`leaq value(%rip), %rax\n movq %rax, %dr0\n movq %rax, %dr1\n movq %rax, %dr3\n ${DR6_ZERO}
      ${setDr7(0x2 | 0x8 | (0x1 << 16) | (0x3 << 20) | (0x1 << 28))}
      movq %rax, value(%rip)\n a: nop`);
    k.run();
    expect(dbs(k)).to.deep.equal([[k.labels.a, 0xffff0ffb]]); // B0, B1 enabled; B3 disabled but matching
  });

  it('17.2.3 a disabled breakpoint alone never raises #DB', () => {
    const k = buildKernel(`leaq value(%rip), %rax\n movq %rax, %dr3\n ${DR6_ZERO} ${setDr7(0x1 << 28)}
      movq %rax, value(%rip)\n nop`);
    k.run();
    expect(dbs(k)).to.deep.equal([]);
  });

  it('17.3.1.1 RF=1 in the IRETQ image suppresses the instruction breakpoint for one instruction', () => {
    // the common #DB handler sets RF in the image: the breakpointed NOP then runs; looping
    // back to it hits again.
    const k = buildKernel(`leaq bp(%rip), %rax\n movq %rax, %dr0\n ${DR6_ZERO} ${setDr7(0x2)} movl $2, %ecx
      bp: nop\n decl %ecx\n jnz bp`);
    k.run();
    expect(dbs(k)).to.deep.equal([[k.labels.bp, 0xffff0ff1], [k.labels.bp, 0xffff0ff1]]);
  });

  it('17.4.3 BTF: with TF and DEBUGCTL.BTF the single-step trap comes only after taken branches; #DB clears BTF and LBR', () => {
    const k = buildKernel(`${DR6_ZERO} movl $3, %ecx\n pushfq\n orq $0x100, (%rsp)\n popfq
      l: nop\n decl %ecx\n jnz l\n j: jmp t\n nop\n t: nop\n nop`);
    k.cpu.writeMsr(0x1d9, u64(3)); // LBR | BTF
    k.run();
    // first taken branch (jnz back to l) traps with BS; the #DB clears BTF, so from then on
    // every instruction traps (TF is restored by IRETQ)
    const r = dbs(k).map((d) => d[0]);
    expect(r[0]).to.equal(k.labels.l);
    expect(k.cpu.phys.debugctlLo & 3).to.equal(0);
    expect(r.length).to.be.greaterThan(3);
  });

  it('17.2.2 DR5 aliases DR7 with CR4.DE=0 and is #UD with CR4.DE=1; REX.R (DR8+) is #UD', () => {
    const k = buildKernel(`movq %dr5, %r13\n movq %cr4, %rax\n orq $8, %rax\n movq %rax, %cr4\n u: movq %dr5, %rbx`);
    k.run();
    expect(k.cpu.getGpr(13).lo).to.equal(0x400);
    expect(k.log().map((e) => [e.vector, e.rip])).to.deep.equal([[6, k.labels.u]]);
    const k2 = buildKernel('u: .byte 0x44, 0x0f, 0x21, 0xc0'); // mov %dr8, %rax
    k2.run();
    expect(k2.log().map((e) => [e.vector, e.rip])).to.deep.equal([[6, k2.labels.u]]);
  });

  it('17.2.6 writing 1s to bits 63:32 of DR6/DR7 is #GP(0); DR0-3 take all 64 bits', () => {
    const k = buildKernel(`movabsq $0x123456789a, %rax\n movq %rax, %dr0\n movq %dr0, %r13\n g: movq %rax, %dr7`);
    k.run();
    expect(k.cpu.getGpr(13).hi).to.equal(0x12);
    expect(k.log().map((e) => [e.vector, e.error, e.rip])).to.deep.equal([[13, 0, k.labels.g]]);
  });

  it('17.2.3/17.2.4 DR6 and DR7 write masks: reserved bits read as fixed values', () => {
    const k = buildKernel(`xorl %eax, %eax\n movq %rax, %dr6\n movq %dr6, %rbx\n movl $0xffffdfff, %eax\n movq %rax, %dr7\n movq %dr7, %rcx
      xorl %eax, %eax\n movq %rax, %dr7`);
    k.run();
    expect(k.cpu.getGpr(3).lo).to.equal(0xffff0ff0);
    expect(k.cpu.getGpr(1).lo).to.equal(0xffff0fff); // bits 12, 14, 15 read 0, bit 10 reads 1
  });

  it('MOV DR with the MOV-DR intercept exits before the #UD and GD checks (SDM 25.1.1)', () => {
    const k = buildKernel(`movq %cr4, %rax\n orq $8, %rax\n movq %rax, %cr4\n x: movq %dr4, %rbx`);
    k.cpu.phys.setDr(7, u64(0x2400)); // GD: the check the exit must precede
    k.cpu.intercepts.movDr = true;
    const e = k.cpu.run(10);
    expect(e).to.deep.equal({ kind: 'mov-dr', length: 3, dr: 4, gpr: 3, toDr: false });
    expect(rip(k.cpu)).to.equal(k.labels.x);
  });

  it('an intercepted #DB exits with the DR6 bits in the exit and does NOT update DR6 (SDM 27.1)', () => {
    const k = buildKernel(`leaq value(%rip), %rax\n movq %rax, %dr0\n ${DR6_ZERO} ${setDr7(0x2 | (0x1 << 16))}
      movq %rax, value(%rip)\n a: nop`);
    k.cpu.intercepts.exceptionBitmap = 1 << 1;
    const e = k.cpu.run(1000);
    expect(e).to.deep.equal({ kind: 'exception', vector: 1, errorCode: undefined, dr6: 1, type: 'hw', instructionLength: 0 });
    expect(rip(k.cpu)).to.equal(k.labels.a);
    expect(k.cpu.phys.drLo[6]).to.equal(0xffff0ff0);
  });

  it('an exit inside a MOV-SS shadow reports the held traps in pendingDebugExceptions (SDM 27.3.4)', () => {
    const k = buildKernel(`leaq value(%rip), %rax\n movq %rax, %dr1\n movq $0x10, value(%rip)\n ${DR6_ZERO} ${setDr7(0x8 | (0x3 << 20))}
      movw value(%rip), %ss\n c: cpuid\n nop`);
    let e = k.cpu.run(1000);
    expect(e).to.deep.equal({ kind: 'cpuid', length: 2 });
    expect(rip(k.cpu)).to.equal(k.labels.c);
    expect(k.cpu.pendingDebugExceptions).to.equal(0x1002); // B1 + "enabled breakpoint"
    expect(k.cpu.interruptibility).to.equal(2);
    k.cpu.completeEmulatedInstruction(2);
    e = k.run();
    expect(dbs(k)).to.deep.equal([[k.labels.c + 2, 0xffff0ff2]]);
  });

  it('matching uses the physical CPU registers: a change of phys between runs takes effect', () => {
    const k = buildKernel(`nop\n nop\n t: nop\n nop`);
    k.cpu.run(2);
    k.cpu.phys.setDr(0, u64(k.labels.t));
    k.cpu.phys.setDr(7, u64(0x402));
    k.run();
    expect(dbs(k).map((d) => d[0])).to.deep.equal([k.labels.t]);
  });

  it('6.9 priority: a pending single-step trap is taken before a pending external interrupt', () => {
    const k = buildKernel(`${DR6_ZERO} sti\n pushfq\n orq $0x100, (%rsp)\n popfq\n a: nop\n b: nop\n cli`);
    k.run(8); // jmp, xor, mov dr6, sti, pushfq, orq, popfq (sets TF), a: nop (traps)
    k.cpu.requestInterrupt(0x33);
    k.run();
    const first = k.log().findIndex((e) => e.vector === 0x33);
    expect(first).to.be.greaterThan(0);
    expect(k.log()[first - 1].vector).to.equal(1);
  });
});
