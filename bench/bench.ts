/**
 * `npm run bench`: every speed figure the issues name, in one run.
 *   cpu.*   guest instructions/s of the CPU (block compiler on; _interpreter: off) on the workload guest, with and without
 *           four data breakpoints armed (issue 2 section 8);
 *   vm.*    the same guest through the whole hypervisor (VT-x, dr-switch full);
 *   exits*  VM exit/entry round trips/s on the cpuid-loop guest, full vs none (issue 3 section 9);
 *   stub_* / gdbserver_*  RSP round trips, stepi and watchpoint-hit rates, side by side with
 *           gdbserver serving a native process (issue 4 section 9).
 * Figures are measured, never asserted: the tests do not time anything.
 *   mmu.*   data beside code on one page vs separate pages, and the zero sled (issue 8).
 *   sieve_* kvm-unit-tests sieve.flat with our `run` and with QEMU TCG, wall-time ratio
 *           (issue 10). Minutes long: NOT in the default run; `npm run bench -- sieve` runs it.
 * `npm run bench -- cpu mmu vm exits stub sieve` picks sections; no argument = every section but sieve.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { benchCpu } from './cpu-bench';
import { benchMmu } from './mmu-bench';
import { benchExits } from './exit-bench';
import { benchStub } from './stub-bench';
import { benchSieve } from './sieve-bench';
import { createVm } from '../vmm/api/create-vm';
import { DEFAULT_VM_OPTIONS } from '../vmm/api/vm-options';
import { parseElf } from '../vmm/loader/elf';

const ROUNDS = 40;

/** The workload guest run by the full VM (VT-x, full switch): instructions per wall second. */
function benchVm(): Record<string, number> {
  const file = path.join(__dirname, '..', '..', 'guests', 'workload-O2.elf');
  const bytes = new Uint8Array(fs.readFileSync(file));
  const once = (): number => {
    const opts = { ...DEFAULT_VM_OPTIONS };
    const image = parseElf(bytes, opts.memMiB * 1024 * 1024);
    const rounds = image.symbols.get('workload_rounds');
    const vm = createVm(image, opts);
    if (rounds !== undefined) vm.writeMemory(rounds, new Uint8Array([ROUNDS, 0, 0, 0]));
    const t0 = process.hrtime.bigint();
    let stop = vm.run([0], 5e7);
    while (stop.kind === 'slice') stop = vm.run([0], 5e7);
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    if (stop.kind !== 'exit' || stop.status !== 0) throw new Error(`workload ended with ${JSON.stringify(stop)}`);
    return vm.stats().instructions / seconds / 1e6;
  };
  once(); // warm-up
  let best = 0;
  for (let i = 0; i < 3; i++) best = Math.max(best, once());
  return { 'vm.mips_workload_vmx_full': Math.round(best * 10) / 10 };
}

async function main(): Promise<void> {
  const wanted = process.argv.slice(2);
  const want = (s: string): boolean => wanted.length === 0 || wanted.includes(s);
  const all: Record<string, number | string> = {};
  const section = (name: string, r: Record<string, number | string>): void => {
    console.log(`## ${name}`);
    for (const [k, v] of Object.entries(r)) console.log(`${k}: ${v}`);
    Object.assign(all, r);
  };
  console.log(`bench on ${os.cpus().length} cores, load average ${os.loadavg()[0].toFixed(1)}`);
  if (want('cpu')) section('cpu (issue 2: >= 50 M/s, armed >= 90 %)', benchCpu());
  if (want('mmu')) section('mmu (issue 8: data on the code page within 10 %, zero sled < 5 s, bounded RSS)', benchMmu());
  if (want('vm')) section('vm', benchVm());
  if (want('exits')) section('exits (issue 3: >= 500,000/s full, full costs <= 20 %)', benchExits());
  if (want('stub')) section('stub vs gdbserver (issue 4: ours >= gdbserver; issue 10: stepi and watch hits >= 1.3x)', await benchStub());
  if (wanted.includes('sieve')) section('sieve: ours vs QEMU TCG (issue 10: wall time <= 3x QEMU\'s)', await benchSieve());
  if (process.env.BENCH_JSON) fs.writeFileSync(process.env.BENCH_JSON, JSON.stringify(all, null, 2) + '\n');
}

main().catch((e: unknown) => {
  process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
