import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { vmmGdbstubMain } from '../../cli/main';
import { parseVmmctlArgs, vmmctlMain } from '../../cli/vmmctl-main';
import { EXIT } from '../../cli/exit-codes';
import { UsageError } from '../../cli/exit-codes';
import { vmOptionsFromArgs } from '../../cli/vm-options-cli';
import { DEFAULT_VM_OPTIONS } from '../../vmm/api/vm-options';
import { exitAfter, fakeDeps } from './fake-vm';
import { capture, fakeElf, runNode, tempDir, VMM_GDBSTUB_BIN, VMMCTL_BIN } from './helpers';

describe('cli: argument validation', () => {
  let dir: string;
  let elf: string;
  before(() => { dir = tempDir(); elf = fakeElf(dir); });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  // Each bad command line: exit 128, one line on stderr naming the problem, no VM created.
  const bad: Array<[string, (elf: string) => string[], RegExp]> = [
    ['no command', () => [], /give a command: run, serve, verify or hostcheck/],
    ['unknown command', () => ['frobnicate'], /unknown command 'frobnicate'/],
    ['run without a guest', () => ['run'], /missing the guest ELF file/],
    ['unknown flag', (e) => ['run', e, '--bogus'], /Unknown argument: bogus/],
    ['camelCase spelling of a flag', (e) => ['run', e, '--drSwitch', 'none'], /Unknown argument: drSwitch/],
    ['extra positional', (e) => ['run', e, 'other.elf'], /Unknown argument: other.elf/],
    ['bad backend', (e) => ['run', e, '--backend', 'xen'], /--backend must be one of vmx, svm, kvm, not 'xen'/],
    ['bad dr-switch', (e) => ['run', e, '--dr-switch', 'half'], /--dr-switch must be one of full, none, .*not 'half'/],
    ['zero vcpus', (e) => ['run', e, '--vcpus', '0'], /--vcpus must be a whole number from 1 to 16, not '0'/],
    ['too many vcpus', (e) => ['run', e, '--vcpus', '17'], /--vcpus must be a whole number from 1 to 16/],
    ['fractional vcpus', (e) => ['run', e, '--vcpus', '1.5'], /--vcpus must be a whole number/],
    ['vcpus given twice', (e) => ['run', e, '--vcpus', '1', '--vcpus', '2'], /--vcpus given more than once/],
    ['vcpus without a value', (e) => ['run', e, '--vcpus'], /Not enough arguments following: vcpus/],
    ['mem not a number', (e) => ['run', e, '--mem', 'lots'], /--mem must be a whole number from 1 to 2048, not 'lots'/],
    ['mem too large', (e) => ['run', e, '--mem', '4096'], /--mem must be a whole number from 1 to 2048/],
    ['mem too small for the stacks', (e) => ['run', e, '--mem', '1', '--vcpus', '16'], /--mem 1 is too small for 16 vCPUs/],
    ['negative preempt-every', (e) => ['run', e, '--preempt-every', '-1'], /--preempt-every must be a whole number from 0/],
    ['unknown host scenario', (e) => ['run', e, '--host-scenario', 'busy'], /--host-scenario must be one of idle, host-watch, kdb-step, kdb-determined, not 'busy'/],
    ['bad VM name', (e) => ['run', e, '--name', '../etc'], /--name: '..\/etc' is not a valid VM name/],
    ['--json into a missing directory', (e) => ['run', e, '--json', '/nonexistent-dir/x.json'], /--json \/nonexistent-dir\/x.json: cannot write there/],
    ['--stats with a value', (e) => ['run', e, '--stats=yes'], /--stats takes no value|Unknown argument/],
    ['--no-jit with a value', (e) => ['run', e, '--no-jit=3'], /--no-jit takes no value/],
    ['--serial-input without a file', (e) => ['run', e, '--serial-input'], /Not enough arguments following: serial-input/],
    ['--serial-input: a missing file', (e) => ['run', e, '--serial-input', '/nonexistent-dir/in.txt'], /--serial-input \/nonexistent-dir\/in.txt: no such file/],
    ['--serial-input: a directory', (e) => ['run', e, '--serial-input', '/'], /--serial-input \/: is a directory/],
    ['serve: --serial-input - with --gdb stdio', (e) => ['serve', e, '--gdb', 'stdio', '--serial-input', '-'], /stdin carries the gdb protocol/],
    ['serve: bad --gdb', (e) => ['serve', e, '--gdb', 'http://x'], /--gdb must be tcp:HOST:PORT, unix:PATH or stdio/],
    ['serve: bad port', (e) => ['serve', e, '--gdb', 'tcp:127.0.0.1:70000'], /port must be 1-65535/],
    ['serve: non-loopback without --allow-remote', (e) => ['serve', e, '--gdb', 'tcp:0.0.0.0:1234'], /non-loopback address.*--allow-remote/],
    ['serve: empty unix path', (e) => ['serve', e, '--gdb', 'unix:'], /needs a socket path/],
    ['serve: bad VM option', (e) => ['serve', e, '--backend', 'vmx,svm'], /--backend must be one of vmx, svm/],
    ['verify: bad backend in list', () => ['verify', '--backend', 'vmx,foo'], /--backend takes a comma-separated list of vmx, svm, kvm, not 'foo'/],
    ['verify: bad dr-switch in list', () => ['verify', '--dr-switch', 'full,bogus'], /--dr-switch takes a comma-separated list/],
    ['verify: bad scenario name', () => ['verify', '--scenario', 'a b'], /--scenario: 'a b' is not a scenario name/],
    ['verify: bad jobs', () => ['verify', '--jobs', '0'], /--jobs must be a whole number from 1/],
    ['verify: positional', () => ['verify', 'x'], /Unknown argument: x|unexpected argument 'x'/],
  ];
  for (const [what, args, message] of bad) {
    it(`${what} -> exit 128, a one-line error, nothing started`, async () => {
      const deps = fakeDeps(exitAfter(10, 0));
      const out = capture();
      const status = await vmmGdbstubMain(args(elf), out, deps);
      expect(status).to.equal(EXIT.USAGE);
      expect(out.err).to.match(message);
      expect(out.err.trimEnd().split('\n')).to.have.length(1);
      expect(out.err).to.match(/^vmm-gdbstub: /);
      expect(out.out).to.equal('');
      expect(deps.created).to.have.length(0);
    });
  }

  it('--no-jit is a switch (no value follows it): the VM is created with the compiler off', async () => {
    const deps = fakeDeps(exitAfter(10, 0));
    expect(await vmmGdbstubMain(['run', '--no-jit', elf], capture(), deps)).to.equal(0);
    expect(deps.created).to.have.length(1);
    expect(deps.created[0].options.jit).to.equal(false);
  });

  it('VM options default to the CONTRACT values', () => {
    expect(vmOptionsFromArgs({})).to.deep.equal(DEFAULT_VM_OPTIONS);
    expect(DEFAULT_VM_OPTIONS).to.deep.equal({
      backend: 'vmx', drSwitch: 'full', vcpus: 1, memMiB: 64, preemptEvery: 0, hostScenario: 'idle',
    });
  });

  it('accepts every documented VM option value', () => {
    const o = vmOptionsFromArgs({
      backend: 'svm', 'dr-switch': 'no-svm-dirty', vcpus: '4', mem: '128', 'preempt-every': '1000', 'host-scenario': 'kdb-determined',
    });
    expect(o).to.deep.equal({ backend: 'svm', drSwitch: 'no-svm-dirty', vcpus: 4, memMiB: 128, preemptEvery: 1000, hostScenario: 'kdb-determined' });
  });

  const badVmmctl: Array<[string, string[], RegExp]> = [
    ['no --vm', ['--get-dr7'], /--vm NAME is required/],
    ['nothing to do', ['--vm', 'x'], /nothing to do/],
    ['unknown register', ['--vm', 'x', '--get-dr5'], /Unknown argument: get-dr5/],
    ['unknown flag', ['--vm', 'x', '--get-dr7', '--frob'], /Unknown argument: frob/],
    ['set without a value', ['--vm', 'x', '--set-dr7'], /Not enough arguments following: set-dr7/],
    ['value not a number', ['--vm', 'x', '--set-dr7=0xZZ'], /--set-dr7: '0xZZ' is not a 64-bit value/],
    ['value wider than 64 bits', ['--vm', 'x', '--set-rax=0x1ffffffffffffffff'], /not a 64-bit value/],
    ['negative value', ['--vm', 'x', '--set-rax=-1'], /not a 64-bit value|Unknown argument/],
    ['same register set twice', ['--vm', 'x', '--set-dr7=1', '--set-dr7=2'], /--set-dr7 given more than once/],
    ['get with a value', ['--vm', 'x', '--get-dr7=1'], /--get-dr7 takes no value/],
    ['negative cpu', ['--vm', 'x', '--cpu', '-1', '--get-dr7'], /--cpu must be a whole number/],
    ['bad VM name', ['--vm', 'a/b', '--get-dr7'], /--vm: 'a\/b' is not a valid VM name/],
  ];
  for (const [what, args, message] of badVmmctl) {
    it(`vmmctl: ${what} -> exit 128, a one-line error`, async () => {
      const out = capture();
      const status = await vmmctlMain(args, out);
      expect(status).to.equal(EXIT.USAGE);
      expect(out.err).to.match(message);
      expect(out.err).to.match(/^vmmctl: /);
      expect(out.err.trimEnd().split('\n')).to.have.length(1);
      expect(out.out).to.equal('');
    });
  }

  it('vmmctl keeps the command-line order of reads and does writes first', async () => {
    const req = await parseVmmctlArgs(['--vm', 'v1', '--cpu', '2', '--get-rip', '--set-dr0=0x1000', '--get-dr7', '--set-dr7', '0x401', '--get-rip']);
    expect(req).to.deep.equal({
      vm: 'v1', cpu: 2, gets: ['rip', 'dr7'], stats: false, leaks: false, debugState: false,
      sets: [{ reg: 'dr0', value: '0x1000' }, { reg: 'dr7', value: '0x401' }],
    });
  });

  it('parseVmmctlArgs throws UsageError, never a yargs error', async () => {
    let err: unknown;
    try { await parseVmmctlArgs(['--vm']); } catch (e) { err = e; }
    expect(err).to.be.instanceOf(UsageError);
  });

  describe('the installed launchers', function () {
    this.timeout(20000);
    it('vmm-gdbstub: a bad flag exits 128 with one line on stderr', async () => {
      const r = await runNode(VMM_GDBSTUB_BIN, ['run', 'x.elf', '--vcpus', 'many']);
      expect(r.status).to.equal(128);
      expect(r.stderr).to.equal("vmm-gdbstub: --vcpus must be a whole number from 1 to 16, not 'many' (see --help)\n");
      expect(r.stdout).to.equal('');
    });
    it('vmm-gdbstub: a missing guest file exits 129', async function () {
      // Needs the ELF loader and the VM (branches guests, hv); otherwise 134 "not available".
      const r = await runNode(VMM_GDBSTUB_BIN, ['run', path.join(dir, 'missing.elf')]);
      expect(r.status).to.be.oneOf([EXIT.BAD_ELF, EXIT.INTERNAL]);
      expect(r.stderr.trimEnd().split('\n')).to.have.length(1);
      if (r.status === EXIT.BAD_ELF) expect(r.stderr).to.match(/cannot read guest .*missing.elf: no such file/);
      else expect(r.stderr).to.match(/not available in this build/);
    });
    for (const args of [['--help'], ['run', '--help'], ['serve', '--help'], ['verify', '--help']]) {
      it(`vmm-gdbstub ${args.join(' ')} prints usage and exits 0`, async () => {
        const r = await runNode(VMM_GDBSTUB_BIN, args);
        expect(r.status).to.equal(0);
        expect(r.stdout).to.match(/vmm-gdbstub/);
        expect(r.stdout).to.match(/--help/);
        if (args[0] === 'run') expect(r.stdout).to.match(/--dr-switch[\s\S]*--stats[\s\S]*--json/);
        if (args[0] === 'serve') expect(r.stdout).to.match(/--gdb[\s\S]*--allow-remote[\s\S]*--trace-packets/);
        if (args[0] === 'verify') expect(r.stdout).to.match(/--backend[\s\S]*--scenario[\s\S]*--trace[\s\S]*KVM_UNIT_TESTS_DIR/);
      });
    }
    it('vmmctl --help prints usage and exits 0', async () => {
      const r = await runNode(VMMCTL_BIN, ['--help']);
      expect(r.status).to.equal(0);
      expect(r.stdout).to.match(/--vm[\s\S]*--get-dr7[\s\S]*--set-dr7/);
    });
    it('vmmctl: an unknown VM exits 136 with one line', async () => {
      const xdg = tempDir('vmm-xdg-');
      try {
        const r = await runNode(VMMCTL_BIN, ['--vm', 'nosuchvm', '--get-dr7'], { env: { ...process.env, XDG_RUNTIME_DIR: xdg } });
        expect(r.status).to.equal(EXIT.NO_SUCH_VM);
        expect(r.stderr).to.match(/^vmmctl: no VM named 'nosuchvm' is running/);
        expect(r.stderr.trimEnd().split('\n')).to.have.length(1);
      } finally {
        fs.rmSync(xdg, { recursive: true, force: true });
      }
    });
  });
});
