// The same debug rules inside hot loops, where an interpreter is tempted to run cached blocks
// without per-instruction checks: a breakpoint must fire on exactly the right iteration, and
// breakpoints armed while a block is hot (by the host between runs, or by the guest with MOV
// DR or POPF) must take effect at once (SDM 17.2.4, 17.3.1.1, 17.3.1.2, 17.3.1.4).
import { expect } from 'chai';
import { DebugMachine, dr7, describeEvents, hex, DATA, DR6_INIT, DR6_BS, DB_CLEAR_DR6, DB_SET_RF } from './harness';

const LOOP = `
start:
  xor %ecx, %ecx
loop:
  mov %ecx, %eax
  imul $3, %eax
store:
  mov %eax, ${DATA}(,%rcx,4)
after_store:
  inc %ecx
  cmp $3000, %ecx
  jne loop
done:
  hlt
`;

describe('debug architecture in hot loops (SDM 17.2.4, 17.3.1.1, 17.3.1.2, 17.3.1.4)', function () {

  it('17.3.1.2: a write breakpoint on element 2500 of a 3000-iteration loop fires once, after that store, with RCX = 2500', () => {
    const m = new DebugMachine().load(LOOP);
    m.setDr(2, DATA + 4 * 2500).setDr(7, dr7({ n: 2, rw: 'w', len: 4 }));
    const r = m.run({ budget: 100000 });
    expect(r.stop.kind).to.equal('hlt');
    expect(r.events.map((e) => [hex(e.rip), e.rcx, hex(e.dr6)])).to.deep.equal([[hex(m.sym('after_store')), 2500, hex(DR6_INIT | 4)]]);
    expect(m.read32(DATA + 4 * 2999)).to.equal(2999 * 3);
  });

  it('17.2.4: breakpoints set by the host between runs while the loop is hot take effect on the next iteration (instruction breakpoint)', () => {
    const m = new DebugMachine().load(LOOP);
    const r1 = m.run({ budget: 6000, stopOn: ['budget'] });
    expect(r1.stop.kind).to.equal('budget');
    const rcx0 = m.gpr(1).lo;
    expect(rcx0).to.be.greaterThan(100).and.lessThan(3000);
    m.setDr(0, m.sym('store')).setDr(7, dr7({ n: 0, rw: 'x', len: 1 })).dbActions(DB_CLEAR_DR6 | DB_SET_RF, 1);
    const r2 = m.run({ budget: 100000, stopOn: ['budget'] });
    expect(r2.events.length, describeEvents(r2.events)).to.equal(1);
    const e = r2.events[0];
    expect([hex(e.rip), hex(e.dr6)]).to.deep.equal([hex(m.sym('store')), hex(DR6_INIT | 1)]);
    expect(e.rcx - rcx0, 'the very next store').to.be.within(0, 1);
    // The guard disarmed DR7 on that #DB; the loop ran to its end.
    expect(r2.stop.kind).to.equal('hlt');
  });

  it('17.2.4: a data breakpoint armed by the host mid-loop fires on the first later store to it', () => {
    const m = new DebugMachine().load(LOOP);
    m.run({ budget: 6000, stopOn: ['budget'] });
    const rcx0 = m.gpr(1).lo;
    const target = rcx0 + 7;
    m.setDr(3, DATA + 4 * target).setDr(7, dr7({ n: 3, rw: 'rw', len: 4 }));
    const r = m.run({ budget: 100000 });
    expect(r.events.map((e) => [hex(e.rip), e.rcx])).to.deep.equal([[hex(m.sym('after_store')), target]]);
  });

  it('17.2.4: the guest arming DR7 with MOV DR inside a hot loop takes effect for the following instructions', () => {
    const m = new DebugMachine().load(`
start:
  mov $${DATA + 4 * 2600}, %eax
  mov %rax, %dr1
  xor %ecx, %ecx
loop:
  cmp $2000, %ecx
  jne skip
  mov $${dr7({ n: 1, rw: 'w', len: 4 })}, %eax
  mov %rax, %dr7
skip:
  mov %ecx, ${DATA}(,%rcx,4)
after_store:
  inc %ecx
  cmp $3000, %ecx
  jne loop
  hlt
`);
    const r = m.run({ budget: 100000 });
    expect(r.events.map((e) => [hex(e.rip), e.rcx, hex(e.dr6)])).to.deep.equal([[hex(m.sym('after_store')), 2600, hex(DR6_INIT | 2)]]);
  });

  it('17.3.1.4: TF set by POPF inside a hot loop single-steps from the instruction after the next one, instruction by instruction', () => {
    const m = new DebugMachine().load(`
start:
  xor %ecx, %ecx
loop:
  inc %ecx
  cmp $1500, %ecx
  jne loop
  pushf
  orl $0x100, (%rsp)
  popf
i1:
  nop
i2:
  add $1, %ecx
i3:
  sub $1, %ecx
i4:
  jmp i5
i5:
  xor %ecx, %ecx
loop2:
  inc %ecx
  cmp $3, %ecx
  jne loop2
  hlt
`);
    m.dbActions(DB_CLEAR_DR6, 6);
    const r = m.run({ budget: 100000 });
    expect(r.events.map((e) => [hex(e.rip), hex(e.dr6)]), describeEvents(r.events)).to.deep.equal(
      ['i2', 'i3', 'i4', 'i5', 'loop2'].map((l) => [hex(m.sym(l)), hex(DR6_INIT | DR6_BS)]).concat([[hex(m.sym('loop2') + 2), hex(DR6_INIT | DR6_BS)]]));
  });

  it('17.3.1.1: an instruction breakpoint inside a hot loop body fires on every iteration when the handler sets RF', () => {
    const m = new DebugMachine().load(`
start:
  xor %ecx, %ecx
loop:
  inc %ecx
bp:
  cmp $300, %ecx
  jne loop
  hlt
`);
    m.setDr(1, m.sym('bp')).setDr(7, dr7({ n: 1, rw: 'x', len: 1 })).dbActions(DB_SET_RF, 1000);
    const r = m.run({ budget: 100000 });
    expect(r.stop.kind).to.equal('hlt');
    const n = m.eventCount();
    expect(n, 'one #DB per iteration').to.equal(300);
    expect(r.events.slice(0, 3).map((e) => e.rcx)).to.deep.equal([1, 2, 3]);
  });

  // Every memory-operand form must go through the breakpoint check, also once its loop is hot.
  const forms: Array<[string, 'w' | 'rw', string?]> = [
    ['mov %eax, (%rbx)', 'w'], ['mov %al, (%rbx)', 'w'], ['mov %rax, (%rbx)', 'w'], ['movq $5, (%rbx)', 'w'],
    ['add %eax, (%rbx)', 'w'], ['sub %rax, (%rbx)', 'w'], ['movb $1, (%rbx)', 'w'], ['movw %ax, (%rbx)', 'w'], ['addl $1, (%rbx)', 'w'],
    ['incq (%rbx)', 'w'], ['negl (%rbx)', 'w'], ['shll $1, (%rbx)', 'w'], ['btsl $3, (%rbx)', 'w'], ['orb $1, (%rbx)', 'w'],
    ['xchg %eax, (%rbx)', 'w'], ['lock xaddl %eax, (%rbx)', 'w'], ['setz (%rbx)', 'w'],
    ['mov %rbx, %rdi\n  stosq', 'w'], ['push %rax\n  popq (%rbx)', 'w'],
    ['mov (%rbx), %eax', 'rw'], ['mov (%rbx), %rax', 'rw'], ['mov (%rbx), %al', 'rw'], ['sub (%rbx), %rax', 'rw'],
    ['cmp %rax, (%rbx)', 'rw'], ['and (%rbx), %edx', 'rw'], ['movzbl (%rbx), %eax', 'rw'], ['movsbq (%rbx), %rax', 'rw'], ['cmpl $5, (%rbx)', 'rw'],
    ['testb $1, (%rbx)', 'rw'], ['addl (%rbx), %eax', 'rw'], ['cmovz (%rbx), %eax', 'rw'], ['btl $3, (%rbx)', 'rw'],
    ['imul (%rbx), %eax', 'rw'], ['mov %rbx, %rsi\n  lodsq', 'rw'], ['pushq (%rbx)\n  pop %rax', 'rw', 'after_first'],
  ];
  for (const [form, rw, at] of forms) {
    it(`17.3.1.2: "${form.replace(/\n\s*/g, '; ')}" in a hot loop hits a ${rw === 'w' ? 'write' : 'read/write'} breakpoint on exactly one iteration`, () => {
      const lines = form.split('\n  ');
      const m = new DebugMachine().load(`
start:
  xor %ecx, %ecx
loop:
  lea ${DATA}(,%rcx,8), %rbx
  ${lines[0]}
after_first:
  ${lines[1] ?? 'nop'}
after:
  inc %ecx
  cmp $1000, %ecx
  jne loop
  hlt
`);
      m.setDr(0, DATA + 8 * 700).setDr(7, dr7({ n: 0, rw, len: 8 }));
      const r = m.run({ budget: 100000 });
      expect(r.stop.kind).to.equal('hlt');
      const expectRip = at ? m.sym(at) : (lines.length > 1 ? m.sym('after') : m.sym('after_first'));
      expect(r.events.map((e) => [hex(e.rip), e.rcx, hex(e.dr6)]), describeEvents(r.events)).to.deep.equal([[hex(expectRip), 700, hex(DR6_INIT | 1)]]);
    });
  }

  it('17.2.4: reads in a hot loop do not hit a write-only breakpoint', () => {
    const m = new DebugMachine().load(`
start:
  xor %ecx, %ecx
loop:
  lea ${DATA}(,%rcx,8), %rbx
  mov (%rbx), %eax
  cmpl $5, (%rbx)
  inc %ecx
  cmp $1000, %ecx
  jne loop
  hlt
`);
    m.setDr(0, DATA + 8 * 700).setDr(7, dr7({ n: 0, rw: 'w', len: 8 }));
    const r = m.run({ budget: 100000 });
    expect(r.stop.kind).to.equal('hlt');
    expect(r.events).to.deep.equal([]);
  });
});
