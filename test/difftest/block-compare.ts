/**
 * The block-mode differential run: the simulator runs with the block compiler on, through
 * the Cpu's public run API with random instruction budgets (so compiled blocks run whole,
 * chained, looping on themselves, and stop only at the budget or an exit), while the native
 * process single-steps as in compare.ts. At each simulator stop, after N instructions, its
 * whole state must equal the native state after N instructions (memory at the end), and
 * exactly the state of an interpreter run (compiler off) to N, memory regions included.
 *
 * Flags the SDM leaves undefined cannot be compared after an instruction that leaves them
 * so, until an instruction writes them again: the native side's instructions between two
 * stops are replayed through undefined-flags.ts to know which; at the stop they take the
 * native values (as compare.ts does after every step). Code that reads such a flag before
 * the stop (a random sequence's ADC after a multi-bit shift...) may then legitimately
 * differ, then and later (through memory): after such a read the run resynchronizes the
 * registers instead of failing, and memory is compared with the interpreter only. The
 * comparison with the interpreter, exact at every stop, is never relaxed.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { CpuExit } from '../../vmm/cpu/cpu-exit';
import { GprIndex } from '../../vmm/cpu/guest-cpu';
import * as blockJit from '../../vmm/cpu/jit/block-jit';
import { diffRecords, DiffResult } from './compare';
import { Rng } from './corpus';
import { runNative } from './native';
import { RunSpec } from './run-spec';
import { CpuClass, SIGNAL_OF_VECTOR, SimRunner } from './sim';
import { hex64, Kind, TraceRecord } from './trace-format';
import { COMPARED, readFlags, undefinedFlags, writtenFlags } from './undefined-flags';

export interface BlockOptions {
  /** VMM_JIT_THRESHOLD for the simulator: 1 compiles every block at its first cached entry. */
  threshold: number;
  /**
   * Runs of the whole spec before the compared one, at most (they stop when one decodes
   * nothing; then registers and memory go back to the start, the compiled blocks stay):
   * straight-line code runs once, and a block runs compiled only after it was decoded and
   * cached (a block's first run is not cached) and compiled (threshold).
   */
  warmups: number;
  /** Seed of the budgets. */
  seed: bigint;
  /** Largest budget of one run() call. */
  maxBudget?: number;
}

export interface BlockDiffResult extends DiffResult {
  /** Simulator stops compared. */
  stops: number;
  /** Blocks the compiler compiled during the compared run (and its warm-ups). */
  compiled: number;
  /** Instructions the compared run completed inside compiled blocks, and the exceptions raised inside one (an INT3 call-out too). */
  compiledInsns: number;
  compiledFaults: number;
  /** Instructions that read a flag an earlier one left undefined (their results may differ). */
  undefinedReads: number;
  /** Memory at the end differs from native after such reads (it equals the interpreter's). */
  memoryDiffersAfterUndefinedReads?: boolean;
  /** Stops where the states differed after such a read: the simulator took the native registers. */
  resyncs: number;
}

/** The Cpu's compiler switches and its decode counter (public fields of vmm/cpu/cpu.ts Cpu). */
interface CpuJitKnobs {
  jitEnabled: boolean;
  jitThreshold: number;
  decodes: number;
}

const KIND_NAMES = ['step', 'out', 'in', 'int3', 'fault', 'exit', 'max', 'dump'];
const MAX_WARMUP_STEPS = 50_000_000;

/**
 * A budget: a quarter of the stops come within a block or two (log-uniform in [1, 40]), the
 * rest after many whole blocks (log-uniform in [40, max]): compiled blocks run only whole.
 */
function budget(rng: Rng, max: number): number {
  const u = rng.int(1 << 20) / (1 << 20);
  const [lo, hi] = rng.int(4) === 0 ? [1, 40] : [40, Math.max(40, max)];
  return Math.max(1, Math.floor(lo * Math.exp(u * Math.log(hi / lo))));
}

