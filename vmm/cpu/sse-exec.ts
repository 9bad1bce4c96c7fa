/**
 * Executes Op.SSE instructions (sub = S, sse-decode.ts): the SSE/SSE2 data instructions
 * here, the FPU-state and x87-control ones in fpu-exec.ts. Availability as the SDM says:
 * SSE needs CR0.EM = 0 and CR4.OSFXSR = 1 (else #UD), CR0.TS = 1 gives #NM. A fault leaves
 * everything unchanged: results are built in scratch slots and written at the end, and a
 * 16-byte store checks its whole range before writing.
 */
import { CpuCore } from './core';
import { Insn } from './insn';
import { linearRead, linearWrite, ACC_NOAC } from './mmu';
import { S } from './sse-decode';
import { FpuState, XMM_SRC, XMM_TMP } from './fpu-state';
import { packedBinary, packedShift, byteShift } from './sse-int';
import {
  FOp, fpr, denormal64, denormal32, operand64, operand32, arith64, arith32, sqrt64, sqrt32, approx32, cmpPredicate, anySNaN64, anySNaN32,
  f64to32, f32to64, toInt, int64ToFloat, IE,
} from './sse-float';
import { execFpuState } from './fpu-exec';
import { CF, PF, ZF } from '../x86/rflags';
import { CR0_EM, CR0_TS, CR4_OSFXSR, CR4_OSXMMEXCPT } from '../x86/control-regs';


export function execSse(c: CpuCore, i: Insn): number {
  const s = i.sub as S;
  if (s >= S.FXSAVE) return execFpuState(c, i, s);
  if ((c.cr0 & CR0_EM) !== 0 || (c.cr4 & CR4_OSFXSR) === 0) return c.ud();
  if ((c.cr0 & CR0_TS) !== 0) return c.exception(7);
  return execData(c, i, s, c.fpu);
}

function ea(c: CpuCore, i: Insn, size = i.size): void {
  c.calcEA(i.base, i.index, i.scale, i.dispLo, i.dispHi, i.asize, i.seg, size);
}
/** The address 8 bytes after the EA (halves in c.t for the high half). */
function eaPlus8(c: CpuCore): number {
  const a = c.eaLo + 8;
  c.t = a > 0xffffffff ? (c.eaHi + 1) >>> 0 : c.eaHi;
  return a >>> 0;
}

/** The 8-byte halves of a 16-byte operand: exempt from #AC (SDM 6.15: 2/4/8-byte data only). */
function rdHalf(c: CpuCore, lo: number, hi: number): number {
  return c.acCheck !== 0 ? linearRead(c, lo, hi, 8, ACC_NOAC) : c.rd64(lo, hi);
}
function wrHalf(c: CpuCore, lo: number, hi: number, vLo: number, vHi: number): void {
  if (c.acCheck !== 0) linearWrite(c, lo, hi, 8, vLo, vHi, ACC_NOAC); else c.wr64(lo, hi, vLo, vHi);
}

/** Reads n (4, 8, 16) bytes of the memory operand into scratch slot XMM_SRC. */
function readMem(c: CpuCore, i: Insn, f: FpuState, n: number, aligned: boolean): void {
  ea(c, i, n);
  const o = XMM_SRC * 4;
  if (n === 4) { f.u32[o] = c.rd32(c.eaLo, c.eaHi); return; }
  if (n === 8) {
    f.u32[o] = c.rd64(c.eaLo, c.eaHi);
    f.u32[o + 1] = c.t;
    return;
  }
  if (aligned && (c.eaLo & 15) !== 0) c.gp0();
  f.u32[o] = rdHalf(c, c.eaLo, c.eaHi);
  f.u32[o + 1] = c.t;
  {
    const lo = eaPlus8(c);
    f.u32[o + 2] = rdHalf(c, lo, c.t);
    f.u32[o + 3] = c.t;
  }
}

/** The source operand as a slot: the register, or memory read into XMM_SRC. */
function src(c: CpuCore, i: Insn, f: FpuState, n: number, aligned = true): number {
  if (!i.isMem) return i.rm;
  readMem(c, i, f, n, aligned);
  return XMM_SRC;
}

