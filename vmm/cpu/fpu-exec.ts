/**
 * FPU-state instructions: the x87 control/status ones (FNINIT, FNCLEX, FLDCW, FNSTCW,
 * FNSTSW, FWAIT), LDMXCSR/STMXCSR, FXSAVE/FXRSTOR (the 64-bit layout, REX.W choosing the
 * 64-bit FIP/FDP form) and XSAVE/XRSTOR/XGETBV/XSETBV for the x87 and SSE components
 * (XCR0 bits 0-1; the standard, non-compacted XSAVE format). Fault rules per the SDM:
 * x87 and FXSAVE/FXRSTOR #NM on CR0.EM or CR0.TS; FWAIT #NM on CR0.TS with CR0.MP;
 * LDMXCSR/STMXCSR as SSE (#UD on CR0.EM or !CR4.OSFXSR, #NM on CR0.TS); the XSAVE family
 * #UD without CR4.OSXSAVE and #NM on CR0.TS (XGETBV/XSETBV ignore TS). XSETBV runs in the
 * guest without a VM exit (VT-x would always exit and the hypervisor apply the same checks).
 */
import { CpuCore } from './core';
import { Insn } from './insn';
import { S } from './sse-decode';
import { FpuState, MXCSR_MASK, XCR0_SUPPORTED } from './fpu-state';
import {
  FXSAVE_BYTES, XSAVE_AREA_BYTES, image, imageView, initX87, loadSse, loadX87, saveSse, saveX87,
} from './fpu-image';
import { CR0_EM, CR0_MP, CR0_NE, CR0_TS, CR4_OSFXSR, CR4_OSXSAVE } from '../x86/control-regs';

const XSTATE_BV = 512;

export function execFpuState(c: CpuCore, i: Insn, s: S): number {
  const f = c.fpu;
  const cr0 = c.cr0;
  switch (s) {
    case S.FWAIT:
      if ((cr0 & (CR0_TS | CR0_MP)) === (CR0_TS | CR0_MP)) c.exception(7);
      if ((f.fsw & 0x80) !== 0 && (cr0 & CR0_NE) !== 0) c.exception(16); // pending unmasked x87 exception
      return i.nextAddr;
    case S.FNINIT: case S.FNCLEX: case S.FLDCW: case S.FNSTCW: case S.FNSTSW: case S.FNSTSW_AX:
      if ((cr0 & (CR0_EM | CR0_TS)) !== 0) c.exception(7);
      return x87(c, i, s, f);
    case S.LDMXCSR: case S.STMXCSR:
      if ((cr0 & CR0_EM) !== 0 || (c.cr4 & CR4_OSFXSR) === 0) c.ud();
      if ((cr0 & CR0_TS) !== 0) c.exception(7);
      ea(c, i, 4);
      if (s === S.STMXCSR) c.wr32(c.eaLo, c.eaHi, f.mxcsr);
      else {
        const v = c.rd32(c.eaLo, c.eaHi);
        if ((v & ~MXCSR_MASK) !== 0) c.gp0();
        f.mxcsr = v;
      }
      return i.nextAddr;
    case S.FXSAVE: case S.FXRSTOR:
      if ((cr0 & (CR0_EM | CR0_TS)) !== 0) c.exception(7);
      ea(c, i, FXSAVE_BYTES);
      if ((c.eaLo & 15) !== 0) c.gp0();
      if (s === S.FXSAVE) {
        image.fill(0);
        saveX87(f, i.size === 8);
        saveSse(f);
        writeImage(c, FXSAVE_BYTES);
      } else {
        readImage(c, FXSAVE_BYTES);
        const mx = imageView.getUint32(24, true);
        if ((mx & ~MXCSR_MASK) !== 0) c.gp0();
        loadX87(f, i.size === 8);
        loadSse(f);
        f.mxcsr = mx;
      }
      return i.nextAddr;
    case S.XSAVE: case S.XRSTOR:
      if ((c.cr4 & CR4_OSXSAVE) === 0) c.ud();
      if ((cr0 & CR0_TS) !== 0) c.exception(7);
      ea(c, i, XSAVE_AREA_BYTES);
      if ((c.eaLo & 63) !== 0) c.gp0();
      return s === S.XSAVE ? xsave(c, i, f) : xrstor(c, i, f);
    case S.XGETBV:
      if ((c.cr4 & CR4_OSXSAVE) === 0) c.ud();
      if (c.rl[1] !== 0) c.gp0(); // only XCR0 (ECX = 1 needs CPUID.(0DH,1):EAX[2])
      c.setR(8, 0, f.xcr0, 0);
      c.setR(8, 2, 0, 0);
      return i.nextAddr;
    case S.XSETBV: {
      if ((c.cr4 & CR4_OSXSAVE) === 0) c.ud();
      if (c.cpl !== 0 || c.rl[1] !== 0) c.gp0();
      const v = c.rl[0];
      // x87 must stay enabled; no unsupported bits (EDX holds bits 63:32: none supported).
      if (c.rl[2] !== 0 || (v & ~XCR0_SUPPORTED) !== 0 || (v & 1) === 0) c.gp0();
      f.xcr0 = v;
      return i.nextAddr;
    }
    default:
      return c.ud();
  }
}

