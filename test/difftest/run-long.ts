/**
 * npm run difftest: the long differential run. Whole workload guests (-O0 and -O2, to
 * their exit) plus the edge cases at 4x the bounded run's size. Exit status 1 on a mismatch.
 */
import { diffRun } from './compare';
import { edgeCaseSpecs, faultSpecs, workloadSpec } from './corpus';
import { KNOWN_FAILING } from './known-failing';
import { loadCpuClass } from './sim';

async function main(): Promise<number> {
  const Cpu = loadCpuClass();
  if (!Cpu) {
    console.error('difftest: vmm/cpu/cpu.ts (class Cpu) is not built');
    return 2;
  }
  const specs = [workloadSpec('workload-O2'), workloadSpec('workload-O0'), ...edgeCaseSpecs(4), ...faultSpecs()];
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
      if (r.console) process.stdout.write(r.console.replace(/^/gm, '     | '));
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
