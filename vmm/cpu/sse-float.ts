/**
 * IEEE-754 helpers for the SSE instructions, on lanes of an FpuState (element indices into
 * its f64/f32 views). JS numbers are binary64 with round-to-nearest-even, which gives the
 * exact SSE result of every binary64 operation and, through Math.fround, of every binary32
 * add/sub/mul/div/sqrt (binary64 holds more than 2p+2 bits, so the double rounding is
 * harmless). NaNs are handled on the bits, as the SDM specifies (table 4-7: the first
 * source if it is a NaN, else the second, quietened; the "real indefinite" for invalid
 * operations), since JS does not keep NaN payloads.
 *
 * MXCSR: the rounding control, DAZ and FZ are honoured, and all six exception flags are
 * raised (IE incl. SNaN operands, DE when no operand is a NaN, ZE, and OE/UE/PE from the
 * exactness of each result, sse-round.ts). Underflow tininess is judged on the rounded
 * result; an unmasked OE/UE faults without the scaled result x87 would deliver.
 */
import { FpuState } from './fpu-state';
import { addDir, mulDir, divDir, sqrtDir, directed, nextUp64, nextUp32 } from './sse-round';

/** MXCSR exception flag bits. */
export const IE = 1, DE = 2, ZE = 4, OE = 8, UE = 16, PE = 32;

/**
 * Results beside the return value: the exception flags raised by the current instruction
 * (the caller clears and commits them) and the integer of toInt as halves.
 */
export const fpr = { exc: 0, lo: 0, hi: 0 };

export const enum FOp { ADD, SUB, MUL, DIV, MIN, MAX }

function isNaN64(f: FpuState, k: number): boolean {
  const hi = f.u32[k * 2 + 1];
  return (hi & 0x7ff00000) === 0x7ff00000 && ((hi & 0xfffff) | f.u32[k * 2]) !== 0;
}
function isSNaN64(f: FpuState, k: number): boolean {
  return isNaN64(f, k) && (f.u32[k * 2 + 1] & 0x80000) === 0;
}
function isDenormal64(f: FpuState, k: number): boolean {
  const hi = f.u32[k * 2 + 1];
  return (hi & 0x7ff00000) === 0 && ((hi & 0xfffff) | f.u32[k * 2]) !== 0;
}
function isNaN32(f: FpuState, k: number): boolean {
  const v = f.u32[k];
  return (v & 0x7f800000) === 0x7f800000 && (v & 0x7fffff) !== 0;
}
function isSNaN32(f: FpuState, k: number): boolean {
  return isNaN32(f, k) && (f.u32[k] & 0x400000) === 0;
}
function isDenormal32(f: FpuState, k: number): boolean {
  const v = f.u32[k];
  return (v & 0x7f800000) === 0 && (v & 0x7fffff) !== 0;
}

/** DE for a denormal operand, unless an operand is a NaN (then IE decides; as hardware does) or DAZ. */
export function denormal64(f: FpuState, a: number, b: number): void {
  if ((f.mxcsr & 0x40) === 0 && (isDenormal64(f, a) || isDenormal64(f, b)) && !isNaN64(f, a) && !isNaN64(f, b)) fpr.exc |= DE;
}
export function denormal32(f: FpuState, a: number, b: number): void {
  if ((f.mxcsr & 0x40) === 0 && (isDenormal32(f, a) || isDenormal32(f, b)) && !isNaN32(f, a) && !isNaN32(f, b)) fpr.exc |= DE;
}

/** Writes the NaN result of an operation on lanes a (first source) and b (-1: unary). */
function nan64(f: FpuState, out: number, a: number, b: number): void {
  let src = -1;
  if (isNaN64(f, a)) src = a; else if (b >= 0 && isNaN64(f, b)) src = b;
  if (src < 0) { // invalid operation on non-NaN operands: the real indefinite
    f.u32[out * 2] = 0;
    f.u32[out * 2 + 1] = 0xfff80000;
    fpr.exc |= IE;
    return;
  }
  if (isSNaN64(f, a) || (b >= 0 && isSNaN64(f, b))) fpr.exc |= IE;
  const lo = f.u32[src * 2], hi = f.u32[src * 2 + 1];
  f.u32[out * 2] = lo;
  f.u32[out * 2 + 1] = (hi | 0x80000) >>> 0;
}
function nan32(f: FpuState, out: number, a: number, b: number): void {
  let src = -1;
  if (isNaN32(f, a)) src = a; else if (b >= 0 && isNaN32(f, b)) src = b;
  if (src < 0) { f.u32[out] = 0xffc00000; fpr.exc |= IE; return; }
  if (isSNaN32(f, a) || (b >= 0 && isSNaN32(f, b))) fpr.exc |= IE;
  f.u32[out] = (f.u32[src] | 0x400000) >>> 0;
}

