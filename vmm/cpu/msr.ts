/**
 * The MSRs this CPU implements, for the hypervisor's RDMSR/WRMSR emulation (they are
 * instruction-intercept exits): EFER, FS_BASE, GS_BASE, KERNEL_GS_BASE, STAR, LSTAR, CSTAR,
 * FMASK, TSC, TSC_AUX and IA32_DEBUGCTL (on the physical CPU). Unknown MSRs and bad values give #GP(0).
 * EFER.LMA is read-only (CR0.PG sets it); EFER.LME cannot change while CR0.PG = 1.
 */
import { U64, u64, u64FromNumber, u64ToNumber } from '../u64';
import { CpuCore } from './core';
import { CR0_PG } from '../x86/control-regs';

import {
  DEBUGCTL_WRITABLE, EFER_LMA, EFER_LME, EFER_NXE, EFER_SCE, MSR_DEBUGCTL, MSR_EFER, MSR_FS_BASE, MSR_GS_BASE,
  MSR_KERNEL_GS_BASE, MSR_TSC, MSR_STAR, MSR_LSTAR, MSR_CSTAR, MSR_FMASK, MSR_TSC_AUX,
} from '../x86/msr';

/** EFER bits a WRMSR changes; LMA is accepted in the value but read-only (set by the CPU). */
const EFER_WRITABLE = EFER_SCE | EFER_LME | EFER_NXE;

function canonical(v: U64): boolean {
  const top = v.hi >>> 15;
  return top === 0 || top === 0x1ffff;
}

export function readMsr(c: CpuCore, index: number): U64 | undefined {
  switch (index >>> 0) {
    case MSR_TSC: return u64FromNumber(c.instret + c.tscOffset);
    case MSR_DEBUGCTL: return u64(c.phys.debugctlLo, c.phys.debugctlHi);
    case MSR_EFER: return u64(c.efer);
    case MSR_FS_BASE: return u64(c.fsBaseLo, c.fsBaseHi);
    case MSR_GS_BASE: return u64(c.gsBaseLo, c.gsBaseHi);
    case MSR_KERNEL_GS_BASE: return u64(c.kgsBaseLo, c.kgsBaseHi);
    case MSR_STAR: return u64(c.starLo, c.starHi);
    case MSR_LSTAR: return u64(c.lstarLo, c.lstarHi);
    case MSR_CSTAR: return u64(c.cstarLo, c.cstarHi);
    case MSR_FMASK: return u64(c.fmask);
    case MSR_TSC_AUX: return u64(c.tscAux);
    default: return undefined;
  }
}

export function writeMsr(c: CpuCore, index: number, v: U64): boolean {
  const lo = v.lo >>> 0, hi = v.hi >>> 0;
  switch (index >>> 0) {
    case MSR_TSC: c.tscOffset = u64ToNumber(v) - c.instret; return true;
    case MSR_DEBUGCTL:
      if (hi !== 0 || (lo & ~DEBUGCTL_WRITABLE) !== 0) return false;
      c.phys.setDebugctl({ lo, hi: 0 });
      c.refreshBreakpoints();
      return true;
    case MSR_EFER:
      if (hi !== 0 || (lo & ~(EFER_WRITABLE | EFER_LMA)) !== 0) return false;
      if ((c.cr0 & CR0_PG) && ((lo ^ c.efer) & EFER_LME)) return false;
      c.efer = ((lo & EFER_WRITABLE) | (c.efer & EFER_LMA)) >>> 0;
      c.pagingChanged(); // NXE
      return true;
    case MSR_STAR: c.starLo = lo; c.starHi = hi; return true;
    case MSR_LSTAR: if (!canonical(v)) return false; c.lstarLo = lo; c.lstarHi = hi; return true;
    case MSR_CSTAR: if (!canonical(v)) return false; c.cstarLo = lo; c.cstarHi = hi; return true;
    case MSR_FMASK: c.fmask = lo; return true;
    case MSR_TSC_AUX: if (hi !== 0) return false; c.tscAux = lo; return true;
    case MSR_FS_BASE: if (!canonical(v)) return false; c.fsBaseLo = lo; c.fsBaseHi = hi; return true;
    case MSR_GS_BASE: if (!canonical(v)) return false; c.gsBaseLo = lo; c.gsBaseHi = hi; return true;
    case MSR_KERNEL_GS_BASE: if (!canonical(v)) return false; c.kgsBaseLo = lo; c.kgsBaseHi = hi; return true;
    default: return false;
  }
}

/**
 * The TSC runs on by `ticks` (the hypervisor's time handling an exit): the same as
 * writeMsr(TSC, readMsr(TSC) + ticks), without building the two 64-bit records while the
 * values are whole numbers in 0..2^53 (where splitting into halves and joining is exact).
 */
export function advanceTsc(c: CpuCore, ticks: number): void {
  const now = c.instret + c.tscOffset;
  const t = now + ticks;
  if (now >= 0 && t >= 0 && t <= Number.MAX_SAFE_INTEGER && Number.isInteger(now) && Number.isInteger(t)) {
    c.tscOffset = t - c.instret;
    return;
  }
  writeMsr(c, MSR_TSC, u64FromNumber(u64ToNumber(u64FromNumber(now)) + ticks));
}
