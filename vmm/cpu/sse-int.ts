/**
 * SSE2 packed-integer operations on whole XMM slots of an FpuState: out = d op s, lane by
 * lane (out is a scratch slot, so d or s may be any register, even the same one).
 */
import { FpuState } from './fpu-state';
import { S } from './sse-decode';

function satS8(v: number): number { return v > 127 ? 127 : v < -128 ? -128 : v; }
function satU8(v: number): number { return v > 255 ? 255 : v < 0 ? 0 : v; }
function satS16(v: number): number { return v > 32767 ? 32767 : v < -32768 ? -32768 : v; }
function satU16(v: number): number { return v > 65535 ? 65535 : v < 0 ? 0 : v; }

/** Low/high halves of a 32x32 -> 64-bit unsigned product. */
const mulOut = { lo: 0, hi: 0 };
function mulU32(a: number, b: number): void {
  const a0 = a & 0xffff, a1 = a >>> 16, b0 = b & 0xffff, b1 = b >>> 16;
  const p00 = a0 * b0, mid = a1 * b0 + a0 * b1; // mid < 2^33
  const lo = p00 + (mid % 65536) * 65536;
  mulOut.lo = lo >>> 0;
  mulOut.hi = (a1 * b1 + Math.floor(mid / 65536) + Math.floor(lo / 4294967296)) >>> 0;
}

