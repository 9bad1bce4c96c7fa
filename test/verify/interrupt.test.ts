/** An interrupted verify ends the gdb and serve processes of its running cells. */
import { expect } from 'chai';
import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');

function processesNamed(marker: string): string[] {
  const ps = spawnSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' });
  return ps.stdout.split('\n').filter((l) => l.includes(marker) && !l.includes('ps -eo'));
}

describe('verify interrupted', function () {
  this.timeout(60000);

  it('SIGTERM during the matrix leaves no cell process behind', async function () {
    if (!fs.existsSync(path.join(REPO_ROOT, 'bin', 'vmm-gdbstub.js'))) this.skip();
    const verify = spawn(process.execPath, [path.join(REPO_ROOT, 'bin', 'vmm-gdbstub.js'), 'verify',
      '--scenario', 'watch-write', '--dr-switch', 'full'], { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    // serve runs with --name verify-<verify pid>-<cell>-<run>; the marker finds every cell process.
    const marker = `verify-${verify.pid}-`;
    await new Promise<void>((resolve, reject) => {
      const deadline = setTimeout(() => reject(new Error('no cell process appeared')), 30000);
      const poll = setInterval(() => {
        if (processesNamed(marker).length > 0) {
          clearInterval(poll);
          clearTimeout(deadline);
          resolve();
        }
      }, 50);
    });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => verify.on('exit', (_c, s) => resolve(s)));
    verify.kill('SIGTERM');
    expect(await exited).to.equal('SIGTERM');
    // The cells were signalled before verify exited; under load they may take a moment to end.
    let left = processesNamed(marker);
    for (let waited = 0; left.length > 0 && waited < 10000; waited += 100) {
      await new Promise((r) => setTimeout(r, 100));
      left = processesNamed(marker);
    }
    expect(left).to.deep.equal([]);
  });
});