const MIN_NORMAL64 = 2.2250738585072014e-308;
const MAX64 = Number.MAX_VALUE;
const MIN_NORMAL32 = 1.1754943508222875e-38;
const MAX32 = 3.4028234663852886e38;
const MXCSR_DAZ = 0x40, MXCSR_FZ = 0x8000, MXCSR_UM = 0x800;

/** An operand value: a denormal reads as a signed zero under MXCSR.DAZ. */
export function operand64(f: FpuState, k: number): number {
  const v = f.f64[k];
  return (f.mxcsr & MXCSR_DAZ) !== 0 && isDenormal64(f, k) ? (v < 0 ? -0 : 0) : v;
}
export function operand32(f: FpuState, k: number): number {
  const v = f.f32[k];
  return (f.mxcsr & MXCSR_DAZ) !== 0 && isDenormal32(f, k) ? (v < 0 ? -0 : 0) : v;
}
function denormalChecks(f: FpuState): boolean {
  return (f.mxcsr & MXCSR_DAZ) === 0;
}

/**
 * The final value of a finite-operand operation from its nearest result r (finite, or an
 * infinity when it overflowed) and dir = sign(exact - r): MXCSR.RC, FZ, and the PE, UE, OE
 * flags. `addSub` holds the signed operands of an addition whose exact zero follows the
 * sign rules of IEEE 754 (-0 when rounding down).
 */
function round(f: FpuState, r: number, dir: number, double: boolean, addX: number, addY: number, addSub: boolean): number {
  const mx = f.mxcsr, rc = (mx >>> 13) & 3;
  const max = double ? MAX64 : MAX32;
  if (r === Infinity || r === -Infinity) {
    fpr.exc |= OE | PE;
    if (r > 0) return rc === 1 || rc === 3 ? max : r;
    return rc === 2 || rc === 3 ? -max : r;
  }
  let v = rc === 0 ? r : directed(r, dir, rc, double ? nextUp64 : nextUp32);
  if (v === 0 && dir === 0 && addSub && rc === 1) v = Object.is(addX, 0) && Object.is(addY, 0) ? 0 : -0;
  if (v === Infinity || v === -Infinity) { fpr.exc |= OE | PE; return v; }
  if (dir !== 0) fpr.exc |= PE;
  const a = v < 0 ? -v : v;
  if (a < (double ? MIN_NORMAL64 : MIN_NORMAL32) && (dir !== 0 || v !== 0)) {
    // tiny: underflow when inexact, or always when UE is unmasked; FZ flushes to zero
    if (dir !== 0 || (mx & MXCSR_UM) === 0) fpr.exc |= UE;
    if ((mx & MXCSR_FZ) !== 0 && (mx & MXCSR_UM) !== 0) {
      fpr.exc |= UE | PE;
      v = v < 0 || Object.is(v, -0) ? -0 : 0;
    }
  }
  return v;
}

/** out = a op b on binary64 lanes (out may equal a or b). */
export function arith64(f: FpuState, op: FOp, out: number, a: number, b: number): void {
  const x = operand64(f, a), y = operand64(f, b);
  if (op !== FOp.DIV || y !== 0) denormal64(f, a, b); // a zero divide reports ZE, not DE
  if (op === FOp.MIN || op === FOp.MAX) {
    // MIN/MAX return the second source when either is a NaN or both are zeros.
    if (x !== x || y !== y) {
      fpr.exc |= IE;
      // the second source, as it is (a NaN keeps its payload; a DAZ denormal reads as zero)
      if (y !== y) { f.u32[out * 2] = f.u32[b * 2]; f.u32[out * 2 + 1] = f.u32[b * 2 + 1]; } else f.f64[out] = y;
      return;
    }
    f.f64[out] = (op === FOp.MIN ? x < y : x > y) ? x : y;
    return;
  }
  let r: number;
  switch (op) {
    case FOp.ADD: r = x + y; break;
    case FOp.SUB: r = x - y; break;
    case FOp.MUL: r = x * y; break;
    default:
      r = x / y;
      if (y === 0 && x === x && x !== 0 && x !== Infinity && x !== -Infinity) fpr.exc |= ZE;
  }
  if (r !== r) { nan64(f, out, a, b); return; }
  if (!isFinite(x) || !isFinite(y) || (op === FOp.DIV && y === 0)) { f.f64[out] = r; return; } // exact
  let dir = 0;
  if (r !== Infinity && r !== -Infinity) {
    dir = op === FOp.ADD ? addDir(x, y, r) : op === FOp.SUB ? addDir(x, -y, r) : op === FOp.MUL ? mulDir(x, y, r) : divDir(x, y, r);
  }
  f.f64[out] = round(f, r, dir, true, x, op === FOp.SUB ? -y : y, op <= FOp.SUB);
}