/** Native records one at a time (dumps kept aside). */
class NativeCursor {
  private readonly it: AsyncIterator<TraceRecord>;
  readonly dumps: TraceRecord[] = [];
  private peeked: TraceRecord | undefined;
  constructor(records: AsyncIterable<TraceRecord>) {
    this.it = records[Symbol.asyncIterator]();
  }
  async peek(): Promise<TraceRecord | undefined> {
    while (this.peeked === undefined) {
      const n = await this.it.next();
      if (n.done) return undefined;
      if (n.value.kind === Kind.Dump) this.dumps.push(n.value);
      else this.peeked = n.value;
    }
    return this.peeked;
  }
  async take(): Promise<TraceRecord | undefined> {
    const r = await this.peek();
    this.peeked = undefined;
    return r;
  }
  async drain(): Promise<void> {
    while ((await this.take()) !== undefined) { /* dumps collected */ }
  }
}

/** How the simulator's run() call ended, as a record comparable with the native one. */
interface SimStop {
  rec: TraceRecord;
  /** The run ended here (fault, port 0xF4, int3, a simulator problem). */
  final: boolean;
}

/** Runs the simulator within `k` instructions, emulating I/O as tracer.c does. */
function simRun(sim: SimRunner, k: number): SimStop {
  const exit: CpuExit = sim.cpu.run(k);
  switch (exit.kind) {
    case 'budget':
      return { rec: sim.record(Kind.Step), final: false };
    case 'io': {
      const rec = sim.emulateIo(exit);
      return { rec, final: rec.kind === Kind.Exit || rec.kind === Kind.Fault };
    }
    case 'exception':
      // an intercepted INT3 exits with RIP at it (as tracer.c stops before it), counted as retired
      if (exit.vector === 3) return { rec: sim.record(Kind.Int3), final: true };
      return { rec: sim.record(Kind.Fault, SIGNAL_OF_VECTOR[exit.vector] ?? 1000 + exit.vector), final: true };
    default:
      sim.problem = `simulator stopped with a '${exit.kind}' exit: ${JSON.stringify(exit)}`;
      return { rec: sim.record(Kind.Fault, 2000), final: true };
  }
}

function rcxLo(r: TraceRecord | undefined, spec: RunSpec): number {
  return r ? r.regs[2] : Number(BigInt.asUintN(32, BigInt(spec.regs.rcx ?? 0)));
}
function ripOf(r: TraceRecord | undefined, spec: RunSpec): number {
  return r ? r.regs[32] + r.regs[33] * 4294967296 : Number(spec.regs.rip ?? 0);
}

/** What compiled blocks did while counting (see withCompiledRunsCounted). */
const compiledRuns = { counting: false, insns: 0, faults: 0 };

/** The vCPU as compiled code sees it (CpuCore fields). */
export interface CompiledCpu {
  instret: number;
  /** Instructions the compiled function completed (after its last whole self-loop pass). */
  jitN: number;
  /** GPR bits 31:0. */
  rl: Uint32Array;
}
/** A compiled function as the Cpu calls it: (vCPU, budget left, ...) => the next RIP. */
export type CompiledFn = (c: CompiledCpu, ...rest: unknown[]) => number;

/**
 * Wraps every compiled function the compiler hands out from now on (jit/block-jit's
 * compileBlock result, or compileRegion's `fn` where the compiler builds regions); returns
 * the undo, or null if the module has neither export. For tests only: the harness counts
 * and spoils compiled code this way, the Cpu is driven through its public run API.
 */
export function hookCompiledCode(wrap: (f: CompiledFn) => CompiledFn): (() => void) | null {
  const mod = blockJit as unknown as Record<string, unknown>;
  const block = mod.compileBlock, region = mod.compileRegion;
  if (typeof block === 'function') {
    const original = block as (...a: unknown[]) => CompiledFn | null;
    mod.compileBlock = (...a: unknown[]) => {
      const f = original(...a);
      return f === null ? null : wrap(f);
    };
    return () => { mod.compileBlock = original; };
  }
  if (typeof region === 'function') {
    const original = region as (...a: unknown[]) => { fn: CompiledFn } | null;
    mod.compileRegion = (...a: unknown[]) => {
      const r = original(...a);
      return r === null ? null : { ...r, fn: wrap(r.fn) };
    };
    return () => { mod.compileRegion = original; };
  }
  return null;
}

