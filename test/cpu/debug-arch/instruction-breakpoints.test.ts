// Instruction breakpoints and the resume flag: fault-like #DB before the instruction, RF
// suppression for one instruction, the RF image pushed on event delivery, IRETQ and POPF.
import { expect } from 'chai';
import {
  DebugMachine, dr7, describeEvents, hex, DATA, RF, TF, DR6_INIT, DR6_BS,
  DB_CLEAR_DR6, DB_SET_RF, DB_SET_RF_IF_B,
} from './harness';

describe('debug architecture: instruction breakpoints and RF (SDM 17.3.1.1, 6.8.3)', function () {

  it('17.3.1.1: an instruction breakpoint is a fault: #DB before the instruction executes, RIP at it, DR6 = B2 (kvm-unit-tests 5)', () => {
    const m = new DebugMachine().load(`
start:
  xor %eax, %eax
hw_bp1:
  inc %eax
  hlt
`);
    m.setDr(2, m.sym('hw_bp1')).setDr(7, 0x420).dbActions(DB_SET_RF_IF_B);
    const r = m.run();
    expect(r.events.length, describeEvents(r.events)).to.equal(1);
    expect(hex(r.events[0].rip)).to.equal(hex(m.sym('hw_bp1')));
    expect(hex(r.events[0].dr6)).to.equal('0xffff0ff4');
    expect(r.events[0].rflags & RF, 'RF pushed for an instruction-breakpoint #DB is the current RF (0)').to.equal(0);
    expect(m.gpr(0).lo, 'the instruction ran once, after the handler set RF').to.equal(1);
  });

  it('17.2.3: kvm-unit-tests 6: code #DB on DR2 with BS|B1 preset gives 0xFFFF4FF4 (B1 cleared, BS kept)', () => {
    const m = new DebugMachine().load(`
start:
  nop
hw_bp2:
  nop
  hlt
`);
    m.setDr(2, m.sym('hw_bp2')).setDr(7, 0x420).setDr(6, 0x4002).dbActions(DB_SET_RF_IF_B);
    expect(hex(m.dr(6)), 'precondition: PhysicalCpu stores what we set').to.equal('0x4002');
    m.setDr(6, 0xffff4ff2);
    const r = m.run();
    expect(r.events.map((e) => [hex(e.rip), hex(e.dr6)])).to.deep.equal([[hex(m.sym('hw_bp2')), '0xffff4ff4']]);
  });

  it('17.3.1.1: without RF set by the handler the breakpoint faults again on the restarted instruction', () => {
    const m = new DebugMachine().load(`
start:
  nop
bp:
  inc %eax
  hlt
`);
    m.setDr(0, m.sym('bp')).setDr(7, dr7({ n: 0, rw: 'x', len: 1 })).dbActions(DB_CLEAR_DR6, 3);
    m.setGpr(0, 0);
    const r = m.run();
    // The handler's runaway guard disarms DR7 on the 3rd #DB.
    expect(r.events.map((e) => hex(e.rip))).to.deep.equal([hex(m.sym('bp')), hex(m.sym('bp')), hex(m.sym('bp'))]);
    expect(m.gpr(0).lo).to.equal(1);
  });

  it('17.3.1.1: RF=1 from IRETQ suppresses instruction breakpoints for exactly one instruction', () => {
    const m = new DebugMachine().load(`
start:
  nop
bp0:
  nop
bp1:
  nop
  hlt
`);
    m.setDr(0, m.sym('bp0')).setDr(1, m.sym('bp1'));
    m.setDr(7, dr7({ n: 0, rw: 'x', len: 1 }, { n: 1, rw: 'x', len: 1 })).dbActions(DB_CLEAR_DR6 | DB_SET_RF);
    const r = m.run();
    expect(r.events.map((e) => [hex(e.rip), hex(e.dr6)])).to.deep.equal([
      [hex(m.sym('bp0')), hex(DR6_INIT | 1)],
      [hex(m.sym('bp1')), hex(DR6_INIT | 2)],
    ]);
  });

  it('17.3.1.1: IRETQ loads RF from the image: a hand-built frame with RF=1 skips the target\'s breakpoint, RF=0 does not', () => {
    const body = (rf: number) => `
start:
  mov %ss, %eax
  push %rax
  lea 0x7e000, %rax
  push %rax
  push $${0x2 | rf}
  push $8
  lea target(%rip), %rax
  push %rax
  iretq
target:
  inc %ebx
  hlt
`;
    for (const [rf, want] of [[RF, 0], [0, 1]]) {
      const m = new DebugMachine().load(body(rf));
      m.setDr(0, m.sym('target')).setDr(7, dr7({ n: 0, rw: 'x', len: 1 })).dbActions(DB_SET_RF);
      const r = m.run();
      expect(r.events.length, `RF=${rf ? 1 : 0} in the IRETQ image: ${describeEvents(r.events)}`).to.equal(want);
      expect(m.gpr(3).lo).to.equal(1);
    }
  });

  it('6.8.3/PUSHF: RF is never visible to PUSHFQ (cleared in the image)', () => {
    const m = new DebugMachine().load(`
start:
  mov %ss, %eax
  push %rax
  lea 0x7e000, %rax
  push %rax
  push $${0x2 | RF}
  push $8
  lea target(%rip), %rax
  push %rax
  iretq
target:
  pushfq
  pop %rbx
  hlt
`);
    const r = m.run();
    expect(r.stop.kind).to.equal('hlt');
    expect(m.gpr(3).lo & RF).to.equal(0);
  });

  it('POPF (Vol. 2, flags affected): POPFQ clears RF, so an image with RF=1 does not suppress the next breakpoint', () => {
    const m = new DebugMachine().load(`
start:
  push $${0x2 | RF}
  popfq
bp:
  nop
  hlt
`);
    m.setDr(0, m.sym('bp')).setDr(7, dr7({ n: 0, rw: 'x', len: 1 })).dbActions(DB_SET_RF);
    const r = m.run();
    expect(r.events.map((e) => hex(e.rip))).to.deep.equal([hex(m.sym('bp'))]);
  });

  it('17.2.4/17.3.1.1: an instruction breakpoint matches the first byte of the instruction (a prefix), not a later byte', () => {
    const m = new DebugMachine().load(`
start:
  nop
insn:
  .byte 0x66, 0x90   /* xchg %ax,%ax with an operand-size prefix */
insn2:
  nop
  hlt
`);
    m.setDr(0, m.sym('insn') + 1).setDr(1, m.sym('insn'));
    m.setDr(7, dr7({ n: 0, rw: 'x', len: 1 }, { n: 1, rw: 'x', len: 1 })).dbActions(DB_CLEAR_DR6 | DB_SET_RF);
    const r = m.run();
    expect(r.events.map((e) => [hex(e.rip), hex(e.dr6)])).to.deep.equal([[hex(m.sym('insn')), hex(DR6_INIT | 2)]]);
  });

  it('17.2.4: an instruction breakpoint that is not enabled never fires; one enabled with G works', () => {
    const m = new DebugMachine().load(`
start:
  nop
a:
  nop
b:
  nop
  hlt
`);
    m.setDr(0, m.sym('a')).setDr(3, m.sym('b'));
    m.setDr(7, dr7({ n: 0, rw: 'x', len: 1, enable: 'none' }, { n: 3, rw: 'x', len: 1, enable: 'G' })).dbActions(DB_CLEAR_DR6 | DB_SET_RF);
    const r = m.run();
    expect(r.events.map((e) => hex(e.rip))).to.deep.equal([hex(m.sym('b'))]);
    // As Bochs: B bits for every matching breakpoint only when an enabled one fires; here DR0
    // matched a different instruction, so only B3.
    expect(hex(r.events[0].dr6)).to.equal(hex(DR6_INIT | 8));
  });

  it('17.2.3 (as Bochs and QEMU): an instruction #DB also sets B bits of disabled instruction breakpoints on the same address', () => {
    const m = new DebugMachine().load(`
start:
  nop
bp:
  nop
  hlt
`);
    m.setDr(1, m.sym('bp')).setDr(3, m.sym('bp'));
    m.setDr(7, dr7({ n: 1, rw: 'x', len: 1 }, { n: 3, rw: 'x', len: 1, enable: 'none' })).dbActions(DB_SET_RF);
    const r = m.run();
    expect(r.events.map((e) => [hex(e.rip), hex(e.dr6)])).to.deep.equal([[hex(m.sym('bp')), hex(DR6_INIT | 0xa)]]);
  });

  it('17.3.1.1: RF=1 is pushed for fault-class exceptions other than instruction-breakpoint #DB (#UD from UD2, #GP from MOV DR7)', () => {
    const m = new DebugMachine().load(`
start:
  ud2
resume:
  hlt
`);
    m.resumeFaultsAt('resume');
    const r = m.run();
    expect(r.events.map((e) => [e.vector, hex(e.rip), e.rflags & RF])).to.deep.equal([[6, hex(m.sym('start')), RF]]);

    const g = new DebugMachine().load(`
start:
  mov $1, %rax
  shl $32, %rax
bad:
  mov %rax, %dr7
resume:
  hlt
`);
    g.resumeFaultsAt('resume');
    const rg = g.run();
    expect(rg.events.map((e) => [e.vector, e.errorCode, hex(e.rip), e.rflags & RF])).to.deep.equal([[13, 0, hex(g.sym('bad')), RF]]);
  });

  it('17.3.1.1: RF=0 is pushed for INT3 (trap) and INT n (software interrupt)', () => {
    const m = new DebugMachine().load(`
start:
  int3
after_bp:
  int $0x21
after_int:
  hlt
`);
    const r = m.run();
    expect(r.events.map((e) => [e.vector, hex(e.rip), e.rflags & RF])).to.deep.equal([
      [3, hex(m.sym('after_bp')), 0],
      [0x21, hex(m.sym('after_int')), 0],
    ]);
  });

  it('6.9 priority: an instruction breakpoint (7) is taken before the #UD (9) of the same instruction; the #UD then pushes RF=1', () => {
    const m = new DebugMachine().load(`
start:
  nop
bad:
  ud2
resume:
  hlt
`);
    m.setDr(0, m.sym('bad')).setDr(7, dr7({ n: 0, rw: 'x', len: 1 })).dbActions(DB_SET_RF).resumeFaultsAt('resume');
    const r = m.run();
    expect(r.events.map((e) => [e.vector, hex(e.rip), e.rflags & RF]), describeEvents(r.events)).to.deep.equal([
      [1, hex(m.sym('bad')), 0],
      [6, hex(m.sym('bad')), RF],
    ]);
  });

  it('6.9 priority: single-step trap of the previous instruction (4) and the code breakpoint of the next (7) come in one #DB with BS|B0 at the breakpointed instruction', () => {
    const m = new DebugMachine().load(`
start:
  pushf
  orl $${TF}, (%rsp)
  popf
  nop
bp:
  nop
after:
  pushf
  andl $~${TF}, (%rsp)
  popf
  hlt
`);
    m.setDr(0, m.sym('bp')).setDr(7, dr7({ n: 0, rw: 'x', len: 1 })).dbActions(DB_CLEAR_DR6 | DB_SET_RF_IF_B);
    const r = m.run();
    // #DB after the NOP following POPF: its BS and the breakpoint on `bp` (RIP = bp) in one.
    expect(hex(r.events[0].rip), describeEvents(r.events)).to.equal(hex(m.sym('bp')));
    expect(hex(r.events[0].dr6)).to.equal(hex(DR6_INIT | DR6_BS | 1));
    // Then `bp` runs (RF set by the handler) and single-steps normally.
    expect(hex(r.events[1].rip)).to.equal(hex(m.sym('after')));
    expect(hex(r.events[1].dr6)).to.equal(hex(DR6_INIT | DR6_BS));
    expect(r.events.filter((e) => e.rip === m.sym('bp')).length, 'no second #DB at bp').to.equal(1);
  });

  it('6.9 priority: a maskable interrupt (6) is delivered before the code breakpoint (7) of the next instruction', () => {
    const m = new DebugMachine().load(`
start:
  sti
  nop
  out %al, $0x90       /* the harness raises IRQ 0x20 here */
bp:
  nop
  cli
  hlt
`);
    m.setDr(0, m.sym('bp')).setDr(7, dr7({ n: 0, rw: 'x', len: 1 })).dbActions(DB_SET_RF);
    const r = m.run();
    expect(r.events.map((e) => [e.vector, hex(e.rip)]), describeEvents(r.events)).to.deep.equal([
      [0x20, hex(m.sym('bp'))],
      [1, hex(m.sym('bp'))],
    ]);
  });

  it('6.8.3 + 17.3.1.1: the STI shadow blocks interrupts only: an instruction breakpoint right after STI fires; after its IRETQ the interrupt comes before the instruction, pushing the current RF=1', () => {
    const m = new DebugMachine().load(`
start:
  out %al, $0x90       /* IRQ 0x20 pending, IF=0 */
  sti
bp:
  nop
after:
  cli
  hlt
`);
    m.setDr(0, m.sym('bp')).setDr(7, dr7({ n: 0, rw: 'x', len: 1 })).dbActions(DB_SET_RF);
    const r = m.run();
    expect(r.events.map((e) => [e.vector, hex(e.rip), e.rflags & RF]), describeEvents(r.events)).to.deep.equal([
      [1, hex(m.sym('bp')), 0], [0x20, hex(m.sym('bp')), RF],
    ]);
  });

  it('17.2.4: DR0-DR3 hold 64-bit linear addresses: a breakpoint whose high half differs does not match', () => {
    const m = new DebugMachine().load(`
start:
  mov %eax, ${DATA}
  hlt
`);
    m.setDr(0, DATA, 1).setDr(7, dr7({ n: 0, rw: 'w', len: 4 }));
    expect(m.run().events).to.deep.equal([]);
  });

  it('17.3.1.1 "Setting the RF flag does not prevent ... data breakpoints": a code breakpoint and a data breakpoint on one store give a fault #DB (B0) before it and a trap #DB (B1) after it', () => {
    const m = new DebugMachine().load(`
start:
  nop
store:
  mov %eax, ${DATA}
after:
  hlt
`);
    m.setDr(0, m.sym('store')).setDr(1, DATA);
    m.setDr(7, dr7({ n: 0, rw: 'x', len: 1 }, { n: 1, rw: 'w', len: 4 })).dbActions(DB_CLEAR_DR6 | DB_SET_RF_IF_B);
    const r = m.run();
    expect(r.events.map((e) => [hex(e.rip), hex(e.dr6)]), describeEvents(r.events)).to.deep.equal([
      [hex(m.sym('store')), hex(DR6_INIT | 1)], [hex(m.sym('after')), hex(DR6_INIT | 2)],
    ]);
  });

  it('17.3.1: two instruction breakpoints on the same instruction are reported in one #DB (B0|B2)', () => {
    const m = new DebugMachine().load(`
start:
  nop
bp:
  nop
  hlt
`);
    m.setDr(0, m.sym('bp')).setDr(2, m.sym('bp'));
    m.setDr(7, dr7({ n: 0, rw: 'x', len: 1 }, { n: 2, rw: 'x', len: 1, enable: 'G' })).dbActions(DB_SET_RF);
    const r = m.run();
    expect(r.events.map((e) => [hex(e.rip), hex(e.dr6)])).to.deep.equal([[hex(m.sym('bp')), hex(DR6_INIT | 5)]]);
  });

  it('17.3.1.2: data breakpoints are not suppressed by RF', () => {
    const m = new DebugMachine().load(`
start:
  mov %ss, %eax
  push %rax
  lea 0x7e000, %rax
  push %rax
  push $${0x2 | RF}
  push $8
  lea target(%rip), %rax
  push %rax
  iretq
target:
  mov %eax, ${DATA}
after:
  hlt
`);
    m.setDr(0, DATA).setDr(7, dr7({ n: 0, rw: 'w', len: 4 }));
    const r = m.run();
    expect(r.events.map((e) => hex(e.rip))).to.deep.equal([hex(m.sym('after'))]);
  });
});
