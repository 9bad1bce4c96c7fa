// I/O breakpoints (DR7 R/W=10 with CR4.DE=1). IN/OUT always exit to the hypervisor here; the
// harness emulates them and calls GuestCpu.completeEmulatedInstruction(length, {port, size}),
// which must raise the I/O-breakpoint trap after the instruction, as hardware would.
import { expect } from 'chai';
import { DebugMachine, dr7, describeEvents, hex, DATA, CR4_DE, DR6_INIT, DR6_BS, TF, DB_CLEAR_DR6 } from './harness';

function ioRun(insn: string, bp: { addr: number; len: 1 | 2 | 4 | 8 }, de: boolean, setup?: (m: DebugMachine) => void) {
  const m = new DebugMachine().load(`
start:
  ${insn}
after:
  hlt
`);
  m.setDr(0, bp.addr).setDr(7, dr7({ n: 0, rw: 'io', len: bp.len }));
  m.setCr4(de ? m.reg('cr4') | CR4_DE : m.reg('cr4') & ~CR4_DE);
  setup?.(m);
  const r = m.run();
  return { m, r };
}

describe('debug architecture: I/O breakpoints (SDM 17.2.4 R/W=10, 17.3.1.2)', function () {

  it('17.2.4: with CR4.DE=1, OUT to the watched port traps after the instruction (RIP next, DR6 = B0)', () => {
    const { m, r } = ioRun('out %al, $0x80', { addr: 0x80, len: 1 }, true);
    expect(r.serviced.map((e) => e.kind)).to.deep.equal(['io']);
    expect(r.events.map((e) => [e.vector, hex(e.rip), hex(e.dr6)]), describeEvents(r.events)).to.deep.equal([[1, hex(m.sym('after')), hex(DR6_INIT | 1)]]);
  });

  it('17.2.4: with CR4.DE=0, R/W=10 does not match I/O', () => {
    const { r } = ioRun('out %al, $0x80', { addr: 0x80, len: 1 }, false);
    expect(r.events).to.deep.equal([]);
  });

  it('17.2.4: CR4.DE toggled by the guest with MOV CR4 switches R/W=10 matching on and off at once', () => {
    const m = new DebugMachine().load(`
start:
  out %al, $0x80
  mov %cr4, %rax
  or $${CR4_DE}, %rax
  mov %rax, %cr4
  out %al, $0x80
second:
  and $~${CR4_DE}, %rax
  mov %rax, %cr4
  out %al, $0x80
  hlt
`);
    m.setDr(0, 0x80).setDr(7, dr7({ n: 0, rw: 'io', len: 1 })).setCr4(m.reg('cr4') & ~CR4_DE);
    const r = m.run();
    expect(r.events.map((e) => hex(e.rip)), describeEvents(r.events)).to.deep.equal([hex(m.sym('second'))]);
  });

  const cases: Array<[string, number, 1 | 2 | 4 | 8, boolean, number?]> = [
    ['in $0x85, %al', 0x84, 2, true],
    ['out %ax, $0x83', 0x84, 2, true],
    ['out %al, $0x86', 0x84, 2, false],
    ['in $0x80, %eax', 0x84, 2, false],
    ['in (%dx), %eax', 0x84, 2, true, 0x82],
    ['in (%dx), %al', 0x3fd, 4, true, 0x3ff],
    ['in (%dx), %al', 0x3fd, 4, false, 0x3fb],
    ['out %eax, (%dx)', 0x3ff, 1, true, 0x3fc],
  ];
  for (const [insn, addr, len, hit, dx] of cases) {
    it(`17.2.5: port range masking: ${insn}${dx !== undefined ? ` with DX=${hex(dx)}` : ''} vs LEN=${len} at port ${hex(addr)}: ${hit ? 'traps' : 'no trap'}`, () => {
      const { r } = ioRun(insn, { addr, len }, true, (m) => { if (dx !== undefined) m.setGpr(2, dx); });
      expect(r.events.length, describeEvents(r.events)).to.equal(hit ? 1 : 0);
    });
  }

  it('17.2.4: an I/O breakpoint does not match a memory access to the same number, and a data breakpoint does not match I/O', () => {
    const a = ioRun('movb %al, 0x80', { addr: 0x80, len: 1 }, true);
    expect(a.r.events).to.deep.equal([]);
    const m = new DebugMachine().load(`
start:
  out %al, $0x80
  hlt
`);
    m.setDr(0, 0x80).setDr(7, dr7({ n: 0, rw: 'rw', len: 1 })).setCr4(m.reg('cr4') | CR4_DE);
    expect(m.run().events).to.deep.equal([]);
    expect(DATA).to.be.greaterThan(0x80);
  });

  it('17.3.1: an I/O breakpoint and the single-step trap of the same OUT are reported in one #DB (BS|B0)', () => {
    const m = new DebugMachine().load(`
start:
  pushf
  orl $${TF}, (%rsp)
  popf
  nop
  out %al, $0x80
after:
  pushf
  andl $~${TF}, (%rsp)
  popf
  hlt
`);
    m.setDr(0, 0x80).setDr(7, dr7({ n: 0, rw: 'io', len: 1 })).setCr4(m.reg('cr4') | CR4_DE).dbActions(DB_CLEAR_DR6);
    const r = m.run();
    const ev = r.events.find((e) => e.rip === m.sym('after'));
    expect(ev && hex(ev.dr6), describeEvents(r.events)).to.equal(hex(DR6_INIT | DR6_BS | 1));
    expect(r.events.filter((e) => e.rip === m.sym('after')).length, 'one #DB, not two').to.equal(1);
  });

  it('6.9 priority: the I/O-breakpoint trap of an OUT (4) is delivered before the interrupt it raised (6)', () => {
    const m = new DebugMachine().load(`
start:
  sti
  nop
  out %al, $0x90    /* the harness raises IRQ 0x20 on this port */
after:
  nop
  cli
  hlt
`);
    m.setDr(1, 0x90).setDr(7, dr7({ n: 1, rw: 'io', len: 1 })).setCr4(m.reg('cr4') | CR4_DE);
    const r = m.run();
    expect(r.events.map((e) => [e.vector, hex(e.rip)]), describeEvents(r.events)).to.deep.equal([
      [1, hex(m.sym('after'))], [0x20, hex(m.sym('after'))],
    ]);
    expect(hex(r.events[0].dr6)).to.equal(hex(DR6_INIT | 2));
  });

  it('17.2.4: a disabled I/O breakpoint matching with an enabled one sets both B bits (as Bochs)', () => {
    const m = new DebugMachine().load(`
start:
  out %al, $0x80
  hlt
`);
    m.setDr(0, 0x80).setDr(2, 0x80);
    m.setDr(7, dr7({ n: 0, rw: 'io', len: 1 }, { n: 2, rw: 'io', len: 1, enable: 'none' })).setCr4(m.reg('cr4') | CR4_DE);
    const r = m.run();
    expect(r.events.map((e) => hex(e.dr6))).to.deep.equal([hex(DR6_INIT | 5)]);
  });
});
