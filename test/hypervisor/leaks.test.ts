import { expect } from 'chai';
import { BackendName } from '../../vmm/api/vm-api';
import { HOST_SCENARIOS, HostScenario } from '../../vmm/api/vm-options';
import { FakeOp } from './fake-cpu';
import { cpuidExits, fakeVm, guestWatch, ioExit, u } from './helpers';

const BACKENDS: BackendName[] = ['vmx', 'svm'];

/** A guest that arms a watchpoint, goes through exits of every handled kind, and stores to it. */
function workload(): FakeOp[] {
  const ops: FakeOp[] = [...guestWatch(0x2000), { op: 'mov-to-dr', dr: 1, value: u(0x3000) }];
  for (let i = 0; i < 5; i++) ops.push(...cpuidExits(2), ioExit, { op: 'nop' }, { op: 'store', address: 0x2000, len: 8 });
  ops.push({ op: 'mov-from-dr', dr: 7, gpr: 8 }, { op: 'mov-from-dr', dr: 0, gpr: 9 }, { op: 'mov-from-dr', dr: 1, gpr: 10 });
  return ops;
}

describe('leak detector: full switch, every backend and host scenario', () => {
  for (const backend of BACKENDS) {
    for (const scenario of HOST_SCENARIOS) {
      it(`${backend} / ${scenario}: no leak, guest watchpoints keep firing and read back intact`, () => {
        const { vm, cpus } = fakeVm({ backend, hostScenario: scenario, preemptEvery: 3 }, workload());
        vm.run([0], 200);
        const leaks = vm.leaks();
        if (backend === 'vmx' && scenario === 'kdb-determined') {
          // The commit message's documented limitation: a breakpoint after the guest DR6 load,
          // then single steps, still corrupts the guest DR6.
          expect(leaks.length).to.be.greaterThan(0);
          expect(leaks.every((l) => l.register === 'dr6' && l.when === 'entry')).to.equal(true);
          return;
        }
        expect(leaks).to.deep.equal([]);
        expect(cpus[0].guestDbs.length).to.equal(5);
        expect(cpus[0].gpr[8].lo).to.equal(0x400 | 1 | (0x9 << 16));
        expect(cpus[0].gpr[9].lo).to.equal(0x2000);
        expect(cpus[0].gpr[10].lo).to.equal(0x3000);
        expect(vm.stats().leaks).to.equal(0);
        expect(vm.stats().transitions).to.be.greaterThan(20);
      });
    }
  }
});

