/**
 * Exactness of JS binary64 arithmetic, for the MXCSR rounding modes and the PE/UE/OE flags:
 * for an operation whose exact result is E and whose round-to-nearest result is r (both
 * finite), the `*Dir` functions give the sign of E - r, with error-free transformations
 * (TwoSum; Dekker's TwoProduct on operands scaled by powers of two into [1, 4), where no
 * intermediate can overflow or underflow). `directed` then moves r by one unit in the last
 * place where RC says, and `nextUp64`/`nextUp32` step on the bit patterns.
 */

const SPLIT = 134217729; // 2^27 + 1
const sb = new Float64Array(1);
const su = new Uint32Array(sb.buffer);
const fb = new Float32Array(1);
const fu = new Uint32Array(fb.buffer);

/** e such that |x| * 2^-e is in [1, 2) (x finite, non-zero). */
function expOf(x: number): number {
  sb[0] = x;
  const e = (su[1] >>> 20) & 0x7ff;
  if (e !== 0) return e - 1023;
  sb[0] = x * 18446744073709551616; // a subnormal: scale up by 2^64 first
  return ((su[1] >>> 20) & 0x7ff) - 1023 - 64;
}

/**
 * x * 2^k, exactly: in steps of at most 2^1023 / 2^-1022, each moving x toward the target
 * range [1, 4), so no step overflows or loses bits.
 */
function scale(x: number, k: number): number {
  while (k > 1023) { x *= 8.98846567431158e307; k -= 1023; } // 2^1023
  while (k < -1022) { x *= 2.2250738585072014e-308; k += 1022; } // 2^-1022
  return x * Math.pow(2, k);
}

/** The exact a*b - p for p = fl(a*b), |a|, |b| in [1, 4). */
function prodErr(a: number, b: number, p: number): number {
  let t = SPLIT * a;
  const ah = t - (t - a), al = a - ah;
  t = SPLIT * b;
  const bh = t - (t - b), bl = b - bh;
  return ((ah * bh - p) + ah * bl + al * bh) + al * bl;
}

function sign(v: number): number {
  return v > 0 ? 1 : v < 0 ? -1 : 0;
}

/** sign(x + y - r), r = fl(x + y) finite (TwoSum). */
export function addDir(x: number, y: number, r: number): number {
  const bb = r - x;
  return sign((x - (r - bb)) + (y - bb));
}

/** sign(x * y - r), r = fl(x * y) finite. */
export function mulDir(x: number, y: number, r: number): number {
  if (x === 0 || y === 0) return 0;
  const kx = expOf(x), ky = expOf(y);
  const xs = scale(x, -kx), ys = scale(y, -ky), rs = scale(r, -(kx + ky));
  const p = xs * ys;
  return sign((p - rs) + prodErr(xs, ys, p));
}

/** sign(x / y - r), r = fl(x / y) finite, y non-zero. */
export function divDir(x: number, y: number, r: number): number {
  if (x === 0) return 0;
  const kx = expOf(x), ky = expOf(y);
  const xs = scale(x, -kx), ys = scale(y, -ky), rs = scale(r, -(kx - ky));
  const p = rs * ys;
  const rem = (xs - p) - prodErr(rs, ys, p); // x/y - r = rem / y
  return sign(rem) * sign(ys);
}

/** sign(sqrt(x) - r), r = fl(sqrt(x)), x > 0 finite. */
export function sqrtDir(x: number, r: number): number {
  const k = expOf(x);
  const k2 = k - (k & 1);
  const xs = scale(x, -k2), rs = scale(r, -(k2 >> 1));
  const p = rs * rs;
  return sign((xs - p) - prodErr(rs, rs, p));
}

/** The next binary64 value above v (v not NaN). */
export function nextUp64(v: number): number {
  if (v === Infinity) return v;
  if (v === 0) return 5e-324;
  sb[0] = v;
  let lo = su[0], hi = su[1];
  if (v > 0) { lo = (lo + 1) >>> 0; if (lo === 0) hi++; } else { if (lo === 0) hi--; lo = (lo - 1) >>> 0; }
  su[0] = lo; su[1] = hi;
  return sb[0];
}
/** The next binary32 value above v (v a binary32 value, not NaN). */
export function nextUp32(v: number): number {
  if (v === Infinity) return v;
  if (v === 0) return 1.401298464324817e-45;
  fb[0] = v;
  fu[0] = v > 0 ? fu[0] + 1 : fu[0] - 1;
  return fb[0];
}

/**
 * The result under rounding control rc (1 down, 2 up, 3 toward zero) from the nearest
 * result r and dir = sign(exact - r) (0 exact); `up` is nextUp64 or nextUp32.
 */
export function directed(r: number, dir: number, rc: number, up: (v: number) => number): number {
  if (dir === 0) return r;
  switch (rc) {
    case 1: return dir < 0 ? -up(-r) : r;
    case 2: return dir > 0 ? up(r) : r;
    case 3:
      if (r > 0) return dir < 0 ? -up(-r) : r;
      if (r < 0) return dir > 0 ? up(r) : r;
      return r;
    default: return r;
  }
}
