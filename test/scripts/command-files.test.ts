/** The plain gdb command files of gdb-scripts/, sourced by stock gdb on a native program. */
import { expect } from 'chai';
import * as fs from 'fs';
import * as path from 'path';
import { buildNative, REPO_ROOT, runGdbScript } from './gdb-session';

describe('gdb-scripts command files', function () {
  let program = '';
  before(function () {
    program = buildNative(path.join(REPO_ROOT, 'test', 'scripts', 'fixtures', 'native-counter.c'));
  });

  it('the command files leave gdb\'s remote hardware limits unlimited (the stub refuses what does not fit)', function () {
    const s = runGdbScript(program, ['source gdb-scripts/watch-symbol.gdb',
      'show remote hardware-watchpoint-limit', 'show remote hardware-breakpoint-limit']);
    expect(s.stdout).to.contain('The maximum number of target hardware watchpoints is unlimited.');
    expect(s.stdout).to.contain('The maximum number of target hardware breakpoints is unlimited.');
    for (const f of fs.readdirSync(path.join(REPO_ROOT, 'gdb-scripts'))) {
      expect(fs.readFileSync(path.join(REPO_ROOT, 'gdb-scripts', f), 'utf8'), f).to.not.match(/^\s*set remote hardware-/m);
    }
  });

  it('watch-symbol.gdb defines watch-symbol and awatch-symbol; vmmcheck fails a software watchpoint', function () {
    // software watchpoints here (ptrace in a container may refuse debug registers): vmmcheck
    // must report it as a failure of its own kind, never pass on one
    const s = runGdbScript(program, ['set can-use-hw-watchpoints 0', 'source gdb-scripts/watch-symbol.gdb',
      'break main', 'run', 'watch-symbol counter', 'watch-symbol', 'vmmcheck on-fail continue',
      'vmmcheck continue --watch counter --old 0 --new 1 --kind missed-hits', 'vmmcheck hits counter 2', 'vmmcheck exit']);
    expect(s.stdout).to.match(/Watchpoint 2: counter/);
    expect(s.stdout).to.contain('usage: watch-symbol SYMBOL');
    expect(s.stdout).to.contain('vmmcheck: FAIL continue: expected a hardware watchpoint; watchpoint 2 (counter) is a software watchpoint');
    expect(s.stdout).to.contain('vmmcheck: FAIL hits: expected a hardware watchpoint');
    const kinds = [...s.stdout.matchAll(/^VMMCHECK (\{.*\})$/gm)].map((m) => JSON.parse(m[1]) as { kind: string | null; check: string });
    expect(kinds.filter((k) => k.check !== 'summary').map((k) => k.kind)).to.deep.equal(['software-watchpoint', 'software-watchpoint']);
    expect(s.status, s.stdout + s.stderr).to.equal(1);
  });
});
