/** verify --backend kvm: opt-in rows, one per scenario (no --dr-switch modes), reported as observed. */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildMatrix } from '../../verify/matrix';
import { BIN, requireKvm } from './kvm-env';

describe('verify: the kvm rows (selection, no /dev/kvm needed)', () => {
  it('the default selection has no kvm rows (npm start is unchanged)', () => {
    const cells = buildMatrix({ backends: [], drSwitch: [] });
    expect(cells.some((c) => c.backend === 'kvm')).to.equal(false);
    expect(cells.length).to.be.greaterThan(0);
  });

  it('--backend kvm gives one row per scenario, mode host, pass where it applies and n/a elsewhere', () => {
    const cells = buildMatrix({ backends: ['kvm'], drSwitch: ['full', 'none'] });
    expect(cells.every((c) => c.backend === 'kvm' && c.mode === 'host')).to.equal(true);
    const expected = Object.fromEntries(cells.map((c) => [c.scenario.name, c.expected.kind]));
    expect(expected).to.include({ 'watch-write': 'pass', 'access-hbreak': 'pass', selfwatch: 'pass', stepping: 'pass', 'host-isolation': 'n/a' });
  });
});

describe('verify --backend kvm on /dev/kvm', function () {
  before(function () { requireKvm(this); });

  it('runs the kvm rows with stock gdb and reports what the host does', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmm-kvm-verify-'));
    try {
      const json = path.join(dir, 'v.json');
      const r = spawnSync('node', [BIN, 'verify', '--backend', 'kvm', '--scenario', 'watch-write,stepping,dr6-race', '--json', json, '--jobs', '2'], { encoding: 'utf8' });
      expect([0, 1]).to.include(r.status);
      const rows = (JSON.parse(fs.readFileSync(json, 'utf8')) as { rows: Array<{ backend: string; mode: string; scenario: string; expected: string; observed: string; verdict: string }> }).rows;
      expect(rows.map((x) => `${x.backend} ${x.mode} ${x.scenario} ${x.expected}`)).to.deep.equal([
        'kvm host watch-write pass', 'kvm host dr6-race n/a', 'kvm host stepping pass',
      ]);
      for (const x of rows.filter((y) => y.expected === 'pass')) expect(x.observed).to.match(/^(pass|fail \S+)/);
      expect(r.status).to.equal(rows.every((x) => x.verdict === 'ok' || x.verdict === 'n/a') ? 0 : 1);
      console.log(`      [kvm] verify --backend kvm: ${rows.map((x) => `${x.scenario} ${x.observed}`).join('; ')}`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
