/**
 * VM-exit speed (issue 3 section 9): exit/entry round trips per second on the cpuid-loop
 * guest (one CPUID exit per iteration, plus the handful of guest instructions around it),
 * with the full DR switch and with none; and on the host's /dev/kvm beside them (kvm).
 * `npm run bench` reports these figures.
 */
import * as fs from 'fs';
import * as path from 'path';
import { createVm } from '../vmm/api/create-vm';
import { DEFAULT_VM_OPTIONS, DrSwitchMode } from '../vmm/api/vm-options';
import { BackendName } from '../vmm/api/vm-api';
import { parseElf } from '../vmm/loader/elf';
import { kvmProblem } from '../vmm/kvm/kvm-device';
import { KvmVm } from '../vmm/kvm/kvm-vm';

const MEM_MIB = 16;

function findGuest(): string {
  for (const base of [process.cwd(), path.join(__dirname, '..', '..'), path.join(__dirname, '..')]) {
    const p = path.join(base, 'guests', 'cpuid-loop.elf');
    if (fs.existsSync(p)) return p;
  }
  throw new Error('guests/cpuid-loop.elf not found (npm run guests)');
}

/**
 * Round trips per second of one run of the guest to its exit. Time is this process's CPU
 * time (user + system), which a busy machine disturbs far less than wall time; on an idle
 * machine the two agree.
 */
function measure(elf: Uint8Array, backend: BackendName, drSwitch: DrSwitchMode): number {
  const image = parseElf(elf, MEM_MIB * 1024 * 1024, 1);
  const vm = createVm(image, { ...DEFAULT_VM_OPTIONS, backend, drSwitch, memMiB: MEM_MIB });
  const t0 = process.cpuUsage();
  let stop = vm.run([0], 1e7);
  while (stop.kind === 'slice') stop = vm.run([0], 1e7);
  const used = process.cpuUsage(t0);
  const seconds = (used.user + used.system) / 1e6;
  if (stop.kind !== 'exit' || stop.status !== 0) throw new Error(`cpuid-loop ended with ${JSON.stringify(stop)}`);
  const exits = Object.values(vm.stats().exits).reduce((a, b) => a + b, 0);
  return exits / seconds;
}

/** Exit/entry round trips per second, best of three runs, per backend and mode; plus full's cost. */
export function benchExits(): Record<string, number> {
  const elf = new Uint8Array(fs.readFileSync(findGuest()));
  const out: Record<string, number> = {};
  for (const backend of ['vmx', 'svm'] as const) {
    measure(elf, backend, 'full'); // warm-up
    measure(elf, backend, 'none');
    const best = { full: 0, none: 0 };
    for (let i = 0; i < 4; i++) {
      // Interleaved, so that a change in machine load hits both modes alike.
      for (const mode of ['full', 'none'] as const) best[mode] = Math.max(best[mode], measure(elf, backend, mode));
    }
    out[`exits_per_sec_${backend}_full`] = Math.round(best.full);
    out[`exits_per_sec_${backend}_none`] = Math.round(best.none);
    out[`full_cost_pct_${backend}`] = Math.round(1000 * (1 - out[`exits_per_sec_${backend}_full`] / out[`exits_per_sec_${backend}_none`])) / 10;
  }
  Object.assign(out, benchKvmExits(elf));
  return out;
}

/**
 * The same guest on this host's /dev/kvm (when usable): CPUID exits are handled inside the
 * host kernel, so this is a real exit/entry round trip without userspace; wall time, since
 * the guest runs on its own thread. Best of three. Without /dev/kvm: kvm_unavailable = 1.
 */
function benchKvmExits(elf: Uint8Array): Record<string, number> {
  if (kvmProblem() !== undefined) return { kvm_unavailable: 1 };
  const image = parseElf(elf, MEM_MIB * 1024 * 1024, 1);
  let best = 0;
  for (let i = 0; i < 3; i++) {
    const vm = new KvmVm(image, { ...DEFAULT_VM_OPTIONS, backend: 'kvm', memMiB: MEM_MIB });
    try {
      const t0 = performance.now();
      let stop = vm.run([0], 2e7);
      while (stop.kind === 'slice') stop = vm.run([0], 2e7);
      const seconds = (performance.now() - t0) / 1000;
      if (stop.kind !== 'exit' || stop.status !== 0) throw new Error(`cpuid-loop on kvm ended with ${JSON.stringify(stop)}`);
      best = Math.max(best, CPUID_ITERATIONS / seconds);
    } finally {
      vm.close();
    }
  }
  return { exits_per_sec_kvm_cpuid: Math.round(best) };
}

/** cpuid-loop.elf's cpuid_iterations (guests/cpuid-loop/cpuid-loop.c). */
const CPUID_ITERATIONS = 100_000;

if (require.main === module) {
  console.log(JSON.stringify(benchExits(), null, 2));
}
