/** The plain gdb command files of gdb-scripts/, sourced by stock gdb on a native program. */
import { expect } from 'chai';
import * as path from 'path';
import { buildNative, REPO_ROOT, runGdbScript } from './gdb-session';

describe('gdb-scripts command files', function () {
  let program = '';
  before(function () {
    program = buildNative(path.join(REPO_ROOT, 'test', 'scripts', 'fixtures', 'native-counter.c'));
  });

  it('limits.gdb sets the remote hardware watchpoint and breakpoint limits to 4', function () {
    const s = runGdbScript(program, ['source gdb-scripts/limits.gdb',
      'show remote hardware-watchpoint-limit', 'show remote hardware-breakpoint-limit']);
    expect(s.stdout).to.contain('The maximum number of target hardware watchpoints is 4.');
    expect(s.stdout).to.contain('The maximum number of target hardware breakpoints is 4.');
  });

  it('watch-symbol.gdb defines watch-symbol and awatch-symbol, which watch a global', function () {
    const s = runGdbScript(program, ['set can-use-hw-watchpoints 0', 'source gdb-scripts/watch-symbol.gdb',
      'break main', 'run', 'watch-symbol counter', 'watch-symbol',
      'vmmcheck continue --watch counter --old 0 --new 1', 'vmmcheck exit']);
    expect(s.stdout).to.match(/Watchpoint 2: counter/);
    expect(s.stdout).to.contain('usage: watch-symbol SYMBOL');
    expect(s.status, s.stdout + s.stderr).to.equal(0);
  });
});
