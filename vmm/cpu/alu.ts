/**
 * Integer ALU on operands of 1, 2, 4 or 8 bytes (8-byte values as lo/hi halves). Results
 * return the low half; the high half is left in `c.t`. Flags are set lazily or materialized.
 */
import { CpuCore, MASK } from './core';
import { LF, PARITY, ARITH_MASK } from './flags';
import { CF, PF, ZF, SF, OF } from '../x86/rflags';
import { W, mul32, mul64, neg128, div128by64 } from './arith64';

/** The eight group-1 operations: 0 add, 1 or, 2 adc, 3 sbb, 4 and, 5 sub, 6 xor, 7 cmp. */
export function alu(c: CpuCore, op: number, size: number, dLo: number, dHi: number, sLo: number, sHi: number): number {
  let rLo: number, rHi = 0;
  if (size !== 8) {
    const m = MASK[size];
    dLo = (dLo & m) >>> 0;
    sLo = (sLo & m) >>> 0;
    dHi = sHi = 0;
    switch (op) {
      case 0: case 2: {
        const cin = op === 2 ? c.getCF() : 0;
        rLo = ((dLo + sLo + cin) & m) >>> 0;
        c.setLazy(LF.ADD, size, dLo, 0, sLo, 0, rLo, 0, cin);
        break;
      }
      case 3: case 5: case 7: {
        const cin = op === 3 ? c.getCF() : 0;
        rLo = ((dLo - sLo - cin) & m) >>> 0;
        c.setLazy(LF.SUB, size, dLo, 0, sLo, 0, rLo, 0, cin);
        break;
      }
      case 1: rLo = (dLo | sLo) >>> 0; c.setLazy(LF.LOGIC, size, 0, 0, 0, 0, rLo, 0, 0); break;
      case 4: rLo = (dLo & sLo) >>> 0; c.setLazy(LF.LOGIC, size, 0, 0, 0, 0, rLo, 0, 0); break;
      default: rLo = (dLo ^ sLo) >>> 0; c.setLazy(LF.LOGIC, size, 0, 0, 0, 0, rLo, 0, 0); break;
    }
    c.t = 0;
    return rLo;
  }
  switch (op) {
    case 0: case 2: {
      const cin = op === 2 ? c.getCF() : 0;
      const s = dLo + sLo + cin;
      rLo = s >>> 0;
      rHi = (dHi + sHi + (s > 0xffffffff ? 1 : 0)) >>> 0;
      c.setLazy(LF.ADD, 8, dLo, dHi, sLo, sHi, rLo, rHi, cin);
      break;
    }
    case 3: case 5: case 7: {
      const cin = op === 3 ? c.getCF() : 0;
      const s = dLo - sLo - cin;
      rLo = s >>> 0;
      rHi = (dHi - sHi - (s < 0 ? 1 : 0)) >>> 0;
      c.setLazy(LF.SUB, 8, dLo, dHi, sLo, sHi, rLo, rHi, cin);
      break;
    }
    case 1: rLo = (dLo | sLo) >>> 0; rHi = (dHi | sHi) >>> 0; c.setLazy(LF.LOGIC, 8, 0, 0, 0, 0, rLo, rHi, 0); break;
    case 4: rLo = (dLo & sLo) >>> 0; rHi = (dHi & sHi) >>> 0; c.setLazy(LF.LOGIC, 8, 0, 0, 0, 0, rLo, rHi, 0); break;
    default: rLo = (dLo ^ sLo) >>> 0; rHi = (dHi ^ sHi) >>> 0; c.setLazy(LF.LOGIC, 8, 0, 0, 0, 0, rLo, rHi, 0); break;
  }
  c.t = rHi;
  return rLo;
}

/** INC (dec=false) or DEC: CF is preserved. */
export function incDec(c: CpuCore, dec: boolean, size: number, dLo: number, dHi: number): number {
  const cf = c.getCF();
  let rLo: number, rHi = 0;
  if (size === 8) {
    const s = dec ? dLo - 1 : dLo + 1;
    rLo = s >>> 0;
    rHi = (dHi + (s > 0xffffffff ? 1 : s < 0 ? -1 : 0)) >>> 0;
  } else {
    dLo = (dLo & MASK[size]) >>> 0;
    dHi = 0;
    rLo = ((dec ? dLo - 1 : dLo + 1) & MASK[size]) >>> 0;
  }
  c.setLazy(dec ? LF.DEC : LF.INC, size, dLo, dHi, 1, 0, rLo, rHi, cf);
  c.t = rHi;
  return rLo;
}

