/**
 * End to end: the installed launchers against the real VM (vmm/api/create-vm.ts) and the
 * real ELF loader, on the built-in guests and on a tiny spinning guest assembled here.
 * Skipped only in a build that lacks the VM (the cli branch before it merges hv).
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn, spawnSync, ChildProcess } from 'node:child_process';
import { controlSocketPath } from '../../vmm/api/control-socket';
import { EXIT } from '../../cli/exit-codes';
import { vmmctlMain } from '../../cli/vmmctl-main';
import { ROOT, VMM_GDBSTUB_BIN, VMMCTL_BIN, capture, privateRuntimeDir, runNode, tempDir, waitFor } from './helpers';

const DIST = path.join(ROOT, 'dist');
const GUESTS = path.join(ROOT, 'guests');

function realVmBuilt(): boolean {
  return fs.existsSync(path.join(DIST, 'vmm', 'api', 'create-vm.js')) && fs.existsSync(path.join(DIST, 'vmm', 'loader', 'elf.js'));
}

/** A guest that spins until RAX = 0x1234, then exits with status 42. No IDT. */
const SPIN_SOURCE = `
	.text
	.globl _start
_start:
spin:
	cmp $0x1234, %rax
	jne spin
	mov $42, %al
	out %al, $0xf4
	hlt
`;
const SPIN_ENTRY = 0x100000;

/** Writes outside guest RAM (64 MiB): a nested-page fault. */
const NPF_SOURCE = `
	.text
	.globl _start
_start:
	movabs $0x40000000, %rax
	movb $1, (%rax)
	hlt
`;

/** HLT with interrupts disabled and no timer: nothing can ever wake it. */
const HALT_SOURCE = `
	.text
	.globl _start
_start:
	cli
	hlt
	jmp _start
`;

function buildSpinGuest(dir: string): string {
  return buildGuest(dir, 'spin', SPIN_SOURCE);
}

/** Assembles and links a one-file guest at 0x100000 with the real binutils. */
function buildGuest(dir: string, name: string, source: string): string {
  const src = path.join(dir, `${name}.S`);
  const obj = path.join(dir, `${name}.o`);
  const elf = path.join(dir, `${name}.elf`);
  fs.writeFileSync(src, source);
  const as = spawnSync('as', ['--64', '-o', obj, src], { encoding: 'utf8' });
  if (as.status !== 0) throw new Error(`as failed: ${as.stderr}`);
  const ld = spawnSync('ld', ['-static', '-nostdlib', `-Ttext=0x${SPIN_ENTRY.toString(16)}`, '-z', 'max-page-size=0x1000', '-e', '_start', '-o', elf, obj], { encoding: 'utf8' });
  if (ld.status !== 0) throw new Error(`ld failed: ${ld.stderr}`);
  return elf;
}

interface Running {
  child: ChildProcess;
  done: Promise<{ status: number | null; stdout: string; stderr: string }>;
}

