/**
 * The built-in guests running on the simulated CPU (with a bare stand-in for the
 * hypervisor), and the workload's checksums against the same C built natively.
 */
import { expect } from 'chai';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { CpuClass, loadCpuClass } from '../difftest/sim';
import { runGuest } from './bare-runner';

const ROOT = path.join(__dirname, '..', '..', '..');
const GUESTS = path.join(ROOT, 'guests');

/** Builds guests/workload/workload.c natively (same -O level) and returns its output. */
function nativeWorkloadOutput(level: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'workload-native-'));
  try {
    const flags = [`-${level}`, '-ffreestanding', '-fno-pic', '-no-pie', '-mno-red-zone', '-mgeneral-regs-only', '-fno-stack-protector', `-I${path.join(GUESTS, 'runtime')}`];
    execFileSync('gcc', [...flags, '-Dmain=workload_main', '-c', path.join(GUESTS, 'workload', 'workload.c'), '-o', path.join(dir, 'w.o')]);
    execFileSync('gcc', [...flags, path.join(dir, 'w.o'), path.join(ROOT, 'test', 'difftest', 'native-console.c'), '-o', path.join(dir, 'w')]);
    return execFileSync(path.join(dir, 'w'), { encoding: 'utf8' });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** guests/fpmath/fpmath.c built natively with gcc's default flags (-O2, SSE2), its output. */
function nativeFpmathOutput(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fpmath-native-'));
  try {
    const flags = ['-O2', '-ffreestanding', '-fno-pic', '-no-pie', '-mno-red-zone', '-fno-stack-protector', `-I${path.join(GUESTS, 'runtime')}`];
    execFileSync('gcc', [...flags, '-Dfp_main=workload_main', '-c', path.join(GUESTS, 'fpmath', 'fpmath.c'), '-o', path.join(dir, 'f.o')]);
    execFileSync('gcc', [...flags, path.join(dir, 'f.o'), path.join(ROOT, 'test', 'difftest', 'native-console.c'), '-o', path.join(dir, 'f')]);
    return execFileSync(path.join(dir, 'f'), { encoding: 'utf8' });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('built-in guests on the simulated CPU', function () {
  this.timeout(120000);
  let Cpu: CpuClass | undefined;
  before(function () {
    Cpu = loadCpuClass();
    if (!Cpu) this.skip();
  });
  const run = (name: string) => runGuest(Cpu!, path.join(GUESTS, `${name}.elf`));

  for (const level of ['O0', 'O1', 'O2', 'Os']) {
    it(`workload-${level} prints exactly the checksums of the same C built natively`, () => {
      const expected = nativeWorkloadOutput(level);
      expect(expected).to.match(/^total 0x[0-9a-f]+$/m);
      const r = run(`workload-${level}`);
      expect(r.error, r.error).to.equal(undefined);
      expect(r.console).to.equal(expected);
      expect(r.status).to.equal(0);
    });
  }

  it('fpmath (default gcc flags: SSE2 doubles, floats, vectorised loops) prints exactly what the native build prints', () => {
    const expected = nativeFpmathOutput();
    expect(expected).to.match(/^sqrt2 1\.414214 0x3ff6a09e667f3bcc$/m);
    expect(expected).to.match(/^total 0x[0-9a-f]+$/m);
    const r = run('fpmath');
    expect(r.error, r.error).to.equal(undefined);
    expect(r.console).to.equal(expected);
    expect(r.status).to.equal(0);
  });

  it('counter counts to 20 with OUT, CPUID and timer-woken HLT exits, then exits 0', () => {
    const r = run('counter');
    expect(r.error, r.error + '\n' + r.console).to.equal(undefined);
    expect(r.status).to.equal(0);
    expect(r.console).to.match(/^counter: start\n/);
    expect(r.console).to.include('counter 20 ticks');
    expect(r.console).to.match(/counter: done 20\n$/);
    expect(r.exits.cpuid).to.be.at.least(20);
    expect(r.exits.hlt).to.be.at.least(20);
  });

  it('selfwatch passes every check when the debug registers are left alone', () => {
    const r = run('selfwatch');
    expect(r.error, r.error + '\n' + r.console).to.equal(undefined);
    expect(r.console).to.not.include('FAIL');
    expect((r.console.match(/^PASS /gm) ?? []).length).to.be.at.least(20);
    expect(r.console).to.include('selfwatch: all passed');
    expect(r.status).to.equal(0);
  });

  it('selfwatch reports FAIL lines and exits 1 when VM exits lose its DR7 (the pre-fix bug)', () => {
    const r = runGuest(Cpu!, path.join(GUESTS, 'selfwatch.elf'), { loseDr7OnExit: true });
    expect(r.error, r.error).to.equal(undefined);
    expect(r.console).to.match(/^FAIL dr7-survives-exits: expected DR7 0x[0-9a-f]+ got 0x400$/m);
    expect(r.console).to.match(/^FAIL write-len8: expected #DB count 0x1 got 0x0$/m);
    expect(r.console).to.include('selfwatch: FAILED');
    expect(r.status).to.equal(1);
  });

  it('cpuid-loop makes 100000 CPUID exits', () => {
    const r = run('cpuid-loop');
    expect(r.status).to.equal(0);
    expect(r.exits.cpuid).to.equal(100000);
    expect(r.console).to.equal('cpuid-loop: 100000 cpuid exits\n');
  });

  it('stepper runs its sequence (OUT, CPUID, HLT woken by the timer) and exits 0', () => {
    const r = run('stepper');
    expect(r.error, r.error).to.equal(undefined);
    expect(r.status).to.equal(0);
    expect(r.exits.cpuid).to.equal(1);
    expect(r.exits.hlt).to.be.at.least(1);
  });
});
