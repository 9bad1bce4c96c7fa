/**
 * VM-exit speed (issue 3 section 9): exit/entry round trips per second on the cpuid-loop
 * guest (one CPUID exit per iteration, plus the handful of guest instructions around it),
 * with the full DR switch and with none. `npm run bench` reports these figures.
 */
import * as fs from 'fs';
import * as path from 'path';
import { createVm } from '../vmm/api/create-vm';
import { DEFAULT_VM_OPTIONS, DrSwitchMode } from '../vmm/api/vm-options';
import { BackendName } from '../vmm/api/vm-api';
import { parseElf } from '../vmm/loader/elf';

const MEM_MIB = 16;

function findGuest(): string {
  for (const base of [process.cwd(), path.join(__dirname, '..', '..'), path.join(__dirname, '..')]) {
    const p = path.join(base, 'guests', 'cpuid-loop.elf');
    if (fs.existsSync(p)) return p;
  }
  throw new Error('guests/cpuid-loop.elf not found (npm run guests)');
}

/** Round trips per second of one run of the guest to its exit. */
function measure(elf: Uint8Array, backend: BackendName, drSwitch: DrSwitchMode): number {
  const image = parseElf(elf, MEM_MIB * 1024 * 1024, 1);
  const vm = createVm(image, { ...DEFAULT_VM_OPTIONS, backend, drSwitch, memMiB: MEM_MIB });
  const t0 = process.hrtime.bigint();
  let stop = vm.run([0], 1e7);
  while (stop.kind === 'slice') stop = vm.run([0], 1e7);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (stop.kind !== 'exit' || stop.status !== 0) throw new Error(`cpuid-loop ended with ${JSON.stringify(stop)}`);
  const exits = Object.values(vm.stats().exits).reduce((a, b) => a + b, 0);
  return exits / seconds;
}

/** Exit/entry round trips per second, best of three runs, per backend and mode; plus full's cost. */
export function benchExits(): Record<string, number> {
  const elf = new Uint8Array(fs.readFileSync(findGuest()));
  const out: Record<string, number> = {};
  for (const backend of ['vmx', 'svm'] as const) {
    for (const mode of ['full', 'none'] as const) {
      measure(elf, backend, mode); // warm-up
      let best = 0;
      for (let i = 0; i < 3; i++) best = Math.max(best, measure(elf, backend, mode));
      out[`exits_per_sec_${backend}_${mode}`] = Math.round(best);
    }
    out[`full_cost_pct_${backend}`] = Math.round(1000 * (1 - out[`exits_per_sec_${backend}_full`] / out[`exits_per_sec_${backend}_none`])) / 10;
  }
  return out;
}

if (require.main === module) {
  console.log(JSON.stringify(benchExits(), null, 2));
}
