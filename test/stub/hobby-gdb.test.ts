/**
 * The real gdb on the Multiboot hobby kernel (guests/hobby, two vCPUs): the README's session
 * run as written (attach at the 32-bit entry, hbreak at the far jump into long mode, stepi
 * into 64-bit code, $cr0/$efer/$cr3, `watch shared_counter` hit by thread 1 then thread 2,
 * `info threads`, `thread 1`, Ctrl-C while both vCPUs idle), then a longer watch: every hit
 * of the turn-taking phase reports the vCPU that wrote (thread 1 on even old values, thread
 * 2 on odd) with old and new values, and each thread has its own registers. Symbol
 * addresses come from the ELF at test time.
 */
import { expect } from 'chai';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseAnyElf } from '../../vmm/loader/elf-any';
import { readmeExample } from '../helpers/readme';
import { GdbRun, runGdb } from './gdb-runner';

const ROOT = path.join(__dirname, '..', '..', '..');
const ELF = 'guests/hobby.elf';

/**
 * gdb in batch mode, from the repository root, on `serve ARGS --gdb stdio` with the ELF's
 * symbols. With `interruptAfter`, SIGINT (Ctrl-C) goes to gdb 500 ms after that text appears
 * in its output (the kernel's own UART line, so the interrupt cannot hit an earlier command).
 */
function gdb(serveArgs: string[], commands: string[], interruptAfter?: string): Promise<GdbRun> {
  return runGdb(`| ${process.execPath} ${serveArgs.join(' ')} --gdb stdio`, commands,
    { cwd: ROOT, program: ELF, interruptAfterText: interruptAfter, timeoutMs: 60000 });
}

/** The values of `printf "TAG k=v k=v\n"` lines, in order. */
function tagged(out: string, tag: string): Record<string, string>[] {
  return out.split('\n').filter((l) => l.startsWith(tag + ' ')).map((l) => {
    const o: Record<string, string> = {};
    for (const kv of l.slice(tag.length + 1).split(' ')) { const [k, v] = kv.split('='); o[k] = v; }
    return o;
  });
}

/** Every watchpoint hit gdb reported: the thread, the old and the new value. */
function watchHits(out: string): Array<[number, number, number]> {
  return [...out.matchAll(/Thread (\d+) hit Hardware watchpoint \d+: shared_counter\s+Old value = (\d+)\s+New value = (\d+)/g)]
    .map((m) => [Number(m[1]), Number(m[2]), Number(m[3])]);
}

const hex = (n: number) => n.toString(16);

