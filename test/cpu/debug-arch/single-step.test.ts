// Single-step (RFLAGS.TF), the MOV SS and STI shadows, ICEBP vs INT 1, BTF, LBR/BTF clearing,
// and the kvm-unit-tests x86/debug.c cases that run at CPL 0 without a local APIC.
import { expect } from 'chai';
import {
  DebugMachine, dr7, describeEvents, hex, DATA, TF, IF, RF, DR6_INIT, DR6_BS,
  DB_CLEAR_DR6, DB_CLEAR_TF, DB_REARM_BTF, DEBUGCTL_BTF, DEBUGCTL_LBR, IRQ_VECTOR, DebugEvent,
} from './harness';
import { u64 } from '../../../vmm/u64';
import { nativeSteps } from './native-oracle';

const SET_TF = `
  pushf
  pop %rax
  or $0x100, %rax
  push %rax
  popf
`;

/** [vector, RIP relative to label S, DR6] triples, for comparing with kvm-unit-tests tables. */
function rel(m: DebugMachine, evs: DebugEvent[], s = 'S'): Array<[number, number, string]> {
  return evs.map((e) => [e.vector, e.rip - m.sym(s), hex(e.dr6)]);
}

/** kvm-unit-tests' single-step framework: DR6 = 0 (reads FFFF0FF0), handler never writes DR6. */
function kvmCase(body: string): { m: DebugMachine; evs: DebugEvent[]; stop: string } {
  const m = new DebugMachine().load(body);
  m.setDr(6, DR6_INIT);
  const r = m.run();
  return { m, evs: r.events, stop: r.stop.kind };
}

