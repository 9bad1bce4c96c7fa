/**
 * `--host-nmi-every N` end to end: host NMIs (a watchdog's) while guests/selfwatch.elf checks
 * its own debug registers across VM exits. Under `full` every check passes and no host NMI
 * handler finds anything but the host's debug registers; under `none` they find the guest's.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const BIN = path.join(ROOT, 'bin', 'vmm-gdbstub.js');
const SELFWATCH = path.join(ROOT, 'guests', 'selfwatch.elf');

function run(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, 'run', SELFWATCH, '--stats', ...args], { encoding: 'utf8', timeout: 60000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function hostNmis(stderr: string): { handled: number; foreign: number; exits: number } {
  const m = /^host NMIs: +(\d+) \(handler found foreign debug registers: (\d+)\)$/m.exec(stderr);
  expect(m, stderr).to.not.equal(null);
  const e = /vm exits: .*\bnmi (\d+)/.exec(stderr);
  expect(e, stderr).to.not.equal(null);
  return { handled: Number(m![1]), foreign: Number(m![2]), exits: Number(e![1]) };
}

describe('cli: --host-nmi-every (host NMI exits)', function () {
  this.timeout(120000);
  for (const backend of ['vmx', 'svm'] as const) {
    it(`${backend}: full: the guest's own debug-register checks all pass; every host NMI handler found the host's registers`, () => {
      const r = run(['--backend', backend, '--host-nmi-every', '37']);
      expect(r.status, r.stderr).to.equal(0);
      expect(r.stdout).to.not.contain('FAIL');
      const n = hostNmis(r.stderr);
      expect(n.handled).to.be.greaterThan(100);
      expect(n.exits).to.equal(n.handled);
      expect(n.foreign).to.equal(0);
      expect(r.stderr).to.match(/^debug-state leaks: +0$/m);
    });

    it(`${backend}: none: host NMI handlers find the guest's debug registers`, () => {
      const r = run(['--backend', backend, '--host-nmi-every', '37', '--dr-switch', 'none']);
      const n = hostNmis(r.stderr);
      expect(n.foreign).to.be.greaterThan(0);
    });
  }

  it('without the flag there is no host NMI line; a bad value is a usage error', () => {
    const r = run([]);
    expect(r.status).to.equal(0);
    expect(r.stderr).to.not.contain('host NMIs');
    const bad = run(['--host-nmi-every', '-3']);
    expect(bad.status).to.equal(128);
    expect(bad.stderr).to.contain('host-nmi-every');
  });
});
