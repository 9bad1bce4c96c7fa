/**
 * SYSCALL and SYSRET (SDM Vol. 2; AMD APM Vol. 2 6.1.1): the fast system-call pair of
 * 64-bit mode, driven by EFER.SCE and the STAR, LSTAR and FMASK MSRs. CS and SS are loaded
 * with fixed flat descriptors (the GDT is not read), as the hardware does. The single-step
 * trap follows TF at the end of either instruction (FMASK may clear it, SYSRET may set it).
 * SYSCALL from compatibility mode goes to CSTAR, as on AMD; on Intel parts it is #UD and KVM
 * emulates it the AMD way, which kvm-unit-tests' syscall test expects of a hypervisor.
 */
import { CpuCore } from './core';
import { Insn } from './insn';
import { CS, SS, in64BitMode, setCpl, updateCodeMode } from './segments';
import { EFER_SCE, EFER_LMA } from '../x86/msr';
import { RF } from '../x86/rflags';

// VMX access rights of the fixed descriptors: present, S, accessed; code execute/read.
const KERNEL_CODE = 0xa09b; // L=1, DPL 0
const KERNEL_DATA = 0xc093;
const USER_CODE64 = 0xa0fb; // L=1, DPL 3
const USER_CODE32 = 0xc0fb; // D=1, DPL 3 (compatibility mode)
const USER_DATA = 0xc0f3;

function flat(c: CpuCore, r: number, sel: number, attr: number): void {
  if (r === 1 && (c.segBase[r] !== 0 || c.segLimit[r] !== 0xffffffff)) c.xlatEpoch++; // CS: decoded-block links re-checked
  c.sreg[r] = sel;
  c.segAttr[r] = attr;
  c.segBase[r] = 0;
  c.segLimit[r] = 0xffffffff;
}

/**
 * SYSCALL in 64-bit mode (to LSTAR) and, as AMD processors do, in compatibility mode (to
 * CSTAR; Intel's SDM makes that #UD). Compatibility-mode SYSCALL is what 32-bit code under a
 * 64-bit kernel uses, and kvm-unit-tests' syscall.flat expects it on both backends.
 */
export function syscall(c: CpuCore, i: Insn): number {
  if (!(c.efer & EFER_SCE) || !(c.efer & EFER_LMA)) c.ud();
  const compat = !in64BitMode(c);
  const next = i.nextAddr;
  c.rl[1] = next >>> 0; c.rh[1] = Math.floor(next / 4294967296) >>> 0;
  const fl = c.getFlags() & ~RF;
  c.rl[11] = fl; c.rh[11] = 0;
  c.putFlags(fl & ~c.fmask & ~RF);
  const sel = c.starHi & 0xffff;
  flat(c, CS, sel & 0xfffc, KERNEL_CODE);
  flat(c, SS, (sel + 8) & 0xfffc, KERNEL_DATA);
  setCpl(c, 0);
  updateCodeMode(c);
  c.branchTaken = true;
  c.stepOnFinalTf = true;
  c.attention = 1;
  const tLo = compat ? c.cstarLo : c.lstarLo, tHi = compat ? c.cstarHi : c.lstarHi;
  return tHi === 0 ? tLo : (tHi | 0) * 4294967296 + tLo;
}

export function sysret(c: CpuCore, i: Insn): number {
  if (!(c.efer & EFER_SCE) || !in64BitMode(c)) c.ud();
  if (c.cpl !== 0) c.gp0();
  const to64 = i.size === 8;
  const lo = c.rl[1], hi = to64 ? c.rh[1] : 0;
  const top = hi >>> 15;
  if (top !== 0 && top !== 0x1ffff) c.gp0();
  const base = c.starHi >>> 16;
  if (to64) flat(c, CS, ((base + 16) & 0xfffc) | 3, USER_CODE64);
  else flat(c, CS, (base & 0xfffc) | 3, USER_CODE32);
  flat(c, SS, ((base + 8) & 0xfffc) | 3, USER_DATA);
  c.putFlags((c.rl[11] & 0x3c7fd7) | 2);
  setCpl(c, 3);
  updateCodeMode(c);
  c.branchTaken = true;
  c.stepOnFinalTf = true;
  c.attention = 1;
  return hi === 0 ? lo : (hi | 0) * 4294967296 + lo;
}
