// 64-bit values as two unsigned 32-bit halves. The hot paths never use BigInt;
// these helpers are for the API, the CLI and the tests.

export interface U64 {
  lo: number; // bits 31:0, unsigned
  hi: number; // bits 63:32, unsigned
}

export function u64(lo: number, hi = 0): U64 {
  return { lo: lo >>> 0, hi: hi >>> 0 };
}

export function u64FromBigInt(v: bigint): U64 {
  const m = BigInt.asUintN(64, v);
  return { lo: Number(m & 0xffffffffn), hi: Number(m >> 32n) };
}

export function u64ToBigInt(v: U64): bigint {
  return (BigInt(v.hi >>> 0) << 32n) | BigInt(v.lo >>> 0);
}

/** Exact only below 2^53; callers use it for guest addresses, which are small. */
export function u64ToNumber(v: U64): number {
  return (v.hi >>> 0) * 0x100000000 + (v.lo >>> 0);
}

export function u64FromNumber(n: number): U64 {
  const lo = n % 0x100000000;
  return { lo: lo >>> 0, hi: Math.floor(n / 0x100000000) >>> 0 };
}

export function u64Hex(v: U64): string {
  return '0x' + u64ToBigInt(v).toString(16);
}

/** A value given as 32-bit halves, in hex ('0x...'). */
export function hex(lo: number, hi = 0): string {
  return '0x' + ((BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0)).toString(16);
}

export function u64Equal(a: U64, b: U64): boolean {
  return (a.lo >>> 0) === (b.lo >>> 0) && (a.hi >>> 0) === (b.hi >>> 0);
}

/** Parses 0x..., decimal or a bigint-ish string; undefined when it is not a 64-bit value. */
export function parseU64(text: string): U64 | undefined {
  const t = text.trim();
  if (!/^(0[xX][0-9a-fA-F]{1,16}|[0-9]{1,20})$/.test(t)) return undefined;
  const v = BigInt(t);
  if (v > 0xffffffffffffffffn) return undefined;
  return u64FromBigInt(v);
}
