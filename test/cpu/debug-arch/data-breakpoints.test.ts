// Data breakpoints: DR7 R/W and LEN fields, alignment masking, trap-like delivery after the
// access, any overlapping byte, stack pushes, string instructions, several hits, DR6 rules.
// Each test names the SDM rule it checks (SDM Vol. 3B chapter 17, 059 edition numbering).
import { expect } from 'chai';
import {
  DebugMachine, dr7, describeEvents, hex, DATA, RF, TF, DR6_INIT, DR6_BS, DR6_BD, DR6_BT,
  DB_CLEAR_DR6, DB_CLEAR_TF, RW,
} from './harness';

type Size = 1 | 2 | 4 | 8;
const REG: Record<Size, string> = { 1: '%al', 2: '%ax', 4: '%eax', 8: '%rax' };

/** One access of `size` bytes at RBX, then `after: hlt`. */
function accessBody(kind: 'write' | 'read', size: Size): string {
  const insn = kind === 'write' ? `mov ${REG[size]}, (%rbx)` : `mov (%rbx), ${REG[size]}`;
  return `start:\n  ${insn}\nafter:\n  hlt\n`;
}

function overlaps(a: number, size: number, start: number, len: number): boolean {
  return a <= start + len - 1 && a + size - 1 >= start;
}

function runAccess(kind: 'write' | 'read', size: Size, addr: number, setup: (m: DebugMachine) => void) {
  const m = new DebugMachine().load(accessBody(kind, size));
  setup(m);
  m.setGpr(3, addr);
  const r = m.run();
  return { m, r };
}

