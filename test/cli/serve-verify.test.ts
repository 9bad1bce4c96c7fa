import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { vmmGdbstubMain } from '../../cli/main';
import { EXIT } from '../../cli/exit-codes';
import { isLoopbackHost, parseGdbSpec } from '../../cli/gdb-spec';
import { GdbServeOptions } from '../../cli/serve-options';
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

  function serveDeps(onStart: (vm: FakeVm, opts: GdbServeOptions) => Promise<number>) {
    const deps = fakeDeps(exitAfter(100, 0));
    const calls: GdbServeOptions[] = [];
    deps.startGdbServer = () => async (vm: unknown, opts: GdbServeOptions) => {
      calls.push(opts);
      return { address: 'ADDR', closed: onStart(vm as FakeVm, opts) };
    };
    return { deps, calls };
  }

  it('defaults to tcp:127.0.0.1:1234 and ends with the status the server gives', async () => {
    const { deps, calls } = serveDeps(async () => 0);
    const out = capture();
    expect(await vmmGdbstubMain(['serve', elf], out, deps)).to.equal(0);
    expect(calls[0].transport).to.deep.equal({ kind: 'tcp', host: '127.0.0.1', port: 1234 });
    expect(calls[0].allowRemote).to.equal(false);
    expect(calls[0].tracePackets).to.equal(undefined);
    expect(out.err).to.equal('vmm-gdbstub: waiting for gdb on ADDR\n');
  });

  it('stdio: the guest console goes to stderr, stdout stays for the protocol', async () => {
    const { deps, calls } = serveDeps(async (vm) => {
      vm.console += 'guest says hi\n';
      await new Promise((r) => setTimeout(r, 60)); // the CLI drains the console on a timer
      vm.console += 'and bye\n';
      return 0;
    });
    const out = capture();
    expect(await vmmGdbstubMain(['serve', elf, '--gdb', 'stdio', '--trace-packets', '-'], out, deps)).to.equal(0);
    expect(calls[0]).to.include({ tracePackets: '-' });
    expect(calls[0].transport).to.deep.equal({ kind: 'stdio' });
    expect(out.out).to.equal('');
    expect(out.err).to.equal('guest says hi\nand bye\n');
  });

  it('tcp: the guest console goes to stdout', async () => {
    const { deps } = serveDeps(async (vm) => { vm.console += 'console line\n'; return 0; });
    const out = capture();
    expect(await vmmGdbstubMain(['serve', elf, '--gdb', 'unix:' + path.join(dir, 'g.sock')], out, deps)).to.equal(0);
    expect(out.out).to.equal('console line\n');
  });

  it('a non-loopback address works with --allow-remote, with a warning', async () => {
    const { deps, calls } = serveDeps(async () => 0);
    const out = capture();
    expect(await vmmGdbstubMain(['serve', elf, '--gdb', 'tcp:0.0.0.0:4321', '--allow-remote'], out, deps)).to.equal(0);
    expect(calls[0]).to.deep.include({ allowRemote: true, transport: { kind: 'tcp', host: '0.0.0.0', port: 4321 } });
    expect(out.err).to.match(/warning: serving gdb on tcp:0.0.0.0:4321, reachable from other machines/);
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
      const { deps } = serveDeps(() => new Promise<number>((resolve) => { release = () => resolve(0); }));
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
