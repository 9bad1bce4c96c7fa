// MOV to/from DR0-DR7 from guest code: register layouts, fixed bits, #GP for bits 63:32 of
// DR6/DR7, DR4/DR5 aliasing and #UD with CR4.DE, REX.R #UD, general detect (DR7.GD).
import { expect } from 'chai';
import {
  DebugMachine, describeEvents, hex, RF, CR4_DE, DR6_INIT, DR6_BD, DR7_GD, UD_CLEAR_DE,
} from './harness';

/** Runs `body` and returns RBX/RCX/RDX/RSI low halves at the final HLT. */
function runRegs(body: string, setup?: (m: DebugMachine) => void) {
  const m = new DebugMachine().load(body);
  setup?.(m);
  const r = m.run();
  return { m, r, rbx: m.gpr(3), rcx: m.gpr(1), rdx: m.gpr(2), rsi: m.gpr(6) };
}

describe('debug architecture: MOV DR (SDM 17.2, Vol. 2 MOV—Move to/from Debug Registers)', function () {

  it('17.2 / Table 9-1: reset values DR6 = FFFF0FF0H and DR7 = 400H, read by the guest', () => {
    const { r, rbx, rcx } = runRegs(`
start:
  mov %dr6, %rbx
  mov %dr7, %rcx
  hlt
`);
    expect(r.stop.kind).to.equal('hlt');
    expect([hex(rbx.lo), rbx.hi, hex(rcx.lo), rcx.hi]).to.deep.equal(['0xffff0ff0', 0, '0x400', 0]);
  });

  it('17.2.1/17.2.6: DR0-DR3 are 64 bits wide in 64-bit mode, with no canonical check', () => {
    const { m, r, rbx, rcx } = runRegs(`
start:
  movabs $0xdead00000000beef, %rax
  mov %rax, %dr0
  movabs $0x0000800000000000, %rax
  mov %rax, %dr3
  mov %dr0, %rbx
  mov %dr3, %rcx
  hlt
`);
    expect(r.events, describeEvents(r.events)).to.deep.equal([]);
    expect([hex(rbx.hi), hex(rbx.lo)]).to.deep.equal(['0xdead0000', '0xbeef']);
    expect([hex(rcx.hi), hex(rcx.lo)]).to.deep.equal(['0x8000', '0x0']);
    expect([hex(m.drHi(0)), hex(m.dr(0))], 'MOV DR writes the physical CPU registers').to.deep.equal(['0xdead0000', '0xbeef']);
  });

  it('17.2.3: DR6 writes keep the fixed bits (4-11 and 16-31 read 1, bit 12 reads 0): 0 -> FFFF0FF0, ~0 -> FFFFEFFF, 4002H -> FFFF4FF2', () => {
    const { r, rbx, rcx, rdx } = runRegs(`
start:
  xor %eax, %eax
  mov %rax, %dr6
  mov %dr6, %rbx
  mov $0xffffffff, %eax
  mov %rax, %dr6
  mov %dr6, %rcx
  mov $0x4002, %eax
  mov %rax, %dr6
  mov %dr6, %rdx
  hlt
`);
    expect(r.events).to.deep.equal([]);
    expect([hex(rbx.lo), hex(rcx.lo), hex(rdx.lo)]).to.deep.equal(['0xffff0ff0', '0xffffefff', '0xffff4ff2']);
  });

  it('17.2.4: DR7 writes: bit 10 reads 1, bits 12, 14, 15 read 0 (no fault), all other low bits writable', () => {
    const { r, rbx, rcx } = runRegs(`
start:
  xor %eax, %eax
  mov %rax, %dr7
  mov %dr7, %rbx
  mov $0xffffdfff, %eax   /* everything but GD */
  mov %rax, %dr7
  mov %dr7, %rcx
  mov $0x400, %eax
  mov %rax, %dr7
  hlt
`);
    expect(r.events).to.deep.equal([]);
    expect([hex(rbx.lo), hex(rcx.lo)]).to.deep.equal(['0x400', '0xffff0fff']);
  });

  for (const dr of [6, 7]) {
    it(`17.2.6 / MOV DR 64-bit exceptions: writing 1s to bits 63:32 of DR${dr} is #GP(0), a fault that leaves DR${dr} unchanged`, () => {
      const m = new DebugMachine().load(`
start:
  movabs $0x0000000100000400, %rax
bad:
  mov %rax, %dr${dr}
resume:
  hlt
`);
      m.resumeFaultsAt('resume');
      const before = m.dr(dr);
      const r = m.run();
      expect(r.events.map((e) => [e.vector, e.errorCode, hex(e.rip)])).to.deep.equal([[13, 0, hex(m.sym('bad'))]]);
      expect([hex(m.drHi(dr)), hex(m.dr(dr))]).to.deep.equal(['0x0', hex(before)]);
    });
  }

  it('17.2.2: with CR4.DE=0, DR4 and DR5 alias DR6 and DR7 (kvm-unit-tests 2: DR4 reads FFFF4FF2)', () => {
    const { m, r, rbx, rcx } = runRegs(`
start:
  xor %eax, %eax
  mov %rax, %dr4
  mov $0xffff4ff2, %eax
  mov %rax, %dr6
  mov %dr4, %rbx
  mov $0x401, %eax
  mov %rax, %dr5
  mov %dr7, %rcx
  hlt
`);
    expect(r.events, describeEvents(r.events)).to.deep.equal([]);
    expect([hex(rbx.lo), hex(rcx.lo)]).to.deep.equal(['0xffff4ff2', '0x401']);
    expect(hex(m.dr(7))).to.equal('0x401');
  });

  it('17.2.2: with CR4.DE=1, MOV from DR4 is #UD (a fault); retried after the handler clears DE it succeeds (kvm-unit-tests 3)', () => {
    const m = new DebugMachine().load(`
start:
  mov %cr4, %rax
  or $${CR4_DE}, %rax
  mov %rax, %cr4
bad:
  mov %dr4, %rbx
  hlt
`);
    m.dbActions(UD_CLEAR_DE);
    const r = m.run();
    expect(r.events.map((e) => [e.vector, hex(e.rip)])).to.deep.equal([[6, hex(m.sym('bad'))]]);
    expect(hex(m.gpr(3).lo)).to.equal(hex(DR6_INIT));
  });

  it('17.2.2: with CR4.DE=1, MOV to DR5 is #UD and DR7 is unchanged', () => {
    const m = new DebugMachine().load(`
start:
  mov $0x401, %eax
bad:
  mov %rax, %dr5
resume:
  hlt
`);
    m.setCr4(m.reg('cr4') | CR4_DE).resumeFaultsAt('resume');
    const r = m.run();
    expect(r.events.map((e) => [e.vector, hex(e.rip)])).to.deep.equal([[6, hex(m.sym('bad'))]]);
    expect(hex(m.dr(7))).to.equal('0x400');
  });

  it('Vol. 2 MOV DR 64-bit exceptions: REX.R (DR8-DR15) is #UD', () => {
    const m = new DebugMachine().load(`
start:
bad:
  .byte 0x44, 0x0f, 0x21, 0xc0   /* mov %dr8, %rax */
resume:
  hlt
`);
    m.resumeFaultsAt('resume');
    const r = m.run();
    expect(r.events.map((e) => [e.vector, hex(e.rip)])).to.deep.equal([[6, hex(m.sym('bad'))]]);
  });

  it('Vol. 2 MOV DR exceptions: a LOCK prefix is #UD', () => {
    const m = new DebugMachine().load(`
start:
bad:
  .byte 0xf0, 0x0f, 0x21, 0xc0   /* lock mov %dr0, %rax */
resume:
  hlt
`);
    m.resumeFaultsAt('resume');
    const r = m.run();
    expect(r.events.map((e) => [e.vector, hex(e.rip)])).to.deep.equal([[6, hex(m.sym('bad'))]]);
  });

  it('MOV DR (Vol. 2): the ModR/M mod bits are ignored (0F 21 00 is MOV RAX, DR0) and the operand-size prefix is ignored in 64-bit mode', () => {
    const m = new DebugMachine().load(`
start:
  .byte 0x0f, 0x21, 0x00         /* mod=00: still mov %dr0, %rax */
  mov %rax, %rbx
  .byte 0x66, 0x0f, 0x21, 0xd9   /* 66 prefix: still 64-bit mov %dr3, %rcx */
  hlt
`);
    m.setDr(0, 0x89abcdef, 0x01234567).setDr(3, 0x11112222, 0x33334444);
    const r = m.run();
    expect(r.events, describeEvents(r.events)).to.deep.equal([]);
    expect([hex(m.gpr(3).hi), hex(m.gpr(3).lo)]).to.deep.equal(['0x1234567', '0x89abcdef']);
    expect([hex(m.gpr(1).hi), hex(m.gpr(1).lo)]).to.deep.equal(['0x33334444', '0x11112222']);
  });

  it('17.2.4/17.3.1.3 general detect: with DR7.GD=1 a MOV DR is a #DB fault with BD, GD is cleared on delivery, RF=1 pushed, the MOV then succeeds', () => {
    const m = new DebugMachine().load(`
start:
  mov $0x2000, %eax
  mov %rax, %dr7
  mov %dr7, %rsi
bad:
  mov %dr0, %rbx
  hlt
`);
    m.setDr(0, 0x1234);
    const r = m.run();
    // The first MOV sets GD; the MOV from DR7 that follows already faults.
    expect(r.events.length, describeEvents(r.events)).to.equal(1);
    const e = r.events[0];
    expect([e.vector, hex(e.rip)]).to.deep.equal([1, hex(m.sym('start') + 5 + 3)]);
    expect(hex(e.dr6)).to.equal(hex(DR6_INIT | DR6_BD));
    expect(hex(e.dr7), 'GD cleared before the handler runs').to.equal('0x400');
    expect(e.rflags & RF, '17.3.1.1: fault-class #DB other than an instruction breakpoint pushes RF=1').to.equal(RF);
    expect(hex(m.gpr(6).lo), 'the restarted MOV from DR7 read the GD-cleared value').to.equal('0x400');
    expect(hex(m.gpr(3).lo)).to.equal('0x1234');
    expect(hex(m.dr(6)), 'BD is not cleared by the processor').to.equal(hex(DR6_INIT | DR6_BD));
  });

  it('17.2.4 general detect: DR7 reads 2400H after writing GD; MOV to DR6 with GD faults too (kvm-unit-tests 12 first #DB)', () => {
    const m = new DebugMachine().load(`
start:
  xor %eax, %eax
bad:
  mov %rax, %dr6
  hlt
`);
    m.setDr(7, 0x2400);
    const r = m.run();
    expect(r.events.map((e) => [hex(e.rip), hex(e.dr6), hex(e.dr7)])).to.deep.equal([[hex(m.sym('bad')), '0xffff2ff0', '0x400']]);
    expect(hex(m.dr(6)), 'the restarted MOV DR6 cleared BD').to.equal(hex(DR6_INIT));
  });

  it('17.2.4: GD applies to every debug register, DR0-DR7, reads and writes', () => {
    for (const insn of ['mov %dr1, %rax', 'mov %rax, %dr2', 'mov %dr3, %rax', 'mov %rax, %dr0', 'mov %dr6, %rax']) {
      const m = new DebugMachine().load(`
start:
  xor %eax, %eax
bad:
  ${insn}
  hlt
`);
      m.setDr(7, 0x400 | DR7_GD);
      const r = m.run();
      expect(r.events.map((e) => [e.vector, hex(e.rip), hex(e.dr6 & DR6_BD)]), insn).to.deep.equal([[1, hex(m.sym('bad')), hex(DR6_BD)]]);
    }
  });

  it('POP SS (Vol. 2 POP): opcode 17H is invalid in 64-bit mode (#UD)', () => {
    const m = new DebugMachine().load(`
start:
  push %rax
bad:
  .byte 0x17
resume:
  hlt
`);
    m.resumeFaultsAt('resume');
    const r = m.run();
    expect(r.events.map((e) => [e.vector, hex(e.rip)])).to.deep.equal([[6, hex(m.sym('bad'))]]);
  });
});
