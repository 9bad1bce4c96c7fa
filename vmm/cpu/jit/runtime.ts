/**
 * Small functions the generated blocks call (passed to every block's factory): keeping
 * these out of the generated source keeps the functions V8 must compile small.
 */
import type { CpuCore } from '../core';
import { LF, ARITH_MASK } from '../flags';
import { TLB_MASK } from '../mmu';

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

/** Values of the last fast read (int32 halves). */
export const R = new Int32Array(2);

// The TLB fast paths of core.ts (a fast tag for the page: RAM, access allowed, no data
// breakpoint, no alignment check) as small functions V8 inlines into hot blocks. Each returns
// 1 if it did the access (reads: value in R), 0 if the block must take the CpuCore accessor.

export function fastRead8(c: CpuCore, a: number, h: number): number {
  const e = (a >>> 12) & TLB_MASK;
  if (c.tlbR[e] !== (a & -4096) || c.tlbHi[e] !== h) return 0;
  R[0] = c.bytes[c.tlbPhys[e] + (a & 4095)];
  return 1;
}
export function fastRead16(c: CpuCore, a: number, h: number): number {
  const e = (a >>> 12) & TLB_MASK;
  if (c.tlbR[e] !== (a & -4096) || c.tlbHi[e] !== h || (a & 4095) > 4094) return 0;
  const p = c.tlbPhys[e] + (a & 4095);
  R[0] = c.bytes[p] | (c.bytes[p + 1] << 8);
  return 1;
}
export function fastRead32(c: CpuCore, a: number, h: number): number {
  const e = (a >>> 12) & TLB_MASK;
  if (c.tlbR[e] !== (a & -4096) || c.tlbHi[e] !== h || (a & 4095) > 4092) return 0;
  const p = c.tlbPhys[e] + (a & 4095);
  if ((p & 3) !== 0) return 0;
  R[0] = c.u32[p >>> 2];
  return 1;
}
export function fastRead64(c: CpuCore, a: number, h: number): number {
  const e = (a >>> 12) & TLB_MASK;
  if (c.tlbR[e] !== (a & -4096) || c.tlbHi[e] !== h || (a & 4095) > 4088) return 0;
  const p = c.tlbPhys[e] + (a & 4095);
  if ((p & 3) !== 0) return 0;
  const w = p >>> 2;
  R[0] = c.u32[w];
  R[1] = c.u32[w + 1];
  return 1;
}
/**
 * Stores to a page holding decoded code: done here unless the bytes overlap decoded lines
 * (then the accessor drops that code), as core.ts storeNearCode decides.
 */
function overlapsCode(c: CpuCore, p: number, n: number): boolean {
  if (c.codePages[p >>> 12] === 0) return false;
  const l = c.codeLines, e = p + n - 1;
  return ((l[p >>> 9] >>> ((p >>> 4) & 31)) | (l[e >>> 9] >>> ((e >>> 4) & 31))) & 1 ? true : false;
}

export function fastWrite8(c: CpuCore, a: number, h: number, v: number): number {
  const e = (a >>> 12) & TLB_MASK;
  if (c.tlbW[e] !== (a & -4096) || c.tlbHi[e] !== h) return 0;
  const p = c.tlbPhys[e] + (a & 4095);
  if (overlapsCode(c, p, 1)) return 0;
  c.bytes[p] = v;
  return 1;
}
export function fastWrite32(c: CpuCore, a: number, h: number, v: number): number {
  const e = (a >>> 12) & TLB_MASK;
  if (c.tlbW[e] !== (a & -4096) || c.tlbHi[e] !== h || (a & 4095) > 4092) return 0;
  const p = c.tlbPhys[e] + (a & 4095);
  if ((p & 3) !== 0 || overlapsCode(c, p, 4)) return 0;
  c.u32[p >>> 2] = v;
  return 1;
}
export function fastWrite64(c: CpuCore, a: number, h: number, v: number, vh: number): number {
  const e = (a >>> 12) & TLB_MASK;
  if (c.tlbW[e] !== (a & -4096) || c.tlbHi[e] !== h || (a & 4095) > 4088) return 0;
  const p = c.tlbPhys[e] + (a & 4095);
  if ((p & 3) !== 0 || overlapsCode(c, p, 8)) return 0;
  const w = p >>> 2;
  c.u32[w] = v;
  c.u32[w + 1] = vh;
  return 1;
}
