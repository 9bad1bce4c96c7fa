import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { vmmGdbstubMain } from '../../cli/main';
import { EXIT } from '../../cli/exit-codes';
import { isLoopbackHost, parseGdbSpec } from '../../cli/gdb-spec';
import { GdbGuestExit, GdbServeOptions } from '../../cli/serve-options';
import { VmApi } from '../../vmm/api/vm-api';
import { VerifyOptions } from '../../cli/verify-options';
import { DR_SWITCH_MODES } from '../../vmm/api/vm-options';
import { controlSocketPath } from '../../vmm/api/control-socket';
import { vmmctlMain } from '../../cli/vmmctl-main';
import { exitAfter, fakeDeps, FakeVm } from './fake-vm';
import { capture, fakeElf, privateRuntimeDir, tempDir, waitFor } from './helpers';

describe('cli: --gdb transport specs', () => {
  it('parses tcp, unix and stdio', () => {
    expect(parseGdbSpec('tcp:127.0.0.1:1234')).to.deep.equal({ kind: 'tcp', host: '127.0.0.1', port: 1234 });
    expect(parseGdbSpec('tcp:localhost:5555')).to.deep.equal({ kind: 'tcp', host: 'localhost', port: 5555 });
    expect(parseGdbSpec('tcp::2000')).to.deep.equal({ kind: 'tcp', host: '127.0.0.1', port: 2000 });
    expect(parseGdbSpec(':2001')).to.deep.equal({ kind: 'tcp', host: '127.0.0.1', port: 2001 });
    expect(parseGdbSpec('tcp:[::1]:2002')).to.deep.equal({ kind: 'tcp', host: '::1', port: 2002 });
    expect(parseGdbSpec('unix:/tmp/g.sock')).to.deep.equal({ kind: 'unix', path: '/tmp/g.sock' });
    expect(parseGdbSpec('stdio')).to.deep.equal({ kind: 'stdio' });
  });
  it('refuses malformed specs', () => {
    for (const bad of ['tcp:', 'tcp:host', 'tcp:host:', 'tcp:host:0', 'tcp:host:65536', 'tcp:h st:1', 'tcp:[zz]:1', 'udp:x:1', 'unix:', 'stdin', '1234']) {
      expect(() => parseGdbSpec(bad), bad).to.throw(/--gdb/);
    }
  });
  it('knows loopback addresses', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', '::1']) expect(isLoopbackHost(h), h).to.equal(true);
    for (const h of ['0.0.0.0', '10.0.0.1', '::', 'example.com']) expect(isLoopbackHost(h), h).to.equal(false);
  });
});

