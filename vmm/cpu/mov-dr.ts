/**
 * MOV to/from DR0-DR7 on the PHYSICAL debug registers (SDM Vol. 2 "MOV - Move to/from Debug
 * Registers", Vol. 3 17.2). Order of checks:
 *  1. MOV-DR intercept (VT-x "MOV-DR exiting"): a 'mov-dr' exit before anything else
 *     (SDM 25.1.1: MOV-DR exits take priority over #GP and #UD).
 *  2. #UD: REX.R (DR8-15 do not exist); DR4/DR5 referenced while CR4.DE=1.
 *  3. #DB fault, DR6.BD: DR7.GD=1 (general detect; not suppressed by MOV-SS blocking).
 *  4. #GP(0): a write of 1s to bits 63:32 of DR6 or DR7.
 * CPL is always 0 here, so the CPL #GP cannot happen. With CR4.DE=0, DR4/DR5 alias DR6/DR7.
 * Written values: DR6 = FFFF0FF0H | (value & E00FH) (B0-3, BD, BS, BT; the reserved bits read
 * as 1, bit 12 as 0); DR7 = (value & FFFF2FFFH) | 400H (bits 12, 14, 15 read 0, bit 10 reads 1).
 */
import { CpuCore } from './core';
import { Insn, Op } from './insn';
import { CR4_DE } from '../x86/control-regs';
import { DR6_BD, DR7_GD, normalizeDr6Write, normalizeDr7 } from '../x86/debug-regs';

export function movDr(c: CpuCore, i: Insn): void {
  const toDr = i.op === Op.MOV_DR_R;
  if (c.intercepts.movDr) c.exitInsn({ kind: 'mov-dr', length: i.len, dr: i.reg & 7, gpr: i.rm, toDr });
  if (i.reg > 7) c.ud();
  let dr = i.reg;
  const de = (c.cr4 & CR4_DE) !== 0;
  if ((dr === 4 || dr === 5) && de) c.ud();
  const phys = c.phys;
  if (phys.drLo[7] & DR7_GD) {
    c.faultDr6 = DR6_BD;
    c.exception(1);
  }
  if (dr === 4) dr = 6;
  else if (dr === 5) dr = 7;
  if (toDr) {
    const lo = c.rl[i.rm], hi = c.rh[i.rm];
    if (dr >= 6 && hi !== 0) c.gp0();
    if (dr === 6) phys.setDr(6, { lo: normalizeDr6Write(lo), hi: 0 });
    else if (dr === 7) phys.setDr(7, { lo: normalizeDr7(lo), hi: 0 });
    else phys.setDr(dr, { lo, hi });
    c.refreshBreakpoints();
  } else {
    c.rl[i.rm] = phys.drLo[dr];
    c.rh[i.rm] = phys.drHi[dr];
  }
}
