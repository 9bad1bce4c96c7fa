/** difftest --against kvm: our CPU vs the host's, by console output and by lockstep single-steps. */
import { expect } from 'chai';
import { compareConsoles, compareSteps } from '../../cli/difftest-kvm';
import { guestPath, requireKvm } from './kvm-env';

describe('kvm backend: difftest --against kvm', function () {
  before(function () { requireKvm(this); });

  for (const g of ['counter', 'workload-O2', 'cpuid-loop', 'stepper']) {
    it(`${g}: the same console output and end on our CPU and on kvm`, () => {
      const r = compareConsoles(guestPath(g));
      expect(r.same, r.report).to.equal(true);
    });
  }

  it('workload-O2: 2000 lockstep single-steps, every register equal after each', () => {
    const r = compareSteps(guestPath('workload-O2'), 2000);
    expect(r.mismatches, JSON.stringify(r.mismatches.slice(0, 5))).to.deep.equal([]);
    expect(r.steps).to.equal(2000);
  });

  it('stepper: OUT, CPUID, HLT and the timer interrupt stepped in lockstep (the mismatches are reported)', () => {
    const r = compareSteps(guestPath('stepper'), 400);
    console.log(`      [kvm] stepper: ${r.steps} steps, ${r.mismatches.length} mismatch(es)${r.mismatches.length ? `: first ${JSON.stringify(r.mismatches[0])}` : ''}; ${r.ended}`);
    expect(r.steps).to.be.greaterThan(10);
  });

  it('selfwatch: reports the guest\'s own checks that differ (this host\'s data breakpoints)', () => {
    const r = compareConsoles(guestPath('selfwatch'));
    console.log(`      [kvm] selfwatch: ${r.same ? 'same' : r.report.trim().split('\n').length - 1 + ' differing lines'}`);
    if (!r.same) expect(r.report).to.match(/line \d+: ours "PASS [^"]+", kvm "FAIL/);
  });
});