describe('leak detector: the pre-fix behaviour and each part left out', () => {
  it('none on VT-x: guest watchpoints stop firing after the first VM exit (DR7 = 400H), leaks reported', () => {
    const { vm, cpus } = fakeVm({ backend: 'vmx', drSwitch: 'none' }, [
      ...guestWatch(0x2000), { op: 'store', address: 0x2000, len: 8 }, ...cpuidExits(1),
      { op: 'store', address: 0x2000, len: 8 }, { op: 'mov-from-dr', dr: 7, gpr: 8 }]);
    vm.run([0], 50);
    expect(cpus[0].guestDbs.length).to.equal(1);
    expect(cpus[0].gpr[8].lo).to.equal(0x400);
    expect(vm.leaks().some((l) => l.register === 'dr7' && l.when === 'entry' && l.side === 'host')).to.equal(true);
  });

  it('none on SVM with host-watch: the guest DR0-3 take the host thread values', () => {
    const { vm, cpus } = fakeVm({ backend: 'svm', drSwitch: 'none', hostScenario: 'host-watch' }, [
      ...guestWatch(0x2000), ioExit, { op: 'store', address: 0x2000, len: 8 }, { op: 'mov-from-dr', dr: 0, gpr: 8 }]);
    vm.run([0], 50);
    expect(cpus[0].gpr[8]).to.deep.equal(u(0x81200000, 0xffffffff));
    expect(cpus[0].guestDbs.length).to.equal(0);
    expect(vm.leaks().some((l) => l.register === 'dr0' && l.when === 'entry')).to.equal(true);
    expect(vm.leaks().some((l) => l.register === 'dr0' && l.when === 'exit' && l.side === 'guest')).to.equal(true);
  });

  it('none: the guest DR0-3 leak into the host (exit side)', () => {
    for (const backend of BACKENDS) {
      const { vm } = fakeVm({ backend, drSwitch: 'none' }, [...guestWatch(0x2000), ...cpuidExits(1)]);
      vm.run([0], 20);
      expect(vm.leaks().some((l) => l.register === 'dr0' && l.when === 'exit' && l.side === 'guest' && l.actual === '0x2000')).to.equal(true);
    }
  });

  it('no-guest-dr0-3: host DR0-3 values are what the guest runs with', () => {
    for (const backend of BACKENDS) {
      const { vm, cpus } = fakeVm({ backend, drSwitch: 'no-guest-dr0-3' }, [...guestWatch(0x2000), ...cpuidExits(1), { op: 'mov-from-dr', dr: 0, gpr: 8 }]);
      vm.run([0], 20);
      expect(cpus[0].gpr[8]).to.deep.equal(u(0x80a01000, 0xffffffff));
      const regs = new Set(vm.leaks().filter((l) => l.when === 'entry').map((l) => l.register));
      expect([...regs]).to.include('dr0');
      expect(vm.leaks().every((l) => ['dr0', 'dr1', 'dr2', 'dr3'].includes(l.register))).to.equal(true);
    }
  });

  it('no-guest-dr6 on VT-x: the guest DR6 is the host DR6', () => {
    const { vm } = fakeVm({ backend: 'vmx', drSwitch: 'no-guest-dr6' }, [
      { op: 'mov-to-dr', dr: 6, value: u(0xffff0ff1) }, ...cpuidExits(1)]);
    vm.run([0], 20);
    expect(vm.leaks().some((l) => l.register === 'dr6' && l.when === 'entry' && l.expected === '0xffff0ff1')).to.equal(true);
    expect(vm.leaks().every((l) => l.register === 'dr6')).to.equal(true);
  });

  it('no-host-dr7-debugctl: the host watchpoints are disturbed, host DR7 leaks on return', () => {
    for (const backend of BACKENDS) {
      const full = fakeVm({ backend, hostScenario: 'host-watch' }, cpuidExits(10));
      full.vm.run([0], 20);
      const cut = fakeVm({ backend, drSwitch: 'no-host-dr7-debugctl', hostScenario: 'host-watch' }, cpuidExits(10));
      cut.vm.run([0], 20);
      expect(full.vm.stats().hostWatchHits).to.be.greaterThan(cut.vm.stats().hostWatchHits);
      expect(cut.vm.leaks().some((l) => l.register === 'dr7' && l.when === 'exit')).to.equal(true);
    }
  });

  it('the VT-x DR6 race: kdb-step corrupts the guest DR6 without the TF guard, not with it', () => {
    const run = (mode: 'full' | 'no-tf-guard'): { leaks: number; dr6: number } => {
      const { vm, cpus } = fakeVm({ backend: 'vmx', drSwitch: mode, hostScenario: 'kdb-step' }, [
        ...cpuidExits(3), { op: 'mov-from-dr', dr: 6, gpr: 8 }]);
      vm.run([0], 20);
      return { leaks: vm.leaks().filter((l) => l.register === 'dr6' && l.when === 'entry').length, dr6: cpus[0].gpr[8].lo };
    };
    const guarded = run('full');
    expect(guarded.leaks).to.equal(0);
    expect(guarded.dr6).to.equal(0xffff0ff0);
    const unguarded = run('no-tf-guard');
    expect(unguarded.leaks).to.be.greaterThan(0);
    expect(unguarded.dr6 & 0x4000).to.equal(0x4000);
  });

  it('SVM has no DR6 race: kdb-step and kdb-determined leave the guest DR6 intact', () => {
    for (const scenario of ['kdb-step', 'kdb-determined'] as HostScenario[]) {
      const { vm, cpus } = fakeVm({ backend: 'svm', hostScenario: scenario }, [...cpuidExits(3), { op: 'mov-from-dr', dr: 6, gpr: 8 }]);
      vm.run([0], 20);
      expect(vm.leaks()).to.deep.equal([]);
      expect(cpus[0].gpr[8].lo).to.equal(0xffff0ff0);
    }
  });

  it('SVM without dirty marking: a guest DR7 written through the register interface does not take effect', () => {
    const run = (mode: 'full' | 'no-svm-dirty'): { hits: number; leaks: number } => {
      const { vm, cpus } = fakeVm({ backend: 'svm', drSwitch: mode }, [...cpuidExits(1)]);
      vm.run([0], 3);
      vm.setRegister(0, 'dr0', u(0x2000));
      vm.setRegister(0, 'dr7', u(0x400 | 1 | (0x9 << 16)));
      cpus[0].script.push({ op: 'store', address: 0x2000, len: 8 }, ...cpuidExits(1));
      vm.run([0], 10);
      return { hits: cpus[0].guestDbs.length, leaks: vm.leaks().filter((l) => l.register === 'dr7').length };
    };
    expect(run('full')).to.deep.equal({ hits: 1, leaks: 0 });
    const stale = run('no-svm-dirty');
    expect(stale.hits).to.equal(0);
    expect(stale.leaks).to.be.greaterThan(0);
  });

  it('host-watch: host watchpoints fire on every exit handler under full, fewer under none', () => {
    for (const backend of BACKENDS) {
      const full = fakeVm({ backend, hostScenario: 'host-watch' }, [...guestWatch(0x2000), ...cpuidExits(20)]);
      full.vm.run([0], 30);
      const exits = Object.values(full.vm.stats().exits).reduce((a, b) => a + b, 0);
      expect(full.vm.stats().hostWatchHits).to.equal(2 * exits); // exit counter + last-exit field
      const none = fakeVm({ backend, drSwitch: 'none', hostScenario: 'host-watch' }, [...guestWatch(0x2000), ...cpuidExits(20)]);
      none.vm.run([0], 30);
      expect(none.vm.stats().hostWatchHits).to.be.lessThan(2 * exits);
    }
  });

  it('kdb-step under none on VT-x: the VM exit drops the host debugger\'s TF (RFLAGS = 2)', () => {
    const { vm } = fakeVm({ backend: 'vmx', drSwitch: 'none', hostScenario: 'kdb-step' }, cpuidExits(2));
    vm.run([0], 5);
    expect(vm.leaks().some((l) => l.register === 'tf' && l.when === 'exit')).to.equal(true);
  });
});
