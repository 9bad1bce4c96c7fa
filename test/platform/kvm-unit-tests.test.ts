import { expect } from 'chai';
import { spawnSync } from 'child_process';
import * as path from 'path';
import { kvmUnitTestsOrSkip } from './kvm-unit-tests-dir';

const BIN = path.resolve(__dirname, '..', '..', '..', 'bin', 'vmm-gdbstub.js');

/** The unmodified binaries issue 9 names, with what `run` needs besides the file. */
const CASES: Array<{ file: string; args?: string[] }> = [
  { file: 'dummy.flat' }, { file: 'debug.flat' }, { file: 'sieve.flat' },
  { file: 'smptest.flat', args: ['--vcpus', '2'] }, { file: 'eventinj.flat' }, { file: 'setjmp.flat' },
  { file: 'syscall.flat' }, { file: 'tsc.flat' }, { file: 'memory.flat' }, { file: 'xsave.flat' },
  { file: 'umip.flat' }, { file: 'rmap_chain.flat' },
];
const NO_32BIT_MODE = /starts in 32-bit protected mode, which this build's CPU does not have/;
/** Set by the first run that finds no 32-bit mode: the others skip without spawning. */
let missingMode: string | undefined;

/**
 * `vmm-gdbstub run` on each kvm-unit-tests binary, vmx and svm, --dr-switch full: every case
 * it reports is PASS (no FAIL) and the run exits 0 (the test's own status: see
 * vmm/devices/README.md). Skipped, with the reason, while the CPU lacks 32-bit mode.
 */
describe('platform: unmodified kvm-unit-tests with `vmm-gdbstub run`', function () {
  this.timeout(180000);
  for (const backend of ['vmx', 'svm']) {
    for (const c of CASES) {
      it(`${backend} ${c.file}${c.args ? ' ' + c.args.join(' ') : ''}: all cases PASS, exit 0`, function () {
        const dir = kvmUnitTestsOrSkip();
        if (!dir) this.skip();
        if (missingMode !== undefined) this.skip();
        const r = spawnSync(process.execPath, [BIN, 'run', path.join(dir!, c.file), '--backend', backend, '--dr-switch', 'full', ...(c.args ?? [])],
          { encoding: 'utf8', timeout: 170000 });
        if (r.status === 134 && NO_32BIT_MODE.test(r.stderr)) {
          missingMode = r.stderr.trim();
          console.log(`    (skipped, and every case below: ${missingMode})`);
          this.skip();
        }
        const fails = r.stdout.split('\n').filter((l) => /^FAIL/.test(l));
        expect(fails, r.stdout.slice(-2000)).to.deep.equal([]);
        if (c.file !== 'dummy.flat') expect(r.stdout).to.match(/SUMMARY: \d+ tests/);
        expect(r.status, r.stderr).to.equal(0);
      });
    }
  }
});