describe('cli: vmm-gdbstub serve (fake stub)', () => {
  let dir: string;
  let elf: string;
  before(() => { dir = tempDir(); elf = fakeElf(dir); });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** A stand-in for stub/server.ts: `session` plays the gdb session; its result ends the guest. */
  function serveDeps(session: (vm: FakeVm, opts: GdbServeOptions) => Promise<GdbGuestExit>) {
    const deps = fakeDeps(exitAfter(100, 0));
    const calls: GdbServeOptions[] = [];
    let closed = 0;
    deps.startGdbServer = () => async (vm: VmApi, opts: GdbServeOptions) => {
      calls.push(opts);
      return {
        address: { kind: 'tcp' as const, host: '127.0.0.1', port: 41234 },
        guestExit: session(vm as FakeVm, opts),
        close: async () => { closed++; },
      };
    };
    return { deps, calls, closedCount: () => closed };
  }
  /** What the stub does with the console: drain it between slices into onConsoleOutput. */
  function drainConsole(vm: FakeVm, opts: GdbServeOptions): void {
    const t = vm.takeConsoleOutput();
    if (t) opts.onConsoleOutput(t);
  }

  it('defaults to tcp:127.0.0.1:1234, exits with the guest status, closes the server', async () => {
    const { deps, calls, closedCount } = serveDeps(async () => ({ kind: 'exit', status: 0x85 }));
    const out = capture();
    expect(await vmmGdbstubMain(['serve', elf], out, deps)).to.equal(5);
    expect(calls[0].transport).to.deep.equal({ kind: 'tcp', host: '127.0.0.1', port: 1234, allowRemote: false });
    expect(calls[0].trace).to.equal(undefined);
    expect(out.err).to.equal('vmm-gdbstub: waiting for gdb on tcp:127.0.0.1:41234\n');
    expect(closedCount()).to.equal(1);
  });

  it('uses the server\'s closed promise when it has one (a stdio gdb that went away ends serve, 0)', async () => {
    const deps = fakeDeps(exitAfter(100, 0));
    let closes = 0;
    deps.startGdbServer = () => async () => ({
      address: 'stdio',
      closed: Promise.resolve(undefined),
      guestExit: new Promise<GdbGuestExit>(() => {}),
      close: async () => { closes++; },
    });
    expect(await vmmGdbstubMain(['serve', elf, '--gdb', 'stdio'], capture(), deps)).to.equal(0);
    expect(closes).to.equal(1);
    deps.startGdbServer = () => async () => ({ address: '127.0.0.1:1234', closed: Promise.resolve(3), close: async () => {} });
    const out = capture();
    expect(await vmmGdbstubMain(['serve', elf], out, deps)).to.equal(3);
    expect(out.err).to.equal('vmm-gdbstub: waiting for gdb on 127.0.0.1:1234\n');
  });

  it('a gdb kill ends serve with status 0', async () => {
    const { deps } = serveDeps(async () => ({ kind: 'killed' }));
    expect(await vmmGdbstubMain(['serve', elf], capture(), deps)).to.equal(0);
  });

  it('stdio: the guest console goes to stderr, stdout stays for the protocol', async () => {
    const { deps, calls } = serveDeps(async (vm, opts) => {
      vm.console += 'guest says hi\n';
      drainConsole(vm, opts);
      vm.console += 'and bye\n';
      return { kind: 'exit', status: 0 };
    });
    const out = capture();
    expect(await vmmGdbstubMain(['serve', elf, '--gdb', 'stdio', '--trace-packets', '-'], out, deps)).to.equal(0);
    expect(calls[0].trace).to.equal('stderr');
    expect(calls[0].transport).to.deep.equal({ kind: 'stdio' });
    expect(out.out).to.equal('');
    expect(out.err).to.equal('guest says hi\nand bye\n');
  });

  it('unix: the guest console goes to stdout; --trace-packets FILE', async () => {
    const { deps, calls } = serveDeps(async (vm, opts) => { vm.console += 'console line\n'; drainConsole(vm, opts); return { kind: 'exit', status: 0 }; });
    const out = capture();
    const sock = path.join(dir, 'g.sock');
    const trace = path.join(dir, 'trace.txt');
    expect(await vmmGdbstubMain(['serve', elf, '--gdb', 'unix:' + sock, '--trace-packets', trace], out, deps)).to.equal(0);
    expect(calls[0].transport).to.deep.equal({ kind: 'unix', path: sock });
    expect(calls[0].trace).to.deep.equal({ file: trace });
    expect(out.out).to.equal('console line\n');
  });

  it('--trace-vm FILE traces the VM while it is served, closed when serve ends', async () => {
    const trace = path.join(dir, 'serve-trace.json');
    const { deps } = serveDeps(async (vm) => { vm.run([0], 10); vm.run([0], 10); return { kind: 'exit', status: 0 }; });
    expect(await vmmGdbstubMain(['serve', elf, '--trace-vm', trace], capture(), deps)).to.equal(0);
    const lines = fs.readFileSync(trace, 'utf8').trimEnd().split('\n');
    expect(lines[0]).to.equal('label guest vmx full');
    expect(lines.slice(1, -1)).to.have.length(2);
    expect(lines[lines.length - 1]).to.equal('closed');
  });

  it('a non-loopback address works with --allow-remote, with a warning', async () => {
    const { deps, calls } = serveDeps(async () => ({ kind: 'exit', status: 0 }));
    const out = capture();
    expect(await vmmGdbstubMain(['serve', elf, '--gdb', 'tcp:0.0.0.0:4321', '--allow-remote'], out, deps)).to.equal(0);
    expect(calls[0].transport).to.deep.equal({ kind: 'tcp', host: '0.0.0.0', port: 4321, allowRemote: true });
  });

  it('a port in use exits 135', async () => {
    const deps = fakeDeps(exitAfter(100, 0));
    deps.startGdbServer = () => async () => {
      throw Object.assign(new Error('listen EADDRINUSE: address already in use 127.0.0.1:1234'), { code: 'EADDRINUSE' });
    };
    const out = capture();
    expect(await vmmGdbstubMain(['serve', elf], out, deps)).to.equal(EXIT.IN_USE);
    expect(out.err).to.equal('vmm-gdbstub: tcp:127.0.0.1:1234 is already in use\n');
  });

  it('serve --name: vmmctl reaches the VM while gdb would be attached', async () => {
    const rt = privateRuntimeDir();
    try {
      let release: () => void = () => {};
      const { deps } = serveDeps(() => new Promise<GdbGuestExit>((resolve) => { release = () => resolve({ kind: 'exit', status: 0 }); }));
      const serving = vmmGdbstubMain(['serve', elf, '--name', 'srv1'], capture(), deps);
      await waitFor(() => fs.existsSync(controlSocketPath('srv1')), 5000, 'the control socket');
      const out = capture();
      expect(await vmmctlMain(['--vm', 'srv1', '--set-dr0=0x5000', '--get-dr0'], out)).to.equal(0);
      expect(out.out).to.equal('dr0[0]\t0x0000000000005000\n');
      expect(deps.created[0].reg(0, 'dr0')).to.equal(0x5000);
      release();
      expect(await serving).to.equal(0);
      expect(fs.existsSync(controlSocketPath('srv1'))).to.equal(false);
    } finally {
      rt.restore();
    }
  });
});