/** out = a op b on binary32 lanes: computed in binary64 (exactly enough), then rounded once. */
export function arith32(f: FpuState, op: FOp, out: number, a: number, b: number): void {
  const x = operand32(f, a), y = operand32(f, b);
  if (op !== FOp.DIV || y !== 0) denormal32(f, a, b);
  if (op === FOp.MIN || op === FOp.MAX) {
    if (x !== x || y !== y) {
      fpr.exc |= IE;
      if (y !== y) f.u32[out] = f.u32[b]; else f.f32[out] = y;
      return;
    }
    f.f32[out] = (op === FOp.MIN ? x < y : x > y) ? x : y;
    return;
  }
  let r: number;
  switch (op) {
    case FOp.ADD: r = x + y; break;
    case FOp.SUB: r = x - y; break;
    case FOp.MUL: r = x * y; break; // exact in binary64
    default:
      r = x / y;
      if (y === 0 && x === x && x !== 0 && x !== Infinity && x !== -Infinity) fpr.exc |= ZE;
  }
  if (r !== r) { nan32(f, out, a, b); return; }
  if (!isFinite(x) || !isFinite(y) || (op === FOp.DIV && y === 0)) { f.f32[out] = r; return; }
  const dir64 = op === FOp.ADD ? addDir(x, y, r) : op === FOp.SUB ? addDir(x, -y, r) : op === FOp.MUL ? 0 : divDir(x, y, r);
  f.f32[out] = narrow(f, r, dir64, x, op === FOp.SUB ? -y : y, op <= FOp.SUB);
}

/** A binary64 value r (dir64 = sign(exact - r)) rounded to binary32 by MXCSR. */
function narrow(f: FpuState, r: number, dir64: number, addX: number, addY: number, addSub: boolean): number {
  const rf = Math.fround(r);
  const dir = rf !== r ? (r > rf ? 1 : -1) : dir64;
  return round(f, rf, dir, false, addX, addY, addSub);
}

export function sqrt64(f: FpuState, out: number, a: number): void {
  const x = operand64(f, a);
  if (denormalChecks(f) && isDenormal64(f, a)) fpr.exc |= DE;
  const r = Math.sqrt(x); // sqrt(-0) = -0 as IEEE says
  if (r !== r) { nan64(f, out, a, -1); return; }
  f.f64[out] = x > 0 && x !== Infinity ? round(f, r, sqrtDir(x, r), true, 0, 0, false) : r;
}
export function sqrt32(f: FpuState, out: number, a: number): void {
  const x = operand32(f, a);
  if (denormalChecks(f) && isDenormal32(f, a)) fpr.exc |= DE;
  const r = Math.sqrt(x);
  if (r !== r) { nan32(f, out, a, -1); return; }
  f.f32[out] = x > 0 && x !== Infinity ? narrow(f, r, sqrtDir(x, r), 0, 0, false) : r;
}

/** RCPPS/RSQRTPS: the architecture allows relative error <= 1.5*2^-12; the exact value is. */
export function approx32(f: FpuState, out: number, a: number, rsqrt: boolean): void {
  const x = f.f32[a];
  const r = rsqrt ? 1 / Math.sqrt(x) : 1 / x;
  if (isNaN32(f, a)) f.u32[out] = (f.u32[a] | 0x400000) >>> 0;
  else if (r !== r) f.u32[out] = 0xffc00000;
  else f.f32[out] = r;
}

/**
 * CMPPS/CMPSS/CMPPD/CMPSD predicate p (0-7) on two numbers: true/false. Raises IE for a
 * NaN operand with the signalling predicates (LT, LE, NLT, NLE), else for an SNaN only.
 */
export function cmpPredicate(p: number, x: number, y: number, snan: boolean): boolean {
  const unord = x !== x || y !== y;
  if (unord && (snan || (p & 3) === 1 || (p & 3) === 2)) fpr.exc |= IE;
  switch (p & 7) {
    case 0: return x === y;
    case 1: return x < y;
    case 2: return x <= y;
    case 3: return unord;
    case 4: return !(x === y);
    case 5: return !(x < y);
    case 6: return !(x <= y);
    default: return !unord;
  }
}

export function anySNaN64(f: FpuState, a: number, b: number): boolean {
  return isSNaN64(f, a) || isSNaN64(f, b);
}
export function anySNaN32(f: FpuState, a: number, b: number): boolean {
  return isSNaN32(f, a) || isSNaN32(f, b);
}

