/**
 * 64- and 128-bit integer helpers on unsigned 32-bit halves (no BigInt: these run in the
 * instruction hot path). Results go to the shared scratch array `W` to avoid allocation.
 */

/** Scratch: W[0..3] = result words, least significant first. */
export const W = new Uint32Array(6);

/** 32x32 -> 64 unsigned: W[0] = low, W[1] = high. */
export function mul32(a: number, b: number): void {
  const aL = a & 0xffff, aH = a >>> 16, bL = b & 0xffff, bH = b >>> 16;
  const ll = aL * bL;
  const mid = aL * bH + aH * bL; // < 2^33
  const lo = ll + (mid % 65536) * 65536; // < 2^33
  W[0] = lo >>> 0;
  W[1] = (aH * bH + Math.floor(mid / 65536) + Math.floor(lo / 4294967296)) >>> 0;
}

/** 64x64 -> 128 unsigned: W[0..3]. */
export function mul64(aLo: number, aHi: number, bLo: number, bHi: number): void {
  mul32(aLo, bLo); const p00l = W[0], p00h = W[1];
  mul32(aLo, bHi); const p01l = W[0], p01h = W[1];
  mul32(aHi, bLo); const p10l = W[0], p10h = W[1];
  mul32(aHi, bHi); const p11l = W[0], p11h = W[1];
  const w1 = p00h + p01l + p10l; // < 2^34
  const c1 = Math.floor(w1 / 4294967296);
  const w2 = p01h + p10h + p11l + c1;
  const c2 = Math.floor(w2 / 4294967296);
  W[0] = p00l;
  W[1] = w1 >>> 0;
  W[2] = w2 >>> 0;
  W[3] = (p11h + c2) >>> 0;
}

/** Two's-complement negation of the 128-bit value in W[0..3], in place. */
export function neg128(): void {
  let carry = 1;
  for (let i = 0; i < 4; i++) {
    const v = ((~W[i]) >>> 0) + carry;
    W[i] = v >>> 0;
    carry = v > 0xffffffff ? 1 : 0;
  }
}

/**
 * Unsigned 128/64 division of W[0..3] by (dLo,dHi), divisor non-zero. Returns false if the
 * quotient does not fit in 64 bits (the #DE case). On success W[0],W[1] = quotient,
 * W[2],W[3] = remainder.
 */
export function div128by64(dLo: number, dHi: number): boolean {
  let rLo = W[2], rHi = W[3];
  // high half >= divisor: the quotient would need more than 64 bits
  if (rHi > dHi || (rHi === dHi && rLo >= dLo)) return false;
  if (dHi === 0) return divBy32(dLo);
  if (rLo === 0 && rHi === 0 && W[1] < 0x100000 && dHi < 0x100000) {
    // both below 2^52: a double's quotient is off by at most one, and q * d stays exact
    const n = W[1] * 4294967296 + W[0], d = dHi * 4294967296 + dLo;
    let q = Math.floor(n / d), r = n - q * d;
    if (r < 0) { q--; r += d; } else if (r >= d) { q++; r -= d; }
    W[0] = q >>> 0; W[1] = Math.floor(q / 4294967296); W[2] = r >>> 0; W[3] = Math.floor(r / 4294967296);
    return true;
  }
  let qLo = W[0], qHi = W[1]; // shifted out as quotient bits are shifted in
  for (let i = 0; i < 64; i++) {
    const top = rHi >>> 31;
    rHi = ((rHi << 1) | (rLo >>> 31)) >>> 0;
    rLo = ((rLo << 1) | (qHi >>> 31)) >>> 0;
    qHi = ((qHi << 1) | (qLo >>> 31)) >>> 0;
    qLo = (qLo << 1) >>> 0;
    if (top || rHi > dHi || (rHi === dHi && rLo >= dLo)) {
      const lo = rLo - dLo;
      rLo = lo >>> 0;
      rHi = (rHi - dHi - (lo < 0 ? 1 : 0)) >>> 0;
      qLo = (qLo | 1) >>> 0;
    }
  }
  W[0] = qLo; W[1] = qHi; W[2] = rLo; W[3] = rHi;
  return true;
}

/**
 * W (remainder half W[2] below d, W[3] = 0) divided by a 32-bit d: schoolbook division by
 * 16-bit digits, each step's partial dividend (remainder * 2^16 + digit) below 2^48, exact
 * in doubles.
 */
function divBy32(d: number): boolean {
  const hi = W[1], lo = W[0];
  let cur = W[2] * 65536 + (hi >>> 16);
  const q3 = Math.floor(cur / d);
  cur = (cur - q3 * d) * 65536 + (hi & 0xffff);
  const q2 = Math.floor(cur / d);
  cur = (cur - q2 * d) * 65536 + (lo >>> 16);
  const q1 = Math.floor(cur / d);
  cur = (cur - q1 * d) * 65536 + (lo & 0xffff);
  const q0 = Math.floor(cur / d);
  W[0] = ((q1 << 16) | q0) >>> 0; W[1] = ((q3 << 16) | q2) >>> 0; W[2] = cur - q0 * d; W[3] = 0;
  return true;
}

/** Count of trailing zero bits of a non-zero 32-bit value. */
export function ctz32(v: number): number {
  return 31 - Math.clz32(v & -v);
}
