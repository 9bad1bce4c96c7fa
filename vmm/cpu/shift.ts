/**
 * Shifts and rotates (group 2: ROL ROR RCL RCR SHL SHR SAL SAR) and SHLD/SHRD, with the
 * flag rules of the SDM (undefined flags: see flags.ts). Values at operand size; 64-bit as
 * lo/hi halves; the result's high half is left in c.t.
 */
import { CpuCore, MASK } from './core';
import { CF, OF, AF } from '../x86/rflags';
import { szp, mergeArith } from './alu';

let oHi = 0;

function shl64(lo: number, hi: number, n: number): number {
  if (n === 0) { oHi = hi; return lo; }
  if (n >= 64) { oHi = 0; return 0; }
  if (n >= 32) { oHi = (lo << (n - 32)) >>> 0; return 0; }
  oHi = ((hi << n) | (lo >>> (32 - n))) >>> 0;
  return (lo << n) >>> 0;
}
function shr64(lo: number, hi: number, n: number): number {
  if (n === 0) { oHi = hi; return lo; }
  if (n >= 64) { oHi = 0; return 0; }
  if (n >= 32) { oHi = 0; return hi >>> (n - 32); }
  oHi = hi >>> n;
  return ((lo >>> n) | (hi << (32 - n))) >>> 0;
}
function sar64(lo: number, hi: number, n: number): number {
  if (n === 0) { oHi = hi; return lo; }
  const s = (hi | 0) < 0 ? 0xffffffff : 0;
  if (n >= 64) { oHi = s; return s; }
  if (n >= 32) { oHi = s; return ((hi | 0) >> (n - 32)) >>> 0; }
  oHi = ((hi | 0) >> n) >>> 0;
  return ((lo >>> n) | (hi << (32 - n))) >>> 0;
}
function msbOf(size: number, lo: number, hi: number): number {
  return size === 8 ? hi >>> 31 : (lo >>> (size * 8 - 1)) & 1;
}
function bit64(lo: number, hi: number, k: number): number {
  return k < 32 ? (lo >>> k) & 1 : (hi >>> (k - 32)) & 1;
}

/** Group-2 operation `sub` on a value of `size` bytes by `count` (already read, unmasked). */
export function shiftOp(c: CpuCore, sub: number, size: number, vLo: number, vHi: number, count: number): number {
  const bits = size * 8;
  count &= size === 8 ? 63 : 31;
  if (size !== 8) { vLo = (vLo & MASK[size]) >>> 0; vHi = 0; }
  if (count === 0) { c.t = vHi; return vLo; }
  let rLo: number, rHi: number, cf: number, of: number;
  switch (sub) {
    case 0: case 1: { // ROL, ROR
      const n = count % bits;
      if (sub === 0) {
        rLo = shl64(vLo, vHi, n); rHi = oHi;
        if (size !== 8) { rLo = ((vLo << n) | (n ? vLo >>> (bits - n) : 0)) & MASK[size]; rLo >>>= 0; rHi = 0; }
        else if (n) { const l2 = shr64(vLo, vHi, 64 - n); rLo = (rLo | l2) >>> 0; rHi = (rHi | oHi) >>> 0; }
        cf = rLo & 1;
        of = msbOf(size, rLo, rHi) ^ cf;
      } else {
        if (size !== 8) { rLo = ((vLo >>> n) | (n ? vLo << (bits - n) : 0)) & MASK[size]; rLo >>>= 0; rHi = 0; }
        else {
          rLo = shr64(vLo, vHi, n); rHi = oHi;
          if (n) { const l2 = shl64(vLo, vHi, 64 - n); rLo = (rLo | l2) >>> 0; rHi = (rHi | oHi) >>> 0; }
        }
        cf = msbOf(size, rLo, rHi);
        of = cf ^ (size === 8 ? (rHi >>> 30) & 1 : (rLo >>> (bits - 2)) & 1);
      }
      mergeArith(c, CF | OF, (cf ? CF : 0) | (of ? OF : 0));
      c.t = rHi;
      return rLo;
    }
    case 2: case 3: { // RCL, RCR: through CF, bit by bit
      const n = size === 1 ? count % 9 : size === 2 ? count % 17 : count;
      let lo = vLo, hi = vHi;
      cf = c.getCF();
      for (let k = 0; k < n; k++) {
        if (sub === 2) {
          const out = msbOf(size, lo, hi);
          lo = shl64(lo, hi, 1); hi = oHi;
          lo = (lo | cf) >>> 0;
          if (size !== 8) { lo = (lo & MASK[size]) >>> 0; hi = 0; }
          cf = out;
        } else {
          const out = lo & 1;
          lo = shr64(lo, hi, 1); hi = oHi;
          if (cf) { if (size === 8) hi = (hi | 0x80000000) >>> 0; else lo = (lo | (1 << (bits - 1))) >>> 0; }
          cf = out;
        }
      }
      if (sub === 2) of = msbOf(size, lo, hi) ^ cf;
      else of = msbOf(size, lo, hi) ^ (size === 8 ? (hi >>> 30) & 1 : (lo >>> (bits - 2)) & 1);
      mergeArith(c, CF | OF, (cf ? CF : 0) | (of ? OF : 0));
      c.t = hi;
      return lo;
    }
    case 4: case 6: { // SHL/SAL
      if (size === 8) {
        rLo = shl64(vLo, vHi, count); rHi = oHi;
        cf = bit64(vLo, vHi, 64 - count);
      } else {
        rLo = ((vLo << count) & MASK[size]) >>> 0;
        rHi = 0;
        cf = count > bits ? 0 : (vLo >>> (bits - count)) & 1;
      }
      of = msbOf(size, rLo, rHi) ^ cf;
      break;
    }
    case 5: { // SHR
      if (size === 8) { rLo = shr64(vLo, vHi, count); rHi = oHi; cf = bit64(vLo, vHi, count - 1); }
      else { rLo = count >= 32 ? 0 : vLo >>> count; rHi = 0; cf = count > bits ? 0 : (vLo >>> (count - 1)) & 1; }
      of = count === 1 ? msbOf(size, vLo, vHi) : 0; // count > 1: undefined, 0 as AMD Zen
      break;
    }
    default: { // SAR
      if (size === 8) { rLo = sar64(vLo, vHi, count); rHi = oHi; cf = bit64(vLo, vHi, count - 1); }
      else {
        const sv = size === 1 ? (vLo << 24) >> 24 : size === 2 ? (vLo << 16) >> 16 : vLo | 0;
        const n = Math.min(count, 31);
        rLo = ((sv >> n) & MASK[size]) >>> 0; rHi = 0;
        cf = count > bits ? (sv < 0 ? 1 : 0) : (sv >> (count - 1)) & 1;
      }
      of = 0;
      break;
    }
  }
  c.setArith((cf ? CF : 0) | (of ? OF : 0) | AF | szp(size, rLo, rHi)); // AF undefined: 1 as AMD Zen
  c.t = rHi;
  return rLo;
}