describe('gdb on the Multiboot hobby kernel (32-bit entry to long mode, watch on both vCPUs, threads, Ctrl-C)', function () {
  this.timeout(90000);
  const gdbAvailable = spawnSync('gdb', ['--version']).status === 0;
  const sym = (() => {
    const elf = parseAnyElf(new Uint8Array(fs.readFileSync(path.join(ROOT, ELF))));
    const need = (n: string) => {
      const v = elf.symbols.get(n);
      if (v === undefined) throw new Error(`${ELF} has no symbol ${n}`);
      return v;
    };
    return {
      entry: elf.entry, farJump: need('bsp_far_jump_64'), longMode: need('bsp_long_mode'), pml4: need('pml4'),
      bspStackTop: need('bsp_stack_top'), apStackTop: need('ap_stack_top'),
    };
  })();
  before(function () { if (!gdbAvailable) this.skip(); });

  it("the README's session: 32-bit entry, far jump into long mode, stepi to 64-bit code, watch hit by thread 1 then 2, thread 1's registers, Ctrl-C", async () => {
    const [serveLine, gdbLine] = readmeExample('hobby-serve');
    expect(gdbLine).to.equal(`gdb -ex 'target remote :1234' ${ELF}`);
    const serveArgs = serveLine.replace(/ &$/, '').split(' ');
    expect(serveArgs.slice(0, 4)).to.deep.equal(['node', 'bin/vmm-gdbstub.js', 'serve', ELF]);
    const commands = readmeExample('hobby-commands');
    // the README's commands, with the registers printed in a form the test can read
    const probes: Record<string, string> = {
      'p/x $cr0': 'printf "CR0 pc=%lx cs=%d cr0=%lx\\n", $pc, $cs, $cr0',
      'p/x $efer': 'printf "EFER pc=%lx cs=%d efer=%lx cr0=%lx\\n", $pc, $cs, $efer, $cr0',
      'x/i $pc': 'printf "STEP pc=%lx cs=%d\\n", $pc, $cs',
      'p/x $rsp': 'printf "T1 thread=%d rsp=%lx\\n", $_thread, $rsp',
    };
    const cmds = commands.flatMap((c) => (probes[c] ? [c, probes[c]] : [c]));
    const r = await gdb(serveArgs.slice(1), cmds, 'idle: both CPUs in HLT');
    const out = r.out;
    expect(out).to.match(/^\* 1 +Thread 1 \(vCPU 0, [^)]*\) +mb_entry \(\)/m);
    expect(out).to.match(/^ {2}2 +Thread 2 \(vCPU 1, vmx, waiting for INIT-SIPI-SIPI\) +0x0+ in \?\? \(\)/m);
    expect(tagged(out, 'CR0')).to.deep.equal([{ pc: hex(sym.entry), cs: '16', cr0: '11' }]);
    expect(tagged(out, 'EFER')).to.deep.equal([{ pc: hex(sym.farJump), cs: '24', efer: '500', cr0: '80010011' }]);
    expect(tagged(out, 'STEP')).to.deep.equal([{ pc: hex(sym.longMode), cs: '8' }]);
    expect(out).to.match(new RegExp(`=> 0x${hex(sym.longMode)} <bsp_long_mode>:\\s+mov\\s+\\$0x10,%eax`));
    expect(out).to.match(new RegExp(`^\\$\\d+ = 0x${hex(sym.pml4)}$`, 'm'));
    expect(watchHits(out)).to.deep.equal([[1, 0, 1], [2, 1, 2]]);
    expect(out).to.match(/New value = 1\s+count \(me=me@entry=0\)/);
    expect(out).to.match(/\[Switching to Thread 2\]\s+Thread 2 hit Hardware watchpoint 2: shared_counter\s+Old value = 1\s+New value = 2\s+count \(me=me@entry=1\)/);
    expect(out).to.match(/^\* 2 +Thread 2 \(vCPU 1, [^)]*\) +count \(me=me@entry=1\)/m);
    const t1 = tagged(out, 'T1');
    expect(t1.length, out).to.equal(1);
    expect(t1[0].thread).to.equal('1');
    const rsp = BigInt('0x' + t1[0].rsp);
    expect(rsp < BigInt(sym.bspStackTop) && rsp > BigInt(sym.bspStackTop) - 16384n, 'thread 1 is on the BSP stack').to.equal(true);
    expect(out).to.include('shared_counter = 2010 (ok)');
    expect(out, out).to.match(/Thread \d received signal SIGINT, Interrupt\./);
  });

  it('watch shared_counter: the 10 turn-taking hits alternate thread 1 (old even) and thread 2 (old odd); $_thread and each thread\'s registers; the kernel exits normally', async () => {
    const perHit = 'printf "HIT thread=%d v=%d rsp=%lx\\n", $_thread, shared_counter, $rsp';
    const cmds = ['hbreak kmain', 'continue', 'delete', 'watch shared_counter'];
    for (let i = 0; i < 10; i++) cmds.push('continue', perHit);
    cmds.push('thread 2', 'printf "REG thread=%d rsp=%lx rip=%lx\\n", $_thread, $rsp, $rip',
      'thread 1', 'printf "REG thread=%d rsp=%lx rip=%lx\\n", $_thread, $rsp, $rip',
      'info registers rip', 'delete', 'continue');
    const r = await gdb(['bin/vmm-gdbstub.js', 'serve', ELF, '--vcpus', '2', '--backend', 'svm'], cmds);
    const out = r.out;
    const want = Array.from({ length: 10 }, (_, i): [number, number, number] => [(i % 2) + 1, i, i + 1]);
    expect(watchHits(out), out).to.deep.equal(want);
    const hits = tagged(out, 'HIT');
    expect(hits.map((h) => [Number(h.thread), Number(h.v)])).to.deep.equal(want.map(([t, , v]) => [t, v]));
    const inStack = (rsp: string, top: number) => {
      const v = BigInt('0x' + rsp);
      return v < BigInt(top) && v > BigInt(top) - 16384n;
    };
    for (const h of hits) expect(inStack(h.rsp, h.thread === '1' ? sym.bspStackTop : sym.apStackTop), `rsp of thread ${h.thread}`).to.equal(true);
    const regs = tagged(out, 'REG');
    expect(regs.map((g) => g.thread)).to.deep.equal(['2', '1']);
    expect(inStack(regs[0].rsp, sym.apStackTop)).to.equal(true);
    expect(inStack(regs[1].rsp, sym.bspStackTop)).to.equal(true);
    expect(regs[0].rsp).to.not.equal(regs[1].rsp);
    expect(out).to.match(/^rip +0xffffffff8[0-9a-f]+ +0xffffffff8[0-9a-f]+ <count\+\d+>$/m);
    expect(out).to.include('shared_counter = 2010 (ok)');
    expect(out).to.include('[Inferior 1 (Remote target) exited normally]');
  });

  it('serve --serial-input: a watch on serial_bytes fires in the COM1 interrupt handler (thread 1, vector 0x34), the lines come back, the kernel exits 0', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hobby-serial-'));
    const input = path.join(dir, 'in.txt');
    fs.writeFileSync(input, 'hello\nexit\n');
    const r = await gdb(['bin/vmm-gdbstub.js', 'serve', ELF, '--vcpus', '2', '--cmdline', 'echo', '--serial-input', input],
      ['watch serial_bytes', 'continue', 'printf "HIT thread=%d bytes=%d irqs=%d\\n", $_thread, serial_bytes, serial_irqs',
        'bt 2', 'delete', 'continue']);
    const out = r.out;
    expect(out, out).to.match(/Thread 1 hit Hardware watchpoint 1: serial_bytes\s+Old value = <unreadable>\s+New value = 1\s+isr_dispatch/);
    // the watch set at the 32-bit entry: the higher half was not mapped yet (README)
    expect(tagged(out, 'HIT')).to.deep.equal([{ thread: '1', bytes: '1', irqs: '1' }]);
    expect(out).to.include('echo: hello\necho: exit\n');
    expect(out).to.include('[Inferior 1 (Remote target) exited normally]');
  });

  it('a watch set at the 32-bit entry (higher half not mapped yet) still fires in long mode; the old value is <unreadable> (README)', async () => {
    const r = await gdb(['bin/vmm-gdbstub.js', 'serve', ELF, '--vcpus', '2'], ['watch shared_counter', 'continue', 'kill']);
    expect(r.out, r.out).to.match(/Thread 1 hit Hardware watchpoint 1: shared_counter\s+Old value = <unreadable>\s+New value = 1\s+count \(me=me@entry=0\)/);
  });
});
