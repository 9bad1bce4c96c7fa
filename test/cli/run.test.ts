import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { vmmGdbstubMain } from '../../cli/main';
import { EXIT } from '../../cli/exit-codes';
import { VmStop } from '../../vmm/api/vm-api';
import { exitAfter, fakeDeps, stopsWith } from './fake-vm';
import { capture, fakeElf, tempDir } from './helpers';

describe('cli: vmm-gdbstub run (fake VM)', () => {
  let dir: string;
  let elf: string;
  before(() => { dir = tempDir(); elf = fakeElf(dir); });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('prints the guest console on stdout and exits with the guest status', async () => {
    const deps = fakeDeps(exitAfter(1_000_000, 42, 'counter: 1\n'));
    const out = capture();
    const status = await vmmGdbstubMain(['run', elf], out, deps);
    expect(status).to.equal(42);
    expect(out.out).to.equal('counter: 1\n');
    expect(out.err).to.equal('');
    expect(deps.created).to.have.length(1);
    expect(deps.created[0].instructions).to.equal(1_000_000);
  });

  it('passes the VM options through to createVm', async () => {
    const deps = fakeDeps(exitAfter(10, 0));
    await vmmGdbstubMain(['run', elf, '--backend', 'svm', '--dr-switch', 'none', '--vcpus', '2', '--mem', '16',
      '--preempt-every', '5000', '--host-scenario', 'host-watch'], capture(), deps);
    expect(deps.created[0].options).to.deep.equal({
      backend: 'svm', drSwitch: 'none', vcpus: 2, memMiB: 16, preemptEvery: 5000, hostScenario: 'host-watch',
    });
  });

  it('runs in slices and yields to the event loop between them', async () => {
    const deps = fakeDeps(exitAfter(50_000_000, 0));
    let ticks = 0;
    const timer = setInterval(() => { ticks++; }, 0);
    try {
      expect(await vmmGdbstubMain(['run', elf], capture(), deps)).to.equal(0);
    } finally {
      clearInterval(timer);
    }
    expect(deps.created[0].slices).to.be.greaterThan(1);
    expect(ticks).to.be.greaterThan(0);
  });

  it('--stats prints instructions, wall time, rate, exits by reason and leaks on stderr', async () => {
    const deps = fakeDeps(exitAfter(300_000, 3));
    const out = capture();
    const status = await vmmGdbstubMain(['run', elf, '--stats'], out, deps);
    expect(status).to.equal(3);
    const vm = deps.created[0];
    expect(out.err).to.match(/instructions retired: 300000\n/);
    expect(out.err).to.match(/wall time: +[0-9.]+ s\n/);
    expect(out.err).to.match(/instructions\/s: +[0-9]+\n/);
    expect(out.err).to.contain(`vm exits:             ${vm.exits['io'] + (vm.exits['external-interrupt'] ?? 0)}`);
    expect(out.err).to.match(/io 2/);
    expect(out.err).to.match(/debug-state leaks: +0\n/);
    expect(out.out).to.equal('hello from the fake guest\n');
  });

  it('--stats lists each leak and --json writes the same figures', async () => {
    const deps = fakeDeps((vm, budget) => {
      vm.instructions += 100;
      vm.countExit('cpuid');
      vm.leakList.push({ transition: 7, vcpu: 0, register: 'dr7', expected: '0x400', actual: '0x401', side: 'guest', when: 'exit' });
      return { kind: 'exit', vcpu: 0, status: 0 };
    });
    const json = path.join(dir, 'stats.json');
    const out = capture();
    expect(await vmmGdbstubMain(['run', elf, '--stats', '--json', json, '--dr-switch', 'none'], out, deps)).to.equal(0);
    expect(out.err).to.match(/debug-state leaks: +1\n {2}transition 7 vCPU 0 at exit: dr7 expected 0x400 actual 0x401 \(guest value leaked into the host\)/);
    const report = JSON.parse(fs.readFileSync(json, 'utf8'));
    expect(report.exitStatus).to.equal(0);
    expect(report.instructions).to.equal(100);
    expect(report.vmExits).to.deep.equal({ total: 1, byReason: { cpuid: 1 } });
    expect(report.leaksDetected).to.equal(1);
    expect(report.leaks[0]).to.include({ register: 'dr7', actual: '0x401', side: 'guest' });
    expect(report.options.drSwitch).to.equal('none');
    expect(report.wallTimeSeconds).to.be.a('number');
    expect(report.instructionsPerSecond).to.be.a('number');
  });

  it('--stats shows the first 20 leaks and says how many more --json has', async () => {
    const deps = fakeDeps((vm) => {
      for (let t = 0; t < 25; t++) {
        vm.leakList.push({ transition: t, vcpu: 0, register: 'dr0', expected: '0x0', actual: '0x1', side: 'host', when: 'entry' });
      }
      return { kind: 'exit', vcpu: 0, status: 0 };
    });
    const json = path.join(dir, 'many.json');
    const out = capture();
    await vmmGdbstubMain(['run', elf, '--stats', '--json', json], out, deps);
    expect(out.err.match(/^ {2}transition /gm)).to.have.length(20);
    expect(out.err).to.match(/ {2}\.\.\. and 5 more \(--json FILE lists them all\)\n/);
    expect(JSON.parse(fs.readFileSync(json, 'utf8')).leaks).to.have.length(25);
  });

  it('--json without --stats prints nothing on stderr', async () => {
    const json = path.join(dir, 'quiet.json');
    const out = capture();
    expect(await vmmGdbstubMain(['run', elf, '--json', json], out, fakeDeps(exitAfter(5, 9)))).to.equal(9);
    expect(out.err).to.equal('');
    expect(JSON.parse(fs.readFileSync(json, 'utf8')).exitStatus).to.equal(9);
  });

  it('--trace-vm FILE hands the VM a trace sink for the run and closes it at the end', async () => {
    const trace = path.join(dir, 'vm-trace.json');
    const deps = fakeDeps(exitAfter(600_000, 0));
    expect(await vmmGdbstubMain(['run', elf, '--trace-vm', trace, '--backend', 'svm'], capture(), deps)).to.equal(0);
    const lines = fs.readFileSync(trace, 'utf8').trimEnd().split('\n');
    expect(lines[0]).to.equal('label guest svm full');
    expect(lines.length - 2).to.equal(deps.created[0].slices);
    expect(JSON.parse(lines[1])).to.include({ type: 'exit', reason: 'slice' });
    expect(lines[lines.length - 1]).to.equal('closed');
    expect(deps.created[0].traceSink).to.equal(null);
  });

  it('--trace-vm into a missing directory is a usage error', async () => {
    const deps = fakeDeps(exitAfter(5, 0));
    const out = capture();
    expect(await vmmGdbstubMain(['run', elf, '--trace-vm', '/nonexistent-dir/t.json'], out, deps)).to.equal(EXIT.USAGE);
    expect(out.err).to.match(/--trace-vm \/nonexistent-dir\/t.json: cannot write there/);
    expect(deps.created).to.have.length(0);
  });

  it('keeps only the low 7 bits of the guest status', async () => {
    expect(await vmmGdbstubMain(['run', elf], capture(), fakeDeps(exitAfter(5, 0xff)))).to.equal(0x7f);
  });

  const stops: Array<[VmStop, number, RegExp]> = [
    [{ kind: 'triple-fault', vcpu: 0, reason: '#GP during #DF delivery' }, EXIT.TRIPLE_FAULT, /guest triple fault on vCPU 0: #GP during #DF delivery/],
    [{ kind: 'npf', vcpu: 1, address: 0x7000000, write: true }, EXIT.OUTSIDE_MEMORY, /vCPU 1: guest write to 0x7000000, outside guest memory \(0-0x3ffffff\)/],
    [{ kind: 'all-halted', vcpu: 0 }, EXIT.ALL_HALTED, /every vCPU is halted and nothing can wake it/],
    [{ kind: 'entry-failed', vcpu: 0, reason: 'guest DR7 bits 63:32 set' }, EXIT.ENTRY_FAILED, /VM entry failed on vCPU 0: guest DR7 bits 63:32 set/],
    [{ kind: 'debug', vcpu: 0, slotsHit: 1, step: false }, EXIT.INTERNAL, /unexpected debug stop/],
  ];
  for (const [stop, code, message] of stops) {
    it(`a ${stop.kind} stop exits ${code} with a one-line diagnosis (and --stats still printed)`, async () => {
      const out = capture();
      const status = await vmmGdbstubMain(['run', elf, '--vcpus', '2', '--stats'], out, fakeDeps(stopsWith(stop)));
      expect(status).to.equal(code);
      const lines = out.err.split('\n');
      expect(lines[0]).to.match(/^vmm-gdbstub: /);
      expect(lines[0]).to.match(message);
      expect(out.err).to.match(/instructions retired: 10\n/);
      expect(out.err).to.match(new RegExp(`exit status: +${code}`));
    });
  }

  it('a file that is not an ELF exits 129, nothing run', async () => {
    const notElf = path.join(dir, 'not.elf');
    fs.writeFileSync(notElf, 'hello');
    const deps = fakeDeps(exitAfter(5, 0));
    const out = capture();
    expect(await vmmGdbstubMain(['run', notElf], out, deps)).to.equal(EXIT.BAD_ELF);
    expect(out.err).to.equal(`vmm-gdbstub: bad guest ELF ${notElf}: not an ELF file (bad magic)\n`);
    expect(deps.created).to.have.length(0);
  });

  it('a missing guest file or a directory exits 129', async () => {
    const out = capture();
    expect(await vmmGdbstubMain(['run', path.join(dir, 'nope.elf')], out, fakeDeps(exitAfter(5, 0)))).to.equal(EXIT.BAD_ELF);
    expect(out.err).to.match(/cannot read guest .*nope.elf: no such file\n$/);
    const out2 = capture();
    expect(await vmmGdbstubMain(['run', dir], out2, fakeDeps(exitAfter(5, 0)))).to.equal(EXIT.BAD_ELF);
    expect(out2.err).to.match(/is a directory\n$/);
  });

  it('a VM that throws is an internal error (134), reported on one line', async () => {
    const out = capture();
    const status = await vmmGdbstubMain(['run', elf], out, fakeDeps(() => { throw new Error('simulator bug'); }));
    expect(status).to.equal(EXIT.INTERNAL);
    expect(out.err).to.match(/^vmm-gdbstub: internal error: Error: simulator bug/);
  });

  it('a device or a FIFO is refused at once (129), not read forever', async function () {
    this.timeout(10000);
    const out = capture();
    expect(await vmmGdbstubMain(['run', '/dev/zero'], out, fakeDeps(exitAfter(5, 0)))).to.equal(EXIT.BAD_ELF);
    expect(out.err).to.equal('vmm-gdbstub: cannot read guest /dev/zero: not a regular file (a device, FIFO or socket cannot hold a guest ELF) (see --help)\n'.replace(' (see --help)', ''));
    const fifo = path.join(dir, 'guest.fifo');
    execFileSync('mkfifo', [fifo]);
    const out2 = capture();
    expect(await vmmGdbstubMain(['run', fifo], out2, fakeDeps(exitAfter(5, 0)))).to.equal(EXIT.BAD_ELF);
    expect(out2.err).to.contain('not a regular file');
  });

  it('a guest file larger than guest RAM is refused (129) without reading it whole', async () => {
    const big = path.join(dir, 'big.elf');
    fs.writeFileSync(big, Buffer.alloc(2 * 1024 * 1024 + 1));
    const out = capture();
    expect(await vmmGdbstubMain(['run', '--mem', '2', big], out, fakeDeps(exitAfter(5, 0)))).to.equal(EXIT.BAD_ELF);
    expect(out.err).to.contain('2097153 bytes, larger than guest RAM (2 MiB)');
  });

  it('--dr-switch parts of one backend are refused on the other', async () => {
    for (const [mode, backend, only] of [['no-tf-guard', 'svm', 'vmx'], ['no-svm-dirty', 'vmx', 'svm']]) {
      const out = capture();
      const deps = fakeDeps(exitAfter(5, 0));
      expect(await vmmGdbstubMain(['run', elf, '--dr-switch', mode, '--backend', backend], out, deps)).to.equal(EXIT.USAGE);
      expect(out.err).to.contain(`--dr-switch ${mode} leaves out a part of the fix that only ${only} has`);
      expect(deps.created).to.have.length(0);
    }
    expect(await vmmGdbstubMain(['run', elf, '--dr-switch', 'no-tf-guard'], capture(), fakeDeps(exitAfter(5, 0)))).to.equal(0);
  });

  it('an unknown flag is named as such even when it swallowed the guest', async () => {
    const out = capture();
    expect(await vmmGdbstubMain(['run', '--bogus', elf], out, fakeDeps(exitAfter(5, 0)))).to.equal(EXIT.USAGE);
    expect(out.err).to.equal('vmm-gdbstub: Unknown argument: bogus (see --help)\n');
    const out2 = capture();
    expect(await vmmGdbstubMain(['run'], out2, fakeDeps(exitAfter(5, 0)))).to.equal(EXIT.USAGE);
    expect(out2.err).to.equal('vmm-gdbstub: missing the guest ELF file (see --help)\n');
  });

  it('--version prints the version', async () => {
    const out = capture();
    expect(await vmmGdbstubMain(['--version'], out, fakeDeps(exitAfter(5, 0)))).to.equal(0);
    expect(out.out).to.match(/^vmm-gdbstub \d+\.\d+\.\d+\n$/);
  });

  it('SIGINT or SIGTERM ends the run at the next slice and still writes --stats and --json', async () => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      const deps = fakeDeps(exitAfter(1e15, 0));
      const out = capture();
      const json = path.join(dir, `int-${signal}.json`);
      let ended: NodeJS.Signals | undefined;
      out.endBySignal = (s) => { ended = s; };
      const run = vmmGdbstubMain(['run', elf, '--stats', '--json', json], out, deps);
      await new Promise((r) => setTimeout(r, 100));
      process.kill(process.pid, signal);
      const status = await run;
      expect(status).to.equal(signal === 'SIGINT' ? 130 : 143);
      expect(ended).to.equal(signal);
      expect(out.err).to.match(new RegExp(`run interrupted by ${signal} after \\d+ instructions`));
      expect(out.err).to.contain('instructions retired:');
      const report = JSON.parse(fs.readFileSync(json, 'utf8'));
      expect(report.stop).to.deep.equal({ kind: 'interrupted', signal });
      expect(report.instructions).to.be.greaterThan(0);
    }
  });
});
