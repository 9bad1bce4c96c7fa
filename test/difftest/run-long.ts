/**
 * npm run difftest: the long differential run. Whole workload guests (-O0, -O1, -O2, -Os, to
 * their exit), the whole fpmath guest, the SSE edge cases, the edge cases at 4x the bounded run's size and 40 random instruction
 * sequences and 20 random loops (DIFFTEST_SEED=n repeats a run's). Exit status 1 on a mismatch.
 * Then the same corpus with the block compiler on (block-compare.ts): every block compiled
 * at its first cached entry (VMM_JIT_THRESHOLD=1), and the workloads and fpmath also with
 * the default threshold. DIFFTEST_MODE=step or block runs one half only.
 */
import { blockDiffRun } from './block-compare';
import { diffRun } from './compare';
import { edgeCaseSpecs, faultSpecs, randomLoopSpecs, randomSpecs, workloadSpec } from './corpus';
import { KNOWN_FAILING } from './known-failing';
import { RunSpec } from './run-spec';
import { loadCpuClass } from './sim';
import { JIT_THRESHOLD } from '../../vmm/cpu/jit/block-jit';
import { fpmathSpec, sseEdgeSpecs, sseFaultSpecs } from './sse-corpus';

async function main(): Promise<number> {
  const Cpu = loadCpuClass();
  if (!Cpu) {
    console.error('difftest: vmm/cpu/cpu.ts (class Cpu) is not built');
    return 2;
  }
  const seed = process.env.DIFFTEST_SEED ? BigInt(process.env.DIFFTEST_SEED) : BigInt(Date.now());
  console.log(`random sequences: seed ${seed} (DIFFTEST_SEED=${seed} repeats them)`);
  const longSpecs = () => [...['O2', 'O0', 'O1', 'Os'].map((o) => workloadSpec(`workload-${o}`)), fpmathSpec()];
  const blobSpecs = () => [...edgeCaseSpecs(4), ...sseEdgeSpecs(4), ...faultSpecs(), ...sseFaultSpecs(), ...randomSpecs(40, 5000, seed), ...randomLoopSpecs(20, 120, 50, seed)];
  const mode = process.env.DIFFTEST_MODE ?? 'both';
  let failed = 0;
  const report = (what: string, secs: string, r: { mismatch?: string; steps: number; end: string; console: string; name: string }, extra = '') => {
    if (r.mismatch) {
      const known = KNOWN_FAILING[r.name];
      console.log(`${known ? 'KNOWN' : 'FAIL'} ${what} after ${r.steps} instructions (${secs} s)${known ? ' [' + known + ']' : ''}\n${r.mismatch}`);
      if (!known) failed++;
    } else {
      console.log(`ok   ${what}: ${r.steps} instructions identical, ended by ${r.end}${extra} (${secs} s)`);
      if (r.console) process.stdout.write(r.console.replace(/\n$/, '').replace(/^/gm, '     | ') + '\n');
    }
  };
  if (mode !== 'block') await stepMode([...longSpecs(), ...blobSpecs()]);
  if (mode !== 'step') {
    console.log('block mode: the compiler on, compared at each stop of Cpu.run with random budgets');
    const runs: Array<[RunSpec, number, number]> = [
      ...longSpecs().map((s): [RunSpec, number, number] => [s, 1, 0]),
      ...longSpecs().map((s): [RunSpec, number, number] => [s, JIT_THRESHOLD, 0]),
      ...blobSpecs().map((s): [RunSpec, number, number] => [s, 1, 12]),
    ];
    for (const [spec, threshold, warmups] of runs) {
      const t0 = Date.now();
      const r = await blockDiffRun(spec, Cpu, { threshold, warmups, seed: seed ^ 0xb10cn });
      const secs = ((Date.now() - t0) / 1000).toFixed(1);
      report(`${spec.name} [compiled, threshold ${threshold}]`, secs, r,
        `; ${r.stops} stops, ${r.compiledInsns} instructions in compiled blocks, ${r.compiledFaults} exceptions raised there` +
        (r.undefinedReads ? `, ${r.undefinedReads} reads of undefined flags (${r.resyncs} resyncs${r.memoryDiffersAfterUndefinedReads ? ', memory differs from native, equals the interpreter' : ''})` : ''));
    }
  }
  return failed ? 1 : 0;

  async function stepMode(specs: RunSpec[]): Promise<void> {
    for (const spec of specs) {
      const t0 = Date.now();
      const r = await diffRun(spec, Cpu!);
      report(spec.name, ((Date.now() - t0) / 1000).toFixed(1), r);
    }
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e);
    process.exit(2);
  },
);
