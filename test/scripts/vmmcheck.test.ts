/**
 * gdb-scripts/vmmcheck.py driven by the real gdb 13 on a native gcc-built program, with
 * hardware watchpoints (vmmcheck fails every check of a software one: command-files.test.ts).
 */
import { expect } from 'chai';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { buildNative, gdbAvailable, REPO_ROOT, runGdbScript } from './gdb-session';

const FIXTURE = path.join(REPO_ROOT, 'test', 'scripts', 'fixtures', 'native-counter.c');

/** Stop in main with a hardware watchpoint on `counter`. */
const WATCHING = ['break main', 'run', 'watch counter'];

describe('vmmcheck.py with stock gdb on a native program', function () {
  let program = '';

  before(function () {
    if (!gdbAvailable()) throw new Error('gdb is not installed (apt-get install gdb)');
    program = buildNative(FIXTURE);
  });

  it('passes a session of watch, hits, reg, expr, stepi and exit checks; gdb exits 0', function () {
    const session = runGdbScript(program, [
      ...WATCHING,
      'vmmcheck continue --watch counter --old 0 --new 1 --function tick --name first-hit',
      'vmmcheck hits counter 3 --increment 1 --name three-more',
      'vmmcheck reg $rip &tick --mask 0xfffffffffffff000',
      'vmmcheck expr counter 4',
      'delete',
      'break tick',
      'vmmcheck continue --breakpoint tick --at tick',
      'delete',
      'vmmcheck stepi --count 2',
      'vmmcheck continue --exited 0',
      'vmmcheck exit',
    ]);
    expect(session.status, session.stdout + session.stderr).to.equal(0);
    const names = session.results.map((r) => r.name);
    expect(names).to.deep.equal(['first-hit', 'three-more', 'reg $rip', 'expr counter', 'continue',
      'stepi', 'continue', 'summary']);
    expect(session.results.every((r) => r.pass)).to.equal(true);
    const hits = session.results[1].observed as { count: number; values: number[][]; pcs: number[] };
    expect(hits.count).to.equal(3);
    expect(hits.values).to.deep.equal([[1, 2], [2, 3], [3, 4]]);
    expect(hits.pcs).to.have.length(3);
    const stepi = session.results[5].observed as { pcs: number[] };
    expect(stepi.pcs).to.have.length(2);
  });

  it('a wrong new value fails with both values in the message, and gdb exits 1 at once', function () {
    const session = runGdbScript(program, [
      ...WATCHING,
      'vmmcheck continue --watch counter --old 0 --new 5',
      'echo NOT-REACHED\\n',
      'vmmcheck exit',
    ]);
    expect(session.status).to.equal(1);
    expect(session.stdout).not.to.contain('NOT-REACHED');
    expect(session.results).to.have.length(1);
    const [result] = session.results;
    expect(result.pass).to.equal(false);
    expect(result.kind).to.equal('wrong-value');
    expect(result.message).to.contain('expected new value 5').and.to.contain('old=0 new=1');
  });

  it('a stop in the wrong function is a wrong-location failure', function () {
    const session = runGdbScript(program, [...WATCHING, 'vmmcheck continue --watch counter --function main']);
    expect(session.status).to.equal(1);
    expect(session.results[0].kind).to.equal('wrong-location');
    expect(session.results[0].message).to.match(/expected function main; saw watchpoint 2 \(counter\) .* in tick/);
  });

  it('a stop at a breakpoint when a watchpoint was expected is a wrong-stop failure', function () {
    const session = runGdbScript(program, [...WATCHING, 'break tick', 'vmmcheck continue --watch counter']);
    expect(session.status).to.equal(1);
    expect(session.results[0].kind).to.equal('wrong-stop');
    expect(session.results[0].message).to.match(/expected watchpoint 2 \(counter\); saw .*breakpoint 3 \(tick\) .* with old=0 new=0/);
  });

  it('hits whose values jump by more than the increment are missed hits', function () {
    const session = runGdbScript(program, [...WATCHING, 'vmmcheck hits counter 3 --increment 2']);
    expect(session.status).to.equal(1);
    expect(session.results[0].kind).to.equal('missed-hits');
    expect(session.results[0].message).to.contain('hit 1 of 3: expected 0 -> 2; saw 0 -> 1');
  });

  it('a program that exits before N hits fails with the count it reached', function () {
    const session = runGdbScript(program, [...WATCHING, 'vmmcheck hits counter 20 --increment 1']);
    expect(session.status).to.equal(1);
    const [result] = session.results;
    expect(result.kind).to.equal('missed-hits');
    expect((result.observed as { count: number }).count).to.equal(10);
    expect(result.message).to.match(/hit 11 of 20: expected watchpoint 2 \(counter\); saw .*/);
  });

  it('hits of a breakpoint follow a tracked expression; --kind labels the failure', function () {
    const good = runGdbScript(program, ['break tick', 'run',
      'vmmcheck hits tick 3 --track counter --increment 1', 'vmmcheck exit']);
    expect(good.status, good.stdout).to.equal(0);
    expect((good.results[0].observed as { values: number[][] }).values).to.deep.equal([[0, 1], [1, 2], [2, 3]]);
    const bad = runGdbScript(program, ['break tick', 'run',
      'vmmcheck hits tick 3 --track other --increment 1 --kind counter-skipped']);
    expect(bad.status).to.equal(1);
    expect(bad.results[0].kind).to.equal('counter-skipped');
    expect(bad.results[0].message).to.contain('hit 1 of 3: expected 0 -> 1; saw 0 -> 2');
  });

  it('a register mismatch names the register, both values and the differing bits', function () {
    const session = runGdbScript(program, ['break tick', 'run', 'vmmcheck reg $rip 0x1234 --name rip-check']);
    expect(session.status).to.equal(1);
    const [result] = session.results;
    expect(result.kind).to.equal('register-mismatch');
    expect(result.message).to.match(/^expected \$rip = 0x1234; saw 0x[0-9a-f]+ \(differing bits 0x[0-9a-f]+\)$/);
  });

  it('an expression or register gdb cannot evaluate is a gdb-error failure that says why', function () {
    const session = runGdbScript(program, ['vmmcheck on-fail continue', 'break tick', 'run',
      'vmmcheck expr nosuch 1', 'vmmcheck reg $nosuchreg 0', 'vmmcheck exit']);
    expect(session.status).to.equal(1);
    expect(session.results[0].kind).to.equal('gdb-error');
    expect(session.results[0].message).to.equal('expected nosuch = 1; gdb cannot evaluate it: No symbol "nosuch" in current context.');
    expect(session.results[1].kind).to.equal('gdb-error');
  });

  it('on-fail continue records every failure; exit then says 1 and lists them', function () {
    const session = runGdbScript(program, [
      'vmmcheck on-fail continue',
      'break tick', 'run',
      'vmmcheck expr counter 7 --name first',
      'vmmcheck expr counter 0 --name second',
      'vmmcheck reg $rip 0 --name third',
      'vmmcheck exit',
    ]);
    expect(session.status).to.equal(1);
    const summary = session.results[session.results.length - 1];
    expect(summary.check).to.equal('summary');
    expect(summary.pass).to.equal(false);
    expect(summary.failed).to.deep.equal(['first', 'third']);
    expect(summary.total).to.equal(3);
  });

  it('exit with no checks at all is a failure (a script that checked nothing proves nothing)', function () {
    const session = runGdbScript(program, ['vmmcheck exit']);
    expect(session.status).to.equal(1);
    expect(session.stdout).to.contain('(no checks ran)');
  });

  it('the exit code of the program is checked', function () {
    const session = runGdbScript(program, ['break main', 'run 3', 'vmmcheck continue --exited 3', 'vmmcheck exit']);
    expect(session.status, session.stdout).to.equal(0);
    const wrong = runGdbScript(program, ['break main', 'run 3', 'vmmcheck continue --exited 0']);
    expect(wrong.status).to.equal(1);
    expect(wrong.results[0].message).to.contain('expected the program to exit with code 0; saw the program exited with code 3');
  });

  it('a resume that never stops is interrupted after the timeout and reported as such', function () {
    const session = runGdbScript(program, ['break main', 'run 0 spin', 'vmmcheck continue --exited 0 --timeout 1']);
    expect(session.status).to.equal(1);
    const [result] = session.results;
    expect(result.kind).to.equal('timeout');
    expect(result.message).to.match(/no stop within 1s \(interrupted: signal SIGINT at 0x[0-9a-f]+ in main/);
    expect(session.seconds).to.be.lessThan(15);
  });

  it('a timeout during which the tracked value changed is a missed hit, not a plain timeout', function () {
    const session = runGdbScript(program, ['break tick', 'run 0 spin',
      'vmmcheck hits tick 20 --track other --timeout 1']);
    expect(session.status).to.equal(1);
    const [result] = session.results;
    expect(result.kind).to.equal('missed-hits');
    expect((result.observed as { count: number }).count).to.equal(9);
    expect(result.message).to.match(/^hit 10 of 20: expected breakpoint 1 \(tick\); saw no stop within 1s \(interrupted: signal SIGINT/);
  });

  it('stepi with the wrong expected pcs fails and reports the pc it saw', function () {
    const session = runGdbScript(program, ['break tick', 'run', 'vmmcheck stepi --count 3 --pcs 0x10,0x20']);
    expect(session.status).to.equal(1);
    expect(session.results[0].kind).to.equal('wrong-location');
    expect(session.results[0].message).to.match(/^step 1: expected pc 0x10; saw 0x[0-9a-f]+$/);
  });

  it('a monitor command the target lacks is a gdb-error failure, not a crash', function () {
    const session = runGdbScript(program, ['break tick', 'run', 'vmmcheck monitor leaks --match none']);
    expect(session.status).to.equal(1);
    expect(session.results[0].kind).to.equal('gdb-error');
    expect(session.results[0].message).to.contain('monitor leaks failed');
  });

  it('attach follows VMMCHECK_TARGET (gdbserver over a pipe); monitor output is matched', function () {
    const session = runGdbScript(program, [
      'set sysroot /',
      'vmmcheck on-fail continue',
      'vmmcheck attach',
      'show remotetimeout',
      'break tick',
      'vmmcheck continue --breakpoint tick --function tick',
      'vmmcheck monitor help --match "Quit GDBserver" --name monitor-matches',
      'vmmcheck monitor help --no-match "Quit GDBserver" --kind leak --name monitor-must-not-match',
      'vmmcheck exit',
    ], { VMMCHECK_TARGET: `| gdbserver - ${program}` });
    expect(session.stdout).to.contain(`vmmcheck: target remote | gdbserver - ${program}`);
    // gdb's 2 s default would make a slow-starting stub's late answer the reply to the next packet.
    expect(session.stdout).to.match(/Timeout limit to wait for target to respond is 30\./);
    const byName = Object.fromEntries(session.results.map((r) => [r.name, r]));
    expect(byName['continue'].pass).to.equal(true);
    expect(byName['monitor-matches'].pass).to.equal(true);
    expect(byName['monitor-must-not-match'].pass).to.equal(false);
    expect(byName['monitor-must-not-match'].kind).to.equal('leak');
    expect(byName['monitor-must-not-match'].message).to.match(/^expected no output matching \/Quit GDBserver\/; saw: The following monitor commands/);
    expect(session.status).to.equal(1);
  });

  it('attach keeps a remotetimeout the user set', function () {
    const session = runGdbScript(program, ['set sysroot /', 'set remotetimeout 7', 'vmmcheck attach', 'show remotetimeout', 'vmmcheck exit'],
      { VMMCHECK_TARGET: `| gdbserver - ${program}` });
    expect(session.stdout).to.match(/Timeout limit to wait for target to respond is 7\./);
  });

  it('attach launches serve and waits for it when it starts slower than gdb\'s 2 s remotetimeout', function () {
    this.timeout(60000);
    // A node that starts 3 s late, as serve may on a loaded machine.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmmcheck-slow-'));
    const slowNode = path.join(dir, 'slow-node.sh');
    fs.writeFileSync(slowNode, `#!/bin/sh\nsleep 3\nexec ${JSON.stringify(process.execPath)} "$@"\n`, { mode: 0o755 });
    const session = runGdbScript(path.join(REPO_ROOT, 'guests', 'stepper.elf'), [
      'vmmcheck attach', 'vmmcheck continue --exited 0', 'vmmcheck exit',
    ], { VMMCHECK_TARGET: 'launch', VMMCHECK_NODE: slowNode }, 50000);
    fs.rmSync(dir, { recursive: true, force: true });
    expect(session.stderr).not.to.contain('Remote replied unexpectedly');
    expect(session.results.map((r) => [r.name, r.pass])).to.deep.equal([['continue', true], ['summary', true]]);
    expect(session.status, session.stdout + session.stderr).to.equal(0);
  });

  it('a watchpoint still awaited when the program exits is a missed hit', function () {
    const session = runGdbScript(program, ['break main', 'run',
      'watch other', 'vmmcheck hits other 10', 'vmmcheck continue --watch other']);
    expect(session.status).to.equal(1);
    expect(session.results[1].kind).to.equal('missed-hits');
    expect(session.results[1].message).to.contain('expected watchpoint 2 (other); saw the program exited with code 0');
  });

  it('vmmctl runs with --vm $VMMCHECK_VM_NAME and the given flags; a failing vmmctl fails the check', function () {
    const ok = runGdbScript(program, ['break tick', 'run', 'vmmcheck vmmctl --set-dr7=0x401 --name set', 'vmmcheck exit'],
      { VMMCHECK_NODE: '/bin/echo', VMMCHECK_VM_NAME: 'demo7' });
    expect(ok.status, ok.stdout + ok.stderr).to.equal(0);
    expect(ok.results[0].message).to.match(/^vmmctl --set-dr7=0x401: .*bin\/vmmctl\.js --vm demo7 --set-dr7=0x401$/);
    const bad = runGdbScript(program, ['break tick', 'run', 'vmmcheck vmmctl --get-dr7'], { VMMCHECK_NODE: '/bin/false' });
    expect(bad.status).to.equal(1);
    expect(bad.results[0].kind).to.equal('vmmctl-failed');
    expect(bad.results[0].message).to.equal('expected vmmctl --get-dr7 to succeed; saw exit status 1: ');
  });

  it('bad arguments are a gdb error that names the command and stop the script with status 1', function () {
    const session = runGdbScript(program, ['vmmcheck hits', 'vmmcheck exit']);
    expect(session.stderr).to.contain('vmmcheck hits: the following arguments are required: watch, count');
    expect(session.results).to.deep.equal([]);
    expect(session.status).to.equal(1);
  });
});
