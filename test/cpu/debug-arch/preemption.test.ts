// A hypervisor may stop the guest at any instruction boundary (host timer, --preempt-every):
// pending debug traps, the MOV-SS/STI shadows, RF and BTF must survive the exit, so a run
// chopped into 1-, 2- and 3-instruction slices logs exactly the same events as one long run
// (SDM 6.8.3, 17.3.1.1, 17.3.1.4; 27.3.4 for what an exit must not lose).
import { expect } from 'chai';
import { u64 } from '../../../vmm/u64';
import { DebugMachine, DebugEvent, DATA, TF, dr7, describeEvents, hex, DB_CLEAR_DR6, DB_SET_RF_IF_B, DEBUGCTL_BTF } from './harness';

const SET_TF = `
  pushf
  pop %rax
  or $0x100, %rax
  push %rax
  popf
`;

interface Scenario {
  name: string;
  body: string;
  setup?: (m: DebugMachine) => void;
}

const scenarios: Scenario[] = [
  { name: 'kvm 7 single-step', body: `${SET_TF}\n  and $~0x100, %rax\n  push %rax\n  popf\n  hlt` },
  { name: 'kvm 9 STI shadow', body: `  cli\n${SET_TF}\n  sti\n  and $~0x100, %rax\n  push %rax\n  popf\n  hlt` },
  {
    name: 'kvm 10 MOV SS shadow',
    body: '  pushf\n  pop %rax\n  or $0x100, %rax\n  push %rax\n  mov %ss, %ax\n  popf\n  mov %ax, %ss\n  and $~0x100, %rax\n  push %rax\n  popf\n  hlt',
  },
  {
    name: 'kvm 11 MOV SS + ICEBP',
    body: '  pushf\n  pop %rax\n  or $0x100, %rax\n  push %rax\n  mov %ss, %ax\n  popf\n  mov %ax, %ss\n  .byte 0xf1\n  .byte 0xf1\n  and $~0x100, %rax\n  push %rax\n  popf\n  hlt',
  },
  {
    name: 'kvm 17 MOV SS + watchpoint + ICEBP',
    body: `  mov ${DATA}, %ss\n  .byte 0x2e, 0x2e, 0xf1\n  hlt`,
    setup: (m) => { m.write64(DATA, 0x10, 0); m.setDr(1, DATA).setDr(7, 0x00f0040a); },
  },
  {
    name: 'MOV SS + watchpoint + NOP',
    body: `  mov ${DATA}, %ss\n  nop\n  nop\n  hlt`,
    setup: (m) => { m.write64(DATA, 0x10, 0); m.setDr(1, DATA).setDr(7, dr7({ n: 1, rw: 'rw', len: 2 })); },
  },
  {
    name: 'code breakpoint, handler sets RF',
    body: '  nop\nbp:\n  nop\n  nop\n  hlt',
    setup: (m) => { m.setDr(0, m.sym('bp')).setDr(7, dr7({ n: 0, rw: 'x', len: 1 })).dbActions(DB_SET_RF_IF_B | DB_CLEAR_DR6); },
  },
  {
    name: 'REP STOSB with a data breakpoint and TF',
    body: `  mov $${DATA}, %edi\n  mov $6, %ecx\n${SET_TF}\n  rep stosb\n  pushf\n  andl $~${TF}, (%rsp)\n  popf\n  hlt`,
    setup: (m) => { m.setDr(2, DATA + 3).setDr(7, dr7({ n: 2, rw: 'w', len: 1 })).dbActions(DB_CLEAR_DR6); },
  },
  {
    name: 'BTF branch stepping',
    body: `${SET_TF}\n  nop\n  jmp 1f\n  nop\n1:\n  xor %ecx, %ecx\n  jz 2f\n  nop\n2:\n  pushf\n  andl $~${TF}, (%rsp)\n  popf\n  hlt`,
    setup: (m) => { m.phys.setDebugctl(u64(DEBUGCTL_BTF)); },
  },
];

function events(sc: Scenario, slice: number): { evs: DebugEvent[]; rax: number; dr6: number } {
  const m = new DebugMachine().load(`start:\n${sc.body}\n`);
  sc.setup?.(m);
  let r = m.run({ budget: slice, stopOn: ['budget'] });
  for (let i = 0; i < 5000 && r.stop.kind === 'budget'; i++) r = m.run({ budget: slice, stopOn: ['budget'] });
  expect(r.stop.kind, `${sc.name} slice ${slice}: ${describeEvents(r.events)}`).to.equal('hlt');
  return { evs: r.events, rax: m.gpr(0).lo, dr6: m.dr(6) };
}

describe('debug architecture across preemption exits at every instruction boundary (SDM 6.8.3, 17.3.1, 27.3.4)', function () {
  for (const sc of scenarios) {
    it(`6.8.3/17.3.1: ${sc.name}: the same events with runs of 1, 2 and 3 instructions as with one long run`, () => {
      const whole = events(sc, 100000);
      expect(whole.evs.length, `${sc.name} must raise events`).to.be.greaterThan(0);
      for (const slice of [1, 2, 3]) {
        const part = events(sc, slice);
        expect(part.evs.map((e) => [e.vector, hex(e.rip), hex(e.dr6), hex(e.rflags)]), `slice ${slice}`).to.deep.equal(
          whole.evs.map((e) => [e.vector, hex(e.rip), hex(e.dr6), hex(e.rflags)]));
        expect([part.rax, hex(part.dr6)]).to.deep.equal([whole.rax, hex(whole.dr6)]);
      }
    });
  }
});
