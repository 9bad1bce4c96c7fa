/** The verify runner's machinery with a fake cell runner: matrix, verdicts, table, JSON, pool. */
import { expect } from 'chai';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Observation } from '../../verify/expectations';
import { MissingToolError, findGdb } from '../../verify/find-gdb';
import { buildMatrix, Cell } from '../../verify/matrix';
import { runVerify, VERIFY_EXIT, VERIFY_SCENARIOS } from '../../verify/run-verify';
import { DR_SWITCH_MODES } from '../../vmm/api/vm-options';

/** Observes exactly what each cell expects (the behaviour of a correct build). */
function asExpected(cell: Cell): Observation {
  const e = cell.expected;
  if (e.kind === 'detect') return { pass: false, failure: e.failures[0], check: 'x', detail: 'seen', seconds: 0.01 };
  return { pass: true, detail: 'ok', seconds: 0.01 };
}

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, deps: { stdout: (t: string) => { out.push(t); }, stderr: (t: string) => { err.push(t); } } };
}

describe('verify matrix and runner (fake cells)', function () {
  it('the matrix is backends x modes x scenarios, with every full cell expected to pass', function () {
    // As if kvm-unit-tests' debug.flat were there (kut-debug.test.ts covers its absence).
    const cells = buildMatrix({ backends: [], drSwitch: [], scenarios: undefined }, () => ({ dir: '/kut' }));
    expect(cells).to.have.length(2 * DR_SWITCH_MODES.length * VERIFY_SCENARIOS.length);
    for (const c of cells.filter((x) => x.mode === 'full')) expect(c.expected.kind, c.scenario.name).to.equal('pass');
    // Each left-out part is detected by at least one scenario on the backend it belongs to.
    for (const mode of DR_SWITCH_MODES.filter((m) => m !== 'full')) {
      expect(cells.some((c) => c.mode === mode && c.expected.kind === 'detect'), mode).to.equal(true);
    }
    const tfGuardOnSvm = cells.filter((c) => c.backend === 'svm' && c.mode === 'no-tf-guard');
    expect(tfGuardOnSvm.every((c) => c.expected.kind === 'n/a')).to.equal(true);
    const dirtyOnVmx = cells.filter((c) => c.backend === 'vmx' && c.mode === 'no-svm-dirty');
    expect(dirtyOnVmx.every((c) => c.expected.kind === 'n/a')).to.equal(true);
  });

  it('a selection keeps the canonical order and rejects unknown names', async function () {
    const cells = buildMatrix({ backends: ['svm', 'vmx'], drSwitch: ['none', 'full'], scenarios: ['stepping'] });
    expect(cells.map((c) => `${c.backend}/${c.mode}`)).to.deep.equal(['vmx/full', 'vmx/none', 'svm/full', 'svm/none']);
    const io = capture();
    const status = await runVerify({ backends: [], drSwitch: [], scenarios: ['nope'] }, { ...io.deps, runCell: async (c) => asExpected(c) });
    expect(status).to.equal(VERIFY_EXIT.USAGE);
    expect(io.err.join('')).to.contain('unknown scenario nope (known: watch-write,');
  });

  it('exits 0 when every cell shows what it must, with a progress line per run cell and the --wide table', async function () {
    const io = capture();
    const json = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'verify-')), 'table.json');
    const status = await runVerify({ backends: [], drSwitch: [], json, wide: true }, { ...io.deps, runCell: async (c) => asExpected(c) });
    expect(status).to.equal(0);
    const cells = buildMatrix({ backends: [], drSwitch: [] });
    const runnable = cells.filter((c) => c.expected.kind !== 'n/a');
    const progress = io.err.filter((l) => l.startsWith('verify ['));
    expect(progress).to.have.length(runnable.length);
    expect(progress[0]).to.match(/^verify \[ ?1\/\d+\] \w+ [\w-]+ [\w-]+: expected .*, observed .* -> ok/);
    const table = io.out.join('');
    expect(table.split('\n')[0]).to.match(/^backend\s+mode\s+scenario\s+expected\s+observed\s+verdict$/);
    expect(table).to.match(/vmx\s+none\s+watch-write\s+detect missed-hits\s+fail missed-hits \(x\)\s+ok/);
    expect(table).to.match(/svm\s+no-tf-guard\s+dr6-race\s+n\/a\s+not run\s+n\/a/);
    const written = JSON.parse(fs.readFileSync(json, 'utf8'));
    expect(written.rows).to.have.length(cells.length);
    expect(written.summary.failed).to.equal(0);
    expect(written.rows[0]).to.include.keys('backend', 'mode', 'scenario', 'expected', 'observed', 'verdict');
  });

  it('exits 1 when a full cell fails', async function () {
    const io = capture();
    const status = await runVerify({ backends: ['vmx'], drSwitch: ['full'], scenarios: ['watch-write'] }, {
      ...io.deps,
      runCell: async () => ({ pass: false, failure: 'missed-hits', check: 'hits', detail: 'hit 2 of 8: saw exit', seconds: 0 }),
    });
    expect(status).to.equal(1);
    expect(io.out.join('')).to.contain('watch-write: expected pass; observed fail missed-hits (hits): hit 2 of 8: saw exit');
  });

  it('exits 1 when a pre-fix cell passes: the verifier must see the bug, not only the fix', async function () {
    const io = capture();
    const status = await runVerify({ backends: ['vmx'], drSwitch: ['none'], scenarios: ['watch-write'] }, {
      ...io.deps, runCell: async () => ({ pass: true, detail: 'all hits', seconds: 0 }),
    });
    expect(status).to.equal(1);
    expect(io.out.join('')).to.match(/^vmx\s+none\nwatch-write\s+FAIL\n/);
    expect(io.out.join('')).to.contain('vmx none watch-write: expected detect missed-hits (');
  });

  it('the default table fits 80 columns: scenarios x modes per backend, short verdicts, n/a folded', async function () {
    const io = capture();
    const status = await runVerify({ backends: [], drSwitch: [] }, { ...io.deps, runCell: async (c) => asExpected(c) });
    expect(status).to.equal(0);
    const table = io.out.join('');
    const lines = table.split('\n');
    for (const l of lines) expect(l.length, l).to.be.at.most(80);
    expect(lines.length).to.be.lessThan(30);
    expect(lines[0]).to.match(/^vmx\s+full\s+none\s+dr0-3\s+dr6\s+dr7dbg\s+tf$/);
    expect(table).to.match(/\nsvm\s+full\s+none\s+dr0-3\s+dr7dbg\s+svmdirty\n/);
    expect(table).to.match(/\nwatch-write\s+pass\s+caught\s+caught\s+-\s+-\s+-\n/);
    expect(table).to.contain('dr7dbg = no-host-dr7-debugctl');
    expect(table).to.match(/\d+ as expected, 0 not, \d+ n\/a; [\d.]+s\n$/);
  });

  it('on a terminal the progress is one line redrawn in place with a bar and a count', async function () {
    const io = capture();
    await runVerify({ backends: ['vmx'], drSwitch: ['full', 'none'], scenarios: ['watch-write', 'stepping'] },
      { ...io.deps, stderrIsTty: true, runCell: async (c) => asExpected(c) });
    const progress = io.err.filter((l) => l.startsWith('\r'));
    expect(progress).to.have.length(4);
    expect(progress[0]).to.match(/^\rverify \[#####\.{15}\] 1\/4 vmx full watch-write: pass\s*$/);
    expect(progress[3]).to.match(/^\rverify \[#{20}\] 4\/4 vmx none stepping: pass\s*\n$/);
    for (const l of progress) expect(l.replace(/\n$/, '').length).to.equal(80);
  });

  it('exits 1 when a pre-fix cell fails for another reason than the one it must show', async function () {
    const io = capture();
    const status = await runVerify({ backends: ['vmx'], drSwitch: ['no-tf-guard'], scenarios: ['dr6-race'] }, {
      ...io.deps, runCell: async () => ({ pass: false, failure: 'script-error', check: 'gdb', detail: 'serve died', seconds: 0 }),
    });
    expect(status).to.equal(1);
  });

  it('a runner that throws is a failed cell, not a crash', async function () {
    const io = capture();
    const status = await runVerify({ backends: ['svm'], drSwitch: ['full'], scenarios: ['stepping'] }, {
      ...io.deps, runCell: async () => { throw new Error('boom'); },
    });
    expect(status).to.equal(1);
    expect(io.out.join('')).to.contain('observed fail runner-error (verify): Error: boom');
  });

  it('runs cells in parallel, never more than --jobs at a time', async function () {
    let running = 0;
    let peak = 0;
    const io = capture();
    const status = await runVerify({ backends: [], drSwitch: ['full', 'none'], jobs: 3 }, {
      ...io.deps,
      runCell: async (c) => {
        running++;
        peak = Math.max(peak, running);
        await new Promise((r) => setTimeout(r, 5));
        running--;
        return asExpected(c);
      },
    });
    expect(status).to.equal(0);
    expect(peak).to.equal(3);
  });

  it('a missing gdb is a clear error with the install hint', async function () {
    expect(() => findGdb({ VMM_GDB: '/nonexistent/gdb' })).to.throw(MissingToolError, /apt-get install gdb/);
    const io = capture();
    const status = await runVerify({ backends: ['vmx'], drSwitch: ['full'] }, {
      ...io.deps, findGdb: () => findGdb({ VMM_GDB: '/nonexistent/gdb' }),
    });
    expect(status).to.equal(VERIFY_EXIT.MISSING_TOOL);
    expect(io.err.join('')).to.match(/cannot run \/nonexistent\/gdb: .*install it with `apt-get install gdb`/);
  });
});