/** SHLD (left=true) / SHRD: dst shifted by count with bits from src. */
export function shiftDouble(c: CpuCore, left: boolean, size: number, dLo: number, dHi: number, sLo: number, sHi: number, count: number): number {
  count &= size === 8 ? 63 : 31;
  if (size !== 8) { dLo = (dLo & MASK[size]) >>> 0; sLo = (sLo & MASK[size]) >>> 0; dHi = sHi = 0; }
  if (count === 0) { c.t = dHi; return dLo; }
  const bits = size * 8;
  let rLo: number, rHi = 0, cf: number;
  if (size === 8) {
    if (left) {
      rLo = shl64(dLo, dHi, count); rHi = oHi;
      const l2 = shr64(sLo, sHi, 64 - count);
      rLo = (rLo | l2) >>> 0; rHi = (rHi | oHi) >>> 0;
      cf = bit64(dLo, dHi, 64 - count);
    } else {
      rLo = shr64(dLo, dHi, count); rHi = oHi;
      const l2 = shl64(sLo, sHi, 64 - count);
      rLo = (rLo | l2) >>> 0; rHi = (rHi | oHi) >>> 0;
      cf = bit64(dLo, dHi, count - 1);
    }
  } else if (size === 4) {
    if (left) { rLo = shl64(sLo, dLo, count); rLo = oHi; cf = bit64(sLo, dLo, 64 - count); }
    else { rLo = shr64(dLo, sLo, count); cf = bit64(dLo, sLo, count - 1); }
  } else {
    // 16-bit: through the 32-bit concatenation (counts > 16 are undefined).
    if (left) {
      const comb = ((dLo << 16) | sLo) >>> 0;
      rLo = count >= 32 ? 0 : ((comb << count) >>> 16) & 0xffff;
      cf = (comb >>> (32 - count)) & 1;
    } else {
      const comb = ((sLo << 16) | dLo) >>> 0;
      rLo = (comb >>> count) & 0xffff;
      cf = (comb >>> (count - 1)) & 1;
    }
  }
  const of = ((size === 8 ? (rHi ^ dHi) >>> 31 : ((rLo ^ dLo) >>> (bits - 1)) & 1));
  c.setArith((cf ? CF : 0) | (of ? OF : 0) | AF | szp(size, rLo, rHi)); // AF undefined: 1 as AMD Zen
  c.t = rHi;
  return rLo;
}