/**
 * Counts the instructions that run inside compiled code (only to prove that the compared
 * run exercised it): while `fn` runs, every compiled function is wrapped in a counter of its
 * completed instructions (CpuCore.jitN and the passes of a self-loop, which go to instret)
 * and of the exceptions it raises (an INT3 call-out at a block's end is one). Nothing else
 * changes; if the compiler module has no hook (hookCompiledCode) the counts stay 0, and the
 * tests that expect compiled code say so.
 */
async function withCompiledRunsCounted<T>(fn: () => Promise<T>): Promise<T> {
  const undo = hookCompiledCode((f) => (c, ...rest) => {
    const before = c.instret;
    try {
      const next = f(c, ...rest);
      if (compiledRuns.counting) compiledRuns.insns += c.instret - before + c.jitN;
      return next;
    } catch (x) {
      if (compiledRuns.counting) { compiledRuns.insns += c.instret - before + c.jitN; compiledRuns.faults++; }
      throw x;
    }
  });
  try {
    return await fn();
  } finally {
    undo?.();
  }
}

/**
 * Runs the spec once without comparing (a warm-up): to its end or `limit` instructions, with
 * the budgets the compared run will use, so that its blocks start where the compared run's
 * do (after a stop within a block, the next block starts there).
 */
function runToEnd(sim: SimRunner, limit: number, budgets: () => number): void {
  const start = sim.cpu.instret;
  while (sim.cpu.instret - start < limit) {
    if (simRun(sim, Math.min(budgets(), limit - (sim.cpu.instret - start))).final) return;
  }
}

/** Runs `sim` (the interpreter reference) until it has retired `n` instructions since `base`; false if it ended first. */
function advanceTo(sim: SimRunner, base: number, n: number): boolean {
  while (sim.cpu.instret - base < n) {
    if (simRun(sim, n - (sim.cpu.instret - base)).final) return false;
  }
  return true;
}

/** Sets the arithmetic flags and DF in `mask` to the native values. */
function takeFlags(sim: SimRunner, nat: TraceRecord, mask: number): void {
  const fl = sim.cpu.getReg('rflags');
  sim.cpu.setReg('rflags', { lo: ((fl.lo & ~mask) | (nat.regs[34] & mask)) >>> 0, hi: fl.hi });
}

/** The first byte where the dump regions of two simulators differ, or -1. */
function memoryDiff(a: SimRunner, b: SimRunner, spec: RunSpec): number {
  for (const d of spec.dumps ?? []) {
    const x = a.mem.bytes.subarray(d.address, d.address + d.size);
    const y = b.mem.bytes.subarray(d.address, d.address + d.size);
    if (Buffer.compare(x, y) !== 0) return d.address + x.findIndex((v, i) => v !== y[i]);
  }
  return -1;
}

/**
 * Runs `spec` natively (single-stepped) and in the simulator with the compiler on, in blocks,
 * with the interpreter (compiler off) as a second reference run to the same counts.
 */
export async function blockDiffRun(spec: RunSpec, Cpu: CpuClass, opts: BlockOptions): Promise<BlockDiffResult> {
  return withCompiledRunsCounted(() => blockDiffRunCounted(spec, Cpu, opts));
}

