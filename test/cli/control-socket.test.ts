import { expect } from 'chai';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { vmmGdbstubMain } from '../../cli/main';
import { vmmctlMain } from '../../cli/vmmctl-main';
import { EXIT } from '../../cli/exit-codes';
import {
  controlSocketDir, controlSocketPath, ensurePrivateDir, handleControlLine, LineReader, MAX_REQUEST_BYTES, startControlSocket,
  ControlSocketError,
} from '../../vmm/api/control-socket';
import { DEFAULT_VM_OPTIONS } from '../../vmm/api/vm-options';
import { u64 } from '../../vmm/u64';
import { FakeVm, exitAfter, fakeDeps, untilDr7 } from './fake-vm';
import { capture, fakeElf, privateRuntimeDir, runNode, tempDir, VMMCTL_BIN, waitFor } from './helpers';

function fakeVm(vcpus = 2): FakeVm {
  return new FakeVm({ ...DEFAULT_VM_OPTIONS, vcpus }, exitAfter(10, 0));
}

/** A socket file whose owner died: bound, never listened, left behind. */
function staleSocket(p: string): void {
  const r = spawnSync(process.execPath, ['-e',
    `const s=require('net').createServer().listen(${JSON.stringify(p)},()=>process.kill(process.pid,'SIGKILL'))`]);
  if (r.signal !== 'SIGKILL' || !fs.existsSync(p)) throw new Error('could not make a stale socket');
}

describe('control socket: requests (handleControlLine)', () => {
  it('reads and writes guest-view registers of the given vCPU', () => {
    const vm = fakeVm();
    const r = handleControlLine(vm, JSON.stringify({ id: 5, op: 'registers', cpu: 1, set: [{ reg: 'dr7', value: '0x401' }], get: ['dr7', 'rdi', 'dr6'] }));
    expect(r).to.deep.equal({ id: 5, ok: true, result: { cpu: 1, values: [
      { reg: 'dr7', value: '0x401' }, { reg: 'rdi', value: '0x1' }, { reg: 'dr6', value: '0xffff0ff0' },
    ] } });
    expect(vm.reg(1, 'dr7')).to.equal(0x401);
    expect(vm.reg(0, 'dr7')).to.equal(0x400);
  });

  it('is all or nothing: a refused write undoes the writes before it', () => {
    const vm = fakeVm();
    const r = handleControlLine(vm, JSON.stringify({ id: 1, op: 'registers', cpu: 0, set: [
      { reg: 'dr0', value: '0x1000' }, { reg: 'dr7', value: '0x100000401' },
    ], get: ['dr0'] }));
    expect(r.ok).to.equal(false);
    expect(r.ok === false && r.error.code).to.equal('bad-value');
    expect(r.ok === false && r.error.message).to.match(/cannot set dr7 of vCPU 0 to 0x100000401: dr7 bits 63:32 must be zero/);
    expect(vm.reg(0, 'dr0')).to.equal(0);
  });

  it('checks every name, value and the vCPU before writing anything', () => {
    const vm = fakeVm();
    const cases: Array<[object, RegExp]> = [
      [{ op: 'registers', cpu: 2, set: [{ reg: 'dr0', value: '1' }] }, /no vCPU 2 \(this VM has vCPUs 0-1\)/],
      [{ op: 'registers', cpu: -1, get: ['dr0'] }, /no vCPU -1/],
      [{ op: 'registers', cpu: '0', get: ['dr0'] }, /no vCPU "0"/],
      [{ op: 'registers', set: [{ reg: 'dr0', value: '1' }, { reg: 'dr5', value: '1' }] }, /unknown register 'dr5'/],
      [{ op: 'registers', set: [{ reg: 'dr0', value: '1' }, { reg: 'dr1', value: 'x' }] }, /'x' is not a 64-bit value for dr1/],
      [{ op: 'registers', set: [{ reg: 'dr0', value: '1' }], get: ['nope'] }, /unknown register "nope"/],
      [{ op: 'registers', set: 'dr0' }, /must be arrays/],
      [{ op: 'launch-missiles' }, /unknown op "launch-missiles"/],
    ];
    for (const [req, message] of cases) {
      const r = handleControlLine(vm, JSON.stringify(req));
      expect(r.ok, JSON.stringify(req)).to.equal(false);
      expect(r.ok === false && r.error.message).to.match(message);
    }
    expect(handleControlLine(vm, 'not json').ok).to.equal(false);
    expect(handleControlLine(vm, '[1,2]').ok).to.equal(false);
    expect(vm.setLog).to.deep.equal([]);
  });

  it('answers stats, leaks, info and debug-state', () => {
    const vm = fakeVm();
    vm.instructions = 77;
    vm.leakList.push({ transition: 3, vcpu: 1, register: 'dr0', expected: '0x0', actual: '0x1000', side: 'guest', when: 'exit' });
    const stats = handleControlLine(vm, '{"op":"stats"}');
    expect(stats.ok && stats.result).to.include({ instructions: 77, leaks: 1 });
    const leaks = handleControlLine(vm, '{"op":"leaks"}');
    expect(leaks.ok && leaks.result).to.deep.equal(vm.leakList);
    const info = handleControlLine(vm, '{"op":"info"}', { name: 'x' });
    expect(info.ok && info.result).to.deep.include({ name: 'x', backend: 'vmx', vcpuCount: 2 });
    const ds = handleControlLine(vm, '{"op":"debug-state","cpu":1}');
    expect(ds.ok && ds.result).to.equal('vCPU 1 guest dr7=0x400');
  });
});

