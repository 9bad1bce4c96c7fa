/**
 * The kut-debug scenario's machinery: kvm-unit-tests reports, the folder lookup, cells that
 * are n/a (with one line why) when debug.flat is missing, and expectations met by any of
 * the cases a run reports as failed.
 */
import { expect } from 'chai';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { judge, Observation, observationText } from '../../verify/expectations';
import { observeKutRun } from '../../verify/gdb-cell-runner';
import { kutCaseName, parseKutReport } from '../../verify/kut-results';
import { findKvmUnitTests } from '../../verify/kvm-unit-tests-dir';
import { buildMatrix, Cell, KvmUnitTestsLocator } from '../../verify/matrix';
import { runVerify } from '../../verify/run-verify';
import { KutRun } from '../../verify/scenarios';

const finished = (status: number | null, stdout: string, stderr = '', timedOut = false) =>
  ({ status, signal: null, stdout, stderr, timedOut });

const RUN: KutRun = { kind: 'kut', file: 'debug.flat', label: 'kdb-step', args: [] };

/** Part of debug.flat's real output under vmx --dr-switch none (host scenario kdb-step). */
const NONE_OUTPUT = [
  'enabling apic',
  'PASS: CPL0 Split Lock #AC = 0 (#DB = 0), val = deadbeefdeadbeef (wanted deadbeefdeadbeef)',
  'PASS: #BP',
  'FAIL: Wanted #DB on 0x400da7 w/ DR6 = 0xffff0ff4, got 1 #DBs, addr[0] = 0x400da7, DR6 = 0xffff4ff4',
  'FAIL: Wanted #DB on 0x400e09 w/ DR6 = 0xffff4ff4, got 0 #DBs, addr[0] = 0x400da7, DR6 = 0xffff4ff4',
  'PASS: Single-step #DB basic test',
  'FAIL: hw watchpoint (test that dr6.BS is not set)',
  'SKIP: something not claimed',
  'SUMMARY: 7 tests, 3 unexpected failures, 1 skipped',
].join('\n');

const found: KvmUnitTestsLocator = () => ({ dir: '/kut' });
const missing: KvmUnitTestsLocator = (file) => ({ why: `no shared/kvm-unit-tests folder with ${file} beside or above /repo` });

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, deps: { stdout: (t: string) => { out.push(t); }, stderr: (t: string) => { err.push(t); } } };
}

function asExpected(cell: Cell): Observation {
  const e = cell.expected;
  if (e.kind === 'detect') {
    const [check, failure] = e.failures[0].includes(':') ? e.failures[0].split(/:(?=[^:]+$)/) : ['x', e.failures[0]];
    return { pass: false, failure, check, detail: 'seen', seconds: 0.01 };
  }
  return { pass: true, detail: 'ok', seconds: 0.01 };
}