describe('debug architecture: single-step, shadows, ICEBP, BTF (SDM 17.3.1.4, 6.8.3, 17.4)', function () {

  describe('kvm-unit-tests x86/debug.c cases (CPL 0)', () => {
    it('kvm 7 singlestep_basic + 17.3.1.4 POPF rule: no trap after the POPF that sets TF; the POPF that clears TF traps: S, S+1, S+2 with FFFF4FF0', () => {
      const { m, evs, stop } = kvmCase(`
start:
${SET_TF}
  and $~0x100, %rax
S:
  push %rax
  popf
  hlt
`);
      expect(stop).to.equal('hlt');
      expect(rel(m, evs), describeEvents(evs)).to.deep.equal([[1, 0, '0xffff4ff0'], [1, 1, '0xffff4ff0'], [1, 2, '0xffff4ff0']]);
    });

    it('32.2.1/17.3.1.4, kvm 8: single-step over instructions the hypervisor emulates (CPUID, IN) via completeEmulatedInstruction: S, +1, +4, +6, +11, +12, +13', () => {
      const { m, evs } = kvmCase(`
start:
${SET_TF}
  and $~0x100, %rax
S:
  push %rax
  xor %rax, %rax
  cpuid
  mov $0x3fd, %edx
  in (%dx), %al
  popf
  hlt
`);
      expect(rel(m, evs), describeEvents(evs)).to.deep.equal(
        [0, 1, 4, 6, 11, 12, 13].map((o) => [1, o, '0xffff4ff0']));
    });

    it('kvm 9: STI blocking does not suppress single-step (17.3.1.4, kvm): S, S+6, S+7, S+8', () => {
      const { m, evs } = kvmCase(`
start:
  cli
${SET_TF}
  sti
S:
  and $~0x100, %rax
  push %rax
  popf
  hlt
`);
      expect(rel(m, evs), describeEvents(evs)).to.deep.equal([0, 6, 7, 8].map((o) => [1, o, '0xffff4ff0']));
    });

    it('kvm 10: MOV SS blocking (6.8.3): no #DB between MOV SS and the next instruction; one BS #DB after it: S, S+1, S+2', () => {
      const { m, evs } = kvmCase(`
start:
  pushf
  pop %rax
  or $0x100, %rax
  push %rax
  mov %ss, %ax
  popf
  mov %ax, %ss
  and $~0x100, %rax
S:
  push %rax
  popf
  hlt
`);
      expect(rel(m, evs), describeEvents(evs)).to.deep.equal([0, 1, 2].map((o) => [1, o, '0xffff4ff0']));
    });

    it('17.3.1.4/6.8.3, kvm 11: single-step + ICEBP in the MOV SS shadow: ICEBP #DBs carry no BS: S, S+1 (FFFF0FF0), S+7, S+8, S+9 (FFFF4FF0)', () => {
      const { m, evs } = kvmCase(`
start:
  pushf
  pop %rax
  or $0x100, %rax
  push %rax
  mov %ss, %ax
  popf
  mov %ax, %ss
  .byte 0xf1
S:
  .byte 0xf1
  and $~0x100, %rax
  push %rax
  popf
  hlt
`);
      expect(rel(m, evs), describeEvents(evs)).to.deep.equal([
        [1, 0, '0xffff0ff0'], [1, 1, '0xffff0ff0'], [1, 7, '0xffff4ff0'], [1, 8, '0xffff4ff0'], [1, 9, '0xffff4ff0'],
      ]);
    });

    it('17.3.1.3/6.8.3, kvm 12: single-step + MOV SS blocking + DR7.GD: the GD fault is not blocked by MOV SS: S (FFFF2FF0), S+3, S+9, S+10, S+11 (FFFF4FF0)', () => {
      const { m, evs } = kvmCase(`
start:
  mov $0x2000, %eax
  mov %rax, %dr7
  xor %ecx, %ecx
  pushf
  pop %rax
  or $0x100, %rax
  push %rax
  mov %ss, %ax
  popf
  mov %ax, %ss
S:
  mov %rcx, %dr6
  and $~0x100, %rax
  push %rax
  popf
  hlt
`);
      expect(rel(m, evs), describeEvents(evs)).to.deep.equal([
        [1, 0, '0xffff2ff0'], [1, 3, '0xffff4ff0'], [1, 9, '0xffff4ff0'], [1, 10, '0xffff4ff0'], [1, 11, '0xffff4ff0'],
      ]);
    });

    it('17.3.1.4/6.9, kvm 13: single-step over STI;HLT, HLT woken by an interrupt (GuestCpu.requestInterrupt): #DB after STI, #DB after HLT before the IRQ, then S+7, S+8, S+9', () => {
      const m = new DebugMachine().load(`
start:
  cli
${SET_TF}
  sti
S:
  hlt
  and $~0x100, %rax
  push %rax
  popf
  hlt
`);
      m.setDr(6, DR6_INIT);
      const r = m.run({ wakeHltWithIrq: 1 });
      expect(rel(m, r.events), describeEvents(r.events)).to.deep.equal([
        [1, 0, '0xffff4ff0'], [1, 1, '0xffff4ff0'], [IRQ_VECTOR, 1, '0x0'],
        [1, 7, '0xffff4ff0'], [1, 8, '0xffff4ff0'], [1, 9, '0xffff4ff0'],
      ]);
      expect(r.events[2].rflags & (TF | IF), 'the IRQ interrupted the stepped context').to.equal(TF | IF);
    });

    it('17.3.1, kvm 16: ICEBP (F1) is a trap-like #DB with no DR6 status bit: RIP after it, DR6 = FFFF0FF0', () => {
      const { m, evs } = kvmCase(`
start:
  .byte 0xf1
S:
  hlt
`);
      expect(rel(m, evs)).to.deep.equal([[1, 0, '0xffff0ff0']]);
    });

    const movssSetup = (m: DebugMachine) => {
      m.write64(DATA, 0x10, 0);
      m.setDr(1, DATA).setDr(7, 0x00f0040a);
    };

    it('6.8.3, kvm 17: MOV SS + read watchpoint + ICEBP: the held data-breakpoint #DB and the ICEBP #DB are one #DB after the ICEBP', () => {
      const m = new DebugMachine().load(`
start:
  clc
  mov ${DATA}, %ss
  .byte 0x2e, 0x2e, 0xf1
S:
  hlt
`);
      movssSetup(m);
      const r = m.run();
      expect(r.events.map((e) => [e.vector, e.rip - m.sym('S')]), describeEvents(r.events)).to.deep.equal([[1, 0]]);
    });

    it('6.8.3, kvm 18: MOV SS + read watchpoint + INT $1: the handler runs for INT 1, and the held #DB hits the handler\'s first instruction', () => {
      const m = new DebugMachine().load(`
start:
  clc
  mov ${DATA}, %ss
  int $1
S:
  hlt
`);
      movssSetup(m);
      const r = m.run();
      expect(r.events.map((e) => [e.vector, hex(e.rip)]), describeEvents(r.events)).to.deep.equal([
        [1, hex(m.sym('vec_db'))], [1, hex(m.sym('S'))],
      ]);
    });

    it('6.8.3, kvm 19: MOV SS + read watchpoint + 12-byte INT3: #BP with RIP after the whole instruction, the held #DB on the #BP handler\'s first instruction', () => {
      const m = new DebugMachine().load(`
start:
  mov ${DATA}, %ss
  .byte 0x2e, 0x2e, 0x2e, 0x2e, 0x2e, 0x2e, 0x2e, 0x2e, 0x2e, 0x2e, 0x2e, 0xcc
sw_bp2:
  hlt
`);
      movssSetup(m);
      const r = m.run();
      expect(r.events.map((e) => [e.vector, hex(e.rip)]), describeEvents(r.events)).to.deep.equal([
        [1, hex(m.sym('vec_bp'))], [3, hex(m.sym('sw_bp2'))],
      ]);
    });
  });

  it('6.8.3: a data breakpoint hit by MOV SS is held until after the next instruction (one #DB, B1, RIP after that instruction)', () => {
    const m = new DebugMachine().load(`
start:
  mov ${DATA}, %ss
  nop
S:
  nop
  hlt
`);
    m.write64(DATA, 0x10, 0);
    m.setDr(1, DATA).setDr(7, dr7({ n: 1, rw: 'rw', len: 2 }));
    const r = m.run();
    expect(r.events.map((e) => [hex(e.rip), hex(e.dr6)]), describeEvents(r.events)).to.deep.equal([[hex(m.sym('S')), hex(DR6_INIT | 2)]]);
  });

  it('17.3.1.4: the single-step trap is taken before a pending external interrupt; the interrupt handler is not single-stepped', () => {
    const m = new DebugMachine().load(`
start:
  sti
${SET_TF}
  nop
s2:
  out %al, $0x90
after_out:
  nop
after_nop:
  pushf
  andl $~0x100, (%rsp)
  popf
  cli
  hlt
`);
    m.dbActions(DB_CLEAR_DR6);
    const r = m.run();
    const evs = r.events.map((e) => [e.vector, hex(e.rip)]);
    expect(evs.slice(0, 4), describeEvents(r.events)).to.deep.equal([
      [1, hex(m.sym('s2'))], [1, hex(m.sym('after_out'))], [IRQ_VECTOR, hex(m.sym('after_out'))], [1, hex(m.sym('after_nop'))],
    ]);
    const stubs = [m.sym('vec_de'), m.sym('start')];
    expect(r.events.filter((e) => e.rip >= stubs[0] && e.rip < stubs[1] && e.vector === 1), 'no #DB inside a handler').to.deep.equal([]);
  });

  it('6.12.1.2: INT n clears TF, so the handler of a single-stepped INT n is not stepped', () => {
    const m = new DebugMachine().load(`
start:
${SET_TF}
  int $0x21
after_int:
  pushf
  andl $~0x100, (%rsp)
  popf
  hlt
`);
    m.dbActions(DB_CLEAR_DR6);
    const r = m.run();
    const stubs = [m.sym('vec_de'), m.sym('start')];
    expect(r.events.filter((e) => e.vector === 1 && e.rip >= stubs[0] && e.rip < stubs[1]), describeEvents(r.events)).to.deep.equal([]);
    const int21 = r.events.find((e) => e.vector === 0x21);
    expect(int21 && hex(int21.rip)).to.equal(hex(m.sym('after_int')));
    expect(int21 && int21.rflags & TF, 'the pushed image keeps TF').to.equal(TF);
  });

  it('17.3.1.4: an instruction that faults does not complete, so it has no single-step trap; the handler\'s IRETQ resumes stepping', () => {
    const m = new DebugMachine().load(`
start:
${SET_TF}
bad:
  ud2
resume:
  nop
S:
  pushf
  andl $~0x100, (%rsp)
  popf
  hlt
`);
    m.dbActions(DB_CLEAR_DR6).resumeFaultsAt('resume');
    const r = m.run();
    expect(r.events.slice(0, 2).map((e) => [e.vector, hex(e.rip)]), describeEvents(r.events)).to.deep.equal([
      [6, hex(m.sym('bad'))], [1, hex(m.sym('S'))],
    ]);
  });

  it('17.3.1.4 / 6.12.1.2: #DB delivery clears TF and RF in the handler, IRETQ restores TF from the image', () => {
    const m = new DebugMachine().load(`
start:
${SET_TF}
  nop
S:
  pushf
  pop %rbx
  pushf
  andl $~0x100, (%rsp)
  popf
  hlt
`);
    m.dbActions(DB_CLEAR_DR6);
    const r = m.run();
    expect(hex(r.events[0].rip)).to.equal(hex(m.sym('S')));
    expect(r.events[0].rflags & TF, 'TF in the pushed image').to.equal(TF);
    expect(m.gpr(3).lo & TF, 'TF restored by IRETQ (PUSHF sees it)').to.equal(TF);
    // Every event was a #DB from user code, none from the handler itself (TF cleared on entry).
    expect(r.events.every((e) => e.rip >= m.sym('start'))).to.equal(true);
  });

  it('6.12.1.2: entry through an interrupt gate clears TF, RF, NT (and IF) after pushing RFLAGS: the handler runs with them clear, the image keeps them', () => {
    const m = new DebugMachine().load(`
start:
  pushfq
  orl $${0x4000 | IF}, (%rsp)
  popfq
${SET_TF}
  nop
S:
  pushf
  andl $~${0x4000 | IF | TF}, (%rsp)
  popf
  hlt
`);
    m.dbActions(DB_CLEAR_DR6);
    const r = m.run();
    const e = r.events[0];
    expect([e.vector, hex(e.rip)], describeEvents(r.events)).to.deep.equal([1, hex(m.sym('S'))]);
    expect(hex(e.rflags & (0x4000 | IF | TF | RF)), 'pushed image: NT, IF, TF').to.equal(hex(0x4000 | IF | TF));
    expect(hex(e.handlerFlags & (0x4000 | IF | TF | RF)), 'inside the handler').to.equal('0x0');
  });

  it('17.2.4: the processor clears DR7.GD on entry to the #DB handler for any #DB (ICEBP, single-step, data breakpoint), so the handler can use MOV DR', () => {
    const bodies: Array<[string, (m: DebugMachine) => void]> = [
      ['.byte 0xf1', () => undefined],
      [`${SET_TF}\n  nop`, () => undefined],
      [`mov %eax, ${DATA}`, (m) => m.setDr(0, DATA)],
    ];
    for (const [body, setup] of bodies) {
      const m = new DebugMachine().load(`start:\n  ${body}\nS:\n  hlt\n`);
      setup(m);
      m.setDr(7, 0x400 | 0x2000 | dr7({ n: 0, rw: 'w', len: 4 })).dbActions(DB_CLEAR_TF);
      const r = m.run();
      expect(r.events.map((e) => [e.vector, hex(e.rip), hex(e.dr7 & 0x2000), hex(e.dr6 & 0x2000)]), body).to.deep.equal([[1, hex(m.sym('S')), '0x0', '0x0']]);
    }
  });

  it('17.3.1 / Vol. 2 INT n, INT1: ICEBP vs INT $1: INT $1 is a software interrupt: DR6 keeps its stale B bits, RIP after the 2-byte instruction; ICEBP is a #DB that clears them', () => {
    const m = new DebugMachine().load(`
start:
  int $1
after_int:
  .byte 0xf1
after_icebp:
  hlt
`);
    m.setDr(6, DR6_INIT | 4);
    const r = m.run();
    expect(r.events.map((e) => [e.vector, hex(e.rip), hex(e.dr6)])).to.deep.equal([
      [1, hex(m.sym('after_int')), hex(DR6_INIT | 4)],
      [1, hex(m.sym('after_icebp')), hex(DR6_INIT)],
    ]);
  });

  it('17.3.1.4 native oracle (host CPU single-stepped with ptrace): REP STOSB with RCX=3 stops at the REP after each iteration (RCX 2, 1), then after it', function () {
    this.timeout(20000);
    const steps = nativeSteps('mov $3, %ecx\nrep stosb\nnop');
    // mov is 5 bytes: the REP sits at offset 5 and is 2 bytes long.
    expect(steps).to.deep.equal([[5, 3], [5, 2], [5, 1], [7, 0], [8, 0]]);
  });

  it('17.3.1.4 + 17.3.1.1: single-stepping REP STOSB traps after EACH iteration (RIP stays at the REP, RF=1) and after the last one (RIP next, RF=0), as a real CPU does under ptrace', () => {
    const m = new DebugMachine().load(`
start:
  mov $${DATA}, %edi
  mov $3, %ecx
${SET_TF}
  nop
rep_insn:
  rep stosb
after:
  pushf
  andl $~0x100, (%rsp)
  popf
  hlt
`);
    m.dbActions(DB_CLEAR_DR6);
    const r = m.run();
    expect(r.events.slice(0, 4).map((e) => [hex(e.rip), e.rcx, e.rflags & RF]), describeEvents(r.events)).to.deep.equal([
      [hex(m.sym('rep_insn')), 3, 0], [hex(m.sym('rep_insn')), 2, RF], [hex(m.sym('rep_insn')), 1, RF], [hex(m.sym('after')), 0, 0],
    ]);
  });

  it('17.4.3 BTF: with TF=1 and IA32_DEBUGCTL.BTF=1 the single-step trap comes only after taken branches (JMP, taken Jcc, CALL, RET), not after others', () => {
    const m = new DebugMachine().load(`
start:
${SET_TF}
  nop
  nop
  jmp L1
  nop
L1:
  xor %eax, %eax
  jnz L2
  nop
  jz L3
L2:
  hlt
L3:
  call fn
after_call:
  pushf
  andl $~0x100, (%rsp)
  popf
  hlt
fn:
  ret
`);
    m.phys.setDebugctl(u64(DEBUGCTL_BTF));
    m.dbActions(DB_CLEAR_DR6 | DB_REARM_BTF);
    const r = m.run();
    expect(r.events.map((e) => [hex(e.rip), hex(e.dr6)]), describeEvents(r.events)).to.deep.equal(
      ['L1', 'L3', 'fn', 'after_call'].map((l) => [hex(m.sym(l)), hex(DR6_INIT | DR6_BS)]));
  });

  it('17.4.3: the processor clears BTF when it generates a #DB: after the first branch trap, stepping is per instruction', () => {
    const m = new DebugMachine().load(`
start:
${SET_TF}
  nop
  jmp L1
L1:
  nop
L2:
  nop
L3:
  pushf
  andl $~0x100, (%rsp)
  popf
  hlt
`);
    m.phys.setDebugctl(u64(DEBUGCTL_BTF));
    m.dbActions(DB_CLEAR_DR6);
    const r = m.run();
    expect(r.events.slice(0, 3).map((e) => hex(e.rip)), describeEvents(r.events)).to.deep.equal(
      ['L1', 'L2', 'L3'].map((l) => hex(m.sym(l))));
    expect(m.phys.getDebugctl().lo & DEBUGCTL_BTF).to.equal(0);
  });

  it('17.4.2/17.4.3: a #DB (here a data breakpoint) clears IA32_DEBUGCTL.LBR and BTF', () => {
    const m = new DebugMachine().load(`
start:
  mov %eax, ${DATA}
  hlt
`);
    m.phys.setDebugctl(u64(DEBUGCTL_LBR | DEBUGCTL_BTF));
    m.setDr(0, DATA).setDr(7, dr7({ n: 0, rw: 'w', len: 4 }));
    const r = m.run();
    expect(r.events.length).to.equal(1);
    expect(hex(m.phys.getDebugctl().lo)).to.equal('0x0');
  });

  it('17.3.1.4: an instruction that began with TF=0 does not trap even if it sets TF (IRETQ with TF in the image)', () => {
    const m = new DebugMachine().load(`
start:
  mov %ss, %eax
  push %rax
  lea 0x7e000, %rax
  push %rax
  push $${0x2 | TF}
  push $8
  lea target(%rip), %rax
  push %rax
  iretq
target:
  nop
S:
  pushf
  andl $~0x100, (%rsp)
  popf
  hlt
`);
    m.dbActions(DB_CLEAR_DR6);
    const r = m.run();
    expect(r.events.map((e) => hex(e.rip))[0], describeEvents(r.events)).to.equal(hex(m.sym('S')));
    expect(r.events[0].rflags & RF).to.equal(0);
  });
});