function startRun(args: string[], env: NodeJS.ProcessEnv): Running {
  const child = spawn(process.execPath, [VMM_GDBSTUB_BIN, 'run', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => { stdout += d.toString(); });
  child.stderr?.on('data', (d: Buffer) => { stderr += d.toString(); });
  const done = new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
  return { child, done };
}

/** vmmctl through its launcher, a separate process as a user runs it. */
function vmmctlProcess(args: string[], env: NodeJS.ProcessEnv) {
  return runNode(VMMCTL_BIN, args, { env });
}

/** vmmctl in this process (the same code; faster than a process per call). */
async function vmmctl(args: string[], _env: NodeJS.ProcessEnv): Promise<{ status: number; stdout: string; stderr: string }> {
  const out = capture();
  const status = await vmmctlMain(args, out);
  return { status, stdout: out.out, stderr: out.err };
}

describe('cli end to end (real VM)', function () {
  this.timeout(60000);
  let rt: ReturnType<typeof privateRuntimeDir>;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  const children: ChildProcess[] = [];

  before(function () {
    if (!realVmBuilt()) this.skip();
  });
  beforeEach(() => {
    rt = privateRuntimeDir();
    dir = tempDir();
    env = { ...process.env, XDG_RUNTIME_DIR: rt.dir };
  });
  afterEach(() => {
    for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    rt.restore();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  for (const backend of ['vmx', 'svm']) {
    it(`run guests/counter.elf --backend ${backend} --stats --json: console, status 0, exits by reason, no leaks`, async () => {
      const json = path.join(dir, 'counter.json');
      const r = await runNode(VMM_GDBSTUB_BIN, ['run', path.join(GUESTS, 'counter.elf'), '--backend', backend, '--stats', '--json', json], { env });
      expect(r.status, r.stderr).to.equal(0);
      expect(r.stdout.length).to.be.greaterThan(0);
      expect(r.stderr).to.match(/instructions retired: [1-9][0-9]*\n/);
      expect(r.stderr).to.match(/debug-state leaks: +0\n/);
      const report = JSON.parse(fs.readFileSync(json, 'utf8'));
      expect(report.exitStatus).to.equal(0);
      expect(report.options.backend).to.equal(backend);
      expect(report.instructions).to.be.greaterThan(1000);
      // OUT, CPUID and HLT on each of the 20 iterations
      expect(report.vmExits.byReason).to.include.keys('io', 'cpuid', 'hlt');
      expect(report.vmExits.byReason.cpuid).to.be.at.least(20);
      expect(report.vmExits.byReason.hlt).to.be.at.least(20);
      expect(r.stderr).to.match(/vm exits: +[0-9]+ \(.*cpuid [0-9]+/);
      expect(report.leaksDetected).to.equal(0);
    });

    it(`run guests/selfwatch.elf --backend ${backend} (full, preemption): every check passes`, async () => {
      const r = await runNode(VMM_GDBSTUB_BIN, ['run', path.join(GUESTS, 'selfwatch.elf'), '--backend', backend, '--preempt-every', '997', '--stats'], { env });
      expect(r.stdout).to.match(/PASS/);
      expect(r.stdout).to.not.match(/FAIL/);
      expect(r.status, r.stdout + r.stderr).to.equal(0);
      expect(r.stderr).to.match(/debug-state leaks: +0\n/);
    });
  }

  it('run guests/selfwatch.elf --dr-switch none on VT-x fails its checks and the leaks are reported', async () => {
    const json = path.join(dir, 'none.json');
    const r = await runNode(VMM_GDBSTUB_BIN, ['run', path.join(GUESTS, 'selfwatch.elf'), '--dr-switch', 'none', '--json', json], { env });
    expect(r.stdout).to.match(/FAIL/);
    expect(r.status).to.not.equal(0);
    expect(r.status).to.be.lessThan(128);
    const report = JSON.parse(fs.readFileSync(json, 'utf8'));
    expect(report.leaksDetected).to.be.greaterThan(0);
    expect(report.leaks.length).to.be.greaterThan(0);
  });

  it('a guest writing outside its RAM: exit 131 with the address', async () => {
    const elf = buildGuest(dir, 'npf', NPF_SOURCE);
    const r = await runNode(VMM_GDBSTUB_BIN, ['run', elf, '--stats'], { env });
    expect(r.status, r.stderr).to.equal(EXIT.OUTSIDE_MEMORY);
    expect(r.stderr.split('\n')[0]).to.equal('vmm-gdbstub: vCPU 0: guest write to 0x40000000, outside guest memory (0-0x3ffffff)');
    expect(r.stderr).to.match(/exit status: +131/);
  });

  it('every vCPU halted with IF=0: exit 132', async () => {
    const elf = buildGuest(dir, 'halt', HALT_SOURCE);
    const r = await runNode(VMM_GDBSTUB_BIN, ['run', elf, '--vcpus', '2'], { env });
    expect(r.status, r.stderr).to.equal(EXIT.ALL_HALTED);
    expect(r.stderr).to.match(/^vmm-gdbstub: every vCPU is halted and nothing can wake it/);
  });

  it('run --trace-vm FILE writes a Chrome trace of the run (phases, exits by reason)', async function () {
    if (!fs.existsSync(path.join(DIST, 'verify', 'trace-writer.js'))) this.skip(); // the verifier's writer
    const trace = path.join(dir, 'trace.json');
    const r = await runNode(VMM_GDBSTUB_BIN, ['run', path.join(GUESTS, 'counter.elf'), '--backend', 'svm', '--trace-vm', trace], { env });
    expect(r.status, r.stderr).to.equal(0);
    const events = JSON.parse(fs.readFileSync(trace, 'utf8')) as Array<{ name: string; ph: string; args?: Record<string, unknown> }>;
    expect(events[0]).to.deep.include({ name: 'process_name', ph: 'M', args: { name: 'counter svm full' } });
    expect(events.some((e) => e.name === 'guest' && e.ph === 'B')).to.equal(true);
    expect(events.some((e) => e.args?.['reason'] === 'hlt')).to.equal(true);
    expect(events.some((e) => e.args?.['reason'] === 'cpuid')).to.equal(true);
  });

  it('a file that is not an ELF: exit 129 and one line', async () => {
    const bad = path.join(dir, 'bad.elf');
    fs.writeFileSync(bad, 'not an elf at all');
    const r = await runNode(VMM_GDBSTUB_BIN, ['run', bad], { env });
    expect(r.status).to.equal(EXIT.BAD_ELF);
    expect(r.stderr).to.match(/^vmm-gdbstub: bad guest ELF .*bad.elf: /);
    expect(r.stderr.trimEnd().split('\n')).to.have.length(1);
  });

  it('vmmctl reads RIP and DR7 of a running guest and a written RAX ends its loop', async () => {
    const elf = buildSpinGuest(dir);
    const run = startRun([elf, '--name', 'spin1'], env);
    children.push(run.child);
    await waitFor(() => fs.existsSync(controlSocketPath('spin1', env)), 10000, 'the control socket');

    const get = await vmmctlProcess(['--vm', 'spin1', '--get-rip', '--get-dr7', '--get-dr6', '--get-rsi'], env);
    expect(get.status, get.stderr).to.equal(0);
    const lines = get.stdout.trimEnd().split('\n');
    const rip = Number.parseInt(/^rip\[0\]\t0x([0-9a-f]{16})$/.exec(lines[0])?.[1] ?? 'x', 16);
    expect(rip).to.be.within(SPIN_ENTRY, SPIN_ENTRY + 8);
    expect(lines.slice(1)).to.deep.equal(['dr7[0]\t0x0000000000000400', 'dr6[0]\t0x00000000ffff0ff0', 'rsi[0]\t0x0000000000000001']);

    const stats = await vmmctl(['--vm', 'spin1', '--get-stats'], env);
    expect(stats.stdout).to.match(/^instructions retired\t[1-9][0-9]*$/m);

    const bad = await vmmctl(['--vm', 'spin1', '--cpu', '1', '--set-rax=0x1234'], env);
    expect(bad.status).to.equal(EXIT.USAGE);
    expect(bad.stderr).to.match(/no vCPU 1/);

    const set = await vmmctlProcess(['--vm', 'spin1', '--set-rax=0x1234'], env);
    expect(set.status, set.stderr).to.equal(0);
    const end = await run.done;
    expect(end.status, end.stderr).to.equal(42);
    expect(fs.existsSync(controlSocketPath('spin1', env))).to.equal(false);
  });

  it('vmmctl --set-dr0/--set-dr7 arms an instruction breakpoint the guest really takes', async () => {
    const elf = buildSpinGuest(dir);
    const run = startRun([elf, '--name', 'spin2'], env);
    children.push(run.child);
    await waitFor(() => fs.existsSync(controlSocketPath('spin2', env)), 10000, 'the control socket');
    const set = await vmmctl(['--vm', 'spin2', `--set-dr0=0x${SPIN_ENTRY.toString(16)}`, '--set-dr7=0x401', '--get-dr0', '--get-dr7'], env);
    expect(set.status, set.stderr).to.equal(0);
    expect(set.stdout).to.equal('dr0[0]\t0x0000000000100000\ndr7[0]\t0x0000000000000401\n');
    // The guest has no IDT: its #DB on `spin` cannot be delivered and ends in a triple fault.
    const end = await run.done;
    expect(end.status, end.stderr).to.equal(EXIT.TRIPLE_FAULT);
    expect(end.stderr).to.match(/^vmm-gdbstub: guest triple fault on vCPU 0: /);
  });

  it('a second run with the same --name is refused with 135; the first keeps running', async () => {
    const elf = buildSpinGuest(dir);
    const first = startRun([elf, '--name', 'spin3'], env);
    children.push(first.child);
    await waitFor(() => fs.existsSync(controlSocketPath('spin3', env)), 10000, 'the control socket');
    const second = await runNode(VMM_GDBSTUB_BIN, ['run', elf, '--name', 'spin3'], { env });
    expect(second.status).to.equal(EXIT.IN_USE);
    expect(second.stderr).to.match(/a VM named 'spin3' is already running/);
    expect((await vmmctl(['--vm', 'spin3', '--set-rax=0x1234'], env)).status).to.equal(0);
    expect((await first.done).status).to.equal(42);
  });

  it('a VM killed with SIGKILL leaves a stale socket that vmmctl reports and the next VM replaces', async () => {
    const elf = buildSpinGuest(dir);
    const first = startRun([elf, '--name', 'spin4'], env);
    children.push(first.child);
    const sock = controlSocketPath('spin4', env);
    await waitFor(() => fs.existsSync(sock), 10000, 'the control socket');
    first.child.kill('SIGKILL');
    await first.done;
    expect(fs.existsSync(sock)).to.equal(true);
    const stale = await vmmctl(['--vm', 'spin4', '--get-rip'], env);
    expect(stale.status).to.equal(EXIT.NO_SUCH_VM);
    expect(stale.stderr).to.match(/stale control socket/);
    const second = startRun([elf, '--name', 'spin4'], env);
    children.push(second.child);
    await waitFor(async () => (await vmmctl(['--vm', 'spin4', '--get-rip'], env)).status === 0, 10000, 'the new VM');
    expect((await vmmctl(['--vm', 'spin4', '--set-rax=0x1234'], env)).status).to.equal(0);
    expect((await second.done).status).to.equal(42);
  });

  it('run interrupted with SIGINT writes --stats and --json, then ends by SIGINT', async () => {
    const elf = buildSpinGuest(dir);
    const json = path.join(dir, 'spin.json');
    const child = spawn(process.execPath, [VMM_GDBSTUB_BIN, 'run', elf, '--stats', '--json', json, '--name', 'spin6'],
      { env, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => { stderr += d.toString(); });
    const ended = new Promise<NodeJS.Signals | null>((resolve) => child.on('close', (_st, sig) => resolve(sig)));
    await waitFor(() => fs.existsSync(controlSocketPath('spin6', env)), 10000, 'the control socket');
    child.kill('SIGINT');
    expect(await ended).to.equal('SIGINT');
    expect(stderr).to.match(/run interrupted by SIGINT after \d+ instructions/);
    expect(stderr).to.match(/instructions retired: +[1-9]/);
    const report = JSON.parse(fs.readFileSync(json, 'utf8'));
    expect(report.stop).to.deep.equal({ kind: 'interrupted', signal: 'SIGINT' });
    expect(report.exitStatus).to.equal(130);
    expect(fs.existsSync(controlSocketPath('spin6', env))).to.equal(false);
  });

  it('SIGTERM removes the control socket', async () => {
    const elf = buildSpinGuest(dir);
    const run = startRun([elf, '--name', 'spin5'], env);
    children.push(run.child);
    const sock = controlSocketPath('spin5', env);
    await waitFor(() => fs.existsSync(sock), 10000, 'the control socket');
    run.child.kill('SIGTERM');
    await run.done;
    expect(fs.existsSync(sock)).to.equal(false);
  });
});

function stubBuilt(): boolean {
  return fs.existsSync(path.join(DIST, 'stub', 'server.js'));
}

function hasGdb(): boolean {
  return spawnSync('gdb', ['--version'], { encoding: 'utf8' }).status === 0;
}

/** Runs stock gdb in batch mode with the given commands. */
function gdbBatch(elf: string, commands: string[], env: NodeJS.ProcessEnv, timeoutMs = 60000): Promise<{ status: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    // A serve started by `target remote |` on a loaded machine may answer after gdb's 2 s default.
    const args = ['-nx', '-batch', '-ex', 'set remotetimeout 20', ...commands.flatMap((c) => ['-ex', c]), elf];
    const child = spawn('gdb', args, { env, cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr?.on('data', (d: Buffer) => { out += d.toString(); });
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`gdb timed out:\n${out}`)); }, timeoutMs);
    child.on('close', (status) => { clearTimeout(timer); resolve({ status, out }); });
  });
}

describe('cli end to end: serve with stock gdb (real VM and stub)', function () {
  this.timeout(60000);
  let rt: ReturnType<typeof privateRuntimeDir>;
  let env: NodeJS.ProcessEnv;
  const counter = path.join(GUESTS, 'counter.elf');

  before(function () {
    if (!realVmBuilt() || !stubBuilt() || !hasGdb()) this.skip();
  });
  beforeEach(() => {
    rt = privateRuntimeDir();
    env = { ...process.env, XDG_RUNTIME_DIR: rt.dir };
  });
  afterEach(() => rt.restore());

  it('--gdb stdio: gdb attaches through a pipe, the console goes to stderr, the VM ends with gdb', async () => {
    const r = await gdbBatch(counter, [
      `target remote | ${process.execPath} ${VMM_GDBSTUB_BIN} serve ${counter} --gdb stdio --name stdio1`,
      'p/x $dr7', 'p/x $pc', 'break update_globals', 'continue', 'continue', 'p i', 'kill',
    ], env);
    expect(r.status, r.out).to.equal(0);
    expect(r.out).to.match(/\$1 = 0x400\n/);
    expect(r.out).to.match(/\$2 = 0x100000\n/);
    expect(r.out).to.match(/Breakpoint 1, update_globals \(i=2\)/);
    expect(r.out).to.match(/counter: start/); // the guest console, on serve's stderr (gdb shows it)
    expect(fs.existsSync(controlSocketPath('stdio1', env))).to.equal(false);
  });

  it('tcp: vmmctl and gdb see and change the same guest view of the debug registers', async () => {
    const port = 20000 + (process.pid % 20000);
    const serve = spawn(process.execPath, [VMM_GDBSTUB_BIN, 'serve', counter, '--gdb', `tcp:127.0.0.1:${port}`, '--name', 'tcp1'],
      { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let serveErr = '';
    serve.stderr?.on('data', (d: Buffer) => { serveErr += d.toString(); });
    const ended = new Promise<number | null>((resolve) => serve.on('close', (s) => resolve(s)));
    try {
      await waitFor(() => /waiting for gdb/.test(serveErr), 10000, 'serve to listen');
      const set = await vmmctl(['--vm', 'tcp1', '--set-dr0=0x102020', '--set-dr7=0x400'], env);
      expect(set.status, set.stderr).to.equal(0);
      const r = await gdbBatch(counter, [`target remote 127.0.0.1:${port}`, 'p/x $dr0', 'set $dr1 = 0x5000', 'disconnect'], env);
      expect(r.out).to.match(/\$1 = 0x102020\n/);
      const get = await vmmctl(['--vm', 'tcp1', '--get-dr1', '--get-rip'], env);
      expect(get.stdout).to.equal('dr1[0]\t0x0000000000005000\nrip[0]\t0x0000000000100000\n');
    } finally {
      serve.kill('SIGTERM');
      await ended;
    }
    expect(fs.existsSync(controlSocketPath('tcp1', env))).to.equal(false);
  });

  it('unix: a live server\'s socket is not taken over (135); detach lets the guest run to its end; kill says why serve ends', async () => {
    const dir = tempDir();
    const sock = path.join(dir, 'vm.sock');
    const start = () => {
      const child = spawn(process.execPath, [VMM_GDBSTUB_BIN, 'serve', counter, '--gdb', `unix:${sock}`], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let err = '';
      let out = '';
      child.stderr?.on('data', (d: Buffer) => { err += d.toString(); });
      child.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
      const done = new Promise<number | null>((resolve) => child.on('close', (st) => resolve(st)));
      return { child, done, err: () => err, out: () => out };
    };
    const first = start();
    try {
      await waitFor(() => /waiting for gdb/.test(first.err()), 10000, 'serve to listen');
      const second = start();
      expect(await second.done).to.equal(EXIT.IN_USE);
      expect(second.err()).to.contain(`unix:${sock} is already in use`);
      expect(fs.existsSync(sock)).to.equal(true);
      // the first server still serves: gdb stops in the guest, then detaches: the guest runs to its end
      const r = await gdbBatch(counter, [`target remote ${sock}`, 'break update_globals', 'continue', 'detach'], env);
      expect(r.out).to.match(/Breakpoint 1, update_globals/);
      expect(await first.done).to.equal(0);
      expect(first.out()).to.match(/counter: done/);
      expect(first.err()).to.contain('the guest ended (exit status 0) with no debugger attached; the server ends');
      // kill: serve says why it ends
      const third = start();
      await waitFor(() => /waiting for gdb/.test(third.err()), 10000, 'serve to listen');
      await gdbBatch(counter, [`target remote ${sock}`, 'kill'], env);
      expect(await third.done).to.equal(0);
      expect(third.err()).to.contain('gdb killed the VM (kill); the server ends');
    } finally {
      first.child.kill('SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('unix: a socket in a missing directory says so (135)', async () => {
    const r = await runNode(VMM_GDBSTUB_BIN, ['serve', counter, '--gdb', 'unix:/nonexistent/dir/s.sock'], { env });
    expect(r.status).to.equal(EXIT.IN_USE);
    expect(r.stderr).to.equal('vmm-gdbstub: cannot listen on unix:/nonexistent/dir/s.sock: directory /nonexistent/dir does not exist\n');
  });

  it('--version of both tools', async () => {
    for (const bin of [VMM_GDBSTUB_BIN, VMMCTL_BIN]) {
      const r = await runNode(bin, ['--version'], { env });
      expect(r.status).to.equal(0);
      expect(r.stdout).to.match(/^(vmm-gdbstub|vmmctl) \d+\.\d+\.\d+\n$/);
    }
  });
});
