import { expect } from 'chai';
import fc from 'fast-check';
import { HostScenario } from '../../vmm/api/vm-options';
import { normalizeDr7 } from '../../vmm/x86/debug-regs';
import { FakeOp } from './fake-cpu';
import { fakeVm, ioExit, u } from './helpers';

type Action =
  | { a: 'guest-dr'; dr: 0 | 1 | 2 | 3 | 6 | 7; lo: number; hi: number }
  | { a: 'client-dr'; dr: 0 | 1 | 2 | 3 | 6 | 7; lo: number; hi: number }
  | { a: 'host-dr'; dr: 0 | 1 | 2 | 3 | 7; lo: number }
  | { a: 'exit'; kind: 'cpuid' | 'io' | 'nop' }
  | { a: 'debugger'; on: boolean; addr: number };

const drIndex = fc.constantFrom<0 | 1 | 2 | 3 | 6 | 7>(0, 1, 2, 3, 6, 7);
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const action: fc.Arbitrary<Action> = fc.oneof(
  fc.record({ a: fc.constant('guest-dr' as const), dr: drIndex, lo: u32, hi: u32 }),
  fc.record({ a: fc.constant('client-dr' as const), dr: drIndex, lo: u32, hi: u32 }),
  fc.record({ a: fc.constant('host-dr' as const), dr: fc.constantFrom<0 | 1 | 2 | 3 | 7>(0, 1, 2, 3, 7), lo: u32 }),
  fc.record({ a: fc.constant('exit' as const), kind: fc.constantFrom<'cpuid' | 'io' | 'nop'>('cpuid', 'io', 'nop') }),
  fc.record({ a: fc.constant('debugger' as const), on: fc.boolean(), addr: fc.integer({ min: 0, max: 0xffff }).map((x) => x * 8) }),
);

/** The value the guest reads back after writing `lo:hi` to DRn (DR6/DR7 are 32-bit). */
function architectural(dr: number, lo: number, hi: number): { lo: number; hi: number } {
  if (dr === 7) return u(normalizeDr7(lo & ~0x2000)); // GD faults the next MOV DR: tested on its own
  if (dr === 6) return u(lo | 0xffff0ff0);
  return u(lo, hi);
}

function runScenario(backend: 'vmx' | 'svm', hostScenario: HostScenario, preemptEvery: number, actions: Action[]): void {
  const { vm, cpus } = fakeVm({ backend, hostScenario, preemptEvery });
  const cpu = cpus[0];
  cpu.idleCpuid = false;
  const expected = new Map<number, { lo: number; hi: number }>([[0, u(0)], [1, u(0)], [2, u(0)], [3, u(0)], [6, u(0xffff0ff0)], [7, u(0x400)]]);
  for (const act of actions) {
    switch (act.a) {
      case 'guest-dr': {
        const v = architectural(act.dr, act.lo, act.hi);
        cpu.script.push({ op: 'mov-to-dr', dr: act.dr, value: v });
        expected.set(act.dr, v);
        break;
      }
      case 'client-dr': {
        const v = architectural(act.dr, act.lo, act.hi);
        vm.setRegister(0, `dr${act.dr}` as 'dr0', v);
        expected.set(act.dr, v);
        break;
      }
      case 'host-dr':
        // The host kernel changes its own registers while the vCPU is out of the guest.
        vm.host.write(act.dr, act.dr === 7 ? (act.lo & ~0x2000) | 0x400 : act.lo, act.dr === 7 ? 0 : 0xffffffff);
        break;
      case 'exit': {
        const op: FakeOp = act.kind === 'cpuid' ? { op: 'exit', exit: { kind: 'cpuid', length: 2 } } : act.kind === 'io' ? ioExit : { op: 'nop' };
        cpu.script.push(op);
        break;
      }
      case 'debugger':
        vm.setDebuggerSlots(0, [act.on ? { address: u(act.addr), type: 'write', len: 8 } : null]);
        break;
    }
    vm.run([0], 1 + cpu.script.length * 2);
  }
  vm.setDebuggerSlots(0, [null]);
  const reads: FakeOp[] = [0, 1, 2, 3, 6, 7].map((dr) => ({ op: 'mov-from-dr', dr, gpr: (8 + [0, 1, 2, 3, 6, 7].indexOf(dr)) as 8 }));
  cpu.script.push({ op: 'exit', exit: { kind: 'cpuid', length: 2 } }, ...reads);
  vm.run([0], 20);
  expect(vm.leaks()).to.deep.equal([]);
  [0, 1, 2, 3, 6, 7].forEach((dr, k) => {
    expect(cpu.gpr[8 + k], `dr${dr}`).to.deep.equal(expected.get(dr));
    expect(vm.getRegister(0, `dr${dr}` as 'dr0'), `view dr${dr}`).to.deep.equal(expected.get(dr));
  });
}

