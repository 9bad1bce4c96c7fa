/**
 * The block compiler's front: turns a hot decoded block into a JavaScript function
 * (emit.ts) and keeps the generated factories in a bounded cache keyed by source, so that a
 * block decoded again after an invalidation (self-modifying code, gdb's int3 writes, a
 * page dropped and reloaded) costs no second `new Function`.
 *
 * Compiled functions hang off their Block (code-cache.ts): they are dropped with it, so the
 * code cache's bound on decoded instructions bounds compiled code too.
 */
import type { CpuCore } from '../core';
import type { Insn } from '../insn';
import { PARITY } from '../flags';
import { emitBlock } from './emit';
import { imulTrunc } from '../alu';
import { mul64lo, MUL } from './mul';
import * as runtime from './runtime';

/**
 * A compiled block: runs `insns` (and, looping on itself, again) within `left` instructions;
 * returns the next RIP. One function per distinct source, shared by every block (of every
 * vCPU and VM in the process) that generates it, so that V8 optimizes it once.
 */
export type JitFn = (c: CpuCore, left: number, insns: readonly Insn[]) => number;

/** Executions of a block before it is compiled (once-run code such as a zero sled never is). */
export const JIT_THRESHOLD = thresholdFromEnv(process.env.VMM_JIT_THRESHOLD);

function thresholdFromEnv(v: string | undefined): number {
  const n = Number(v);
  return v !== undefined && Number.isInteger(n) && n >= 1 ? n : 500;
}
/** Generated factories kept (by source text). */
const MAX_FACTORIES = 4096;

const factories = new Map<string, JitFn>();

/** Counters for tests and the bench. */
export const jitStats = { compiled: 0, factoryHits: 0 };

/** Compiles a block's instructions (all decoded in 64-bit mode); null if not worth it. */
export function compileBlock(insns: readonly Insn[], start: number): JitFn | null {
  if (insns.length === 0 || insns.some((i) => i.mode !== 0)) return null;
  const b = emitBlock(insns, start);
  if (b.inlined === 0) return null;
  let f = factories.get(b.source);
  if (f === undefined) {
    if (factories.size >= MAX_FACTORIES) factories.clear();
    const make = new Function('PARITY', 'imulTrunc', 'mul64lo', 'MUL', 'RT', b.source) as
      (p: Uint8Array, mul: typeof imulTrunc, lo: typeof mul64lo, m: Int32Array, rt: typeof runtime) => JitFn;
    f = make(PARITY, imulTrunc, mul64lo, MUL, runtime);
    factories.set(b.source, f);
  } else jitStats.factoryHits++;
  jitStats.compiled++;
  return f;
}

/**
 * Whether new vCPUs compile hot blocks: on unless the environment says VMM_JIT=0 (the
 * test suite runs its key suites both ways with it; the CLI has --no-jit).
 */
export function jitDefault(): boolean {
  return process.env.VMM_JIT !== '0';
}