describe('control socket: files and permissions', () => {
  let rt: ReturnType<typeof privateRuntimeDir>;
  beforeEach(() => { rt = privateRuntimeDir(); });
  afterEach(() => rt.restore());

  it('lives in $XDG_RUNTIME_DIR/vmm-gdbstub (0700), the socket 0600, removed on close', async () => {
    const server = await startControlSocket(fakeVm(), 'perm1');
    try {
      expect(server.path).to.equal(path.join(rt.dir, 'vmm-gdbstub', 'perm1.sock'));
      expect(controlSocketPath('perm1')).to.equal(server.path);
      expect(fs.statSync(path.dirname(server.path)).mode & 0o777).to.equal(0o700);
      expect(fs.statSync(server.path).mode & 0o777).to.equal(0o600);
      expect(fs.statSync(server.path).isSocket()).to.equal(true);
    } finally {
      await server.close();
    }
    expect(fs.existsSync(server.path)).to.equal(false);
  });

  it('without XDG_RUNTIME_DIR uses a per-user directory in tmp', () => {
    const uid = process.getuid ? process.getuid() : 0;
    expect(controlSocketDir({})).to.match(new RegExp(`vmm-gdbstub-${uid}$`));
  });

  it('tightens a directory others can enter, refuses one another user owns', function () {
    const d = path.join(rt.dir, 'loose');
    fs.mkdirSync(d, { mode: 0o755 });
    fs.chmodSync(d, 0o755);
    ensurePrivateDir(d);
    expect(fs.statSync(d).mode & 0o777).to.equal(0o700);
    if (!process.getuid || process.getuid() !== 0) this.skip(); // chown to another user needs root
    const other = path.join(rt.dir, 'other');
    fs.mkdirSync(other, { mode: 0o700 });
    fs.chownSync(other, 4242, 4242);
    expect(() => ensurePrivateDir(other)).to.throw(ControlSocketError, /belongs to another user \(uid 4242\)/);
  });

  it('removes a stale socket of a dead VM and takes the name', async () => {
    const p = controlSocketPath('stale1');
    ensurePrivateDir(path.dirname(p));
    staleSocket(p);
    const out = capture();
    expect(await vmmctlMain(['--vm', 'stale1', '--get-dr7'], out)).to.equal(EXIT.NO_SUCH_VM);
    expect(out.err).to.match(/no VM named 'stale1' is running \(stale control socket .* of a VM that ended\)/);
    const server = await startControlSocket(fakeVm(), 'stale1');
    try {
      const out2 = capture();
      expect(await vmmctlMain(['--vm', 'stale1', '--get-dr7'], out2)).to.equal(0);
      expect(out2.out).to.equal('dr7[0]\t0x0000000000000400\n');
    } finally {
      await server.close();
    }
  });

  it('refuses a name a live VM holds, and a path that is not a socket', async () => {
    const first = await startControlSocket(fakeVm(), 'dup1');
    try {
      let err: unknown;
      try { await startControlSocket(fakeVm(), 'dup1'); } catch (e) { err = e; }
      expect(err).to.be.instanceOf(ControlSocketError);
      expect((err as ControlSocketError).inUse).to.equal(true);
      expect((err as Error).message).to.match(/a VM named 'dup1' is already running/);
      // the first one still answers
      const out = capture();
      expect(await vmmctlMain(['--vm', 'dup1', '--get-rip'], out)).to.equal(0);
      expect(out.out).to.equal('rip[0]\t0x0000000000100000\n');
    } finally {
      await first.close();
    }
    fs.writeFileSync(controlSocketPath('file1'), 'x');
    let err2: unknown;
    try { await startControlSocket(fakeVm(), 'file1'); } catch (e) { err2 = e; }
    expect((err2 as Error).message).to.match(/exists and is not a socket/);
    expect(fs.readFileSync(controlSocketPath('file1'), 'utf8')).to.equal('x');
  });

  it('vmmctl --list names the running VMs, not the stale ones; an unknown VM error lists them', async () => {
    const a = await startControlSocket(fakeVm(), 'list-b');
    const b = await startControlSocket(fakeVm(), 'list-a');
    staleSocket(controlSocketPath('list-dead'));
    try {
      const out = capture();
      expect(await vmmctlMain(['--list'], out)).to.equal(0);
      expect(out.out).to.equal('list-a\nlist-b\n');
      const err = capture();
      expect(await vmmctlMain(['--vm', 'list-c', '--get-rip'], err)).to.equal(EXIT.NO_SUCH_VM);
      expect(err.err).to.match(/no VM named 'list-c' is running .*; running VMs: list-a, list-b\n$/);
    } finally {
      await a.close();
      await b.close();
    }
    const none = capture();
    expect(await vmmctlMain(['--list'], none)).to.equal(0);
    expect(none.out).to.equal('');
  });

  it('survives garbage and an over-long request on a connection', async () => {
    const server = await startControlSocket(fakeVm(), 'junk1');
    try {
      const reply = await new Promise<string>((resolve, reject) => {
        const s = net.connect(server.path);
        let data = '';
        s.on('data', (d) => { data += d.toString(); });
        s.on('close', () => resolve(data));
        s.on('error', reject);
        s.write('{"op":\n');
        s.write('x'.repeat(70 * 1024));
      });
      const lines = reply.trim().split('\n').map((l) => JSON.parse(l));
      expect(lines[0].ok).to.equal(false);
      expect(lines[lines.length - 1].error.message).to.equal('request too long');
      const out = capture();
      expect(await vmmctlMain(['--vm', 'junk1', '--get-dr6'], out)).to.equal(0);
      expect(out.out).to.equal('dr6[0]\t0x00000000ffff0ff0\n');
    } finally {
      await server.close();
    }
  });
});