/** binary64 lane a -> binary32 lane out (MXCSR rounding and flags; NaN payload kept). */
export function f64to32(f: FpuState, out: number, a: number): void {
  if (isNaN64(f, a)) {
    if (isSNaN64(f, a)) fpr.exc |= IE;
    const hi = f.u32[a * 2 + 1], lo = f.u32[a * 2];
    f.u32[out] = ((hi & 0x80000000) | 0x7fc00000 | ((hi & 0xfffff) << 3) | (lo >>> 29)) >>> 0;
    return;
  }
  if (denormalChecks(f) && isDenormal64(f, a)) fpr.exc |= DE;
  const x = operand64(f, a);
  f.f32[out] = isFinite(x) ? narrow(f, x, 0, 0, 0, false) : x;
}

/** binary32 lane a -> binary64 lane out (exact; NaN payload kept and quietened). */
export function f32to64(f: FpuState, out: number, a: number): void {
  const v = f.u32[a];
  if (isNaN32(f, a)) {
    if ((v & 0x400000) === 0) fpr.exc |= IE;
    const m = (v & 0x7fffff) | 0x400000;
    f.u32[out * 2] = (m << 29) >>> 0;
    f.u32[out * 2 + 1] = ((v & 0x80000000) | 0x7ff00000 | (m >>> 3)) >>> 0;
    return;
  }
  if (denormalChecks(f) && isDenormal32(f, a)) fpr.exc |= DE;
  f.f64[out] = operand32(f, a);
}

/** Rounds x to an integer by MXCSR.RC (0 nearest-even, 1 down, 2 up, 3 toward zero). */
export function roundRC(x: number, rc: number): number {
  switch (rc) {
    case 1: return Math.floor(x);
    case 2: return Math.ceil(x);
    case 3: return Math.trunc(x);
    default: {
      const fl = Math.floor(x), d = x - fl;
      if (d > 0.5) return fl + 1;
      if (d < 0.5) return fl;
      return fl % 2 === 0 ? fl : fl + 1;
    }
  }
}

/**
 * Float value x to a signed integer of `bits` (32 or 64) bits, truncating or by RC; NaN
 * and out-of-range give the integer indefinite (sign bit only) and IE.
 */
export function toInt(x: number, bits: number, truncate: boolean, rc: number): void {
  const r = x !== x ? NaN : truncate ? Math.trunc(x) : roundRC(x, rc);
  const lim = bits === 64 ? 9223372036854775808 : 2147483648;
  if (!(r >= -lim && r < lim)) {
    fpr.exc |= IE;
    fpr.lo = bits === 64 ? 0 : 0x80000000;
    fpr.hi = bits === 64 ? 0x80000000 : 0;
    return;
  }
  if (r !== x) fpr.exc |= PE;
  const hi = Math.floor(r / 4294967296);
  fpr.lo = (r - hi * 4294967296) >>> 0;
  fpr.hi = bits === 64 ? hi >>> 0 : 0;
  if (bits === 32) fpr.lo = r >>> 0;
}

/**
 * A signed 64-bit integer (halves) to the nearest binary32/binary64 value under RC
 * (p = 24 or 53 significand bits), correctly rounded in one step.
 */
export function int64ToFloat(lo: number, hi: number, p: number, rc: number): number {
  const neg = (hi & 0x80000000) !== 0;
  if (neg) { // magnitude = two's complement
    lo = (~lo + 1) >>> 0;
    hi = (~hi + (lo === 0 ? 1 : 0)) >>> 0;
  }
  // magnitude as hi*2^32 + lo; find its bit length
  const len = hi !== 0 ? 64 - Math.clz32(hi) : 32 - Math.clz32(lo);
  let mag: number;
  if (len <= p) {
    mag = hi * 4294967296 + lo;
  } else {
    const drop = len - p; // bits below the significand (1..40)
    // top p bits (as an integer < 2^53) and the dropped remainder compared with half
    let top: number, rem: number, half: number;
    const scale = Math.pow(2, drop);
    if (drop < 32) {
      top = hi * Math.pow(2, 32 - drop) + Math.floor(lo / scale);
      rem = lo % scale;
    } else {
      top = Math.floor(hi / Math.pow(2, drop - 32));
      rem = (hi % Math.pow(2, drop - 32)) * 4294967296 + lo;
    }
    half = scale / 2;
    let up: boolean;
    switch (rc) {
      case 1: up = neg && rem !== 0; break; // toward -inf: magnitude up for negatives
      case 2: up = !neg && rem !== 0; break;
      case 3: up = false; break;
      default: up = rem > half || (rem === half && top % 2 === 1);
    }
    if (rem !== 0) fpr.exc |= PE;
    mag = (top + (up ? 1 : 0)) * scale;
  }
  return neg ? -mag : mag;
}
