/**
 * Stock gdb against the stub serving a FakeVm: the packets gdb really sends, and what it
 * prints. (The same scenarios against the real VM are in gdb-vm.test.ts.)
 */
import { expect } from 'chai';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { GdbServer, startGdbServer } from '../../stub/server';
import { CODE, COUNTER, EXIT_CODE, FakeVm, READER } from './fake-vm';
import { runGdb } from './gdb-runner';

describe('stub with stock gdb (FakeVm)', function () {
  this.timeout(60000);
  let vm: FakeVm;
  let server: GdbServer;
  let target: string;

  async function start(vcpus = 1): Promise<void> {
    vm = new FakeVm(vcpus);
    server = await startGdbServer(vm, { transport: { kind: 'tcp', host: '127.0.0.1', port: 0 } });
    target = server.address;
  }

  afterEach(async () => {
    if (server) await server.close();
  });

  it('attaches: info registers, x87/SSE defaults, p/x $dr7, set $dr0, x/i $pc', async () => {
    await start();
    const r = await runGdb(target, ['info registers', 'p/x $dr7', 'set $dr0 = 0x1234', 'p/x $dr0',
      'p/x $fctrl', 'p/x $mxcsr', 'set $xmm1.v4_int32[0] = 7', 'p $xmm1.v4_int32[0]', 'x/i $pc']);
    expect(r.out).to.not.match(/warning: Architecture rejected|Remote 'g' packet/);
    for (const reg of ['rip            0x100000', 'eflags         0x2', 'fs_base', 'gs_base', 'dr6            0xffff0ff0',
      'dr7            0x400', 'debugctl']) expect(r.out).to.contain(reg);
    expect(r.out).to.contain('$1 = 0x400');
    expect(r.out).to.contain('$2 = 0x1234');
    expect(r.out).to.contain('$3 = 0x37f');
    expect(r.out).to.contain('$4 = 0x1f80');
    expect(r.out).to.contain('$5 = 7');
    expect(r.out).to.match(/=> 0x100000:\s+incq\s+0xf9\(%rip\)/);
    expect(vm.getRegister(0, 'dr0').lo).to.equal(0x1234);
    expect(r.out).to.contain('[Inferior 1 (Remote target) detached]');
  });

  it('watch fires on every change with old and new values; slots reach the VM', async () => {
    await start();
    const r = await runGdb(target, [`watch *(long*)0x${COUNTER.toString(16)}`, 'continue', 'continue', 'continue',
      'info watchpoints']);
    expect(r.out).to.contain('Hardware watchpoint 1');
    expect(r.out).to.match(/Old value = 0\s+New value = 1/);
    expect(r.out).to.match(/Old value = 1\s+New value = 2/);
    expect(r.out).to.match(/Old value = 2\s+New value = 3/);
    expect(r.out).to.contain('breakpoint already hit 3 times');
    const w = vm.slotWrites.find((x) => x.slots[0] !== null)!;
    expect(w.slots[0]).to.deep.include({ type: 'write', len: 8 });
    expect(w.slots[0]!.address.lo).to.equal(COUNTER);
  });

  it('rwatch and awatch, a 16-byte struct (two slots) and an unaligned int (three slots)', async () => {
    await start();
    const r = await runGdb(target, [`rwatch *(long*)0x${READER.toString(16)}`, 'continue', 'delete',
      `awatch *(long*)0x${COUNTER.toString(16)}`, 'continue', 'delete',
      `watch *(char(*)[16])0x${COUNTER.toString(16)}`, 'continue', 'delete',
      `watch *(int*)0x${(COUNTER + 1).toString(16)}`, 'continue']);
    expect(r.out).to.contain('Hardware read watchpoint 1');
    expect(r.out).to.match(/Value = 0\b/);
    expect(r.out).to.contain('Hardware access (read/write) watchpoint 2');
    expect(r.out).to.match(/Old value = 1\s+New value = 2/);
    expect(r.out).to.contain('Hardware watchpoint 3');
    expect(r.out).to.match(/Hardware watchpoint 4: \*\(int\*\)0x100101\s+Old value = 0\s+New value = 1\b/);
    const counts = vm.slotWrites.map((w) => w.slots.filter((s) => s).length);
    expect(counts).to.include(2);
    expect(counts).to.include(3);
  });

  it('refuses a fifth hardware watchpoint with gdb\'s message', async () => {
    await start();
    const cmds = [0, 8, 16, 24, 32].map((o) => `watch *(long*)0x${(COUNTER + o).toString(16)}`);
    const r = await runGdb(target, [...cmds, 'continue']);
    expect(r.out).to.contain('Could not insert hardware watchpoint');
    expect(r.out).to.contain('You may have requested too many hardware breakpoints/watchpoints.');
  });

  it('hbreak and break stop at the right PC; the int3 is invisible to x', async () => {
    await start();
    const r = await runGdb(target, [`hbreak *0x${(CODE + 15).toString(16)}`, `break *0x${(CODE + 14).toString(16)}`,
      'set breakpoint always-inserted on', `x/2xb 0x${(CODE + 14).toString(16)}`, 'continue', 'continue', 'continue']);
    expect(r.out).to.contain('Hardware assisted breakpoint 1 at 0x10000f');
    expect(r.out).to.match(/0x10000e:\s+0x90\s+0xeb/);
    expect(r.out).to.contain('Breakpoint 2, 0x000000000010000e in ?? ()');
    expect(r.out).to.contain('Breakpoint 1, 0x000000000010000f in ?? ()');
    expect(vm.mem[CODE + 14]).to.equal(0x90); // removed at detach
  });

  it('stepi walks the real instruction sequence', async () => {
    await start();
    const r = await runGdb(target, ['stepi', 'stepi', 'stepi', 'stepi', 'stepi 3', 'p $pc']);
    const pcs = [...r.out.matchAll(/^0x0*([0-9a-f]+) in \?\? \(\)$/gm)].map((m) => parseInt(m[1], 16));
    expect(pcs).to.deep.equal([CODE, CODE + 7, CODE + 14, CODE + 15, CODE, CODE + 15]);
    expect(vm.getCapability(0, 'rflags-tf')).to.equal(false);
  });

  it('Ctrl-C stops a running guest (SIGINT to gdb -> 0x03 -> T02)', async () => {
    await start();
    const r = await runGdb(target, ['continue', 'p $pc'], { interruptAfterMs: 1500 });
    expect(r.out).to.contain('Program received signal SIGINT, Interrupt.');
    expect(vm.instructions).to.be.greaterThan(10000);
  });

  it('disconnect, then a new gdb attaches to the same state; monitor commands work', async () => {
    await start();
    await runGdb(target, ['watch *(long*)0x100100', 'continue', 'continue', 'disconnect']);
    expect(vm.vcpus[0].slots.every((s) => s === null)).to.equal(true);
    const r = await runGdb(target, ['p *(long*)0x100100', 'monitor help', 'monitor dr', 'monitor vmexits', 'monitor host', 'monitor leaks']);
    expect(r.out).to.contain('$1 = 2');
    expect(r.out).to.contain('monitor commands of vmm-gdbstub');
    expect(r.out).to.contain('debugger slots (stub):');
    expect(r.out).to.contain('host scenario idle: the host never touches its own debug registers');
    expect(r.out).to.contain('no debug-state leaks detected');
  });

  it('a dropped connection while the guest runs: the VM stops, keeps its state, a new gdb attaches', async () => {
    await start();
    await runGdb(target, ['watch *(long*)0x100108', 'break *0x100000', 'set breakpoint always-inserted on', 'delete 2', 'continue'],
      { killAfterMs: 1000 });
    await new Promise((r) => setTimeout(r, 100));
    expect(server.connected).to.equal(false);
    const n = vm.instructions;
    await new Promise((r) => setTimeout(r, 100));
    expect(vm.instructions).to.equal(n); // stopped
    expect(vm.vcpus[0].slots.every((s) => s === null)).to.equal(true);
    expect(vm.getCapability(0, 'intercept-db')).to.equal(false);
    const r = await runGdb(target, ['p/x *(long*)0x100100', 'stepi']);
    expect(r.out).to.match(/\$1 = 0x[0-9a-f]{4,}/); // the counter kept its value
    expect(r.out).to.match(/0x000000000010000[07e] in \?\? \(\)|0x000000000010000f in/);
  });

  it('reports the guest exit and two vCPUs as two threads', async () => {
    await start(2);
    const r = await runGdb(target, ['info threads', `set $pc = 0x${EXIT_CODE.toString(16)}`, 'thread 2',
      `set $pc = 0x${(EXIT_CODE + 0).toString(16)}`, 'continue']);
    expect(r.out).to.match(/\* 1\s+Thread 1 \(vCPU 0, vmx, stopped\)/);
    expect(r.out).to.match(/2\s+Thread 2 \(vCPU 1, vmx, stopped\)/);
    expect(r.out).to.contain('exited with code 07');
    expect(await server.guestExit).to.deep.equal({ kind: 'exit', status: 7 });
  });

  it('gdb takes the fast protocol paths: no-ack mode, the thread list in one qXfer, stop replies gdb reads nothing after', async () => {
    await start(2);
    const r = await runGdb(target, ['stepi', 'stepi', 'info threads'], { before: ['set debug remote 1'] });
    const sent = [...r.out.matchAll(/Sending packet: \$([^#]*)#/g)].map((m) => m[1]);
    const received = [...r.out.matchAll(/Packet received: (.*)/g)].map((m) => m[1]);
    expect(sent).to.include('QStartNoAckMode');
    // once no-ack mode is on gdb waits for no '+' (it logs "Received Ack" for each one it reads)
    const noAckAt = r.out.indexOf('Sending packet: $QStartNoAckMode');
    expect(r.out.slice(r.out.indexOf('Packet received: OK', noAckAt) + 20)).to.not.contain('Received Ack');
    expect(sent.filter((p) => p.startsWith('qXfer:threads:read::')).length).to.be.at.least(1);
    expect(sent.filter((p) => p === 'qfThreadInfo' || p.startsWith('qThreadExtraInfo'))).to.deep.equal([]);
    // after each step: the stop reply with rbp, rsp, rip, and no g/p for the registers
    const steps = sent.map((p, i) => [p, sent[i + 1]]).filter(([p]) => p.startsWith('vCont;s'));
    expect(steps).to.have.length(2);
    for (const [, next] of steps) expect(next ?? '').to.not.match(/^[gp]/);
    expect(received.filter((p) => /^T05.*06:[0-9a-f]{16};07:[0-9a-f]{16};10:[0-9a-f]{16};thread:01;/.test(p)).length).to.be.at.least(2);
    expect(r.out).to.match(/\* 1\s+Thread 1 \(vCPU 0, vmx, stopped\)/);
    expect(r.out).to.match(/2\s+Thread 2 \(vCPU 1, vmx, stopped\)/);
  });

  it('kill ends the guest: guestExit and closed resolve', async () => {
    await start();
    const r = await runGdb(target, ['stepi', 'kill']);
    expect(r.out).to.contain('[Inferior 1 (Remote target) killed]');
    expect(await server.guestExit).to.deep.equal({ kind: 'killed' });
    expect(await server.closed).to.equal(undefined);
  });

  it('takes the CLI\'s options: packet trace to a file, guest console shown in gdb', async () => {
    vm = new FakeVm(1);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stub-'));
    const trace = path.join(dir, 'trace.txt');
    const logs: string[] = [];
    server = await startGdbServer(vm, {
      transport: { kind: 'tcp', host: '127.0.0.1', port: 0 }, allowRemote: false, tracePackets: trace,
      log: (l) => logs.push(l), consoleToGdb: true,
    });
    // the fake prints a byte on port 0xE9: mov al,'Z'; out 0xe9,al; jmp back
    vm.mem.set([0xb0, 0x5a, 0xe6, 0xe9, 0xeb, 0xfa], 0x100040);
    const r = await runGdb(server.address, ['set $pc = 0x100040', 'break *0x100044', 'continue', 'continue']);
    expect(r.out).to.match(/\nZ\nBreakpoint 1, 0x0000000000100044 in \?\? \(\)\nZ\nBreakpoint 1/);
    const text = fs.readFileSync(trace, 'utf8');
    expect(text).to.contain('<- $qSupported:');
    expect(text).to.contain('-> $PacketSize=4000');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('serves a Unix socket with owner-only permissions', async () => {
    vm = new FakeVm(1);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stub-'));
    const sock = path.join(dir, 'vm.sock');
    server = await startGdbServer(vm, { transport: { kind: 'unix', path: sock } });
    expect(fs.statSync(sock).mode & 0o777).to.equal(0o600);
    const r = await runGdb(sock, ['stepi', 'p/x $dr7']);
    expect(r.out).to.contain('0x0000000000100007 in ?? ()');
    expect(r.out).to.contain('$1 = 0x400');
    await server.close();
    expect(fs.existsSync(sock)).to.equal(false);
    fs.rmdirSync(dir);
  });

  it('serves stdio (target remote | ...) with nothing but protocol on stdout', async () => {
    const script = path.join(__dirname, 'serve-fake.js');
    const r = await runGdb(`| node ${script} stdio`, ['stepi', 'watch *(long*)0x100100', 'continue', 'p/x $dr7']);
    expect(r.out).to.contain('0x0000000000100007 in ?? ()');
    expect(r.out).to.match(/Old value = 1\s+New value = 2/);
    expect(r.out).to.contain('$1 = 0x400');
    expect(r.out).to.not.match(/Ignoring packet error|Bad packet|Remote connection closed/);
  });

  it('refuses a non-loopback address without allowRemote', async () => {
    let err: Error | undefined;
    try {
      await startGdbServer(new FakeVm(1), { transport: { kind: 'tcp', host: '0.0.0.0', port: 0 } });
    } catch (e) {
      err = e as Error;
    }
    expect(err?.message).to.match(/non-loopback/);
  });

  it('detach lets the guest run on without the debugger; the next gdb stops it again', async () => {
    await start();
    const r = await runGdb(target, [`watch *(long*)0x${COUNTER.toString(16)}`, 'break *0x10000e', 'continue', 'detach']);
    expect(r.out).to.contain('Hardware watchpoint 1');
    expect(r.out).to.contain('[Inferior 1 (Remote target) detached]');
    const n = vm.instructions;
    await new Promise((res) => setTimeout(res, 200));
    expect(vm.instructions, 'the guest runs on after detach').to.be.greaterThan(n + 100);
    // the debugger's traces are gone, the guest's own code is intact
    expect(vm.vcpus[0].slots.every((x) => x === null)).to.equal(true);
    expect(vm.mem[0x10000e]).to.equal(0x90);
    expect(vm.getCapability(0, 'intercept-bp')).to.equal(false);
    expect(vm.getCapability(0, 'intercept-db')).to.equal(false);
    // a new gdb stops it where it is, and it stays stopped while gdb looks
    const r2 = await runGdb(target, ['p/x $pc', 'p/x *(long*)0x100100', 'shell sleep 0.3', 'p/x *(long*)0x100100', 'disconnect']);
    expect(r2.out).to.match(/\$1 = 0x1000[0-3][0-9a-f]/);
    const counts = [...r2.out.matchAll(/\$[23] = (0x[0-9a-f]+)/g)].map((x) => x[1]);
    expect(counts).to.have.length(2);
    expect(counts[0], 'stopped while gdb is attached').to.equal(counts[1]);
    const m = vm.instructions;
    await new Promise((res) => setTimeout(res, 100));
    expect(vm.instructions, 'a dropped connection leaves it stopped').to.equal(m);
  });

  it('gdb quitting while stopped (end of a batch session) lets the guest run on', async () => {
    await start();
    await runGdb(target, ['stepi']);
    const n = vm.instructions;
    await new Promise((res) => setTimeout(res, 200));
    expect(vm.instructions).to.be.greaterThan(n + 100);
  });

  it('error replies carry the reason gdb shows (E.text), and a refused G changes nothing', async () => {
    await start();
    const r = await runGdb(target, ['set $rax = 5', 'set $dr7 = 0x100000000401', 'p/x $dr7',
      'set remote set-register-packet off', 'set $dr7 = 0x100000000401', 'p/x $dr7', 'p $rax', 'disconnect']);
    expect(r.out).to.contain('Could not write register "dr7"; remote failure reply \'E.dr7: reserved bits 63:32 must be zero\'');
    expect(r.out).to.contain('Could not write registers; remote failure reply \'E.dr7: reserved bits 63:32 must be zero\'');
    expect(r.out).to.contain('$1 = 0x400');
    expect(r.out).to.contain('$2 = 0x400');
    expect(r.out).to.contain('$3 = 5');
    expect(vm.getRegister(0, 'dr7').lo).to.equal(0x400);
  });

  it('monitor: extra words and unknown commands fail with the reason; help and dr N work', async () => {
    await start(2);
    const r = await runGdb(target, ['monitor vmexits now', 'monitor bogus', 'monitor dr 7', 'monitor dr 1', 'monitor host', 'disconnect']);
    expect(r.out).to.contain('monitor vmexits takes no arguments, not "now"');
    expect(r.out).to.contain('unknown monitor command "bogus"; "monitor help" lists them');
    expect(r.out).to.contain('monitor dr: no vCPU 7 (this VM has 2: 0-1)');
    expect(r.out.match(/Protocol error with Rcmd/g) ?? []).to.have.length(3);
    expect(r.out).to.contain('vCPU 1:');
    expect(r.out).to.contain('host scenario idle: the host never touches its own debug registers');
  });
});
