import { expect } from 'chai';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseElf } from '../../vmm/loader/elf';

const GUESTS = path.join(__dirname, '..', '..', '..', 'guests');

function load(name: string) {
  return parseElf(new Uint8Array(fs.readFileSync(path.join(GUESTS, name))), 64 * 1024 * 1024);
}

describe('built-in guest images (guests/*.elf)', () => {
  it('exist for every built-in guest and load under the guest ABI', () => {
    for (const name of ['counter', 'selfwatch', 'workload-O0', 'workload-O1', 'workload-O2', 'workload-Os', 'cpuid-loop', 'stepper', 'fpmath']) {
      const img = load(`${name}.elf`);
      expect(img.entry, name).to.equal(0x100000);
      expect(img.symbols.get('main'), name).to.be.a('number');
    }
  });

  it('counter has the globals the watchpoint tests rely on, with their alignment', () => {
    const s = load('counter.elf').symbols;
    for (const g of ['counter', 'misaligned_u32', 'wide_struct', 'read_only_value', 'ticks', 'update_globals']) {
      expect(s.get(g), g).to.be.a('number');
    }
    expect(s.get('counter')! % 8).to.equal(0);
    expect(s.get('misaligned_u32')! % 16).to.equal(2);
    expect(s.get('wide_struct')! % 16).to.equal(0);
  });

  it('stepper and selfwatch export their probe labels', () => {
    const st = load('stepper.elf').symbols;
    const order = ['step_start', 'step_loop', 'step_call', 'step_out', 'step_cpuid', 'step_hlt', 'step_end'].map((n) => st.get(n)!);
    for (let i = 1; i < order.length; i++) expect(order[i]).to.be.greaterThan(order[i - 1]);
    const sw = load('selfwatch.elf').symbols;
    for (const n of ['probe_store8', 'probe_store8_end', 'probe_exec', 'probe_out_end', 'probe_rep_stos_insn', 'probe_single_step_end']) {
      expect(sw.get(n), n).to.be.a('number');
    }
  });
});

describe('guests/build.sh', () => {
  it('rebuilds byte-identical ELFs from the committed sources (the committed images are current)', function () {
    this.timeout(60000);
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'guests-build-'));
    try {
      const copy = path.join(tmp, 'guests');
      fs.cpSync(GUESTS, copy, { recursive: true, filter: (src) => !src.endsWith('.elf') });
      execFileSync('bash', [path.join(copy, 'build.sh')], { stdio: ['ignore', 'pipe', 'pipe'] });
      for (const f of fs.readdirSync(GUESTS).filter((n) => n.endsWith('.elf'))) {
        const fresh = fs.readFileSync(path.join(copy, f));
        expect(fresh.equals(fs.readFileSync(path.join(GUESTS, f))), `${f} differs from a fresh build: run npm run guests`).to.equal(true);
      }
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});
