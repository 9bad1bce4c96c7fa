/**
 * Issue 4 section 8: stock gdb against the stub serving the REAL VM with the built-in
 * guests, on both backends. Skipped (with a note) when the vmm is not in this build.
 */
import { expect } from 'chai';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { BackendName } from '../../vmm/api/vm-api';
import { makeRealVm } from './real-vm';
import { realVmGdb } from './real-vm-gdb';

for (const backend of ['vmx', 'svm'] as BackendName[]) {
  describe(`stub with stock gdb on the real VM (${backend})`, function () {
    this.timeout(120000);
    const served = realVmGdb(backend);
    const { serve, gdb } = served;

    it('attaches at the entry point: info registers, x/i $pc, p/x $dr7, set $dr0', async () => {
      const t = await serve('counter');
      const r = await gdb(t, ['info registers rip eflags cs', 'x/i $pc', 'p/x $dr7', 'p/x $dr6', 'set $dr0 = 0x1234', 'p/x $dr0']);
      expect(r.out).to.match(new RegExp(`rip\\s+0x${served.real.image.entry.toString(16)}`));
      expect(r.out).to.match(/=> 0x[0-9a-f]+ <[_a-z]+/);
      expect(r.out).to.contain('$1 = 0x400');
      expect(r.out).to.contain('$2 = 0xffff0ff0');
      expect(r.out).to.contain('$3 = 0x1234');
      expect(served.real.vm.getRegister(0, 'dr0').lo).to.equal(0x1234);
    });

    it('watch counter fires on every change across I/O, CPUID, HLT and preemption exits', async () => {
      const t = await serve('counter', { preemptEvery: 37 });
      const r = await gdb(t, ['watch counter', 'continue', 'continue', 'continue', 'continue', 'info watchpoints', 'monitor vmexits']);
      for (let i = 0; i < 4; i++) expect(r.out).to.match(new RegExp(`Old value = ${i}\\s+New value = ${i + 1}`));
      expect(r.out).to.match(/update_globals \(i=\d\) at .*counter\.c:\d+/);
      expect(r.out).to.contain('breakpoint already hit 4 times');
      const stats = served.real.vm.stats();
      expect(Object.keys(stats.exits).length).to.be.greaterThan(2);
    });

    it('rwatch/awatch, the 16-byte struct and the misaligned u32', async () => {
      const t = await serve('counter');
      const r = await gdb(t, ['rwatch read_only_value', 'continue', 'delete', 'awatch counter', 'continue', 'delete',
        'watch wide_struct', 'continue', 'delete', 'watch misaligned_u32.value', 'continue']);
      expect(r.out).to.match(/Hardware read watchpoint 1: read_only_value\s+Value = 1515847681/);
      expect(r.out).to.match(/Hardware access \(read\/write\) watchpoint 2: counter\s+(Old value = \d+\s+New value = \d+|Value = \d+)/);
      expect(r.out).to.match(/Hardware watchpoint 3: wide_struct\s+Old value = /);
      expect(r.out).to.match(/Hardware watchpoint 4: misaligned_u32.value\s+Old value = \d+\s+New value = 2863267\d\d/);
    });

    it('a fifth slot is refused with gdb\'s message; hbreak and break stop at update_globals', async () => {
      const t = await serve('counter');
      const r = await gdb(t, ['watch counter', 'watch wide_struct', 'watch ticks', 'watch read_sum', 'continue', 'delete',
        'hbreak update_globals', 'continue', 'delete', 'break update_globals', 'continue', 'p $pc == update_globals']);
      expect(r.out).to.contain('Could not insert hardware watchpoint');
      expect(r.out).to.match(/Breakpoint 5, (0x[0-9a-f]+ in )?update_globals \(i=\d\)/);
      expect(r.out).to.match(/Breakpoint 6, (0x[0-9a-f]+ in )?update_globals \(i=\d\)/);
    });

    it('the gdb-scripts set no remote limit: watch and awatch mix as hardware watchpoints; a fifth is refused at continue', async () => {
      const t = await serve('counter', { preemptEvery: 997 });
      const root = path.join(__dirname, '..', '..', '..');
      const r = await gdb(t, ['source gdb-scripts/watch-symbol.gdb', 'watch-symbol counter', 'awatch-symbol ticks', 'continue',
        'watch wide_struct', 'watch read_sum', 'continue'], { cwd: root });
      expect(r.out).to.contain('Hardware watchpoint 1: counter');
      expect(r.out).to.contain('Hardware access (read/write) watchpoint 2: ticks');
      expect(r.out).to.match(/Hardware (access \(read\/write\) )?watchpoint [12]: (counter|ticks)\s+(Old value|Value)/);
      // wide_struct needs two slots: five in all, refused by the stub when gdb inserts them
      expect(r.out).to.contain('Hardware watchpoint 3: wide_struct');
      expect(r.out).to.contain('Hardware watchpoint 4: read_sum');
      expect(r.out).to.match(/Could not insert hardware watchpoint [34]/);
      expect(r.out).to.not.match(/^Watchpoint \d/m);
    });

    it('system registers as QEMU names them: p $cr3 works, set $cr0 is refused with the reason', async () => {
      const t = await serve('counter');
      const vm = served.real.vm;
      const hex = (n: 'cr0' | 'cr3' | 'cr4' | 'efer' | 'kernel_gs_base') => {
        const v = vm.getRegister(0, n);
        return '0x' + ((BigInt(v.hi >>> 0) << 32n) | BigInt(v.lo >>> 0)).toString(16);
      };
      const cr0 = hex('cr0');
      const r = await gdb(t, ['p $cr3', 'p/x $cr0', 'p/x $cr4', 'p/x $efer', 'p/x $k_gs_base', 'p $cr2', 'p $cr8',
        'set $cr0 = 0', 'p/x $cr0', 'set $k_gs_base = 0x1234', 'p/x $k_gs_base', 'p/x $dr7', 'maint print remote-registers', 'disconnect']);
      expect(r.out).to.contain(`$1 = ${BigInt(hex('cr3'))}`);
      expect(r.out).to.contain(`$2 = ${cr0}`);
      expect(r.out).to.contain(`$3 = ${hex('cr4')}`);
      expect(r.out).to.contain(`$4 = ${hex('efer')}`);
      expect(r.out).to.match(/\$6 = \d+\n\$7 = \d+/);
      expect(r.out).to.contain('Could not write register "cr0"; remote failure reply \'E.cr0: control registers and EFER are read-only through the debugger');
      expect(r.out).to.contain(`$8 = ${cr0}`);
      expect(hex('cr0')).to.equal(cr0);
      expect(r.out).to.contain('$9 = 0x1234');
      expect(hex('kernel_gs_base')).to.equal('0x1234');
      expect(r.out).to.contain('$10 = 0x400');
      // the numbers of the registers before them are unchanged: dr7 is still remote register 0x40
      expect(r.out).to.match(/ dr7\s+\d+\s+\d+\s+592\s+8\s+uint64_t\s+64\s+592\n/);
      expect(r.out).to.match(/ cr3\s+\d+\s+\d+\s+632\s+8\s+uint64_t\s+69\s+632\n/);
    });

    it('stepi walks the real instruction sequence, through OUT and CPUID exits', async () => {
      const t = await serve('stepper');
      // x/6i listings (lines not right after a display header) and the displayed pc after each stepi
      const listing = (out: string): string[] =>
        [...out.matchAll(/(?<!x\/i \$pc\n)^(?:=> |\s+)0x([0-9a-f]+) <main\+\d+>:/gm)].map((m) => m[1]);
      const stepped = (out: string): string[] => [...out.matchAll(/^\d: x\/i \$pc\n=> 0x([0-9a-f]+)/gm)].map((m) => m[1]);
      const r = await gdb(t, ['break step_start', 'continue', 'delete', 'x/6i $pc', 'display/i $pc', ...Array(5).fill('stepi'),
        'undisplay', 'break step_out', 'continue', 'delete', 'x/6i $pc', 'display/i $pc', ...Array(5).fill('stepi')]);
      const addrs = stepped(r.out);
      const lists = listing(r.out);
      expect(lists.length, r.out).to.equal(12);
      // each stepi lands on the next instruction of the straight-line listing
      expect(addrs.slice(0, 5)).to.deep.equal(lists.slice(1, 6));
      expect(addrs.slice(-5)).to.deep.equal(lists.slice(7, 12));
      expect(served.real.vm.getCapability(0, 'rflags-tf')).to.equal(false);
    });

    it('stepi with host preemption exits every 2 instructions still lands on each next instruction', async () => {
      const t = await serve('stepper', { preemptEvery: 2 });
      const r = await gdb(t, ['break step_start', 'continue', 'delete', 'x/6i $pc', 'display/i $pc', ...Array(5).fill('stepi')]);
      const listed = [...r.out.matchAll(/(?<!x\/i \$pc\n)^(?:=> |\s+)0x([0-9a-f]+) <main\+\d+>:/gm)].map((m) => m[1]);
      const stepped = [...r.out.matchAll(/^\d: x\/i \$pc\n=> 0x([0-9a-f]+)/gm)].map((m) => m[1]);
      expect(stepped).to.deep.equal(listed.slice(1, 6));
    });

    it('stepi over STI; HLT waits for the timer and goes on (issue 4 section 5)', async () => {
      const t = await serve('stepper');
      const r = await gdb(t, ['break step_hlt', 'continue', 'delete', 'stepi', 'stepi', 'stepi', 'p $pc > step_hlt + 8']);
      expect(r.out).to.not.match(/cannot continue|halted with nothing to wake it|SIGSEGV/);
      expect(r.out).to.match(/\$1 = 1/);
    });

    it('two vCPUs are two threads; a watchpoint fires on each and names the vCPU that hit', async () => {
      const t = await serve('counter', { vcpus: 2 });
      // six hits of the 40 (20 per vCPU): the vCPUs take turns at their timer HLTs, but under
      // heavy host load one may take a few in a row, so three hits did not always show both
      const r = await gdb(t, ['info threads', 'watch counter', ...Array(6).fill('continue'), 'info threads']);
      expect(r.out).to.match(/\* 1\s+Thread 1 \(vCPU 0, /);
      expect(r.out).to.match(/2\s+Thread 2 \(vCPU 1, /);
      expect(r.out).to.match(/Thread [12] hit Hardware watchpoint 1: counter\s+Old value = 0\s+New value = 1/);
      expect(r.out).to.match(/Thread 1 hit Hardware watchpoint 1: counter/);
      expect(r.out).to.match(/Thread 2 hit Hardware watchpoint 1: counter/);
      expect(r.out).to.match(/Old value = 2\s+New value = 3/);
    });

    if (backend === 'vmx') {
      it('stepi with the monitor trap flag (stepMethod mtf) walks the same sequence', async () => {
        const t = await serve('stepper', {}, 'mtf');
        const r = await gdb(t, ['break step_out', 'continue', 'delete', 'x/6i $pc', 'display/i $pc', ...Array(5).fill('stepi')]);
        const listed = [...r.out.matchAll(/(?<!x\/i \$pc\n)^(?:=> |\s+)0x([0-9a-f]+) <main\+\d+>:/gm)].map((m) => m[1]);
        const stepped = [...r.out.matchAll(/^\d: x\/i \$pc\n=> 0x([0-9a-f]+)/gm)].map((m) => m[1]);
        expect(stepped).to.deep.equal(listed.slice(1, 6));
        expect(served.real.vm.getCapability(0, 'mtf')).to.equal(false);
      });
    }

    it('Ctrl-C stops the guest; detach and re-attach keep the state; monitor dr', async () => {
      const t = await serve('workload-O2');
      // a tight loop at the entry point: jmp .
      const r1 = await gdb(t, ['set *(unsigned short*)$pc = 0xfeeb', 'continue', 'p $pc != 0'], { interruptAfterMs: 1500 });
      expect(r1.out, r1.out).to.contain('Program received signal SIGINT, Interrupt.');
      const pc = served.real.vm.getRegister(0, 'rip');
      const r2 = await gdb(t, ['p/x $pc', 'monitor dr', 'monitor vmexits', 'monitor leaks', 'monitor host']);
      expect(r2.out).to.contain(`$1 = 0x${pc.lo.toString(16)}`);
      expect(r2.out).to.contain('vCPU 0:');
      expect(r2.out).to.contain('host scenario idle: the host never touches its own debug registers');
      expect(r2.out).to.not.contain('host watchpoint hits');
    });

    it('a triple fault stops with an explanation and SIGSEGV, and stays inspectable', async () => {
      const t = await serve('counter');
      // ud2 at the entry point, before the guest has an IDT: #UD -> #DF -> triple fault
      const r = await gdb(t, ['set *(unsigned short*)$pc = 0x0b0f', 'continue', 'p/x $pc', 'continue']);
      expect(r.out).to.match(/vmm-gdbstub: vCPU 0: triple fault: .*the VM cannot continue/);
      expect(r.out).to.contain('Program received signal SIGSEGV, Segmentation fault.');
      expect(r.out).to.contain(`$1 = 0x${served.real.image.entry.toString(16)}`);
    });

    it('the selfwatch guest passes while gdb watches another variable', async () => {
      const t = await serve('selfwatch');
      // `failures` is only written when a check fails: the watchpoint holds a slot and never fires
      const r = await gdb(t, ['watch failures', 'continue']);
      expect(r.out).to.contain('Hardware watchpoint 1: failures');
      expect(r.out).to.contain('exited normally');
      expect(served.console).to.not.contain('FAIL');
      expect(served.console).to.contain('PASS');
    });

    if (backend === 'vmx') {
      it('with --dr-switch none gdb\'s watchpoint misses hits after the first VM exit', async () => {
        const t = await serve('counter', { drSwitch: 'none' });
        const r = await gdb(t, ['watch counter', 'continue', 'continue', 'continue']);
        const hits = [...r.out.matchAll(/Old value = (\d+)\s+New value = (\d+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
        const consecutive = hits.length === 3 && hits.every(([o, n], i) => o === i && n === i + 1);
        expect(consecutive, r.out).to.equal(false);
        // the guest ran on to its end: the hits were missed, not merely slow
        expect(r.out).to.contain('exited normally');
      });
    }

    it('serves the real VM over a Unix socket and stdio', async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stub-vm-'));
      const sock = path.join(dir, 'vm.sock');
      await served.serveOn(makeRealVm('counter', { backend })!, { kind: 'unix', path: sock });
      const r1 = await gdb(sock, ['watch counter', 'continue']);
      expect(r1.out).to.match(/Old value = 0\s+New value = 1/);
      await served.close();
      fs.rmSync(dir, { recursive: true, force: true });
      const script = path.join(__dirname, 'serve-fake.js');
      const r2 = await gdb(`| node ${script} stdio 1 counter ${backend}`, ['watch counter', 'continue', 'stepi', 'p/x $dr7']);
      expect(r2.out).to.match(/Old value = 0\s+New value = 1/);
      expect(r2.out).to.contain('$1 = 0x400');
    });
  });
}