/** A lane-wise binary op; returns false if `op` is not one. */
export function packedBinary(f: FpuState, op: S, d: number, s: number, out: number): boolean {
  const B = 16, W = 8, D = 4;
  const u8 = f.u8, i8 = f.i8, u16 = f.u16, i16 = f.i16, u32 = f.u32, i32 = f.i32;
  const db = d * B, sb = s * B, ob = out * B;
  const dw = d * W, sw = s * W, ow = out * W;
  const dd = d * D, sd = s * D, od = out * D;
  switch (op) {
    case S.PADDB: for (let k = 0; k < 16; k++) u8[ob + k] = u8[db + k] + u8[sb + k]; return true;
    case S.PADDW: for (let k = 0; k < 8; k++) u16[ow + k] = u16[dw + k] + u16[sw + k]; return true;
    case S.PADDD: for (let k = 0; k < 4; k++) u32[od + k] = u32[dd + k] + u32[sd + k]; return true;
    case S.PSUBB: for (let k = 0; k < 16; k++) u8[ob + k] = u8[db + k] - u8[sb + k]; return true;
    case S.PSUBW: for (let k = 0; k < 8; k++) u16[ow + k] = u16[dw + k] - u16[sw + k]; return true;
    case S.PSUBD: for (let k = 0; k < 4; k++) u32[od + k] = u32[dd + k] - u32[sd + k]; return true;
    case S.PADDQ: case S.PSUBQ:
      for (let k = 0; k < 4; k += 2) {
        const sub = op === S.PSUBQ;
        const lo = sub ? u32[dd + k] - u32[sd + k] : u32[dd + k] + u32[sd + k];
        const carry = lo > 0xffffffff ? 1 : lo < 0 ? -1 : 0;
        u32[od + k] = lo;
        u32[od + k + 1] = (sub ? u32[dd + k + 1] - u32[sd + k + 1] : u32[dd + k + 1] + u32[sd + k + 1]) + carry;
      }
      return true;
    case S.PADDSB: for (let k = 0; k < 16; k++) i8[ob + k] = satS8(i8[db + k] + i8[sb + k]); return true;
    case S.PADDSW: for (let k = 0; k < 8; k++) i16[ow + k] = satS16(i16[dw + k] + i16[sw + k]); return true;
    case S.PADDUSB: for (let k = 0; k < 16; k++) u8[ob + k] = satU8(u8[db + k] + u8[sb + k]); return true;
    case S.PADDUSW: for (let k = 0; k < 8; k++) u16[ow + k] = satU16(u16[dw + k] + u16[sw + k]); return true;
    case S.PSUBSB: for (let k = 0; k < 16; k++) i8[ob + k] = satS8(i8[db + k] - i8[sb + k]); return true;
    case S.PSUBSW: for (let k = 0; k < 8; k++) i16[ow + k] = satS16(i16[dw + k] - i16[sw + k]); return true;
    case S.PSUBUSB: for (let k = 0; k < 16; k++) u8[ob + k] = satU8(u8[db + k] - u8[sb + k]); return true;
    case S.PSUBUSW: for (let k = 0; k < 8; k++) u16[ow + k] = satU16(u16[dw + k] - u16[sw + k]); return true;
    case S.PCMPEQB: for (let k = 0; k < 16; k++) u8[ob + k] = u8[db + k] === u8[sb + k] ? 0xff : 0; return true;
    case S.PCMPEQW: for (let k = 0; k < 8; k++) u16[ow + k] = u16[dw + k] === u16[sw + k] ? 0xffff : 0; return true;
    case S.PCMPEQD: for (let k = 0; k < 4; k++) u32[od + k] = u32[dd + k] === u32[sd + k] ? 0xffffffff : 0; return true;
    case S.PCMPGTB: for (let k = 0; k < 16; k++) u8[ob + k] = i8[db + k] > i8[sb + k] ? 0xff : 0; return true;
    case S.PCMPGTW: for (let k = 0; k < 8; k++) u16[ow + k] = i16[dw + k] > i16[sw + k] ? 0xffff : 0; return true;
    case S.PCMPGTD: for (let k = 0; k < 4; k++) u32[od + k] = i32[dd + k] > i32[sd + k] ? 0xffffffff : 0; return true;
    case S.PAND: case S.ANDP: for (let k = 0; k < 4; k++) u32[od + k] = u32[dd + k] & u32[sd + k]; return true;
    case S.PANDN: case S.ANDNP: for (let k = 0; k < 4; k++) u32[od + k] = ~u32[dd + k] & u32[sd + k]; return true;
    case S.POR: case S.ORP: for (let k = 0; k < 4; k++) u32[od + k] = u32[dd + k] | u32[sd + k]; return true;
    case S.PXOR: case S.XORP: for (let k = 0; k < 4; k++) u32[od + k] = u32[dd + k] ^ u32[sd + k]; return true;
    case S.PMULLW: for (let k = 0; k < 8; k++) u16[ow + k] = Math.imul(u16[dw + k], u16[sw + k]); return true;
    case S.PMULHW: for (let k = 0; k < 8; k++) u16[ow + k] = (i16[dw + k] * i16[sw + k]) >> 16; return true;
    case S.PMULHUW: for (let k = 0; k < 8; k++) u16[ow + k] = (u16[dw + k] * u16[sw + k]) >>> 16; return true;
    case S.PMULUDQ:
      for (let k = 0; k < 4; k += 2) {
        mulU32(u32[dd + k], u32[sd + k]);
        u32[od + k] = mulOut.lo;
        u32[od + k + 1] = mulOut.hi;
      }
      return true;
    case S.PMADDWD:
      for (let k = 0; k < 4; k++) {
        i32[od + k] = (i16[dw + 2 * k] * i16[sw + 2 * k] + i16[dw + 2 * k + 1] * i16[sw + 2 * k + 1]) | 0;
      }
      return true;
    case S.PSADBW:
      for (let q = 0; q < 2; q++) {
        let sum = 0;
        for (let k = 0; k < 8; k++) sum += Math.abs(u8[db + q * 8 + k] - u8[sb + q * 8 + k]);
        u32[od + q * 2] = sum;
        u32[od + q * 2 + 1] = 0;
      }
      return true;
    case S.PMINUB: for (let k = 0; k < 16; k++) u8[ob + k] = Math.min(u8[db + k], u8[sb + k]); return true;
    case S.PMAXUB: for (let k = 0; k < 16; k++) u8[ob + k] = Math.max(u8[db + k], u8[sb + k]); return true;
    case S.PMINSW: for (let k = 0; k < 8; k++) i16[ow + k] = Math.min(i16[dw + k], i16[sw + k]); return true;
    case S.PMAXSW: for (let k = 0; k < 8; k++) i16[ow + k] = Math.max(i16[dw + k], i16[sw + k]); return true;
    case S.PAVGB: for (let k = 0; k < 16; k++) u8[ob + k] = (u8[db + k] + u8[sb + k] + 1) >> 1; return true;
    case S.PAVGW: for (let k = 0; k < 8; k++) u16[ow + k] = (u16[dw + k] + u16[sw + k] + 1) >> 1; return true;
    case S.PUNPCKLBW: case S.PUNPCKHBW: {
      const h = op === S.PUNPCKHBW ? 8 : 0;
      for (let k = 0; k < 8; k++) { u8[ob + 2 * k] = u8[db + h + k]; u8[ob + 2 * k + 1] = u8[sb + h + k]; }
      return true;
    }
    case S.PUNPCKLWD: case S.PUNPCKHWD: {
      const h = op === S.PUNPCKHWD ? 4 : 0;
      for (let k = 0; k < 4; k++) { u16[ow + 2 * k] = u16[dw + h + k]; u16[ow + 2 * k + 1] = u16[sw + h + k]; }
      return true;
    }
    case S.PUNPCKLDQ: case S.PUNPCKHDQ: case S.UNPCKLPS: case S.UNPCKHPS: {
      const h = op === S.PUNPCKHDQ || op === S.UNPCKHPS ? 2 : 0;
      for (let k = 0; k < 2; k++) { u32[od + 2 * k] = u32[dd + h + k]; u32[od + 2 * k + 1] = u32[sd + h + k]; }
      return true;
    }
    case S.PUNPCKLQDQ: case S.PUNPCKHQDQ: case S.UNPCKLPD: case S.UNPCKHPD: {
      const h = op === S.PUNPCKHQDQ || op === S.UNPCKHPD ? 2 : 0;
      u32[od] = u32[dd + h]; u32[od + 1] = u32[dd + h + 1];
      u32[od + 2] = u32[sd + h]; u32[od + 3] = u32[sd + h + 1];
      return true;
    }
    case S.PACKSSWB:
      for (let k = 0; k < 8; k++) { i8[ob + k] = satS8(i16[dw + k]); i8[ob + 8 + k] = satS8(i16[sw + k]); }
      return true;
    case S.PACKUSWB:
      for (let k = 0; k < 8; k++) { u8[ob + k] = satU8(i16[dw + k]); u8[ob + 8 + k] = satU8(i16[sw + k]); }
      return true;
    case S.PACKSSDW:
      for (let k = 0; k < 4; k++) { i16[ow + k] = satS16(i32[dd + k]); i16[ow + 4 + k] = satS16(i32[sd + k]); }
      return true;
    default:
      return false;
  }
}

