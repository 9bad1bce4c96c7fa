/** vmm-gdbstub run / hostcheck / vmmctl with --backend kvm, as processes. */
import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { vmmGdbstubMain } from '../../cli/main';
import { Output } from '../../cli/output';
import { BIN, ROOT, asmGuest, guestPath, requireKvm } from './kvm-env';

function capture(): Output & { out: string; err: string } {
  const c = { out: '', err: '', stdout: (t: string) => { c.out += t; }, stderr: (t: string) => { c.err += t; } };
  return c;
}

function writeElf(dir: string, name: string, body: string): string {
  const p = path.join(dir, `${name}.elf`);
  fs.writeFileSync(p, asmGuest(name, body).elf);
  return p;
}

describe('kvm backend: option checks (no /dev/kvm needed)', () => {
  for (const args of [['--dr-switch', 'full'], ['--dr-switch=none'], ['--host-scenario', 'kdb-step']]) {
    it(`refuses run --backend kvm ${args.join(' ')} with exit 128 and one line`, async () => {
      const out = capture();
      const status = await vmmGdbstubMain(['run', guestPath('counter'), '--backend', 'kvm', ...args], out);
      expect(status).to.equal(128);
      expect(out.err).to.match(/does not apply to --backend kvm/);
      expect(out.err.trim().split('\n')).to.have.length(1);
    });
  }
});

describe('kvm backend: run, hostcheck and vmmctl on /dev/kvm', function () {
  before(function () { requireKvm(this); });
  let dir = '';
  before(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmm-kvm-')); });
  after(() => { if (dir) fs.rmSync(dir, { recursive: true, force: true }); }); // skipped: no dir

  it('run --backend kvm guests/counter.elf prints what it prints on vmx, and exits 0', () => {
    const vmx = spawnSync('node', [BIN, 'run', guestPath('counter')], { encoding: 'utf8', cwd: ROOT });
    const kvm = spawnSync('node', [BIN, 'run', '--backend', 'kvm', guestPath('counter')], { encoding: 'utf8', cwd: ROOT });
    expect(kvm.status, kvm.stderr).to.equal(0);
    expect(kvm.stdout).to.equal(vmx.stdout);
    expect(kvm.stdout).to.match(/counter 20 ticks 20\ncounter: done 20\n$/);
  });

  const ends: Array<[string, string, number, RegExp]> = [
    ['outside-ram', 'movl $1, 0x7ff00000', 131, /write to 0x7ff00000, outside guest memory/],
    ['triple-fault', 'ud2', 130, /triple fault/],
    ['halted', 'cli\n  hlt', 132, /every vCPU is halted/],
    ['exit-status', 'mov $42, %al\n  out %al, $0xf4', 42, /^$/],
  ];
  for (const [name, body, status, diag] of ends) {
    it(`a guest that ends by ${name} exits ${status} with its diagnosis`, () => {
      const elf = writeElf(dir, name, body);
      const r = spawnSync('node', [BIN, 'run', '--backend', 'kvm', '--mem', '16', elf], { encoding: 'utf8' });
      expect(r.status, r.stderr).to.equal(status);
      expect(r.stderr.trim()).to.match(diag);
    });
  }

  it('hostcheck prints its table and JSON; instruction breakpoints and single-step work here', () => {
    const json = path.join(dir, 'hostcheck.json');
    const r = spawnSync('node', [BIN, 'hostcheck', '--json', json], { encoding: 'utf8' });
    expect([0, 1]).to.include(r.status);
    const rows = (JSON.parse(fs.readFileSync(json, 'utf8')) as { results: Array<{ feature: string; setBy: string; verdict: string; evidence: string }> }).results;
    for (const feature of ['instruction breakpoint', 'data write breakpoint', 'data read/write breakpoint', 'I/O breakpoint', 'single-step', 'DR6 contents']) {
      for (const setBy of ['guest', 'debugger']) expect(rows.some((x) => x.feature === feature && x.setBy === setBy), `${feature} ${setBy}`).to.equal(true);
    }
    for (const exit of ['I/O', 'CPUID', 'HLT', 'preemption']) expect(rows.some((x) => x.feature === `DR0-3/DR7 survive ${exit} exits`)).to.equal(true);
    for (const x of rows) expect(r.stdout).to.include(x.evidence);
    expect(r.status).to.equal(rows.every((x) => x.verdict === 'works') ? 0 : 1);
    const basic = rows.filter((x) => x.feature === 'instruction breakpoint' || x.feature === 'single-step');
    expect(basic.map((x) => x.verdict)).to.deep.equal(['works', 'works', 'works', 'works']);
    console.log(`      [kvm] hostcheck: ${rows.filter((x) => x.verdict !== 'works').map((x) => `${x.feature} (${x.setBy}): ${x.verdict}`).join('; ') || 'everything works'}`);
  });

  it('vmmctl answers while the kvm guest spins (the event loop is never blocked in KVM_RUN)', async () => {
    const elf = writeElf(dir, 'spin', '1: incq 0x200000\n  jmp 1b');
    const xdg = fs.mkdtempSync(path.join(os.tmpdir(), 'vmm-xdg-'));
    fs.chmodSync(xdg, 0o700);
    const env = { ...process.env, XDG_RUNTIME_DIR: xdg };
    const name = `kvm-spin-${process.pid}`;
    const child = spawn('node', [BIN, 'run', '--backend', 'kvm', '--mem', '16', '--name', name, elf], { env, stdio: 'ignore' });
    try {
      const sock = path.join(xdg, 'vmm-gdbstub', `${name}.sock`);
      for (let i = 0; i < 100 && !fs.existsSync(sock); i++) await new Promise((r) => setTimeout(r, 50));
      const times: number[] = [];
      for (let i = 0; i < 5; i++) {
        const t0 = performance.now();
        const r = spawnSync('node', [path.join(ROOT, 'bin', 'vmmctl.js'), '--vm', name, '--get-rip', '--get-dr7'], { encoding: 'utf8', env });
        times.push(performance.now() - t0);
        expect(r.status, r.stderr).to.equal(0);
        expect(r.stdout).to.match(/^rip\[0\]\t0x00000000001000/m).and.match(/dr7\[0\]\t0x0000000000000400/);
      }
      console.log(`      [kvm] vmmctl round trips (process start included): ${times.map((t) => t.toFixed(0)).join(' ')} ms`);
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      fs.rmSync(xdg, { recursive: true, force: true });
    }
  });
});
