/** The scenario scripts: each one the verify matrix names exists, is used, and lints clean. */
import { expect } from 'chai';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { SCENARIOS } from '../../verify/scenarios';
import { REPO_ROOT, VMMCHECK_PY } from './gdb-session';

function lint(script: string) {
  return spawnSync('gdb', ['-nx', '-batch', '-x', VMMCHECK_PY, '-ex', `vmmcheck lint ${script}`],
    { cwd: REPO_ROOT, encoding: 'utf8' });
}

describe('gdb-scripts scenario scripts', function () {
  const named = new Set<string>();
  for (const s of SCENARIOS) {
    for (const backend of ['vmx', 'svm'] as const) {
      for (const run of s.runs(backend)) if (run.kind === 'gdb') named.add(run.script);
    }
  }
  const onDisk = fs.readdirSync(path.join(REPO_ROOT, 'gdb-scripts')).filter((f) => /^scenario-.*\.gdb$/.test(f));

  it('every script the matrix runs exists, and every scenario script is run by the matrix', function () {
    expect([...named].sort()).to.deep.equal([...onDisk].sort());
  });

  it('every vmmcheck line of every scenario script has valid arguments', function () {
    for (const script of onDisk) {
      const r = lint(path.join('gdb-scripts', script));
      expect(r.status, r.stdout + r.stderr).to.equal(0);
      expect(r.stdout).to.contain(`${script} ok`);
    }
  });

  it('lint reports each bad line with its file and line number', function () {
    const bad = path.join(fs.mkdtempSync(path.join(require('os').tmpdir(), 'lint-')), 'bad.gdb');
    fs.writeFileSync(bad, 'watch counter\nvmmcheck hits counter\nvmmcheck frob\n');
    const r = lint(bad);
    expect(r.status).to.equal(1);
    expect(r.stdout).to.contain(`${bad}:2: vmmcheck hits: the following arguments are required: count`);
    expect(r.stdout).to.contain(`${bad}:3: unknown subcommand frob`);
  });
});
