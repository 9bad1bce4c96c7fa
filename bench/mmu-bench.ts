/**
 * MMU and code-cache figures (issue 8): the same CPU-bound loop with its data on the code's
 * page vs on its own page (a store beside decoded code must not cost a re-decode), and the
 * zero sled (a guest that runs through zero-filled RAM: it must end in a nested-page fault
 * quickly with bounded memory). Paging is on throughout (the bare CPU's identity map).
 */
import { Cpu } from '../vmm/cpu/cpu';
import { PhysicalCpu } from '../vmm/cpu/physical-cpu';
import { GuestMemory } from '../vmm/memory';
import { GprIndex } from '../vmm/cpu/guest-cpu';

const CODE = 0x100000;
const ITERATIONS = 4_000_000;

/**
 * mov $N,%ecx; 1: add %rcx,%rax; mov %rax,var(%rip); imul $3,%rax,%rdx; xor %rdx,%rbx;
 * mov var(%rip),%rsi; add %rsi,%rbx; dec %ecx; jnz 1b; out %al,$0xf4 -- with var at `varOff`
 * bytes from the code (same page or another page).
 */
function loopProgram(varOff: number): Uint8Array {
  const b: number[] = [0xb9, ...le32(ITERATIONS)];
  const loop = b.length;
  b.push(0x48, 0x01, 0xc8);
  b.push(0x48, 0x89, 0x05, ...le32(varOff - (b.length + 7)));
  b.push(0x48, 0x6b, 0xd0, 0x03, 0x48, 0x31, 0xd3);
  b.push(0x48, 0x8b, 0x35, ...le32(varOff - (b.length + 7)));
  b.push(0x48, 0x01, 0xf3, 0xff, 0xc9);
  b.push(0x75, (loop - (b.length + 2)) & 0xff);
  b.push(0xe6, 0xf4);
  return new Uint8Array(b);
}

function le32(v: number): number[] {
  return [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
}

export function runLoop(varOff: number, jit = true): number {
  const mem = new GuestMemory(16 << 20);
  mem.write(CODE, loopProgram(varOff));
  const cpu = new Cpu(mem, new PhysicalCpu());
  cpu.jitEnabled = jit;
  cpu.setReg('rip', { lo: CODE, hi: 0 });
  cpu.setGpr(4 as GprIndex, { lo: mem.size, hi: 0 });
  const c0 = process.cpuUsage();
  for (;;) {
    const e = cpu.run(10_000_000);
    if (e.kind === 'budget') continue;
    if (e.kind === 'io' && e.port === 0xf4) break;
    throw new Error(`bench loop stopped: ${JSON.stringify(e)}`);
  }
  const cu = process.cpuUsage(c0);
  return cpu.instret / ((cu.user + cu.system) / 1e6) / 1e6;
}

/** The zero sled: from 1 MiB through 64 MiB of zeros (add %al,(%rax)) to the end of RAM. */
function zeroSled(): { seconds: number; cpuSeconds: number; rssMiB: number; kind: string } {
  const mem = new GuestMemory(64 << 20);
  const cpu = new Cpu(mem, new PhysicalCpu());
  cpu.setReg('rip', { lo: CODE, hi: 0 });
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  let rss = process.memoryUsage().rss;
  let e = cpu.run(5_000_000);
  while (e.kind === 'budget') {
    rss = Math.max(rss, process.memoryUsage().rss);
    e = cpu.run(5_000_000);
  }
  const cu = process.cpuUsage(c0);
  return {
    seconds: Number(process.hrtime.bigint() - t0) / 1e9, cpuSeconds: (cu.user + cu.system) / 1e6,
    rssMiB: Math.round(Math.max(rss, process.memoryUsage().rss) / 1048576), kind: e.kind,
  };
}

export function benchMmu(): Record<string, number> {
  runLoop(0x2000); // warm-up
  let separate = 0, shared = 0, sharedInterp = 0;
  for (let r = 0; r < 3; r++) {
    separate = Math.max(separate, runLoop(0x2000));
    shared = Math.max(shared, runLoop(0x100));
    sharedInterp = Math.max(sharedInterp, runLoop(0x100, false));
  }
  const sled = zeroSled();
  if (sled.kind !== 'npf') throw new Error(`zero sled ended with ${sled.kind}`);
  return {
    'mmu.mips_per_cpu_second_data_on_separate_page': Math.round(separate * 10) / 10,
    'mmu.mips_per_cpu_second_data_on_code_page': Math.round(shared * 10) / 10,
    'mmu.shared_page_ratio_percent': Math.round((shared / separate) * 1000) / 10,
    'mmu.mips_per_cpu_second_data_on_code_page_interpreter': Math.round(sharedInterp * 10) / 10,
    'mmu.zero_sled_64MiB_seconds': Math.round(sled.seconds * 100) / 100,
    'mmu.zero_sled_64MiB_cpu_seconds': Math.round(sled.cpuSeconds * 100) / 100,
    'mmu.zero_sled_peak_rss_MiB': sled.rssMiB,
  };
}

if (require.main === module) {
  for (const [k, v] of Object.entries(benchMmu())) console.log(`${k}: ${v}`);
}