/** Writes n bytes of slot r (from its lane 0) to the memory operand. */
function writeMem(c: CpuCore, i: Insn, f: FpuState, r: number, n: number, aligned: boolean): void {
  ea(c, i, n);
  const o = r * 4;
  if (n === 4) { c.wr32(c.eaLo, c.eaHi, f.u32[o]); return; }
  if (n === 8) { c.wr64(c.eaLo, c.eaHi, f.u32[o], f.u32[o + 1]); return; }
  if (aligned && (c.eaLo & 15) !== 0) c.gp0();
  c.probeWrite(c.eaLo, c.eaHi, 16);
  const lo0 = f.u32[o], hi0 = f.u32[o + 1], lo1 = f.u32[o + 2], hi1 = f.u32[o + 3];
  const eLo = c.eaLo, eHi = c.eaHi;
  const a = eaPlus8(c), aHi = c.t;
  wrHalf(c, eLo, eHi, lo0, hi0);
  wrHalf(c, a, aHi, lo1, hi1);
}

function copy(f: FpuState, to: number, from: number, dwords: number, at = 0): void {
  for (let k = at; k < at + dwords; k++) f.u32[to * 4 + k] = f.u32[from * 4 + k];
}
function zero(f: FpuState, r: number, from: number): void {
  for (let k = from; k < 4; k++) f.u32[r * 4 + k] = 0;
}

/** Commits the SIMD exception flags: an unmasked one faults (#XM, or #UD without OSXMMEXCPT). */
function commitExc(c: CpuCore, f: FpuState): void {
  const e = fpr.exc;
  if (e === 0) return;
  if ((e & ~(f.mxcsr >>> 7) & 0x3f) !== 0) {
    if ((c.cr4 & CR4_OSXMMEXCPT) === 0) c.ud();
    f.mxcsr |= e; // the flags are set when the exception is reported (SDM 11.5.2.1)
    c.exception(19);
  }
  f.mxcsr |= e;
}

const ARITH: Partial<Record<S, [FOp, number]>> = {
  // [operation, shape: 0 packed single, 1 packed double, 2 scalar single, 3 scalar double]
  [S.ADDPS]: [FOp.ADD, 0], [S.ADDPD]: [FOp.ADD, 1], [S.ADDSS]: [FOp.ADD, 2], [S.ADDSD]: [FOp.ADD, 3],
  [S.SUBPS]: [FOp.SUB, 0], [S.SUBPD]: [FOp.SUB, 1], [S.SUBSS]: [FOp.SUB, 2], [S.SUBSD]: [FOp.SUB, 3],
  [S.MULPS]: [FOp.MUL, 0], [S.MULPD]: [FOp.MUL, 1], [S.MULSS]: [FOp.MUL, 2], [S.MULSD]: [FOp.MUL, 3],
  [S.DIVPS]: [FOp.DIV, 0], [S.DIVPD]: [FOp.DIV, 1], [S.DIVSS]: [FOp.DIV, 2], [S.DIVSD]: [FOp.DIV, 3],
  [S.MINPS]: [FOp.MIN, 0], [S.MINPD]: [FOp.MIN, 1], [S.MINSS]: [FOp.MIN, 2], [S.MINSD]: [FOp.MIN, 3],
  [S.MAXPS]: [FOp.MAX, 0], [S.MAXPD]: [FOp.MAX, 1], [S.MAXSS]: [FOp.MAX, 2], [S.MAXSD]: [FOp.MAX, 3],
};
/** Memory operand bytes by shape. */
const SHAPE_BYTES = [16, 16, 4, 8];

