// What the CPU shows the hypervisor: #DB/#BP exits through the exception bitmap (DR6 itself
// untouched, SDM 27.1), MOV-DR exits before the #GP/#UD/GD checks (SDM 25.1.3 / 32.2),
// the pending-debug-exceptions field across an exit in the MOV-SS shadow (SDM 27.3.4,
// 26.6.3), and traps of emulated instructions (completeEmulatedInstruction, SDM 32.2.1).
import { expect } from 'chai';
import { CpuExit } from '../../../vmm/cpu/cpu-exit';
import { u64 } from '../../../vmm/u64';
import {
  DebugMachine, dr7, describeEvents, hex, DATA, TF, CR4_DE, DR6_INIT, DR6_BS, DR6_BD,
  DR7_GD, DEBUGCTL_LBR,
} from './harness';

const QUAL = 0xe00f; // B0-B3, BD, BS, BT

function exceptionExit(e: CpuExit): Extract<CpuExit, { kind: 'exception' }> {
  expect(e.kind, JSON.stringify(e)).to.equal('exception');
  return e as Extract<CpuExit, { kind: 'exception' }>;
}

describe('debug architecture: VMX-facing behaviour (exception bitmap, MOV-DR exiting, pending debug exceptions)', function () {

  it('27.1: a data-breakpoint #DB with exception-bitmap bit 1 exits with the bits in the qualification; DR6, DR7.GD, DEBUGCTL.LBR untouched; RIP after the store', () => {
    const m = new DebugMachine().load(`
start:
  mov %eax, ${DATA}
after:
  hlt
`);
    m.setDr(1, DATA).setDr(7, dr7({ n: 1, rw: 'w', len: 4 }));
    m.phys.setDebugctl(u64(DEBUGCTL_LBR));
    m.cpu.intercepts.exceptionBitmap = 1 << 1;
    const r = m.run();
    const x = exceptionExit(r.stop);
    expect([x.vector, x.type, hex(x.dr6 & QUAL)]).to.deep.equal([1, 'hw', '0x2']);
    expect(hex(m.reg('rip'))).to.equal(hex(m.sym('after')));
    expect(hex(m.dr(6)), 'DR6 not updated').to.equal(hex(DR6_INIT));
    expect(m.phys.getDebugctl().lo, 'LBR not cleared').to.equal(DEBUGCTL_LBR);
    expect(r.events, 'nothing delivered to the guest').to.deep.equal([]);
  });

  it('27.1: an instruction-breakpoint #DB exit is fault-like: RIP at the instruction, qualification B0', () => {
    const m = new DebugMachine().load(`
start:
  nop
bp:
  nop
  hlt
`);
    m.setDr(0, m.sym('bp')).setDr(7, dr7({ n: 0, rw: 'x', len: 1 }));
    m.cpu.intercepts.exceptionBitmap = 1 << 1;
    const x = exceptionExit(m.run().stop);
    expect([x.vector, hex(x.dr6 & QUAL), hex(m.reg('rip'))]).to.deep.equal([1, '0x1', hex(m.sym('bp'))]);
    expect(hex(m.dr(6))).to.equal(hex(DR6_INIT));
  });

  it('27.1: a single-step #DB exit carries BS, RIP after the stepped instruction', () => {
    const m = new DebugMachine().load(`
start:
  pushf
  orl $${TF}, (%rsp)
  popf
  nop
S:
  hlt
`);
    m.cpu.intercepts.exceptionBitmap = 1 << 1;
    const x = exceptionExit(m.run().stop);
    expect([x.vector, hex(x.dr6 & QUAL), hex(m.reg('rip'))]).to.deep.equal([1, hex(DR6_BS), hex(m.sym('S'))]);
    expect(hex(m.dr(6))).to.equal(hex(DR6_INIT));
  });

  it('27.1: a general-detect #DB exit carries BD and leaves DR7.GD set and DR6 unchanged; RIP at the MOV DR', () => {
    const m = new DebugMachine().load(`
start:
  nop
bad:
  mov %dr0, %rax
  hlt
`);
    m.setDr(7, 0x400 | DR7_GD);
    m.cpu.intercepts.exceptionBitmap = 1 << 1;
    const x = exceptionExit(m.run().stop);
    expect([x.vector, hex(x.dr6 & QUAL), hex(m.reg('rip'))]).to.deep.equal([1, hex(DR6_BD), hex(m.sym('bad'))]);
    expect(hex(m.dr(7))).to.equal(hex(0x400 | DR7_GD));
    expect(hex(m.dr(6))).to.equal(hex(DR6_INIT));
  });

  it('24.6.3 + Table 24-15 (type 5): ICEBP with bitmap bit 1 exits as a privileged software exception on the instruction itself, with its length', () => {
    for (const [bytes, len] of [['0xf1', 1], ['0x2e, 0x2e, 0xf1', 3]] as const) {
      const m = new DebugMachine().load(`
start:
  nop
icebp:
  .byte ${bytes}
  hlt
`);
      m.cpu.intercepts.exceptionBitmap = 1 << 1;
      const x = exceptionExit(m.run().stop);
      expect([x.vector, x.type, x.instructionLength, hex(m.reg('rip'))]).to.deep.equal([1, 'priv', len, hex(m.sym('icebp'))]);
    }
  });

  it('24.6.3: INT $1 is a software interrupt (type 4), not an exception: bitmap bit 1 does not intercept it; the guest handler runs', () => {
    const m = new DebugMachine().load(`
start:
  int $1
after:
  hlt
`);
    m.cpu.intercepts.exceptionBitmap = 1 << 1;
    const r = m.run();
    expect(r.stop.kind).to.equal('hlt');
    expect(r.events.map((e) => [e.vector, hex(e.rip)])).to.deep.equal([[1, hex(m.sym('after'))]]);
  });

  it('24.6.3 + Table 24-15 (type 6): INT3 with bitmap bit 3 exits as a software exception at the INT3, with its length', () => {
    const m = new DebugMachine().load(`
start:
  nop
bp:
  int3
  hlt
`);
    m.cpu.intercepts.exceptionBitmap = 1 << 3;
    const x = exceptionExit(m.run().stop);
    expect([x.vector, x.type, x.instructionLength, hex(m.reg('rip'))]).to.deep.equal([3, 'swexc', 1, hex(m.sym('bp'))]);
  });

  it('27.3.3: RFLAGS.RF at an exception exit is what delivery would have pushed: 1 for #GP and #UD faults, 0 for an instruction-breakpoint #DB', () => {
    const cases: Array<[string, number, number]> = [
      ['movabs $0x100000400, %rax\nbad:\n  mov %rax, %dr7', 13, 1],
      ['nop\nbad:\n  ud2', 6, 1],
    ];
    for (const [body, vector, rf] of cases) {
      const m = new DebugMachine().load(`start:\n  ${body}\n  hlt\n`);
      m.cpu.intercepts.exceptionBitmap = 1 << vector;
      const x = exceptionExit(m.run().stop);
      expect([x.vector, hex(m.reg('rip')), (m.reg('rflags') >>> 16) & 1], body).to.deep.equal([vector, hex(m.sym('bad')), rf]);
    }
    const m = new DebugMachine().load(`start:\n  nop\nbad:\n  nop\n  hlt\n`);
    m.setDr(0, m.sym('bad')).setDr(7, dr7({ n: 0, rw: 'x', len: 1 }));
    m.cpu.intercepts.exceptionBitmap = 1 << 1;
    exceptionExit(m.run().stop);
    expect((m.reg('rflags') >>> 16) & 1).to.equal(0);
  });

  describe('MOV-DR exiting (SDM 25.1.3: before the #GP/#UD/GD checks)', () => {
    const movDr = (insn: string, setup: (m: DebugMachine) => void) => {
      const m = new DebugMachine().load(`
start:
  nop
insn:
  ${insn}
  hlt
`);
      setup(m);
      m.cpu.intercepts.movDr = true;
      const r = m.run();
      expect(r.stop.kind, JSON.stringify(r.stop)).to.equal('mov-dr');
      expect(hex(m.reg('rip')), 'fault-like: RIP at the MOV').to.equal(hex(m.sym('insn')));
      expect(r.events, 'no guest exception').to.deep.equal([]);
      return { m, x: r.stop as Extract<CpuExit, { kind: 'mov-dr' }> };
    };

    it('Table 27-4 qualification fields: MOV from DR7 to RAX: dr 7, gpr 0, direction from-DR, length 3', () => {
      const { x } = movDr('mov %dr7, %rax', () => undefined);
      expect([x.dr, x.gpr, x.toDr, x.length]).to.deep.equal([7, 0, false, 3]);
    });

    it('25.1.3: MOV to DR4 from RBX with CR4.DE=1 exits instead of #UD', () => {
      const { x } = movDr('mov %rbx, %dr4', (m) => m.setCr4(m.reg('cr4') | CR4_DE));
      expect([x.dr, x.gpr, x.toDr]).to.deep.equal([4, 3, true]);
    });

    it('25.1.3: MOV from DR0 with DR7.GD=1 exits instead of the GD #DB; DR6 and DR7 unchanged', () => {
      const { m, x } = movDr('mov %dr0, %r9', (mm) => mm.setDr(7, 0x400 | DR7_GD));
      expect([x.dr, x.gpr, x.toDr]).to.deep.equal([0, 9, false]);
      expect([hex(m.dr(6)), hex(m.dr(7))]).to.deep.equal([hex(DR6_INIT), hex(0x400 | DR7_GD)]);
    });

    it('25.1.3: MOV to DR7 with bits 63:32 set exits instead of #GP; DR7 unchanged', () => {
      const { m, x } = movDr('mov %rax, %dr7', (mm) => mm.setGpr(0, 0x401, 1));
      expect([x.dr, x.gpr, x.toDr]).to.deep.equal([7, 0, true]);
      expect(hex(m.dr(7))).to.equal('0x400');
    });
  });

  describe('pending debug exceptions across an exit in the MOV-SS shadow (SDM 27.3.4, 26.6.3)', () => {
    it('27.3.4/26.6.3: TF=1, MOV SS, CPUID: the CPUID exit saves BS in pendingDebugExceptions with MOV-SS blocking; after emulation one #DB (BS) follows the CPUID', () => {
      const m = new DebugMachine().load(`
start:
  mov %ss, %eax
  pushf
  orl $${TF}, (%rsp)
  popf
  mov %eax, %ss
  cpuid
after_cpuid:
  pushf
  andl $~${TF}, (%rsp)
  popf
  hlt
`);
      const r1 = m.run({ stopOn: ['cpuid'] });
      expect(r1.stop.kind).to.equal('cpuid');
      expect(hex(m.cpu.pendingDebugExceptions)).to.equal(hex(DR6_BS));
      expect(m.cpu.interruptibility & 2, 'blocking by MOV SS').to.equal(2);
      expect(r1.events, 'nothing delivered yet').to.deep.equal([]);
      m.cpu.completeEmulatedInstruction((r1.stop as { length: number }).length);
      const r2 = m.run();
      expect(r2.events.filter((e) => e.rip === m.sym('after_cpuid')).map((e) => hex(e.dr6 & QUAL)), describeEvents(r2.events)).to.deep.equal([hex(DR6_BS)]);
      expect(hex(r2.events[0].rip)).to.equal(hex(m.sym('after_cpuid')));
    });

    it('27.3.4/26.6.3: a data breakpoint hit by MOV SS, then CPUID: pendingDebugExceptions = B1 | bit 12 (enabled breakpoint); after emulation #DB with B1 after the CPUID', () => {
      const m = new DebugMachine().load(`
start:
  mov ${DATA}, %ss
  cpuid
after_cpuid:
  hlt
`);
      m.write64(DATA, 0x10, 0);
      m.setDr(1, DATA).setDr(7, dr7({ n: 1, rw: 'rw', len: 2 }));
      const r1 = m.run({ stopOn: ['cpuid'] });
      expect(r1.stop.kind).to.equal('cpuid');
      expect(hex(m.cpu.pendingDebugExceptions)).to.equal('0x1002');
      m.cpu.completeEmulatedInstruction((r1.stop as { length: number }).length);
      const r2 = m.run();
      expect(r2.events.map((e) => [hex(e.rip), hex(e.dr6)]), describeEvents(r2.events)).to.deep.equal([[hex(m.sym('after_cpuid')), hex(DR6_INIT | 2)]]);
    });

    it('27.3.4: without MOV-SS blocking the field is saved as 0 (TF=1, CPUID exit)', () => {
      const m = new DebugMachine().load(`
start:
  pushf
  orl $${TF}, (%rsp)
  popf
  cpuid
  hlt
`);
      const r1 = m.run({ stopOn: ['cpuid'] });
      expect(r1.stop.kind).to.equal('cpuid');
      expect(m.cpu.pendingDebugExceptions).to.equal(0);
    });

    it('26.6.3: BS written to pendingDebugExceptions before entry is delivered as a #DB before the first instruction (RIP unchanged, DR6.BS)', () => {
      const m = new DebugMachine().load(`
start:
  nop
  hlt
`);
      m.cpu.pendingDebugExceptions = DR6_BS;
      const r = m.run();
      expect(r.events.map((e) => [e.vector, hex(e.rip), hex(e.dr6)])).to.deep.equal([[1, hex(m.sym('start')), hex(DR6_INIT | DR6_BS)]]);
      expect(m.cpu.pendingDebugExceptions).to.equal(0);
    });
  });

  describe('monitor trap flag (SDM 25.5.2, 27.3.4)', () => {
    it('25.5.2: with MTF on, the CPU exits after each instruction, and after each iteration of a REP string instruction', () => {
      const m = new DebugMachine().load(`
start:
  nop
a:
  mov $${DATA}, %edi
b:
  mov $2, %ecx
rep_insn:
  rep stosb
after:
  hlt
`);
      m.cpu.intercepts.mtf = true;
      const rips: Array<[string, number]> = [];
      for (let i = 0; i < 5; i++) {
        const r = m.run();
        expect(r.stop.kind, JSON.stringify(r.stop)).to.equal('mtf');
        rips.push([hex(m.reg('rip')), m.gpr(1).lo]);
      }
      expect(rips.map((x) => x[0])).to.deep.equal(['a', 'b', 'rep_insn', 'rep_insn', 'after'].map((l) => hex(m.sym(l))));
      expect(rips[3][1], 'RCX after the first iteration').to.equal(1);
    });

    it('27.3.4: an MTF exit saves the pending data-breakpoint trap (B0 | bit 12) in pendingDebugExceptions; the next entry delivers it', () => {
      const m = new DebugMachine().load(`
start:
  mov %eax, ${DATA}
after:
  nop
  hlt
`);
      m.setDr(0, DATA).setDr(7, dr7({ n: 0, rw: 'w', len: 4 }));
      m.cpu.intercepts.mtf = true;
      const r1 = m.run();
      expect(r1.stop.kind).to.equal('mtf');
      expect(hex(m.cpu.pendingDebugExceptions)).to.equal('0x1001');
      expect(r1.events).to.deep.equal([]);
      m.cpu.intercepts.mtf = false;
      const r2 = m.run();
      expect(r2.events.map((e) => [hex(e.rip), hex(e.dr6)])).to.deep.equal([[hex(m.sym('after')), hex(DR6_INIT | 1)]]);
    });

    it('27.3.4: an MTF exit after a single-stepped instruction saves BS', () => {
      const m = new DebugMachine().load(`
start:
  pushf
  orl $${TF}, (%rsp)
  popf
  nop
  hlt
`);
      m.cpu.intercepts.mtf = true;
      for (let i = 0; i < 3; i++) expect(m.run().stop.kind).to.equal('mtf');
      expect(m.cpu.pendingDebugExceptions, 'no trap after the POPF that set TF').to.equal(0);
      expect(m.run().stop.kind).to.equal('mtf');
      expect(hex(m.cpu.pendingDebugExceptions), 'after the NOP').to.equal(hex(DR6_BS));
    });
  });

  describe('event injection at VM entry (SDM 26.5.1, 26.6.3)', () => {
    it('26.5.1: an injected #DB (hardware exception, vector 1) goes through the IDT without touching DR6, DR7 or DEBUGCTL; RF is pushed as RFLAGS holds it', () => {
      const m = new DebugMachine().load(`
start:
  nop
  hlt
`);
      m.setDr(6, DR6_INIT | 4).setDr(7, dr7({ n: 3, rw: 'w', len: 4 }));
      m.phys.setDebugctl(u64(DEBUGCTL_LBR));
      m.setRflags(0x2 | (1 << 16));
      m.cpu.inject({ vector: 1, type: 'hw' });
      const r = m.run();
      expect(r.events.map((e) => [e.vector, hex(e.rip), hex(e.dr6), hex(e.rflags & (1 << 16))])).to.deep.equal([
        [1, hex(m.sym('start')), hex(DR6_INIT | 4), hex(1 << 16)],
      ]);
      expect(hex(m.dr(7))).to.equal(hex(dr7({ n: 3, rw: 'w', len: 4 })));
      expect(m.phys.getDebugctl().lo).to.equal(DEBUGCTL_LBR);
    });

    it('26.5.1: reflecting an intercepted #DB: the VMM writes DR6 from the qualification and injects #DB; the guest sees it once, even with bitmap bit 1 still set', () => {
      const m = new DebugMachine().load(`
start:
  mov %eax, ${DATA}
after:
  hlt
`);
      m.setDr(1, DATA).setDr(7, dr7({ n: 1, rw: 'w', len: 4 }));
      m.cpu.intercepts.exceptionBitmap = 1 << 1;
      const x = exceptionExit(m.run().stop);
      m.setDr(6, ((m.dr(6) & ~0xf) | (x.dr6 & QUAL)) >>> 0);
      m.cpu.inject({ vector: 1, type: 'hw' });
      const r = m.run();
      expect(r.stop.kind).to.equal('hlt');
      expect(r.events.map((e) => [e.vector, hex(e.rip), hex(e.dr6)])).to.deep.equal([[1, hex(m.sym('after')), hex(DR6_INIT | 2)]]);
    });

    it('26.5.1: reflecting an intercepted ICEBP as a privileged software exception with its length pushes the RIP after it', () => {
      const m = new DebugMachine().load(`
start:
  .byte 0x2e, 0xf1
after:
  hlt
`);
      m.cpu.intercepts.exceptionBitmap = 1 << 1;
      const x = exceptionExit(m.run().stop);
      expect([x.type, x.instructionLength]).to.deep.equal(['priv', 2]);
      m.cpu.inject({ vector: 1, type: 'priv', instructionLength: x.instructionLength });
      const r = m.run();
      expect(r.events.map((e) => [e.vector, hex(e.rip)])).to.deep.equal([[1, hex(m.sym('after'))]]);
    });

    it('26.6.3: a vectoring entry (injected external interrupt) discards the pending debug exceptions', () => {
      const m = new DebugMachine().load(`
start:
  nop
  hlt
`);
      m.cpu.pendingDebugExceptions = DR6_BS;
      m.cpu.inject({ vector: 0x20, type: 'extint' });
      const r = m.run();
      expect(r.events.map((e) => [e.vector, hex(e.rip)]), describeEvents(r.events)).to.deep.equal([[0x20, hex(m.sym('start'))]]);
      expect(hex(m.dr(6))).to.equal(hex(DR6_INIT));
    });
  });

  it('32.2.1: completeEmulatedInstruction after an I/O exit raises the single-step trap once (TF=1), RIP past the instruction', () => {
    const m = new DebugMachine().load(`
start:
  pushf
  orl $${TF}, (%rsp)
  popf
io:
  out %al, $0xe9
after:
  hlt
`);
    m.cpu.intercepts.exceptionBitmap = 1 << 1;
    const r1 = m.run({ stopOn: ['io'] });
    expect(r1.stop.kind).to.equal('io');
    expect(hex(m.reg('rip')), 'instruction exits are fault-like').to.equal(hex(m.sym('io')));
    m.cpu.completeEmulatedInstruction((r1.stop as { length: number }).length, { port: 0xe9, size: 1 });
    const x = exceptionExit(m.run().stop);
    expect([x.vector, hex(x.dr6 & QUAL), hex(m.reg('rip'))]).to.deep.equal([1, hex(DR6_BS), hex(m.sym('after'))]);
  });
});