describe('vmmctl against `vmm-gdbstub run --name` (fake VM)', () => {
  let rt: ReturnType<typeof privateRuntimeDir>;
  let dir: string;
  let elf: string;
  beforeEach(() => { rt = privateRuntimeDir(); dir = tempDir(); elf = fakeElf(dir); });
  afterEach(() => { rt.restore(); fs.rmSync(dir, { recursive: true, force: true }); });

  it('reads DR7, writes DR7=0x401, and the guest sees it (its exit status says so)', async () => {
    const deps = fakeDeps(untilDr7(0x401, 11));
    const runOut = capture();
    const running = vmmGdbstubMain(['run', elf, '--name', 'demo1', '--vcpus', '2'], runOut, deps);
    const sock = controlSocketPath('demo1');
    await waitFor(() => fs.existsSync(sock), 5000, 'the control socket');

    const get = capture();
    expect(await vmmctlMain(['--vm', 'demo1', '--get-dr7', '--get-dr6', '--get-rsi'], get)).to.equal(0);
    expect(get.out).to.equal('dr7[0]\t0x0000000000000400\ndr6[0]\t0x00000000ffff0ff0\nrsi[0]\t0x0000000000000002\n');

    // A bad value changes nothing and the VM keeps running.
    const bad = capture();
    expect(await vmmctlMain(['--vm', 'demo1', '--set-dr0=0x2000', '--set-dr7=0xffffffff00000401'], bad)).to.equal(EXIT.USAGE);
    expect(bad.err).to.match(/^vmmctl: cannot set dr7 of vCPU 0 to 0xffffffff00000401: dr7 bits 63:32 must be zero/);
    expect(deps.created[0].reg(0, 'dr0')).to.equal(0);
    const badCpu = capture();
    expect(await vmmctlMain(['--vm', 'demo1', '--cpu', '5', '--set-dr7=0x401'], badCpu)).to.equal(EXIT.USAGE);
    expect(badCpu.err).to.match(/no vCPU 5 \(this VM has vCPUs 0-1\)/);

    const set = capture();
    expect(await vmmctlMain(['--vm', 'demo1', '--set-dr7=0x401', '--get-dr7'], set)).to.equal(0);
    expect(set.out).to.equal('dr7[0]\t0x0000000000000401\n');
    expect(await running).to.equal(11);
    expect(runOut.out).to.equal('dr7 is 0x401\n');
    expect(fs.existsSync(sock)).to.equal(false);
  });

  it('--cpu selects the vCPU; --get-stats and --get-leaks print bhyvectl-style lines', async () => {
    const deps = fakeDeps((vm, budget) => {
      vm.instructions += 500;
      vm.countExit('cpuid');
      if (vm.leakList.length === 0) {
        vm.leakList.push({ transition: 9, vcpu: 1, register: 'dr0', expected: '0x0', actual: '0x1000', side: 'guest', when: 'exit' });
      }
      return vm.reg(1, 'rax') === 0x99 ? { kind: 'exit', vcpu: 1, status: 0 } : { kind: 'slice', vcpu: 0 };
    });
    const running = vmmGdbstubMain(['run', elf, '--name', 'demo2', '--vcpus', '2'], capture(), deps);
    await waitFor(() => fs.existsSync(controlSocketPath('demo2')), 5000, 'the control socket');
    const out = capture();
    expect(await vmmctlMain(['--vm', 'demo2', '--cpu', '1', '--get-rdi', '--get-stats', '--get-leaks'], out)).to.equal(0);
    const lines = out.out.split('\n');
    expect(lines[0]).to.equal('rdi[1]\t0x0000000000000001');
    expect(out.out).to.match(/^instructions retired\t[0-9]+$/m);
    expect(out.out).to.match(/^vm exits \(cpuid\)\t[0-9]+$/m);
    expect(out.out).to.match(/^debug-state leaks\t1$/m);
    expect(out.out).to.match(/^leak\[0\]\ttransition 9 vCPU 1 at exit: dr0 expected 0x0 actual 0x1000 \(guest value in the host\)$/m);
    const all = capture();
    expect(await vmmctlMain(['--vm', 'demo2', '--get-all'], all)).to.equal(0);
    expect(all.out.split('\n')[0]).to.equal('dr0[0]\t0x0000000000000000');
    expect(all.out).to.match(/^dr7\[0\]\t0x0000000000000400$/m);
    expect(all.out).to.match(/^rflags\[0\]\t0x0000000000000002$/m);
    expect(all.out.trimEnd().split('\n')).to.have.length(25);
    // Through the installed launcher too.
    const r = await runNode(VMMCTL_BIN, ['--vm', 'demo2', '--cpu', '1', '--set-rax=0x99']);
    expect(r.status).to.equal(0);
    expect(r.stdout).to.equal('');
    expect(await running).to.equal(0);
  });

  it('a second run with the same --name exits 135 and leaves the first alone', async () => {
    const first = vmmGdbstubMain(['run', elf, '--name', 'dup2'], capture(), fakeDeps(untilDr7(0x403, 0)));
    await waitFor(() => fs.existsSync(controlSocketPath('dup2')), 5000, 'the control socket');
    const deps2 = fakeDeps(exitAfter(10, 0));
    const out = capture();
    expect(await vmmGdbstubMain(['run', elf, '--name', 'dup2'], out, deps2)).to.equal(EXIT.IN_USE);
    expect(out.err).to.match(/^vmm-gdbstub: a VM named 'dup2' is already running/);
    expect(deps2.created).to.have.length(0); // refused before the VM was made
    expect(await vmmctlMain(['--vm', 'dup2', '--set-dr7=0x403'], capture())).to.equal(0);
    expect(await first).to.equal(0);
  });
});