function execData(c: CpuCore, i: Insn, s: S, f: FpuState): number {
  const d = i.reg;
  const T = XMM_TMP;
  fpr.exc = 0;
  const ar = ARITH[s];
  if (ar !== undefined) {
    const [op, shape] = ar;
    const r = src(c, i, f, SHAPE_BYTES[shape]);
    copy(f, T, d, 4);
    switch (shape) {
      case 0: for (let k = 0; k < 4; k++) arith32(f, op, T * 4 + k, d * 4 + k, r * 4 + k); break;
      case 1: for (let k = 0; k < 2; k++) arith64(f, op, T * 2 + k, d * 2 + k, r * 2 + k); break;
      case 2: arith32(f, op, T * 4, d * 4, r * 4); break;
      default: arith64(f, op, T * 2, d * 2, r * 2);
    }
    commitExc(c, f);
    copy(f, d, T, 4);
    return i.nextAddr;
  }
  switch (s) {
    // ---- moves ----
    case S.MOVUPS: case S.MOVAPS: case S.MOVDQU: {
      const r = src(c, i, f, 16, s === S.MOVAPS);
      copy(f, d, r, 4);
      return i.nextAddr;
    }
    case S.MOVUPS_ST: case S.MOVAPS_ST: case S.MOVDQU_ST: case S.MOVNT_ST:
      if (i.isMem) writeMem(c, i, f, d, 16, s === S.MOVAPS_ST || s === S.MOVNT_ST);
      else copy(f, i.rm, d, 4);
      return i.nextAddr;
    case S.MOVSS: case S.MOVSD: {
      const n = s === S.MOVSS ? 1 : 2;
      if (i.isMem) { readMem(c, i, f, n * 4, false); copy(f, d, XMM_SRC, n); zero(f, d, n); }
      else copy(f, d, i.rm, n);
      return i.nextAddr;
    }
    case S.MOVSS_ST: case S.MOVSD_ST: {
      const n = s === S.MOVSS_ST ? 1 : 2;
      if (i.isMem) writeMem(c, i, f, d, n * 4, false); else copy(f, i.rm, d, n);
      return i.nextAddr;
    }
    case S.MOVLPS: case S.MOVLPD: // MOVHLPS for the register form
      if (i.isMem) { readMem(c, i, f, 8, false); copy(f, d, XMM_SRC, 2); }
      else { const lo = f.u32[i.rm * 4 + 2], hi = f.u32[i.rm * 4 + 3]; f.u32[d * 4] = lo; f.u32[d * 4 + 1] = hi; }
      return i.nextAddr;
    case S.MOVHPS: case S.MOVHPD: // MOVLHPS for the register form
      if (i.isMem) readMem(c, i, f, 8, false); else copy(f, XMM_SRC, i.rm, 2);
      f.u32[d * 4 + 2] = f.u32[XMM_SRC * 4];
      f.u32[d * 4 + 3] = f.u32[XMM_SRC * 4 + 1];
      return i.nextAddr;
    case S.MOVLPS_ST:
      writeMem(c, i, f, d, 8, false);
      return i.nextAddr;
    case S.MOVHPS_ST:
      f.u32[T * 4] = f.u32[d * 4 + 2];
      f.u32[T * 4 + 1] = f.u32[d * 4 + 3];
      writeMem(c, i, f, T, 8, false);
      return i.nextAddr;
    case S.MOVD_TO_X: {
      const q = i.size === 8;
      let lo: number, hi = 0;
      if (i.isMem) { ea(c, i); lo = q ? c.rd64(c.eaLo, c.eaHi) : c.rd32(c.eaLo, c.eaHi); if (q) hi = c.t; }
      else { lo = c.rl[i.rm]; if (q) hi = c.rh[i.rm]; }
      f.u32[d * 4] = lo; f.u32[d * 4 + 1] = hi;
      zero(f, d, 2);
      return i.nextAddr;
    }
    case S.MOVD_FROM_X: {
      const q = i.size === 8;
      const lo = f.u32[d * 4], hi = f.u32[d * 4 + 1];
      if (i.isMem) { ea(c, i); if (q) c.wr64(c.eaLo, c.eaHi, lo, hi); else c.wr32(c.eaLo, c.eaHi, lo); }
      else c.setR(q ? 8 : 4, i.rm, lo, hi);
      return i.nextAddr;
    }
    case S.MOVQ_X_XM: {
      const r = src(c, i, f, 8);
      copy(f, d, r, 2);
      zero(f, d, 2);
      return i.nextAddr;
    }
    case S.MOVQ_XM_X:
      if (i.isMem) writeMem(c, i, f, d, 8, false);
      else { copy(f, i.rm, d, 2); zero(f, i.rm, 2); }
      return i.nextAddr;
    case S.MOVNTI: {
      ea(c, i);
      if (i.size === 8) c.wr64(c.eaLo, c.eaHi, c.rl[d], c.rh[d]); else c.wr32(c.eaLo, c.eaHi, c.rl[d]);
      return i.nextAddr;
    }
    case S.MOVMSKPS: case S.MOVMSKPD: case S.PMOVMSKB: {
      const r = i.rm;
      let m = 0;
      if (s === S.MOVMSKPS) for (let k = 0; k < 4; k++) m |= (f.u32[r * 4 + k] >>> 31) << k;
      else if (s === S.MOVMSKPD) m = (f.u32[r * 4 + 1] >>> 31) | ((f.u32[r * 4 + 3] >>> 31) << 1);
      else for (let k = 0; k < 16; k++) m |= (f.u8[r * 16 + k] >>> 7) << k;
      c.setR(4, d, m, 0);
      return i.nextAddr;
    }
    // ---- shuffles ----
    case S.PSHUFD: {
      const r = src(c, i, f, 16), imm = i.immLo;
      for (let k = 0; k < 4; k++) f.u32[T * 4 + k] = f.u32[r * 4 + ((imm >> (2 * k)) & 3)];
      copy(f, d, T, 4);
      return i.nextAddr;
    }
    case S.PSHUFLW: case S.PSHUFHW: {
      const r = src(c, i, f, 16), imm = i.immLo, h = s === S.PSHUFHW ? 4 : 0;
      copy(f, T, r, 4);
      for (let k = 0; k < 4; k++) f.u16[T * 8 + h + k] = f.u16[r * 8 + h + ((imm >> (2 * k)) & 3)];
      copy(f, d, T, 4);
      return i.nextAddr;
    }
    case S.SHUFPS: {
      const r = src(c, i, f, 16), imm = i.immLo;
      f.u32[T * 4] = f.u32[d * 4 + (imm & 3)];
      f.u32[T * 4 + 1] = f.u32[d * 4 + ((imm >> 2) & 3)];
      f.u32[T * 4 + 2] = f.u32[r * 4 + ((imm >> 4) & 3)];
      f.u32[T * 4 + 3] = f.u32[r * 4 + ((imm >> 6) & 3)];
      copy(f, d, T, 4);
      return i.nextAddr;
    }
    case S.SHUFPD: {
      const r = src(c, i, f, 16), imm = i.immLo;
      f.u32[T * 4] = f.u32[d * 4 + (imm & 1) * 2];
      f.u32[T * 4 + 1] = f.u32[d * 4 + (imm & 1) * 2 + 1];
      f.u32[T * 4 + 2] = f.u32[r * 4 + ((imm >> 1) & 1) * 2];
      f.u32[T * 4 + 3] = f.u32[r * 4 + ((imm >> 1) & 1) * 2 + 1];
      copy(f, d, T, 4);
      return i.nextAddr;
    }
    case S.PINSRW: {
      const v = i.isMem ? (ea(c, i, 2), c.rd16(c.eaLo, c.eaHi)) : c.rl[i.rm] & 0xffff;
      f.u16[d * 8 + (i.immLo & 7)] = v;
      return i.nextAddr;
    }
    case S.PEXTRW:
      c.setR(4, d, f.u16[i.rm * 8 + (i.immLo & 7)], 0);
      return i.nextAddr;
    // ---- shifts ----
    case S.PSRLW: case S.PSRLD: case S.PSRLQ: case S.PSRAW: case S.PSRAD: case S.PSLLW: case S.PSLLD: case S.PSLLQ: {
      const r = src(c, i, f, 16);
      const k = s - S.PSRLW;
      packedShift(f, d, T, SHIFT_KIND[k], SHIFT_WIDTH[k], f.u32[r * 4], f.u32[r * 4 + 1]);
      copy(f, d, T, 4);
      return i.nextAddr;
    }
    case S.PSRLW_I: case S.PSRLD_I: case S.PSRLQ_I: case S.PSRAW_I: case S.PSRAD_I: case S.PSLLW_I: case S.PSLLD_I: case S.PSLLQ_I: {
      const k = s - S.PSRLW_I;
      packedShift(f, i.rm, T, SHIFT_KIND[k], SHIFT_WIDTH[k], i.immLo & 0xff, 0);
      copy(f, i.rm, T, 4);
      return i.nextAddr;
    }
    case S.PSRLDQ_I: case S.PSLLDQ_I:
      byteShift(f, i.rm, T, s === S.PSLLDQ_I, i.immLo & 0xff);
      copy(f, i.rm, T, 4);
      return i.nextAddr;
    // ---- float ----
    case S.SQRTPS: case S.SQRTPD: case S.SQRTSS: case S.SQRTSD: {
      const shape = s - S.SQRTPS;
      const r = src(c, i, f, SHAPE_BYTES[shape]);
      copy(f, T, d, 4);
      if (shape === 0) for (let k = 0; k < 4; k++) sqrt32(f, T * 4 + k, r * 4 + k);
      else if (shape === 1) for (let k = 0; k < 2; k++) sqrt64(f, T * 2 + k, r * 2 + k);
      else if (shape === 2) sqrt32(f, T * 4, r * 4);
      else sqrt64(f, T * 2, r * 2);
      commitExc(c, f);
      copy(f, d, T, 4);
      return i.nextAddr;
    }
    case S.CMPPS: case S.CMPPD: case S.CMPSS: case S.CMPSD: {
      const shape = s - S.CMPPS, p = i.immLo & 7;
      const r = src(c, i, f, SHAPE_BYTES[shape]);
      copy(f, T, d, 4);
      if (shape === 0 || shape === 2) {
        for (let k = 0; k < (shape === 0 ? 4 : 1); k++) {
          const t = cmpPredicate(p, operand32(f, d * 4 + k), operand32(f, r * 4 + k), anySNaN32(f, d * 4 + k, r * 4 + k));
          denormal32(f, d * 4 + k, r * 4 + k);
          f.u32[T * 4 + k] = t ? 0xffffffff : 0;
        }
      } else {
        for (let k = 0; k < (shape === 1 ? 2 : 1); k++) {
          const t = cmpPredicate(p, operand64(f, d * 2 + k), operand64(f, r * 2 + k), anySNaN64(f, d * 2 + k, r * 2 + k));
          denormal64(f, d * 2 + k, r * 2 + k);
          f.u32[T * 4 + 2 * k] = f.u32[T * 4 + 2 * k + 1] = t ? 0xffffffff : 0;
        }
      }
      commitExc(c, f);
      copy(f, d, T, 4);
      return i.nextAddr;
    }
    case S.UCOMISS: case S.UCOMISD: case S.COMISS: case S.COMISD: {
      const dbl = s === S.UCOMISD || s === S.COMISD;
      const r = src(c, i, f, dbl ? 8 : 4);
      const x = dbl ? operand64(f, d * 2) : operand32(f, d * 4), y = dbl ? operand64(f, r * 2) : operand32(f, r * 4);
      const snan = dbl ? anySNaN64(f, d * 2, r * 2) : anySNaN32(f, d * 4, r * 4);
      if (dbl) denormal64(f, d * 2, r * 2); else denormal32(f, d * 4, r * 4);
      let bits: number;
      if (x !== x || y !== y) {
        bits = ZF | PF | CF;
        if (snan || s === S.COMISS || s === S.COMISD) fpr.exc |= IE;
      } else bits = x > y ? 0 : x < y ? CF : ZF;
      commitExc(c, f);
      c.setArith(bits);
      return i.nextAddr;
    }
    case S.RCPPS: case S.RCPSS: case S.RSQRTPS: case S.RSQRTSS: {
      const scalar = s === S.RCPSS || s === S.RSQRTSS;
      const r = src(c, i, f, scalar ? 4 : 16);
      copy(f, T, d, 4);
      for (let k = 0; k < (scalar ? 1 : 4); k++) approx32(f, T * 4 + k, r * 4 + k, s === S.RSQRTPS || s === S.RSQRTSS);
      copy(f, d, T, 4);
      return i.nextAddr;
    }
    // ---- conversions ----
    case S.CVTSI2SS: case S.CVTSI2SD: {
      const q = i.size === 8;
      let lo: number, hi: number;
      if (i.isMem) { ea(c, i); lo = q ? c.rd64(c.eaLo, c.eaHi) : c.rd32(c.eaLo, c.eaHi); hi = q ? c.t : (lo >> 31) >>> 0; }
      else { lo = c.rl[i.rm]; hi = q ? c.rh[i.rm] : (lo >> 31) >>> 0; }
      const v = int64ToFloat(lo, hi, s === S.CVTSI2SS ? 24 : 53, (f.mxcsr >>> 13) & 3);
      commitExc(c, f);
      if (s === S.CVTSI2SS) f.f32[d * 4] = v; else f.f64[d * 2] = v;
      return i.nextAddr;
    }
    case S.CVTTSS2SI: case S.CVTTSD2SI: case S.CVTSS2SI: case S.CVTSD2SI: {
      const dbl = s === S.CVTTSD2SI || s === S.CVTSD2SI;
      const r = src(c, i, f, dbl ? 8 : 4);
      toInt(dbl ? operand64(f, r * 2) : operand32(f, r * 4), i.size === 8 ? 64 : 32, s === S.CVTTSS2SI || s === S.CVTTSD2SI, (f.mxcsr >>> 13) & 3);
      commitExc(c, f);
      c.setR(i.size === 8 ? 8 : 4, d, fpr.lo, fpr.hi);
      return i.nextAddr;
    }
    case S.CVTSS2SD: case S.CVTSD2SS: {
      const r = src(c, i, f, s === S.CVTSS2SD ? 4 : 8);
      copy(f, T, d, 4);
      if (s === S.CVTSS2SD) f32to64(f, T * 2, r * 4); else f64to32(f, T * 4, r * 2);
      commitExc(c, f);
      copy(f, d, T, 4);
      return i.nextAddr;
    }
    case S.CVTPS2PD: {
      const r = src(c, i, f, 8);
      for (let k = 0; k < 2; k++) f32to64(f, T * 2 + k, r * 4 + k);
      commitExc(c, f);
      copy(f, d, T, 4);
      return i.nextAddr;
    }
    case S.CVTPD2PS: {
      const r = src(c, i, f, 16);
      for (let k = 0; k < 2; k++) f64to32(f, T * 4 + k, r * 2 + k);
      zero(f, T, 2);
      commitExc(c, f);
      copy(f, d, T, 4);
      return i.nextAddr;
    }
    case S.CVTDQ2PS: {
      const r = src(c, i, f, 16);
      const rc = (f.mxcsr >>> 13) & 3;
      for (let k = 0; k < 4; k++) { const v = f.u32[r * 4 + k]; f.f32[T * 4 + k] = int64ToFloat(v, (v >> 31) >>> 0, 24, rc); }
      commitExc(c, f);
      copy(f, d, T, 4);
      return i.nextAddr;
    }
    case S.CVTDQ2PD: {
      const r = src(c, i, f, 8);
      for (let k = 0; k < 2; k++) f.f64[T * 2 + k] = f.i32[r * 4 + k];
      copy(f, d, T, 4);
      return i.nextAddr;
    }
    case S.CVTPS2DQ: case S.CVTTPS2DQ: case S.CVTPD2DQ: case S.CVTTPD2DQ: {
      const dbl = s === S.CVTPD2DQ || s === S.CVTTPD2DQ;
      const trunc = s === S.CVTTPS2DQ || s === S.CVTTPD2DQ;
      const r = src(c, i, f, 16);
      const rc = (f.mxcsr >>> 13) & 3;
      for (let k = 0; k < (dbl ? 2 : 4); k++) {
        toInt(dbl ? operand64(f, r * 2 + k) : operand32(f, r * 4 + k), 32, trunc, rc);
        f.u32[T * 4 + k] = fpr.lo;
      }
      if (dbl) zero(f, T, 2);
      commitExc(c, f);
      copy(f, d, T, 4);
      return i.nextAddr;
    }
    default: {
      // lane-wise binary integer/logic/unpack ops: all take xmm/m128 (aligned)
      const r = src(c, i, f, 16);
      if (!packedBinary(f, s, d, r, T)) return c.ud();
      copy(f, d, T, 4);
      return i.nextAddr;
    }
  }
}

/** By S.PSRLW.. order: logical right, arithmetic right, left; lane width. */
const SHIFT_KIND = [0, 0, 0, 1, 1, 2, 2, 2];
const SHIFT_WIDTH = [16, 32, 64, 16, 32, 16, 32, 64];