/**
 * Shifts of d by `count` (a 64-bit count as halves: anything >= 2^32 is "large") into out.
 * kind: 0 logical right, 1 arithmetic right, 2 left; width 16, 32 or 64.
 */
export function packedShift(f: FpuState, d: number, out: number, kind: number, width: number, cLo: number, cHi: number): void {
  const u16 = f.u16, i16 = f.i16, u32 = f.u32, i32 = f.i32;
  const big = cHi !== 0 || cLo >= width;
  const n = big ? width : cLo;
  if (width === 16) {
    for (let k = 0; k < 8; k++) {
      const v = u16[d * 8 + k];
      u16[out * 8 + k] = kind === 1 ? i16[d * 8 + k] >> Math.min(n, 15) : big ? 0 : kind === 0 ? v >>> n : v << n;
    }
  } else if (width === 32) {
    for (let k = 0; k < 4; k++) {
      const v = u32[d * 4 + k];
      u32[out * 4 + k] = kind === 1 ? i32[d * 4 + k] >> Math.min(n, 31) : big ? 0 : kind === 0 ? v >>> n : v << n;
    }
  } else {
    for (let k = 0; k < 4; k += 2) {
      const lo = u32[d * 4 + k], hi = u32[d * 4 + k + 1];
      let rl: number, rh: number;
      if (big) { rl = 0; rh = 0; }
      else if (n === 0) { rl = lo; rh = hi; }
      else if (kind === 0) {
        if (n < 32) { rl = (lo >>> n) | (hi << (32 - n)); rh = hi >>> n; } else { rl = hi >>> (n - 32); rh = 0; }
      } else if (n < 32) { rh = (hi << n) | (lo >>> (32 - n)); rl = lo << n; } else { rh = lo << (n - 32); rl = 0; }
      u32[out * 4 + k] = rl;
      u32[out * 4 + k + 1] = rh;
    }
  }
}

/** PSRLDQ/PSLLDQ: the whole register by n bytes (n > 15 clears it). */
export function byteShift(f: FpuState, d: number, out: number, left: boolean, n: number): void {
  const u8 = f.u8;
  for (let k = 0; k < 16; k++) {
    const from = left ? k - n : k + n;
    u8[out * 16 + k] = from >= 0 && from < 16 ? u8[d * 16 + from] : 0;
  }
}