function ea(c: CpuCore, i: Insn, size: number): void {
  c.calcEA(i.base, i.index, i.scale, i.dispLo, i.dispHi, i.asize, i.seg, size);
}

function x87(c: CpuCore, i: Insn, s: S, f: FpuState): number {
  switch (s) {
    case S.FNINIT: f.fninit(); break;
    case S.FNCLEX: f.fsw &= 0x7f00; break; // exception flags, SF, ES and B
    case S.FNSTSW_AX: c.setR(2, 0, f.fsw, 0); break;
    case S.FNSTCW: ea(c, i, 2); c.wr16(c.eaLo, c.eaHi, f.fcw); break;
    case S.FNSTSW: ea(c, i, 2); c.wr16(c.eaLo, c.eaHi, f.fsw); break;
    default: ea(c, i, 2); f.fcw = (c.rd16(c.eaLo, c.eaHi) & 0x1f3f) | 0x40; break; // FLDCW: bit 6 reads as 1
  }
  return i.nextAddr;
}

/** Writes image[0..n) to the memory operand (c.ea*), whole range checked first. */
function writeImage(c: CpuCore, n: number): void {
  c.probeWrite(c.eaLo, c.eaHi, n);
  const baseLo = c.eaLo, baseHi = c.eaHi;
  for (let o = 0; o < n; o += 8) {
    const a = baseLo + o;
    c.wr64(a >>> 0, a > 0xffffffff ? (baseHi + 1) >>> 0 : baseHi, imageView.getUint32(o, true), imageView.getUint32(o + 4, true));
  }
}
function readImage(c: CpuCore, n: number): void {
  const baseLo = c.eaLo, baseHi = c.eaHi;
  for (let o = 0; o < n; o += 8) {
    const a = baseLo + o;
    const lo = c.rd64(a >>> 0, a > 0xffffffff ? (baseHi + 1) >>> 0 : baseHi);
    imageView.setUint32(o, lo, true);
    imageView.setUint32(o + 4, c.t, true);
  }
}

// ---- XSAVE / XRSTOR (standard form) ----

function xsave(c: CpuCore, i: Insn, f: FpuState): number {
  const rfbm = f.xcr0 & c.rl[0];
  c.probeWrite(c.eaLo, c.eaHi, XSAVE_AREA_BYTES);
  const baseLo = c.eaLo, baseHi = c.eaHi;
  const at = (o: number): number => {
    const a = baseLo + o;
    c.t = a > 0xffffffff ? (baseHi + 1) >>> 0 : baseHi;
    return a >>> 0;
  };
  // Only the requested components are written; the others keep their bytes.
  if (rfbm & 1) saveX87(f, i.size === 8);
  if (rfbm & 2) saveSse(f);
  for (let o = 0; o < 416; o += 8) {
    const x87 = o < 24 || (o >= 32 && o < 160);
    if ((x87 && (rfbm & 1) === 0) || (!x87 && (rfbm & 2) === 0)) continue;
    const a = at(o);
    c.wr64(a, c.t, imageView.getUint32(o, true), imageView.getUint32(o + 4, true));
  }
  // XSTATE_BV[i] = XINUSE[i] for the requested components; this CPU reports them in use.
  let a = at(XSTATE_BV);
  const bv = c.rd64(a, c.t), bvHi = c.t;
  a = at(XSTATE_BV);
  c.wr64(a, c.t, ((bv & ~rfbm) | rfbm) >>> 0, bvHi);
  return i.nextAddr;
}

function xrstor(c: CpuCore, i: Insn, f: FpuState): number {
  const rfbm = f.xcr0 & c.rl[0];
  readImage(c, XSAVE_AREA_BYTES);
  const v = imageView;
  const bvLo = v.getUint32(XSTATE_BV, true), bvHi = v.getUint32(XSTATE_BV + 4, true);
  // XCOMP_BV and the next 8 header bytes must be 0 (no compacted form on this CPU).
  for (let o = XSTATE_BV + 8; o < XSTATE_BV + 24; o += 4) if (v.getUint32(o, true) !== 0) c.gp0();
  if (bvHi !== 0 || (bvLo & ~f.xcr0) !== 0) c.gp0();
  const mx = v.getUint32(24, true);
  if ((rfbm & 2) !== 0 && (mx & ~MXCSR_MASK) !== 0) c.gp0();
  if (rfbm & 1) {
    if (bvLo & 1) loadX87(f, i.size === 8); else initX87(f);
  }
  if (rfbm & 2) {
    if (bvLo & 2) loadSse(f); else f.u8.fill(0, 0, 256);
    f.mxcsr = mx; // the standard form loads MXCSR whenever RFBM[1] is set
  }
  return i.nextAddr;
}