describe('debug architecture: data breakpoints (SDM 17.2.4, 17.2.5, 17.3.1.2)', function () {

  it('17.3.1.2: a write breakpoint is a trap: RIP after the store, memory already written, DR6 = B1', () => {
    const m = new DebugMachine().load(`
start:
  movabs $0x1122334455667788, %rax
store:
  mov %rax, ${DATA}
after:
  hlt
`);
    m.setDr(1, DATA).setDr(7, dr7({ n: 1, rw: 'w', len: 4 }));
    const r = m.run();
    expect(r.stop.kind).to.equal('hlt');
    expect(r.events.length, describeEvents(r.events)).to.equal(1);
    const e = r.events[0];
    expect(e.vector).to.equal(1);
    expect(hex(e.rip)).to.equal(hex(m.sym('after')));
    expect(hex(e.dr6)).to.equal(hex(DR6_INIT | 0x2));
    expect(e.rflags & RF, 'RF pushed for a trap after a completed instruction is the current RF (0)').to.equal(0);
    expect(hex(m.read32(DATA))).to.equal('0x55667788');
  });

  it('17.2.4 R/W=01: a write breakpoint ignores reads; R/W=11 fires on reads', () => {
    const w = runAccess('read', 4, DATA, (m) => m.setDr(0, DATA).setDr(7, dr7({ n: 0, rw: 'w', len: 4 })));
    expect(w.r.events, 'read vs write-only breakpoint').to.deep.equal([]);
    const rw = runAccess('read', 4, DATA, (m) => m.setDr(0, DATA).setDr(7, dr7({ n: 0, rw: 'rw', len: 4 })));
    expect(rw.r.events.length).to.equal(1);
    expect(hex(rw.r.events[0].rip)).to.equal(hex(rw.m.sym('after')));
    expect(hex(rw.r.events[0].dr6)).to.equal(hex(DR6_INIT | 0x1));
  });

  it('17.2.4 R/W=11 "not instruction fetches": executing watched code does not trigger a data breakpoint', () => {
    const m = new DebugMachine().load(`
start:
  nop
watched:
  nop
  nop
  hlt
`);
    m.setDr(0, m.sym('watched')).setDr(7, dr7({ n: 0, rw: 'rw', len: 1 }));
    expect(m.run().events).to.deep.equal([]);
  });

  it('17.2.4 R/W=00: an instruction breakpoint does not match data accesses to its address', () => {
    const r = runAccess('write', 1, DATA, (m) => m.setDr(0, DATA).setDr(7, dr7({ n: 0, rw: 'x', len: 1 })));
    expect(r.r.events).to.deep.equal([]);
  });

  it('17.2.4/17.2.5 LEN 1, 2, 4, 8 with the low address bits masked: every overlapping access (1-8 bytes, aligned or not) traps, no other', function () {
    this.timeout(20000);
    const failures: string[] = [];
    let runs = 0;
    for (const len of [1, 2, 4, 8] as const) {
      const base = DATA + 0x40;
      for (const misalign of len === 1 ? [0] : [0, len - 1]) {
        for (const size of [1, 2, 4, 8] as const) {
          for (let off = -8; off <= 9; off++) {
            const addr = base + off;
            const { r } = runAccess('write', size, addr, (m) =>
              m.setDr(2, base + misalign).setDr(7, dr7({ n: 2, rw: 'w', len })));
            runs++;
            const expectHit = overlaps(addr, size, base, len);
            const got = r.events.length === 1 && r.events[0].vector === 1 && (r.events[0].dr6 & 0xf) === 0x4;
            const none = r.events.length === 0;
            if (expectHit ? !got : !none) {
              failures.push(`LEN=${len} DR2=${hex(base + misalign)} write ${size}@${hex(addr)}: expected ${expectHit ? 'B2 trap' : 'nothing'}, got [${describeEvents(r.events)}]`);
            }
          }
        }
      }
    }
    expect(runs).to.be.greaterThan(400);
    expect(failures.slice(0, 12), `${failures.length} of ${runs} cases wrong`).to.deep.equal([]);
  });

  // SDM Table 17-1 "Breakpoint Examples": the register setup and every listed access.
  describe('SDM Table 17-1 breakpoint examples', () => {
    const setup = (m: DebugMachine) => {
      m.setDr(0, 0xa0001).setDr(1, 0xa0002).setDr(2, 0xb0002).setDr(3, 0xc0000);
      m.setDr(7, dr7({ n: 0, rw: 'rw', len: 1 }, { n: 1, rw: 'w', len: 1 }, { n: 2, rw: 'rw', len: 2 }, { n: 3, rw: 'w', len: 4 }));
    };
    const bps: Array<{ start: number; len: number; rw: RW }> = [
      { start: 0xa0001, len: 1, rw: 'rw' }, { start: 0xa0002, len: 1, rw: 'w' },
      { start: 0xb0002, len: 2, rw: 'rw' }, { start: 0xc0000, len: 4, rw: 'w' },
    ];
    const expectedBits = (kind: 'read' | 'write', addr: number, size: number) =>
      bps.reduce((acc, b, i) => (overlaps(addr, size, b.start, b.len) && (kind === 'write' || b.rw === 'rw') ? acc | (1 << i) : acc), 0);
    const traps: Array<['read' | 'write', number, Size]> = [
      ['read', 0xa0001, 1], ['write', 0xa0001, 1], ['read', 0xa0001, 2], ['write', 0xa0001, 2],
      ['write', 0xa0002, 1], ['write', 0xa0002, 2], ['read', 0xb0001, 4], ['write', 0xb0001, 4],
      ['read', 0xb0002, 1], ['write', 0xb0002, 1], ['read', 0xb0002, 2], ['write', 0xb0002, 2],
      ['write', 0xc0000, 4], ['write', 0xc0001, 2], ['write', 0xc0003, 1],
    ];
    const noTraps: Array<['read' | 'write', number, Size]> = [
      ['read', 0xa0000, 1], ['write', 0xa0000, 1], ['read', 0xa0002, 1], ['read', 0xa0003, 4],
      ['write', 0xa0003, 4], ['read', 0xb0000, 2], ['write', 0xb0000, 2], ['read', 0xc0000, 2],
      ['read', 0xc0004, 4], ['write', 0xc0004, 4],
    ];
    for (const [kind, addr, size] of traps) {
      it(`Table 17-1 traps: ${kind} ${size} byte(s) at ${hex(addr)} (B bits of every matching register)`, () => {
        const bits = expectedBits(kind, addr, size);
        expect(bits, 'table entry must match some register').to.not.equal(0);
        const { m, r } = runAccess(kind, size, addr, setup);
        expect(r.events.length, describeEvents(r.events)).to.equal(1);
        expect(hex(r.events[0].rip)).to.equal(hex(m.sym('after')));
        expect(hex(r.events[0].dr6)).to.equal(hex(DR6_INIT | bits));
      });
    }
    for (const [kind, addr, size] of noTraps) {
      it(`Table 17-1 does not trap: ${kind} ${size} byte(s) at ${hex(addr)}`, () => {
        const { m, r } = runAccess(kind, size, addr, setup);
        expect(r.events, describeEvents(r.events)).to.deep.equal([]);
        expect(hex(m.dr(6)), 'DR6 untouched').to.equal(hex(DR6_INIT));
      });
    }
  });

  it('17.2.4: G enables work like L enables (DR7 G3)', () => {
    const { r } = runAccess('write', 8, DATA, (m) => m.setDr(3, DATA + 4).setDr(7, dr7({ n: 3, rw: 'w', len: 4, enable: 'G' })));
    expect(r.events.length).to.equal(1);
    expect(hex(r.events[0].dr6)).to.equal(hex(DR6_INIT | 0x8));
  });

  it('17.2.1/17.2.5: breakpoints compare linear addresses: an FS-relative store matches FS.base + offset', () => {
    const m = new DebugMachine().load(`
start:
  mov %eax, %fs:0x10
after:
  hlt
`);
    m.cpu.setReg('fs_base', { lo: DATA, hi: 0 });
    m.setDr(0, DATA + 0x10).setDr(1, 0x10).setDr(7, dr7({ n: 0, rw: 'w', len: 4 }, { n: 1, rw: 'w', len: 4 }));
    const r = m.run();
    expect(r.events.map((e) => [hex(e.rip), hex(e.dr6)])).to.deep.equal([[hex(m.sym('after')), hex(DR6_INIT | 1)]]);
  });

  it('17.2.5 "any byte": an access that crosses a 4 KiB page boundary matches a breakpoint on either page (write 8 bytes at xFFC, watched byte at x000 / xFFC)', () => {
    for (const [bp, len] of [[DATA + 0x1000, 1], [DATA + 0x1003, 4], [DATA + 0xffc, 1]] as const) {
      const { m, r } = runAccess('write', 8, DATA + 0xffc, (mm) => mm.setDr(1, bp).setDr(7, dr7({ n: 1, rw: 'w', len })));
      expect(r.events.map((e) => [hex(e.rip), hex(e.dr6)]), hex(bp)).to.deep.equal([[hex(m.sym('after')), hex(DR6_INIT | 2)]]);
    }
    const { r } = runAccess('read', 4, DATA + 0xffe, (mm) => mm.setDr(0, DATA + 0x1001).setDr(7, dr7({ n: 0, rw: 'rw', len: 1 })));
    expect(r.events.length, 'read of xFFE..x1001').to.equal(1);
  });

  it('17.3.1.2: read-modify-write (add to memory) triggers a write breakpoint once', () => {
    const m = new DebugMachine().load(`
start:
  addl $5, ${DATA}
after:
  hlt
`);
    m.setDr(0, DATA).setDr(7, dr7({ n: 0, rw: 'w', len: 1 }));
    const r = m.run();
    expect(r.events.length).to.equal(1);
    expect(hex(r.events[0].rip)).to.equal(hex(m.sym('after')));
    expect(m.read32(DATA)).to.equal(5);
  });

  it('17.3.1.2: stack pushes are data writes (PUSH and the return address of CALL)', () => {
    const m = new DebugMachine().load(`
start:
  push %rax
after_push:
  pop %rax
  call fn
after_call:
  hlt
fn:
  ret
`);
    const slot = 0x7f000 - 8;
    m.setDr(0, slot).setDr(7, dr7({ n: 0, rw: 'w', len: 8 })).dbActions(DB_CLEAR_DR6);
    const r = m.run();
    expect(r.events.map((e) => hex(e.rip)), describeEvents(r.events)).to.deep.equal([hex(m.sym('after_push')), hex(m.sym('fn'))]);
    expect(r.events.map((e) => hex(e.dr6))).to.deep.equal([hex(DR6_INIT | 1), hex(DR6_INIT | 1)]);
  });

  it('17.3.1.2 + 17.3.1.1: REP STOSB: the trap comes after the iteration that wrote the byte, RIP at the REP instruction, RF=1 pushed, RCX/RDI of the completed iterations', () => {
    const m = new DebugMachine().load(`
start:
  mov $${DATA}, %edi
  mov $16, %ecx
  mov $0xab, %al
rep_insn:
  rep stosb
after:
  hlt
`);
    m.setDr(1, DATA + 8).setDr(7, dr7({ n: 1, rw: 'w', len: 1 })).dbActions(DB_CLEAR_DR6);
    const r = m.run();
    expect(r.events.length, describeEvents(r.events)).to.equal(1);
    const e = r.events[0];
    expect(hex(e.rip)).to.equal(hex(m.sym('rep_insn')));
    expect(e.rflags & RF, 'RF=1 for a trap from a REP iteration other than the last').to.equal(RF);
    expect(e.rcx, 'RCX after 9 of 16 iterations').to.equal(7);
    expect(hex(e.rdi)).to.equal(hex(DATA + 9));
    expect(hex(e.dr6)).to.equal(hex(DR6_INIT | 2));
    expect(r.stop.kind).to.equal('hlt');
    expect(m.gpr(1).lo, 'the REP resumed and finished').to.equal(0);
    expect(hex(m.read32(DATA + 12))).to.equal('0xabababab');
  });

  it('17.3.1.2: REP STOSB over a 4-byte watched range traps once per iteration that touches it', () => {
    const m = new DebugMachine().load(`
start:
  mov $${DATA}, %edi
  mov $16, %ecx
rep_insn:
  rep stosb
after:
  hlt
`);
    m.setDr(0, DATA + 8).setDr(7, dr7({ n: 0, rw: 'w', len: 4 })).dbActions(DB_CLEAR_DR6);
    const r = m.run();
    expect(r.events.map((e) => [hex(e.rip), e.rcx]), describeEvents(r.events)).to.deep.equal(
      [7, 6, 5, 4].map((c) => [hex(m.sym('rep_insn')), c]));
  });

  it('17.3.1.1: a trap from the LAST REP iteration is reported after the instruction with RF=0', () => {
    const m = new DebugMachine().load(`
start:
  mov $${DATA}, %edi
  mov $9, %ecx
  rep stosb
after:
  hlt
`);
    m.setDr(0, DATA + 8).setDr(7, dr7({ n: 0, rw: 'w', len: 1 }));
    const r = m.run();
    expect(r.events.length, describeEvents(r.events)).to.equal(1);
    expect(hex(r.events[0].rip)).to.equal(hex(m.sym('after')));
    expect(r.events[0].rflags & RF).to.equal(0);
    expect(r.events[0].rcx).to.equal(0);
  });

  it('17.3.1.2: REP MOVSQ: a read/write breakpoint on the source traps after the iteration that read it', () => {
    const m = new DebugMachine().load(`
start:
  mov $${DATA}, %esi
  mov $${DATA + 0x100}, %edi
  mov $4, %ecx
rep_insn:
  rep movsq
after:
  hlt
`);
    m.setDr(2, DATA + 8).setDr(7, dr7({ n: 2, rw: 'rw', len: 8 }));
    const r = m.run();
    expect(r.events.length, describeEvents(r.events)).to.equal(1);
    expect(hex(r.events[0].rip)).to.equal(hex(m.sym('rep_insn')));
    expect(r.events[0].rcx).to.equal(2);
    expect(r.events[0].rflags & RF).to.equal(RF);
    expect(hex(r.events[0].dr6)).to.equal(hex(DR6_INIT | 4));
  });

  it('17.3.1.1: REPNE SCASB ending early on a match: the matching iteration is the last one, so its read trap comes after the instruction with RF=0', () => {
    const m = new DebugMachine().load(`
start:
  mov $${DATA}, %edi
  mov $16, %ecx
  mov $0x5a, %al
  repne scasb
after:
  hlt
`);
    m.mem.bytes[DATA + 5] = 0x5a;
    m.setDr(0, DATA + 5).setDr(7, dr7({ n: 0, rw: 'rw', len: 1 }));
    const r = m.run();
    expect(r.events.map((e) => [hex(e.rip), e.rflags & RF, e.rcx]), describeEvents(r.events)).to.deep.equal([[hex(m.sym('after')), 0, 10]]);
  });

  it('CMPXCHG (Vol. 2: "the destination operand receives a write cycle without regard to the result of the comparison"): a failing CMPXCHG still triggers a write breakpoint', () => {
    const m = new DebugMachine().load(`
start:
  movl $7, ${DATA}
setup_done:
  mov $1, %eax
  mov $2, %ecx
  cmpxchg %ecx, ${DATA}
after:
  hlt
`);
    m.setDr(0, DATA).setDr(7, dr7({ n: 0, rw: 'w', len: 4 })).dbActions(DB_CLEAR_DR6);
    const r = m.run();
    expect(r.events.map((e) => hex(e.rip)), describeEvents(r.events)).to.deep.equal([hex(m.sym('setup_done')), hex(m.sym('after'))]);
    expect(m.read32(DATA), 'comparison failed: memory keeps 7').to.equal(7);
  });

  it('17.3.1.2: stack reads are data reads (POP and RET match a read/write breakpoint on the slot); the #DB frame pushes match too', () => {
    // After the read the slot lies just below RSP, so the #DB frame itself lands on it: the
    // frame pushes are data writes, so a nested #DB (B3) is taken at the handler's first
    // instruction (whose handler clears DR6 before the outer one logs it).
    for (const [body, labels] of [
      ['push $5\nafter_push:\n  pop %rax\nafter_pop:\n  hlt', ['after_push', 'after_pop']],
      ['call fn\nafter_call:\n  hlt\nfn:\n  ret', ['fn', 'after_call']],
    ] as const) {
      const m = new DebugMachine().load(`start:\n  ${body}\n`);
      m.setDr(3, 0x7f000 - 8).setDr(7, dr7({ n: 3, rw: 'rw', len: 8 })).dbActions(DB_CLEAR_DR6, 4);
      const r = m.run();
      const why = describeEvents(r.events);
      const atCode = r.events.filter((e) => e.rip !== m.sym('vec_db'));
      expect(atCode.slice(0, 2).map((e) => hex(e.rip)), why).to.deep.equal(labels.map((l) => hex(m.sym(l))));
      expect(hex(atCode[0].dr6), why).to.equal(hex(DR6_INIT | 8));
      const frameHits = r.events.filter((e) => e.rip === m.sym('vec_db'));
      expect(frameHits.length, why).to.be.greaterThan(0);
      for (const e of frameHits) expect(hex(e.dr6), why).to.equal(hex(DR6_INIT | 8));
    }
  });

  it('17.2.4 (nothing enabled) / kvm-unit-tests 1 (CPL 0 part): a LOCK CMPXCHG split across a cache line raises no #DB (and no #AC) with nothing enabled', () => {
    const m = new DebugMachine().load(`
start:
  xor %eax, %eax
  movabs $0xdeadbeefdeadbeef, %rcx
  lock cmpxchg %rcx, ${DATA + 0x40 + 60}
  mov ${DATA + 0x40 + 60}, %rbx
  hlt
`);
    const r = m.run();
    expect(r.events).to.deep.equal([]);
    expect([hex(m.gpr(3).hi), hex(m.gpr(3).lo)]).to.deep.equal(['0xdeadbeef', '0xdeadbeef']);
  });

  it('17.3.1.2: a non-REP string store (STOSQ) traps after the instruction', () => {
    const m = new DebugMachine().load(`
start:
  mov $${DATA}, %edi
  stosq
after:
  hlt
`);
    m.setDr(0, DATA + 7).setDr(7, dr7({ n: 0, rw: 'w', len: 1 }));
    const r = m.run();
    expect(r.events.map((e) => hex(e.rip))).to.deep.equal([hex(m.sym('after'))]);
  });

  it('17.3.1 "may report one or both": two breakpoints hit by one access are reported in one #DB (B0|B3)', () => {
    const { m, r } = runAccess('write', 8, DATA, (mm) =>
      mm.setDr(0, DATA).setDr(3, DATA + 4).setDr(7, dr7({ n: 0, rw: 'w', len: 1 }, { n: 3, rw: 'rw', len: 4 })));
    expect(r.events.length).to.equal(1);
    expect(hex(r.events[0].dr6)).to.equal(hex(DR6_INIT | 0x9));
    expect(hex(r.events[0].rip)).to.equal(hex(m.sym('after')));
  });

  it('17.2.3 (as Bochs): B bits are also set for a matching breakpoint that is not enabled, when an enabled one fires', () => {
    const { r } = runAccess('write', 4, DATA, (m) =>
      m.setDr(0, DATA).setDr(1, DATA).setDr(7, dr7({ n: 0, rw: 'w', len: 4 }, { n: 1, rw: 'w', len: 4, enable: 'none' })));
    expect(r.events.length).to.equal(1);
    expect(hex(r.events[0].dr6)).to.equal(hex(DR6_INIT | 0x3));
  });

  it('17.2.4: a matching breakpoint that is not enabled raises no #DB and leaves DR6 alone', () => {
    const { m, r } = runAccess('write', 4, DATA, (mm) =>
      mm.setDr(1, DATA).setDr(7, dr7({ n: 1, rw: 'w', len: 4, enable: 'none' })));
    expect(r.events).to.deep.equal([]);
    expect(hex(m.dr(6))).to.equal(hex(DR6_INIT));
  });

  it('17.2.3: B0-B3 are replaced on each #DB while BD, BS and BT stay set (kvm-unit-tests 14: BS kept)', () => {
    const { r } = runAccess('write', 8, DATA, (m) => {
      m.setDr(6, 0xffff0ff0 | DR6_BS | DR6_BD | DR6_BT | 0x8); // stale B3
      m.setDr(1, DATA).setDr(7, dr7({ n: 1, rw: 'w', len: 4 }));
    });
    expect(r.events.length).to.equal(1);
    expect(hex(r.events[0].dr6)).to.equal(hex(DR6_INIT | DR6_BS | DR6_BD | DR6_BT | 0x2));
  });

  it('17.2.3 / kvm-unit-tests 14/15: write watchpoint keeps a software-set BS (0xFFFF4FF2) and does not set BS itself (0xFFFF0FF2)', () => {
    const body = `
start:
  mov $42, %rax
  mov %rax, ${DATA}
hw_wp:
  hlt
`;
    for (const [preset, want] of [[0x4000, 0xffff4ff2], [0, 0xffff0ff2]]) {
      const m = new DebugMachine().load(body);
      m.setDr(6, DR6_INIT | preset).setDr(1, DATA).setDr(7, 0x00d0040a);
      const r = m.run();
      expect(r.events.map((e) => [hex(e.rip), hex(e.dr6)])).to.deep.equal([[hex(m.sym('hw_wp')), hex(want)]]);
    }
  });

  it('17.3.1.2 + 17.3.1.4: a data breakpoint and a single-step trap on the same instruction give one #DB with BS|Bn', () => {
    const m = new DebugMachine().load(`
start:
  pushf
  orl $${TF}, (%rsp)
  popf
  nop
first:
  mov %eax, ${DATA}
second:
  hlt
`);
    m.setDr(0, DATA).setDr(7, dr7({ n: 0, rw: 'w', len: 4 })).dbActions(DB_CLEAR_DR6 | DB_CLEAR_TF);
    const r = m.run();
    // The NOP after POPF traps (BS); the handler clears TF, so the store has no single-step.
    // Then run again with TF kept for the store itself.
    expect(r.events.map((e) => hex(e.rip))).to.deep.equal([hex(m.sym('first')), hex(m.sym('second'))]);
    expect(hex(r.events[0].dr6)).to.equal(hex(DR6_INIT | DR6_BS));
    expect(hex(r.events[1].dr6)).to.equal(hex(DR6_INIT | 1));

    const m2 = new DebugMachine().load(`
start:
  pushf
  orl $${TF}, (%rsp)
  popf
store:
  mov %eax, ${DATA}
after:
  pushf
  andl $~${TF}, (%rsp)
  popf
  hlt
`);
    m2.setDr(0, DATA).setDr(7, dr7({ n: 0, rw: 'w', len: 4 })).dbActions(DB_CLEAR_DR6);
    const r2 = m2.run();
    expect(hex(r2.events[0].rip), describeEvents(r2.events)).to.equal(hex(m2.sym('after')));
    expect(hex(r2.events[0].dr6)).to.equal(hex(DR6_INIT | DR6_BS | 1));
  });
});