describe('property: the full switch never leaks (random guest DR writes, host DR changes, exits)', () => {
  for (const backend of ['vmx', 'svm'] as const) {
    it(`${backend}: no leak and the guest reads back its own values`, () => {
      const scenarios: HostScenario[] = backend === 'svm' ? ['idle', 'host-watch', 'kdb-step', 'kdb-determined'] : ['idle', 'host-watch', 'kdb-step'];
      fc.assert(fc.property(
        fc.constantFrom(...scenarios), fc.constantFrom(0, 1, 3), fc.array(action, { minLength: 1, maxLength: 40 }),
        (scenario, preempt, actions) => runScenario(backend, scenario, preempt, actions),
      ), { numRuns: 150 });
    });
  }

  it('the same sequences do leak under none (the property has teeth)', () => {
    let leaky = 0;
    fc.assert(fc.property(fc.constantFrom<'vmx' | 'svm'>('vmx', 'svm'), fc.array(action, { minLength: 5, maxLength: 30 }), (backend, actions) => {
      const { vm, cpus } = fakeVm({ backend, drSwitch: 'none', hostScenario: 'host-watch' });
      cpus[0].idleCpuid = false;
      cpus[0].script.push({ op: 'mov-to-dr', dr: 0, value: u(0x1234) }, { op: 'exit', exit: { kind: 'cpuid', length: 2 } });
      for (const act of actions) if (act.a === 'exit') cpus[0].script.push(ioExit);
      vm.run([0], 200);
      if (vm.leaks().length > 0) leaky++;
    }), { numRuns: 30 });
    expect(leaky).to.equal(30);
  });
});

describe('property: #DB routing between the guest and the debugger (at most four slots in all)', () => {
  for (const backend of ['vmx', 'svm'] as const) {
    it(`${backend}: each hit reaches its owner, with the owner's slot numbering`, () => {
      fc.assert(fc.property(
        fc.subarray([0, 1, 2, 3]), fc.subarray([0, 1, 2, 3]), fc.array(fc.integer({ min: 0, max: 7 }), { minLength: 1, maxLength: 12 }),
        fc.boolean(),
        (guestSlots, dbgSlotsAll, storeIdx, debuggerFirst) => {
          const dbgSlots = dbgSlotsAll.slice(0, 4 - guestSlots.length);
          const guestAddr = (i: number): number => 0x10000 + i * 0x100;
          const dbgAddr = (j: number): number => 0x20000 + j * 0x100;
          const { vm, cpus } = fakeVm({ backend });
          const cpu = cpus[0];
          cpu.idleCpuid = false;
          const setDebugger = (): void => vm.setDebuggerSlots(0, [0, 1, 2, 3].map((j) => (dbgSlots.includes(j) ? { address: u(dbgAddr(j)), type: 'write' as const, len: 8 as const } : null)));
          if (debuggerFirst) setDebugger();
          let dr7 = 0x400;
          for (const i of guestSlots) {
            cpu.script.push({ op: 'mov-to-dr', dr: i, value: u(guestAddr(i)) });
            dr7 |= (1 << (2 * i)) | (0x9 << (16 + 4 * i));
          }
          cpu.script.push({ op: 'mov-to-dr', dr: 7, value: u(dr7 >>> 0) });
          vm.run([0], cpu.script.length + 2);
          if (!debuggerFirst) setDebugger();
          for (const k of storeIdx) {
            const isGuest = k < 4;
            const slot = k % 4;
            const addr = isGuest ? guestAddr(slot) : dbgAddr(slot);
            const before = cpu.guestDbs.length;
            cpu.script.push({ op: 'store', address: addr, len: 8 });
            const stop = vm.run([0], 3);
            if (isGuest && guestSlots.includes(slot)) {
              expect(stop.kind).to.equal('slice');
              expect(cpu.guestDbs.length).to.equal(before + 1);
              expect(vm.getRegister(0, 'dr6').lo & 0xf).to.equal(1 << slot);
            } else if (!isGuest && dbgSlots.includes(slot)) {
              expect(stop).to.deep.equal({ kind: 'debug', vcpu: 0, slotsHit: 1 << slot, step: false });
              expect(cpu.guestDbs.length).to.equal(before);
            } else {
              expect(stop.kind).to.equal('slice');
              expect(cpu.guestDbs.length).to.equal(before);
            }
          }
          expect(vm.getRegister(0, 'dr7').lo).to.equal(dr7 >>> 0);
          expect(vm.leaks()).to.deep.equal([]);
        }), { numRuns: 120 });
    });
  }
});
