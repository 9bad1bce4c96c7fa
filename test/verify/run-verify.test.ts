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
    const cells = buildMatrix({ backends: [], drSwitch: [], scenarios: undefined });
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

  it('exits 0 when every cell shows what it must, with a progress line per run cell and the table', async function () {
    const io = capture();
    const json = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'verify-')), 'table.json');
    const status = await runVerify({ backends: [], drSwitch: [], json }, { ...io.deps, runCell: async (c) => asExpected(c) });
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
    expect(io.out.join('')).to.match(/vmx\s+none\s+watch-write\s+detect missed-hits\s+pass\s+FAIL/);
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
