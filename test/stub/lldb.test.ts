/**
 * lldb against the stub on the real VM: it asks qWatchpointSupportInfo for the number of
 * hardware watchpoints and sets one. Skipped, with a note, when lldb is not installed
 * (apt-get install lldb).
 */
import { spawnSync, spawn } from 'child_process';
import { expect } from 'chai';
import { GdbServer, startGdbServer } from '../../stub/server';
import { makeRealVm } from './real-vm';

const hasLldb = spawnSync('lldb', ['--version'], { stdio: 'ignore' }).status === 0;

function runLldb(args: string[], timeoutMs = 60000): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('lldb', ['-b', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d.toString(); });
    child.stderr.on('data', (d) => { out += d.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', () => { clearTimeout(timer); resolve(out); });
  });
}

describe('stub with lldb on the real VM', function () {
  this.timeout(90000);
  let server: GdbServer | undefined;

  before(function () {
    if (!hasLldb) {
      process.stderr.write('    (skipped: lldb is not installed; apt-get install lldb)\n');
      this.skip();
    }
  });

  afterEach(async () => { await server?.close(); });

  it('lldb learns the four hardware watchpoints (qWatchpointSupportInfo) and a watchpoint fires', async function () {
    const real = makeRealVm('counter');
    if (!real) this.skip();
    server = await startGdbServer(real!.vm, { transport: { kind: 'tcp', host: '127.0.0.1', port: 0 }, onConsoleOutput: () => undefined });
    const out = await runLldb(['-o', `gdb-remote ${server.address}`, '-o', 'watchpoint set variable counter', '-o', 'watchpoint list',
      '-o', 'process continue', '-o', 'process detach', real!.elf]);
    expect(out).to.contain('Number of supported hardware watchpoints: 4');
    expect(out).to.match(/Watchpoint 1 hit:\s+old value: 0\s+new value: 1/);
    expect(out).to.contain('stop reason = watchpoint 1');
  });
});
