/** How a cell's gdb transcript or guest output becomes its observation. */
import { expect } from 'chai';
import { observeGdbRun, observeGuestRun, observeStatsRun } from '../../verify/gdb-cell-runner';

const finished = (status: number | null, stdout: string, stderr = '', timedOut = false) =>
  ({ status, signal: null, stdout, stderr, timedOut });

const line = (o: object) => `VMMCHECK ${JSON.stringify(o)}`;

describe('verify cell observations', function () {
  it('the first failed check of a gdb run is the observation', function () {
    const stdout = [
      'Hardware watchpoint 1: counter',
      line({ check: 'continue', name: 'first-hit', pass: true, kind: null, message: 'ok' }),
      line({ check: 'hits', name: 'hits-across-exits', pass: false, kind: 'missed-hits', message: 'hit 2 of 8: saw exit' }),
    ].join('\n');
    const o = observeGdbRun(finished(1, stdout), 1.5);
    expect(o).to.deep.equal({ pass: false, failure: 'missed-hits', check: 'hits-across-exits', detail: 'hit 2 of 8: saw exit', seconds: 1.5 });
  });

  it('a gdb run passes only with a passing summary and status 0', function () {
    const summary = line({ check: 'summary', name: 'summary', pass: true, kind: null, total: 3, failed: [] });
    expect(observeGdbRun(finished(0, summary), 1).pass).to.equal(true);
    expect(observeGdbRun(finished(1, summary), 1).pass).to.equal(false);
  });

  it('a script that stopped early (serve died) is a script-error naming what gdb said', function () {
    const o = observeGdbRun(finished(1, line({ check: 'continue', name: 'a', pass: true, kind: null }),
      'vmm-gdbstub: guests/x.elf: not an ELF file\nRemote connection closed\n'), 1);
    expect(o.failure).to.equal('script-error');
    expect(o.detail).to.contain('Remote connection closed');
  });

  it('guest runs: PASS lines and status 0 pass; a FAIL line names the check', function () {
    expect(observeGuestRun(finished(0, 'PASS a\nPASS b\n'), 1).pass).to.equal(true);
    expect(observeGuestRun(finished(0, 'no checks\n'), 1).pass).to.equal(false);
    const o = observeGuestRun(finished(1, 'PASS a\nFAIL write8: expected 1 #DB got 0\nPASS c\n'), 1);
    expect(o.failure).to.equal('guest-checks-failed');
    expect(o.check).to.equal('write8');
    expect(o.detail).to.equal('1 of 3 guest checks failed, exit status 1: FAIL write8: expected 1 #DB got 0');
    const vm = observeGuestRun(finished(130, '', 'vmm-gdbstub: triple fault at 0x1000\n'), 1);
    expect(vm.failure).to.equal('vm-error');
    expect(vm.detail).to.contain('triple fault');
  });
});

describe('verify stats runs (run --json)', function () {
  const run = { kind: 'stats' as const, guest: 'counter.elf', args: [], noLeaks: true, hostWatchFires: true };
  const ok = finished(0, '');
  it('passes with no leaks, host watchpoint hits and exit status 0', function () {
    const o = observeStatsRun(run, ok, JSON.stringify({ exitStatus: 0, hostWatchHits: 12, leaksDetected: 0, leaks: [] }), 1);
    expect(o).to.deep.include({ pass: true, detail: 'no leaks, 12 host watchpoint hits' });
  });
  it('a leak is reported with the first leak in the detail', function () {
    const o = observeStatsRun(run, ok, JSON.stringify({ exitStatus: 0, hostWatchHits: 3, leaksDetected: 2, leaks: [
      { transition: 4, vcpu: 0, when: 'exit', register: 'dr7', expected: '0x400', actual: '0x90401', side: 'guest' }] }), 1);
    expect(o.failure).to.equal('leak');
    expect(o.detail).to.equal('2 debug-state leak(s), first: transition 4 vCPU 0 at exit: dr7 expected 0x400 actual 0x90401 (guest value leaked)');
  });
  it('host watchpoints that never fired are reported; a missing report is not a pass', function () {
    expect(observeStatsRun(run, ok, JSON.stringify({ exitStatus: 0, hostWatchHits: 0, leaksDetected: 0 }), 1).failure)
      .to.equal('host-watch-disturbed');
    const none = observeStatsRun(run, finished(129, '', 'vmm-gdbstub: guests/counter.elf: not an ELF\n'), undefined, 1);
    expect(none.failure).to.equal('vm-error');
    expect(none.detail).to.contain('not an ELF');
  });
});
