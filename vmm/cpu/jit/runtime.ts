/**
 * Small functions the generated blocks call (passed to every block's factory): keeping
 * these out of the generated source keeps the functions V8 must compile small.
 */
import type { CpuCore } from '../core';
import { LF, ARITH_MASK } from '../flags';

/** Stores a lazy-flags record as the interpreter's handlers do (LOGIC: the result only). */
export function storeLazy(c: CpuCore, op: LF, size: number, cin: number, d: number, dh: number, s: number, sh: number, r: number, rh: number): void {
  c.lfOp = op;
  c.lfSize = size;
  c.lfCin = cin;
  const L = c.lf;
  if (op !== LF.LOGIC) { L[0] = d; L[1] = dh; L[2] = s; L[3] = sh; }
  L[4] = r;
  L[5] = rh;
}

/**
 * Stores the flags a region's block left in its exit locals (flags-expr.ts flagsToLocals:
 * fo = LF op, or -2 for materialized bits in f0) as EXIT_FLAGS does; returns -1 (now nothing pending).
 */
export function flushDyn(c: CpuCore, fo: number, fs: number, fc: number, f0: number, f1: number, f2: number, f3: number, f4: number, f5: number): number {
  if (fo >= 0) storeLazy(c, fo as LF, fs, fo === LF.LOGIC ? 0 : fc, f0, f1, f2, f3, f4, f5);
  else if (fo === -2) storeBits(c, f0);
  return -1;
}

/** Stores materialized arithmetic flags (RFLAGS layout), as CpuCore.setArith. */
export function storeBits(c: CpuCore, bits: number): void {
  c.rflags = (c.rflags & ~ARITH_MASK) | bits;
  c.lfOp = LF.NONE;
}