/** SF, ZF, PF of a result (lo/hi) at operand size. */
export function szp(size: number, lo: number, hi: number): number {
  let f = PARITY[lo & 0xff] ? PF : 0;
  if (size === 8) {
    if ((lo | hi) === 0) f |= ZF;
    if (hi >>> 31) f |= SF;
  } else {
    const m = MASK[size];
    if ((lo & m) === 0) f |= ZF;
    if (lo & (size === 1 ? 0x80 : size === 2 ? 0x8000 : 0x80000000)) f |= SF;
  }
  return f;
}

/** Keeps the current arithmetic flags except those in `mask`, which take `bits`. */
export function mergeArith(c: CpuCore, mask: number, bits: number): void {
  const f = c.getFlags() & ARITH_MASK;
  c.setArith((f & ~mask) | (bits & mask));
}

function sx(size: number, v: number): number {
  return size === 1 ? (v << 24) >> 24 : size === 2 ? (v << 16) >> 16 : v | 0;
}

/**
 * Signed multiply a*b at operand size, result truncated to the size. CF=OF=1 when the full
 * product does not fit (IMUL 2- and 3-operand forms). Returns lo; hi in c.t.
 */
export function imulTrunc(c: CpuCore, size: number, aLo: number, aHi: number, bLo: number, bHi: number): number {
  let lo: number, hi = 0, ovf: boolean;
  if (size === 2) {
    const p = sx(2, aLo) * sx(2, bLo);
    lo = p & 0xffff;
    ovf = p !== sx(2, lo);
  } else if (size === 4) {
    const a = aLo | 0, b = bLo | 0;
    mul32(aLo >>> 0, bLo >>> 0);
    let ph = W[1];
    if (a < 0) ph = (ph - (bLo >>> 0)) >>> 0;
    if (b < 0) ph = (ph - (aLo >>> 0)) >>> 0;
    lo = W[0];
    ovf = ph !== ((lo | 0) < 0 ? 0xffffffff : 0);
  } else {
    mul64(aLo, aHi, bLo, bHi);
    signedFix(aLo, aHi, bLo, bHi);
    lo = W[0]; hi = W[1];
    const ext = hi >>> 31 ? 0xffffffff : 0;
    ovf = W[2] !== ext || W[3] !== ext;
  }
  mergeArith(c, CF | OF, ovf ? CF | OF : 0); // SF ZF AF PF unchanged (as AMD Zen does)
  c.t = hi;
  return lo;
}

/** Converts the unsigned 128-bit product in W to the signed product of a*b. */
function signedFix(aLo: number, aHi: number, bLo: number, bHi: number): void {
  if (aHi >>> 31) sub64hi(bLo, bHi);
  if (bHi >>> 31) sub64hi(aLo, aHi);
}
function sub64hi(lo: number, hi: number): void {
  const s = W[2] - lo;
  W[2] = s >>> 0;
  W[3] = (W[3] - hi - (s < 0 ? 1 : 0)) >>> 0;
}

/** One-operand MUL (signed=false) or IMUL: rDX:rAX = rAX * src. */
export function mulWide(c: CpuCore, signed: boolean, size: number, sLo: number, sHi: number): void {
  const rl = c.rl, rh = c.rh;
  let high: boolean, fl: number;
  if (size === 1) {
    const a = rl[0] & 0xff;
    const p = signed ? sx(1, a) * sx(1, sLo) : a * (sLo & 0xff);
    const ax = p & 0xffff;
    rl[0] = (rl[0] & 0xffff0000) | ax;
    high = signed ? sx(1, ax) !== p : (ax >>> 8) !== 0;
    fl = szp(1, ax, 0);
  } else if (size === 2) {
    const a = rl[0] & 0xffff;
    const p = signed ? sx(2, a) * sx(2, sLo) : a * (sLo & 0xffff);
    const lo = p & 0xffff, hi = (p >>> 16) & 0xffff;
    rl[0] = (rl[0] & 0xffff0000) | lo;
    rl[2] = (rl[2] & 0xffff0000) | hi;
    high = signed ? sx(2, lo) !== p : hi !== 0;
    fl = szp(2, lo, 0);
  } else if (size === 4) {
    const a = rl[0];
    mul32(a, sLo >>> 0);
    let ph = W[1];
    if (signed) {
      if ((a | 0) < 0) ph = (ph - (sLo >>> 0)) >>> 0;
      if ((sLo | 0) < 0) ph = (ph - a) >>> 0;
    }
    const lo = W[0];
    rl[0] = lo; rh[0] = 0;
    rl[2] = ph; rh[2] = 0;
    high = signed ? ph !== ((lo | 0) < 0 ? 0xffffffff : 0) : ph !== 0;
    fl = szp(4, lo, 0);
  } else {
    const aLo = rl[0], aHi = rh[0];
    mul64(aLo, aHi, sLo, sHi);
    if (signed) signedFix(aLo, aHi, sLo, sHi);
    rl[0] = W[0]; rh[0] = W[1];
    rl[2] = W[2]; rh[2] = W[3];
    if (signed) {
      const ext = W[1] >>> 31 ? 0xffffffff : 0;
      high = W[2] !== ext || W[3] !== ext;
    } else high = (W[2] | W[3]) !== 0;
    fl = szp(8, W[0], W[1]);
  }
  mergeArith(c, CF | OF, high ? CF | OF : 0); // SF ZF AF PF unchanged (as AMD Zen does)
  void fl;
}