describe('control socket: bounds (issue 12)', () => {
  let rt: ReturnType<typeof privateRuntimeDir>;
  beforeEach(() => { rt = privateRuntimeDir(); });
  afterEach(() => rt.restore());

  it('splits request lines in linear time: a 60 KiB line sent byte by byte', () => {
    const reader = new LineReader(MAX_REQUEST_BYTES);
    const line = '{"id":1,"op":"info","pad":"' + 'x'.repeat(60 * 1024) + '"}';
    const t0 = Date.now();
    let accepted = true;
    for (const ch of line + '\n{"id":2}\n') accepted = reader.push(ch) && accepted;
    const ms = Date.now() - t0;
    expect(accepted).to.equal(true);
    expect(reader.next()).to.equal(line);
    expect(reader.next()).to.equal('{"id":2}');
    expect(reader.next()).to.equal(undefined);
    // the joined-string version took seconds for half this (re-scanning the whole line per byte)
    expect(ms, `${ms} ms`).to.be.lessThan(1000);
    expect(reader.push('y'.repeat(MAX_REQUEST_BYTES + 1))).to.equal(false);
  });

  it('a client that sends requests and never reads the answers costs bounded memory; others are served', async function () {
    this.timeout(60000);
    const v8 = await import('node:v8');
    const vmContext = await import('node:vm');
    v8.setFlagsFromString('--expose-gc');
    const gc = vmContext.runInNewContext('gc') as () => void;
    const live = (): number => { gc(); return process.memoryUsage().arrayBuffers + process.memoryUsage().heapUsed; };
    const server = await startControlSocket(fakeVm(), 'flood1');
    try {
      const flood = net.connect(server.path);
      await new Promise((r) => flood.once('connect', r));
      flood.pause(); // never reads
      const before = live();
      const request = Buffer.from('{"id":1,"op":"debug-state","cpu":0}\n'.repeat(1000));
      const deadline = Date.now() + 4000;
      let sent = 0;
      while (sent < 200 && Date.now() < deadline) {
        if (!flood.write(request)) {
          const drained = await Promise.race([new Promise<boolean>((r) => flood.once('drain', () => r(true))),
            new Promise<boolean>((r) => setTimeout(() => r(false), 500))]);
          if (!drained) break;
        }
        sent++;
      }
      // another vmmctl is answered meanwhile
      const t0 = Date.now();
      const out = capture();
      expect(await vmmctlMain(['--vm', 'flood1', '--get-dr7'], out)).to.equal(0);
      expect(Date.now() - t0).to.be.lessThan(3000);
      const grown = live() - before;
      // before: every request was read and its answer queued (41 MiB for these 200k)
      expect(sent, 'the server stops reading while its answers are not read').to.be.lessThan(200);
      expect(grown, `grew ${(grown / 1048576).toFixed(1)} MiB after ${sent}k requests`).to.be.lessThan(16 * 1048576);
      flood.destroy();
    } finally {
      await server.close();
    }
  });
});
