import { expect } from 'chai';
import { spawn } from 'child_process';
import * as path from 'path';
import { kvmUnitTestsOrSkip } from './kvm-unit-tests-dir';

const BIN = path.resolve(__dirname, '..', '..', '..', 'bin', 'vmm-gdbstub.js');

/**
 * The unmodified binaries issue 9 names, with what `run` needs besides the file. `lines`:
 * output lines each run must print (vmexit prints one "<case> <cycles>" line per case and
 * no PASS/SUMMARY; a case it cannot run prints "<case> (skipped)" instead).
 *
 * vmexit runs each case until 2^30 TSC ticks have passed (twice over, doubling its
 * iterations): with one tick per instruction and 1000 per emulated exit, a case is about
 * 2 x 10^6 exits or 3 x 10^9 instructions. Only vmcall (the case QEMU TCG fails) is in the
 * default run (~5 s CPU per backend, idle machine); the others take ~4.5 s each (cpuid,
 * inl_from_pmtimer), ~13 s (ipi) and minutes (the MOV CR8 cases: no exit at all) per
 * backend, and run with KVM_UNIT_TESTS_SLOW=1. Longest first: two at a time, the long ones overlap the short ones.
 */
interface Case { file: string; args?: string[]; slow?: boolean; summary?: boolean; lines?: RegExp[] }
const CASES: Case[] = [
  // sieve's vmalloc of 100 MB (3 times, freed in between) needs more than 64 MiB of RAM: it
  // asserts (lib/vmalloc.c: no physical page) with QEMU -m 64 as with our default; run_tests.sh
  // gives it QEMU's default, 128 MiB. It runs for minutes here.
  { file: 'sieve.flat', args: ['--mem', '128'], slow: true, summary: false },
  {
    file: 'vmexit.flat', args: ['--cmdline', 'mov_from_cr8 mov_to_cr8'], slow: true, summary: false,
    lines: [/^mov_from_cr8 \d+$/m, /^mov_to_cr8 \d+$/m],
  },
  // ipi needs a second vCPU (is_smp); each iteration is an IPI answered by vCPU 1.
  { file: 'vmexit.flat', args: ['--vcpus', '2', '--cmdline', 'ipi'], slow: true, summary: false, lines: [/^ipi \d+$/m] },
  {
    file: 'vmexit.flat', args: ['--cmdline', 'cpuid inl_from_pmtimer'], slow: true, summary: false,
    lines: [/^cpuid \d+$/m, /^inl_from_pmtimer \d+$/m],
  },
  { file: 'vmexit.flat', args: ['--cmdline', 'vmcall'], summary: false, lines: [/^vmcall \d+$/m] },
  { file: 'smptest.flat', args: ['--vcpus', '2'] },
  { file: 'dummy.flat', summary: false }, { file: 'debug.flat' }, { file: 'eventinj.flat' }, { file: 'setjmp.flat' },
  { file: 'syscall.flat' }, { file: 'tsc.flat' }, { file: 'memory.flat' }, { file: 'xsave.flat' },
  { file: 'umip.flat' }, { file: 'rmap_chain.flat', summary: false },
  // Host NMIs (a watchdog's NMI exit every 97 instructions) change nothing the tests see:
  // debug's traps and DR6, eventinj's own NMIs (injection, the NMI window / IRET intercept).
  { file: 'debug.flat', args: ['--host-nmi-every', '97'] }, { file: 'eventinj.flat', args: ['--host-nmi-every', '97'] },
];

interface Outcome { status: number | null; stdout: string; stderr: string }

function runOne(dir: string, backend: string, c: Case): Promise<Outcome> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN, 'run', path.join(dir, c.file), '--backend', backend, '--dr-switch', 'full', ...(c.args ?? [])]);
    let stdout = '', stderr = '';
    p.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    p.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timer = setTimeout(() => p.kill('SIGKILL'), 600000);
    p.on('close', (status) => { clearTimeout(timer); resolve({ status, stdout, stderr }); });
  });
}

/**
 * `vmm-gdbstub run` on each kvm-unit-tests binary, vmx and svm, --dr-switch full: every case
 * it reports is PASS (no FAIL) and the run exits 0 (the test's own status: see
 * vmm/devices/README.md). Each binary runs once per backend, two processes at a time (the
 * machines have 2 cores), all started in `before`; the `it`s wait for their outcome.
 */
describe('platform: unmodified kvm-unit-tests with `vmm-gdbstub run`', function () {
  this.timeout(900000);
  const slow = process.env.KVM_UNIT_TESTS_SLOW === '1';
  const jobs: Array<{ backend: string; c: Case; out?: Promise<Outcome> }> = [];
  for (const c of CASES) for (const backend of ['vmx', 'svm']) if (slow || !c.slow) jobs.push({ backend, c });
  let dir: string | undefined;

  before(function () {
    dir = kvmUnitTestsOrSkip();
    if (!dir) return;
    if (!slow) console.log('    (sieve.flat and vmexit cpuid, inl_from_pmtimer, ipi, mov_from_cr8, mov_to_cr8 left out: 10 s to minutes each; KVM_UNIT_TESTS_SLOW=1 runs them)');
    const done: Array<(o: Outcome) => void> = [];
    for (const j of jobs) j.out = new Promise((res) => done.push(res));
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < jobs.length) {
        const k = next++;
        done[k](await runOne(dir!, jobs[k].backend, jobs[k].c));
      }
    };
    void Promise.all([worker(), worker()]);
  });

  for (const j of jobs) {
    const what = j.c.lines ? 'each case runs and reports its cycles' : 'all cases PASS';
    it(`${j.backend} ${j.c.file}${j.c.args ? ' ' + j.c.args.join(' ') : ''}: ${what}, exit 0`, async function () {
      if (!dir) this.skip();
      const r = await j.out!;
      const fails = r.stdout.split('\n').filter((l) => /^FAIL/.test(l));
      expect(fails, r.stdout.slice(-2000)).to.deep.equal([]);
      if (j.c.summary !== false) expect(r.stdout).to.match(/SUMMARY: \d+ tests/);
      for (const line of j.c.lines ?? []) expect(r.stdout, r.stdout.slice(-1500) + r.stderr).to.match(line);
      expect(r.stdout).not.to.match(/\(skipped\)/);
      expect(r.status, r.stdout.slice(-1500) + r.stderr).to.equal(0);
    });
  }
});