describe('verify: kvm-unit-tests debug.flat as a scenario (kut-debug)', function () {
  it('reads PASS/FAIL/SKIP lines and the SUMMARY; case names leave out what the run saw', function () {
    const r = parseKutReport(NONE_OUTPUT);
    expect(r.passed).to.have.length(3);
    expect(r.failed).to.have.length(3);
    expect(r.skipped).to.deep.equal(['something not claimed']);
    expect(r.summary).to.equal('7 tests, 3 unexpected failures, 1 skipped');
    expect(r.failed.map(kutCaseName)).to.deep.equal([
      'Wanted #DB w/ DR6 = 0xffff0ff4', 'Wanted #DB w/ DR6 = 0xffff4ff4', 'hw watchpoint (test that dr6.BS is not set)']);
    expect(kutCaseName('CPL0 Split Lock #AC = 0 (#DB = 0), val = deadbeefdeadbeef')).to.equal('CPL0 Split Lock #AC');
    expect(kutCaseName('DR4==DR6 with CR4.DE == 0')).to.equal('DR4==DR6 with CR4.DE == 0');
  });

  it('a run passes only with its SUMMARY, no FAIL and exit status 0; else every FAIL line is kept', function () {
    const ok = observeKutRun(RUN, finished(0, 'PASS: a\nPASS: b\nSUMMARY: 2 tests\n'), 1);
    expect(ok).to.deep.equal({ pass: true, detail: 'debug.flat (kdb-step): 2 cases passed', seconds: 1 });
    const o = observeKutRun(RUN, finished(1, NONE_OUTPUT), 2);
    expect(o.pass).to.equal(false);
    expect(o.failure).to.equal('guest-checks-failed');
    expect(o.check).to.equal('Wanted #DB w/ DR6 = 0xffff0ff4');
    expect(o.failedChecks).to.have.length(3);
    expect(o.failLines?.[1]).to.equal('kdb-step: FAIL: Wanted #DB on 0x400e09 w/ DR6 = 0xffff4ff4, got 0 #DBs, addr[0] = 0x400da7, DR6 = 0xffff4ff4');
    expect(o.detail).to.equal('debug.flat (kdb-step): 3 of 7 cases FAIL: Wanted #DB w/ DR6 = 0xffff0ff4; ' +
      'Wanted #DB w/ DR6 = 0xffff4ff4; hw watchpoint (test that dr6.BS is not set)');
    // No SUMMARY (the test stopped), a VM error and a timeout are failures of their own.
    expect(observeKutRun(RUN, finished(0, 'PASS: a\n'), 1)).to.include({ pass: false, check: 'exit-status' });
    expect(observeKutRun(RUN, finished(130, 'PASS: a\n', 'vmm-gdbstub: triple fault\n'), 1)).to.include({ failure: 'vm-error' });
    expect(observeKutRun(RUN, finished(null, '', '', true), 90)).to.include({ failure: 'timeout' });
  });

  it('an expectation is met by any failed case, not only the first; the table names the one it expects', function () {
    const cells = buildMatrix({ backends: ['vmx'], drSwitch: ['none'], scenarios: ['kut-debug'] }, found);
    const e = cells[0].expected;
    expect(e).to.include({ kind: 'detect' });
    const o = observeKutRun(RUN, finished(1, NONE_OUTPUT), 2);
    expect(judge(e, o)).to.equal('ok');
    expect(observationText(o, e)).to.equal('fail guest-checks-failed (Wanted #DB w/ DR6 = 0xffff4ff4, +2 more)');
    // Only case 5 failed: not the failure `none` must cause on VT-x (case 6's lost DR7).
    const onlyCase5 = observeKutRun(RUN, finished(1, NONE_OUTPUT.split('\n').filter((l) => !l.includes('0xffff4ff4, got')
      && !l.startsWith('FAIL: hw')).join('\n')), 2);
    expect(judge(e, onlyCase5)).to.equal('FAIL');
  });

  it('expects pass under full and a named failure under each part that matters; n/a where the part plays no role', function () {
    const cells = buildMatrix({ backends: [], drSwitch: [], scenarios: ['kut-debug'] }, found);
    const table = Object.fromEntries(cells.map((c) => [`${c.backend} ${c.mode}`,
      c.expected.kind === 'detect' ? c.expected.failures.join('|') : c.expected.kind]));
    expect(table).to.deep.equal({
      'vmx full': 'pass',
      'vmx none': 'Wanted #DB w/ DR6 = 0xffff4ff4:guest-checks-failed',
      'vmx no-guest-dr0-3': 'hw watchpoint (test that dr6.BS is not set):guest-checks-failed',
      'vmx no-guest-dr6': 'Wanted #DB w/ DR6 = 0xffff0ff4:guest-checks-failed',
      'vmx no-host-dr7-debugctl': 'n/a',
      'vmx no-tf-guard': 'Wanted #DB w/ DR6 = 0xffff0ff4:guest-checks-failed',
      'vmx no-svm-dirty': 'n/a',
      'svm full': 'pass',
      'svm none': 'hw watchpoint (test that dr6.BS is not set):guest-checks-failed',
      'svm no-guest-dr0-3': 'hw watchpoint (test that dr6.BS is not set):guest-checks-failed',
      'svm no-guest-dr6': 'n/a',
      'svm no-host-dr7-debugctl': 'n/a',
      'svm no-tf-guard': 'n/a',
      'svm no-svm-dirty': 'n/a',
    });
    for (const c of cells.filter((x) => x.expected.kind !== 'n/a')) expect(c.kvmUnitTestsDir).to.equal('/kut');
    // VT-x runs a host debugger stepping the entry path first (it shows no-tf-guard and no-guest-dr6).
    const vmxRuns = cells[0].scenario.runs('vmx').map((r) => (r.kind === 'kut' ? r.label : r.kind));
    expect(vmxRuns).to.deep.equal(['kdb-step', 'host-watch']);
    expect(cells[0].scenario.runs('svm').map((r) => (r.kind === 'kut' ? r.label : r.kind))).to.deep.equal(['host-watch']);
  });

  it('without debug.flat its cells are n/a with one line why, and the exit status is that of the rest', async function () {
    const cells = buildMatrix({ backends: [], drSwitch: [] }, missing);
    const kut = cells.filter((c) => c.scenario.name === 'kut-debug');
    expect(kut.every((c) => c.expected.kind === 'n/a')).to.equal(true);
    expect(kut.find((c) => c.mode === 'full')?.expected).to.deep.include({
      why: "needs kvm-unit-tests' debug.flat: no shared/kvm-unit-tests folder with debug.flat beside or above /repo (set KVM_UNIT_TESTS_DIR)" });
    const io = capture();
    const json = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'verify-kut-')), 'table.json');
    let ran = 0;
    const status = await runVerify({ backends: [], drSwitch: [], json }, {
      ...io.deps, locateKvmUnitTests: missing, runCell: async (c) => { ran++; return asExpected(c); },
    });
    expect(status).to.equal(0);
    const said = io.err.filter((l) => l.includes('kut-debug'));
    expect(said).to.deep.equal(['vmm-gdbstub verify: kut-debug left out (n/a): no shared/kvm-unit-tests folder with ' +
      "debug.flat beside or above /repo; set KVM_UNIT_TESTS_DIR to the folder with kvm-unit-tests' debug.flat\n"]);
    expect(ran).to.equal(cells.filter((c) => c.expected.kind !== 'n/a').length);
    expect(io.out.join('')).to.match(/\nkut-debug\s+-\s+-\s+-/);
    const rows = JSON.parse(fs.readFileSync(json, 'utf8')).rows as { scenario: string; verdict: string }[];
    expect(rows.filter((r) => r.scenario === 'kut-debug').every((r) => r.verdict === 'n/a')).to.equal(true);
  });

  it('with debug.flat its cells run, and --json carries the FAIL lines of each', async function () {
    const io = capture();
    const json = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'verify-kut-')), 'table.json');
    const status = await runVerify({ backends: ['vmx'], drSwitch: ['full', 'none'], scenarios: ['kut-debug'], json }, {
      ...io.deps, locateKvmUnitTests: found,
      runCell: async (c) => (c.mode === 'full' ? { pass: true, detail: 'debug.flat (kdb-step): 25 cases passed', seconds: 1 }
        : observeKutRun(RUN, finished(1, NONE_OUTPUT), 1)),
    });
    expect(status).to.equal(0);
    expect(io.err.join('')).not.to.contain('left out');
    const rows = JSON.parse(fs.readFileSync(json, 'utf8')).rows as { mode: string; verdict: string; failLines?: string[] }[];
    expect(rows.map((r) => r.verdict)).to.deep.equal(['ok', 'ok']);
    expect(rows[0].failLines).to.equal(undefined);
    expect(rows[1].failLines).to.have.length(3);
  });

  it('finds the folder from $KVM_UNIT_TESTS_DIR, or shared/kvm-unit-tests beside or above the repository', function () {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'verify-kut-dir-'));
    const repo = path.join(root, 'wt', 'clone');
    const shared = path.join(root, 'shared', 'kvm-unit-tests');
    fs.mkdirSync(repo, { recursive: true });
    expect(findKvmUnitTests('debug.flat', repo, {}).dir).to.equal(undefined);
    fs.mkdirSync(shared, { recursive: true });
    fs.writeFileSync(path.join(shared, 'debug.flat'), '');
    expect(findKvmUnitTests('debug.flat', repo, {})).to.deep.equal({ dir: shared });
    expect(findKvmUnitTests('debug.flat', repo, { KVM_UNIT_TESTS_DIR: repo })).to.deep.equal({
      why: `$KVM_UNIT_TESTS_DIR=${repo} has no debug.flat` });
    fs.rmSync(root, { recursive: true, force: true });
  });
});