/** DIV / IDIV: rDX:rAX / src. #DE (vector 0) on a zero divisor or a quotient overflow. */
export function divide(c: CpuCore, signed: boolean, size: number, sLo: number, sHi: number): void {
  const rl = c.rl, rh = c.rh;
  if (size === 1 || size === 2) {
    const bits = size * 8;
    const m = size === 1 ? 0xff : 0xffff;
    let n: number, d: number;
    if (size === 1) n = rl[0] & 0xffff; else n = ((rl[2] & 0xffff) * 65536) + (rl[0] & 0xffff);
    d = sLo & m;
    if (d === 0) c.exception(0);
    if (signed) {
      n = size === 1 ? sx(2, n) : n | 0;
      d = sx(size, d);
      const q = Math.trunc(n / d), r = n - q * d;
      const lim = 2 ** (bits - 1);
      if (q >= lim || q < -lim) c.exception(0);
      setDivResult(c, size, q & m, r & m);
    } else {
      const q = Math.floor(n / d), r = n - q * d;
      if (q > m) c.exception(0);
      setDivResult(c, size, q, r);
    }
    return;
  }
  let dLo: number, dHi: number;
  if (size === 4) {
    W[0] = rl[0]; W[1] = rl[2];
    const ext = signed && (rl[2] >>> 31) ? 0xffffffff : 0;
    W[2] = ext; W[3] = ext;
    dLo = sLo >>> 0; dHi = signed && (sLo >>> 31) ? 0xffffffff : 0;
  } else {
    W[0] = rl[0]; W[1] = rh[0]; W[2] = rl[2]; W[3] = rh[2];
    dLo = sLo >>> 0; dHi = sHi >>> 0;
  }
  if ((dLo | dHi) === 0) c.exception(0);
  let negN = false, negD = false;
  if (signed) {
    if (W[3] >>> 31) { negN = true; neg128(); }
    if (dHi >>> 31) {
      negD = true;
      const l = (~dLo >>> 0) + 1;
      dLo = l >>> 0;
      dHi = ((~dHi >>> 0) + (l > 0xffffffff ? 1 : 0)) >>> 0;
    }
  }
  if (!div128by64(dLo, dHi)) c.exception(0);
  let qLo = W[0], qHi = W[1], rLo = W[2], rHi = W[3];
  if (size === 4) {
    if (qHi !== 0) c.exception(0);
    if (signed) {
      const neg = negN !== negD;
      if (neg ? qLo > 0x80000000 : qLo > 0x7fffffff) c.exception(0);
      if (neg) qLo = (-qLo) >>> 0;
      if (negN) rLo = (-rLo) >>> 0;
    }
    setDivResult(c, 4, qLo, rLo);
    return;
  }
  if (signed) {
    const neg = negN !== negD;
    if (neg ? (qHi > 0x80000000 || (qHi === 0x80000000 && qLo !== 0)) : qHi > 0x7fffffff) c.exception(0);
    if (neg) { const l = (~qLo >>> 0) + 1; qLo = l >>> 0; qHi = ((~qHi >>> 0) + (l > 0xffffffff ? 1 : 0)) >>> 0; }
    if (negN) { const l = (~rLo >>> 0) + 1; rLo = l >>> 0; rHi = ((~rHi >>> 0) + (l > 0xffffffff ? 1 : 0)) >>> 0; }
  }
  rl[0] = qLo; rh[0] = qHi; rl[2] = rLo; rh[2] = rHi;
}

function setDivResult(c: CpuCore, size: number, q: number, r: number): void {
  const rl = c.rl;
  if (size === 1) rl[0] = (rl[0] & 0xffff0000) | (q & 0xff) | ((r & 0xff) << 8);
  else if (size === 2) {
    rl[0] = (rl[0] & 0xffff0000) | (q & 0xffff);
    rl[2] = (rl[2] & 0xffff0000) | (r & 0xffff);
  } else {
    rl[0] = q >>> 0; c.rh[0] = 0;
    rl[2] = r >>> 0; c.rh[2] = 0;
  }
}
