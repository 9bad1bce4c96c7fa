/**
 * README.md's examples are run as written: each is a code block after an
 * `<!-- example: NAME -->` marker. The scripted session is gdb-scripts/example-session.gdb
 * word for word, its command lines run through the shell, and their output must be the
 * README's sample output exactly.
 */
import { expect } from 'chai';
import { execFileSync, spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { readmeExample } from '../helpers/readme';
import { REPO_ROOT } from './gdb-session';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

const hasGdb = spawnSync('gdb', ['--version'], { stdio: 'ignore' }).status === 0;
const built = fs.existsSync(path.join(REPO_ROOT, 'dist', 'vmm', 'api', 'create-vm.js'));

describe('README examples, run as written', function () {
  this.timeout(120000);

  before(function () {
    if (!hasGdb || !built) {
      process.stderr.write('    (skipped: gdb or the VM is not available)\n');
      this.skip();
    }
  });

  it('the scripted session is gdb-scripts/example-session.gdb, and running it prints the sample output', () => {
    const file = fs.readFileSync(path.join(REPO_ROOT, 'gdb-scripts', 'example-session.gdb'), 'utf8')
      .split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    expect(readmeExample('session-script')).to.deep.equal(file);
    // gdb has no trailing comments: a pasted line must be a whole command
    for (const line of file) expect(line).to.not.match(/\s#/);
    let printed = '';
    for (const line of readmeExample('session-run')) {
      printed += execFileSync('bash', ['-o', 'pipefail', '-c', `${line} || true`], { cwd: REPO_ROOT, encoding: 'utf8' });
    }
    expect(printed.replace(/\n$/, '').split('\n')).to.deep.equal(readmeExample('session-output'));
  });

  it('the session exits 0 with the fix and 1 without it, as the README says', () => {
    const [withFix, withoutFix] = readmeExample('session-run').map((l) => l.replace(/ 2>&1 \| grep .*$/, ''));
    expect(spawnSync('bash', ['-c', withFix], { cwd: REPO_ROOT, stdio: 'ignore' }).status).to.equal(0);
    expect(spawnSync('bash', ['-c', withoutFix], { cwd: REPO_ROOT, stdio: 'ignore' }).status).to.equal(1);
  });

  it('attaching by hand: the serve line and the gdb commands do what the README says', async () => {
    const [serveLine, gdbLine] = readmeExample('attach-shell');
    expect(gdbLine).to.equal('gdb -x gdb-scripts/attach.gdb guests/counter.elf');
    const attach = fs.readFileSync(path.join(REPO_ROOT, 'gdb-scripts', 'attach.gdb'), 'utf8')
      .split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    expect(attach).to.deep.equal(['target remote :1234']);
    // the same serve, on a free port instead of 1234 (other tests may hold it)
    const port = await freePort();
    const args = serveLine.replace(/ &$/, '').split(' ').slice(1);
    expect(args.slice(0, 2)).to.deep.equal(['bin/vmm-gdbstub.js', 'serve']);
    const serve = spawn(process.execPath, [...args, '--gdb', `tcp:127.0.0.1:${port}`], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let serveOut = '';
    serve.stdout!.on('data', (d: Buffer) => { serveOut += d.toString(); });
    let serveErr = '';
    serve.stderr!.on('data', (d: Buffer) => { serveErr += d.toString(); });
    const ended = new Promise<number | null>((resolve) => serve.on('close', (st) => resolve(st)));
    try {
      for (let i = 0; i < 200 && !/waiting for gdb/.test(serveErr); i++) await new Promise((r) => setTimeout(r, 50));
      const cmds = [`target remote 127.0.0.1:${port}`, ...readmeExample('attach-commands')];
      const gdb = spawnSync('gdb', ['-nx', '-batch', ...cmds.flatMap((c) => ['-ex', c]), 'guests/counter.elf'],
        { cwd: REPO_ROOT, encoding: 'utf8', timeout: 60000 });
      const out = gdb.stdout + gdb.stderr;
      expect(out).to.match(/Hardware watchpoint 1: counter\s+Old value = 0\s+New value = 1\s+update_globals/);
      expect(out).to.contain('vCPU 0:');
      expect(out).to.contain('debugger slots (stub):');
      expect(out).to.contain('$1 = 0x400');
      expect(out).to.contain('[Inferior 1 (Remote target) detached]');
      // detach: the guest runs on to its end, and serve with it
      expect(await ended).to.equal(0);
      expect(serveOut).to.contain('counter: done');
    } finally {
      serve.kill('SIGKILL');
    }
  });
});