describe('cli: vmm-gdbstub verify (flag parsing)', () => {
  function verifyDeps(scenarios?: string[]) {
    const deps = fakeDeps(exitAfter(1, 0));
    const calls: VerifyOptions[] = [];
    deps.runVerify = () => ({ runVerify: async (o: VerifyOptions) => { calls.push(o); return 7; }, scenarios });
    return { deps, calls };
  }

  it('defaults to every backend and every dr-switch mode, and returns runVerify\'s status', async () => {
    const { deps, calls } = verifyDeps();
    expect(await vmmGdbstubMain(['verify'], capture(), deps)).to.equal(7);
    expect(calls[0]).to.deep.equal({ backends: ['vmx', 'svm'], drSwitch: [...DR_SWITCH_MODES] });
  });

  it('passes lists, files and --jobs through', async () => {
    const dir = tempDir();
    try {
      const { deps, calls } = verifyDeps(['write-watch', 'selfwatch']);
      const args = ['verify', '--backend', 'svm', '--dr-switch', 'full,none', '--dr-switch', 'no-svm-dirty',
        '--scenario', 'selfwatch', '--json', path.join(dir, 'v.json'), '--trace', path.join(dir, 't.json'), '--jobs', '2'];
      expect(await vmmGdbstubMain(args, capture(), deps)).to.equal(7);
      expect(calls[0]).to.deep.equal({
        backends: ['svm'], drSwitch: ['full', 'none', 'no-svm-dirty'], scenarios: ['selfwatch'],
        json: path.join(dir, 'v.json'), trace: path.join(dir, 't.json'), jobs: 2,
      });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a scenario the verifier does not know (exit 128, nothing run)', async () => {
    const { deps, calls } = verifyDeps(['write-watch', 'selfwatch']);
    const out = capture();
    expect(await vmmGdbstubMain(['verify', '--scenario', 'selfwatch,nonesuch'], out, deps)).to.equal(EXIT.USAGE);
    expect(out.err).to.equal("vmm-gdbstub: --scenario: unknown scenario 'nonesuch' (known: write-watch, selfwatch) (see --help)\n");
    expect(calls).to.have.length(0);
  });
});