async function blockDiffRunCounted(spec: RunSpec, Cpu: CpuClass, opts: BlockOptions): Promise<BlockDiffResult> {
  const compiledBefore = blockJit.jitStats.compiled;
  const sim = new SimRunner(spec, Cpu);
  const knobs = sim.cpu as unknown as CpuJitKnobs;
  knobs.jitEnabled = true;
  knobs.jitThreshold = opts.threshold;
  const maxBudget = opts.maxBudget ?? 600;
  for (let w = 0; w < opts.warmups; w++) {
    const decodes = knobs.decodes;
    const wrng = new Rng(opts.seed | 1n);
    runToEnd(sim, spec.maxSteps ?? MAX_WARMUP_STEPS, () => budget(wrng, maxBudget));
    sim.reset(spec);
    if (knobs.decodes === decodes) break; // every block came from the code cache: all compiled that will be
  }
  compiledRuns.insns = compiledRuns.faults = 0;
  compiledRuns.counting = true;
  const ref = new SimRunner(spec, Cpu);
  (ref.cpu as unknown as CpuJitKnobs).jitEnabled = false;
  const rng = new Rng(opts.seed | 1n);
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'difftest-block-'));
  const native = runNative(spec, workDir);
  const cursor = new NativeCursor(native.records);
  const result: BlockDiffResult = { name: spec.name, steps: 0, console: '', end: 'none', stops: 0, compiled: 0, compiledInsns: 0, compiledFaults: 0, undefinedReads: 0, resyncs: 0 };
  const base = sim.cpu.instret;
  const refBase = ref.cpu.instret;
  /** The last native record consumed (the state after `result.steps` instructions). */
  let last: TraceRecord | undefined;
  const fail = (what: string, nat: TraceRecord | undefined, mine: TraceRecord | undefined, other = 'native') => {
    result.mismatch = `${spec.name} (compiled, threshold ${opts.threshold}): ${what}` +
      (nat ? `\n  ${other.padEnd(7)} ${KIND_NAMES[nat.kind]} ${regsLine(nat)}` : '') + (mine ? `\n  sim:    ${KIND_NAMES[mine.kind]} ${regsLine(mine)}` : '');
  };
  try {
    for (;;) {
      const done = sim.cpu.instret - base;
      const room = spec.maxSteps === undefined ? Infinity : spec.maxSteps - done;
      if (room <= 0) {
        const nat = await cursor.take();
        if (nat?.kind !== Kind.Max) fail(`the simulator reached the step limit ${spec.maxSteps}, native did not: ${nat ? KIND_NAMES[nat.kind] : 'no record'}`, nat, undefined);
        result.end = 'max';
        break;
      }
      const from = sim.cpu.instret;
      const stop = simRun(sim, Math.min(budget(rng, maxBudget), room));
      result.stops++;
      // an intercepted INT3 counts as retired; tracer.c stops before it
      const n = sim.cpu.instret - base - (stop.rec.kind === Kind.Int3 ? 1 : 0);
      const where = `after instruction #${n} (stop ${result.stops}, ${sim.cpu.instret - from} instructions into this run())`;
      // The native instructions up to the simulator's count: which flags they leave undefined.
      let taint = 0;
      let ranOff: TraceRecord | undefined;
      while (result.steps < n) {
        const nat = await cursor.peek();
        if (nat === undefined || nat.kind > Kind.In) {
          ranOff = nat;
          break;
        }
        await cursor.take();
        const code = sim.mem.bytes.subarray(ripOf(last, spec), ripOf(last, spec) + 16);
        const rcx = rcxLo(last, spec);
        if (readFlags(code) & taint) {
          result.undefinedReads++;
        }
        taint = (taint & ~writtenFlags(code, rcx)) | undefinedFlags(code, rcx);
        if (nat.kind === Kind.Out && (nat.auxLo & 0xffff) === 0xe9) result.console += String.fromCharCode(nat.auxHi & 0xff);
        last = nat;
        result.steps++;
      }
      if (ranOff !== undefined || result.steps < n) {
        fail(`the simulator retired ${n} instructions; native ended after ${result.steps} with ${ranOff ? KIND_NAMES[ranOff.kind] : 'nothing'}`, ranOff, stop.rec);
        break;
      }
      // The interpreter to the same count (and the same final instruction).
      let refRec: TraceRecord | undefined;
      if (!advanceTo(ref, refBase, n)) {
        fail(`the interpreter ended before instruction #${n}`, undefined, stop.rec);
        break;
      }
      if (stop.final) {
        const r = simRun(ref, 1);
        refRec = r.final ? r.rec : undefined;
      } else refRec = ref.record(stop.rec.kind, stop.rec.auxLo, stop.rec.auxHi);
      // The native record after n instructions, or the final one at n.
      const nat = stop.final ? await cursor.take() : last;
      if (nat === undefined) {
        if (n === 0 && !stop.final) continue; // nothing retired yet
        fail(`no native record ${where}`, undefined, stop.rec);
        break;
      }
      if (!stop.final && stop.rec.kind === Kind.Step && nat.kind === Kind.Step) {
        stop.rec.auxLo = nat.auxLo;
        stop.rec.auxHi = nat.auxHi;
      }
      // Compiled code must equal the interpreter exactly: every flag, undefined ones too, and memory.
      const dr = refRec ? diffRecords(refRec, stop.rec, COMPARED) : 'the interpreter did not stop there';
      const mem = memoryDiff(ref, sim, spec);
      if (dr || mem >= 0) {
        fail(`${where}, against the interpreter: ${dr.replace(/native=/g, 'interpreter=')}${mem >= 0 ? ` memory at 0x${mem.toString(16)}: interpreter=0x${ref.mem.bytes[mem].toString(16)} sim=0x${sim.mem.bytes[mem].toString(16)}` : ''}`, refRec, stop.rec, 'interp:');
        result.end = KIND_NAMES[nat.kind];
        break;
      }
      const d = diffRecords(nat, stop.rec, COMPARED & ~taint);
      if (d || sim.problem) {
        if (result.undefinedReads > 0 && !sim.problem) {
          // code read a flag the SDM leaves undefined, in this stretch or earlier (a value
          // stored then and loaded now differs too); the compiled code did exactly as the
          // interpreter (checked above): both simulators take the native registers
          result.resyncs++;
          resync(sim, nat);
          resync(ref, nat);
        } else {
          fail(`${where}, flags compared ${(COMPARED & ~taint).toString(16)}: ${d}${sim.problem ? ' (' + sim.problem + ')' : ''}`, nat, stop.rec);
          result.end = KIND_NAMES[nat.kind];
          break;
        }
      } else if (taint) {
        // as compare.ts after every step: the flags left undefined take the native values
        takeFlags(sim, nat, taint);
        takeFlags(ref, nat, taint);
      }
      if (stop.final) {
        result.end = KIND_NAMES[nat.kind];
        break;
      }
    }
    if (!result.mismatch) {
      await cursor.drain();
      (spec.dumps ?? []).forEach((dump, i) => {
        const nat = cursor.dumps[i];
        const mine = sim.mem.bytes.subarray(dump.address, dump.address + dump.size);
        const bad = nat?.data ? nat.data.findIndex((b, j) => b !== mine[j]) : 0;
        // After reads of undefined flags memory may differ from native (equal to the interpreter's: checked at every stop).
        if (bad >= 0 && !result.mismatch && result.undefinedReads === 0) {
          result.mismatch = `${spec.name} (compiled): memory at 0x${(dump.address + bad).toString(16)}: native=0x${nat?.data?.[bad]?.toString(16)} sim=0x${mine[bad]?.toString(16)}`;
        }
        if (bad >= 0 && result.undefinedReads > 0) result.memoryDiffersAfterUndefinedReads = true;
      });
    }
  } finally {
    compiledRuns.counting = false;
    native.stop();
    fs.rmSync(workDir, { recursive: true, force: true });
  }
  result.compiled = blockJit.jitStats.compiled - compiledBefore;
  result.compiledInsns = compiledRuns.insns;
  result.compiledFaults = compiledRuns.faults;
  if (result.end === 'none' && !result.mismatch) result.mismatch = `${spec.name}: native tracer ended early: ${native.stderr().trim()}`;
  return result;
}

/** The simulator takes the native registers (after code that read an undefined flag). */
function resync(sim: SimRunner, nat: TraceRecord): void {
  for (let i = 0; i < 16; i++) sim.cpu.setGpr(i as GprIndex, { lo: nat.regs[2 * i], hi: nat.regs[2 * i + 1] });
  sim.cpu.setReg('rip', { lo: nat.regs[32], hi: nat.regs[33] });
  takeFlags(sim, nat, COMPARED);
}

function regsLine(r: TraceRecord): string {
  const names = ['rax', 'rcx', 'rdx', 'rbx', 'rsp', 'rbp', 'rsi', 'rdi', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'rip', 'rflags'];
  return names.map((n, i) => `${n}=${hex64(r.regs[2 * i], r.regs[2 * i + 1])}`).join(' ') + ` mxcsr=${r.mxcsr.toString(16)}`;
}
