import { expect } from 'chai';
import { PhysicalCpu } from '../../vmm/cpu/physical-cpu';
import { DR_SWITCH_MODES } from '../../vmm/api/vm-options';
import { DrSwitchRegs, StepProgram, enterSteps, leaveSteps, runSteps } from '../../vmm/hypervisor/dr-switch';

const names = (s: { name: string }[]): string[] => s.map((x) => x.name);

describe('DR switch as ordered steps (bhyve vmx_dr_enter_guest / leave_guest)', () => {
  it('VT-x enter: save DR7/DEBUGCTL, zero them, save+clear TF, save host DR0-3/DR6, load guest DR0-3, guest DR6 last', () => {
    expect(names(enterSteps('vmx', 'full'))).to.deep.equal([
      'save-host-dr7', 'save-host-debugctl', 'zero-dr7', 'zero-debugctl', 'save-host-tf', 'clear-host-tf',
      'save-host-dr0', 'save-host-dr1', 'save-host-dr2', 'save-host-dr3', 'save-host-dr6',
      'load-guest-dr0', 'load-guest-dr1', 'load-guest-dr2', 'load-guest-dr3', 'load-guest-dr6',
      'pmap-activate', 'run-trace']);
  });

  it('VT-x leave: save guest DR0-3/DR6, restore host DR0-3/DR6, then DEBUGCTL, DR7 and TF last', () => {
    expect(names(leaveSteps('vmx', 'full'))).to.deep.equal([
      'pmap-deactivate', 'save-guest-dr0', 'save-guest-dr1', 'save-guest-dr2', 'save-guest-dr3', 'save-guest-dr6',
      'restore-host-dr0', 'restore-host-dr1', 'restore-host-dr2', 'restore-host-dr3', 'restore-host-dr6',
      'restore-host-debugctl', 'restore-host-dr7', 'restore-host-tf']);
  });

  it('SVM: no TF guard and no guest DR6 steps (DR6 is in the VMCB)', () => {
    const e = names(enterSteps('svm', 'full'));
    expect(e).to.not.include('clear-host-tf');
    expect(e).to.not.include('load-guest-dr6');
    expect(e.indexOf('zero-dr7')).to.be.lessThan(e.indexOf('load-guest-dr0'));
    expect(names(leaveSteps('svm', 'full')).slice(-2)).to.deep.equal(['restore-host-debugctl', 'restore-host-dr7']);
  });

  it('none leaves only the host path; each no-* mode removes exactly its part', () => {
    expect(names(enterSteps('vmx', 'none'))).to.deep.equal(['pmap-activate', 'run-trace']);
    expect(names(leaveSteps('svm', 'none'))).to.deep.equal(['pmap-deactivate']);
    const full = names(enterSteps('vmx', 'full'));
    const removed = (mode: (typeof DR_SWITCH_MODES)[number]): string[] => full.filter((n) => !names(enterSteps('vmx', mode)).includes(n));
    expect(removed('no-guest-dr0-3')).to.deep.equal(['load-guest-dr0', 'load-guest-dr1', 'load-guest-dr2', 'load-guest-dr3']);
    expect(removed('no-guest-dr6')).to.deep.equal(['load-guest-dr6']);
    expect(removed('no-tf-guard')).to.deep.equal(['save-host-tf', 'clear-host-tf']);
    expect(removed('no-host-dr7-debugctl')).to.deep.equal(['save-host-dr7', 'save-host-debugctl', 'zero-dr7', 'zero-debugctl']);
    expect(removed('no-svm-dirty')).to.deep.equal([]);
  });

  it('executes on the physical CPU: DR7 is 0 before any guest DR0-3 is loaded, and the observer sees every step', () => {
    const phys = new PhysicalCpu();
    phys.setDr(7, { lo: 0x4ff, hi: 0 });
    phys.setDr(0, { lo: 0x1111, hi: 0 });
    phys.hostTF = true;
    const regs = new DrSwitchRegs();
    regs.guestLo[0] = 0x2222;
    const seen: string[] = [];
    runSteps(enterSteps('vmx', 'full'), phys, regs, {
      afterStep: (s) => {
        seen.push(s.name);
        if (s.name.startsWith('load-guest')) expect(phys.drLo[7]).to.equal(0);
        if (s.name === 'load-guest-dr6') expect(phys.hostTF).to.equal(false);
      },
    });
    expect(seen.length).to.equal(enterSteps('vmx', 'full').length);
    expect(phys.drLo[0]).to.equal(0x2222);
    expect(regs.hostLo[0]).to.equal(0x1111);
    expect(regs.hostTF).to.equal(true);
    phys.setDr(0, { lo: 0x3333, hi: 0 }); // the guest's own write
    runSteps(leaveSteps('vmx', 'full'), phys, regs, null);
    expect(regs.guestLo[0]).to.equal(0x3333);
    expect(phys.drLo[0]).to.equal(0x1111);
    expect(phys.drLo[7]).to.equal(0x4ff);
    expect(phys.hostTF).to.equal(true);
  });
});

describe('StepProgram (the no-observer executor) does exactly what the steps do', () => {
  it('same physical and software state as running the steps one by one, for every backend and mode', () => {
    const fill = (p: PhysicalCpu, r: DrSwitchRegs, seed: number): void => {
      for (let n = 0; n < 8; n++) {
        p.drLo[n] = (seed * (n + 3) * 2654435761) >>> 0; p.drHi[n] = (seed * (n + 7)) >>> 0;
        r.guestLo[n] = (seed * (n + 11) * 40503) >>> 0; r.guestHi[n] = n;
        r.hostLo[n] = (seed ^ (n * 977)) >>> 0; r.hostHi[n] = 0;
      }
      p.debugctlLo = seed & 0xff; p.hostTF = (seed & 1) === 1; r.hostTF = (seed & 2) === 2; r.hostDebugctlLo = seed & 3;
    };
    for (const backend of ['vmx', 'svm'] as const) {
      for (const mode of DR_SWITCH_MODES) {
        for (const steps of [enterSteps(backend, mode), leaveSteps(backend, mode)]) {
          for (const seed of [1, 7, 12345]) {
            const a = new PhysicalCpu(); const ra = new DrSwitchRegs(); fill(a, ra, seed);
            const b = new PhysicalCpu(); const rb = new DrSwitchRegs(); fill(b, rb, seed);
            runSteps(steps, a, ra, null);
            new StepProgram(steps).run(b, rb);
            expect([...b.drLo, ...b.drHi, b.debugctlLo, b.hostTF]).to.deep.equal([...a.drLo, ...a.drHi, a.debugctlLo, a.hostTF]);
            expect([...rb.guestLo, ...rb.hostLo, ...rb.hostHi, rb.hostTF, rb.hostDebugctlLo]).to.deep.equal([...ra.guestLo, ...ra.hostLo, ...ra.hostHi, ra.hostTF, ra.hostDebugctlLo]);
          }
        }
      }
    }
  });
});
