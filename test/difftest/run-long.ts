/**
 * npm run difftest: the long differential run. Whole workload guests (-O0, -O1, -O2, -Os, to
 * their exit), the whole fpmath guest, the SSE edge cases, the edge cases at 4x the bounded run's size and 40 random instruction
 * sequences (DIFFTEST_SEED=n repeats a run's). Exit status 1 on a mismatch.
 */
import { diffRun } from './compare';
import { edgeCaseSpecs, faultSpecs, randomSpecs, workloadSpec } from './corpus';
import { KNOWN_FAILING } from './known-failing';
import { loadCpuClass } from './sim';
import { fpmathSpec, sseEdgeSpecs, sseFaultSpecs } from './sse-corpus';

async function main(): Promise<number> {
  const Cpu = loadCpuClass();
  if (!Cpu) {
    console.error('difftest: vmm/cpu/cpu.ts (class Cpu) is not built');
    return 2;
  }
  const seed = process.env.DIFFTEST_SEED ? BigInt(process.env.DIFFTEST_SEED) : BigInt(Date.now());
  console.log(`random sequences: seed ${seed} (DIFFTEST_SEED=${seed} repeats them)`);
  const specs = [...['O2', 'O0', 'O1', 'Os'].map((o) => workloadSpec(`workload-${o}`)), fpmathSpec(), ...edgeCaseSpecs(4), ...sseEdgeSpecs(4), ...faultSpecs(), ...sseFaultSpecs(), ...randomSpecs(40, 5000, seed)];
  let failed = 0;
  for (const spec of specs) {
    const t0 = Date.now();
    const r = await diffRun(spec, Cpu);
    const secs = ((Date.now() - t0) / 1000).toFixed(1);
    if (r.mismatch) {
      const known = KNOWN_FAILING[spec.name];
      console.log(`${known ? 'KNOWN' : 'FAIL'} ${spec.name} after ${r.steps} instructions (${secs} s)${known ? ' [' + known + ']' : ''}\n${r.mismatch}`);
      if (!known) failed++;
    } else {
      console.log(`ok   ${spec.name}: ${r.steps} instructions identical, ended by ${r.end} (${secs} s)`);
      if (r.console) process.stdout.write(r.console.replace(/\n$/, '').replace(/^/gm, '     | ') + '\n');
    }
  }
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e);
    process.exit(2);
  },
);
