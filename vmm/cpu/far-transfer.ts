/**
 * Far control transfers in protected and long mode (SDM Vol. 2 JMP, CALL, RET, IRET): far
 * JMP/CALL through a code-segment descriptor (m16:16/32/64), far RET (`lret`, `lretq`) to the
 * same or an outer privilege level, and IRET/IRETQ with privilege change and to
 * compatibility mode. Every check is made before any register changes, so a fault leaves
 * the state as it was.
 *
 * Call gates, task gates and TSS descriptors as far-transfer targets are #GP(selector), and
 * IRET with NT=1 (a return from a nested task) is #GP(0): hardware task switching (saving and
 * loading the whole register state through TSSs) is not modelled, since no 32-bit or 64-bit
 * kernel this project targets uses it (IA-32e mode has none at all).
 */
import { CpuCore } from './core';
import { Insn } from './insn';
import { ea, jumpTo } from './operands';
import {
  CS, SS, desc, readDescriptor, arOf, dplOf, selFault, checkReturnCs, checkReturnSs, loadCache, loadNull, loadCs,
  nullInaccessibleSegments, inLongMode, in64BitMode, limitOf, AR_S, AR_P, AR_L, AR_DB, TYPE_CODE, TYPE_CONFORMING,
} from './segments';
import { IRET_MASK } from './flags';
import { IF, IOPL, NT, VM, VIF, VIP, RF } from '../x86/rflags';

/**
 * RSP + off as a linear address. Outside 64-bit mode: ESP + off wraps at 32 bits, is checked
 * against SS (#SS(0), for `size` bytes) and gets the SS base.
 */
function spAddr(c: CpuCore, off: number, size: number): [number, number] {
  const lo = c.rl[4] + off;
  if (!in64BitMode(c)) {
    const o = lo >>> 0;
    if (c.segLimit[SS] !== 0xffffffff || (c.segAttr[SS] & 4) !== 0) c.segmentCheck(SS, o, size);
    return [(o + c.segBase[SS]) >>> 0, 0];
  }
  return [lo >>> 0, (c.rh[4] + (lo > 0xffffffff ? 1 : 0)) >>> 0];
}

/** Reads `size` bytes at RSP+off: low half returned, high half (size 8) in c.t, else c.t = 0. */
function stackRead(c: CpuCore, off: number, size: number): number {
  const [lo, hi] = spAddr(c, off, size);
  const v = c.readMem(size, lo, hi);
  if (size !== 8) c.t = 0;
  return v;
}

function setRsp(c: CpuCore, lo: number, hi: number): void {
  if (in64BitMode(c)) { c.rl[4] = lo >>> 0; c.rh[4] = hi >>> 0; } else { c.rl[4] = lo >>> 0; }
}

/** RSP + delta after a pop. */
function addSp(c: CpuCore, delta: number): void {
  if (in64BitMode(c)) c.addRsp(delta);
  else c.rl[4] = (c.rl[4] + delta) >>> 0;
}

/** The target offset checks of a transfer into the code segment whose descriptor is in `desc`. */
function targetRip(c: CpuCore, lo: number, hi: number, to64: boolean, sel: number): number {
  if (to64) return jumpTo(c, lo, hi);
  c.branchTaken = true;
  const limit = limitOf(desc.w0, desc.w1);
  if (lo > limit) c.gp0();
  void sel;
  return lo >>> 0;
}

function isLongCode(c: CpuCore, ar: number): boolean {
  return inLongMode(c) && (ar & AR_L) !== 0;
}

/** The checks of a far JMP/CALL to a code segment; leaves its descriptor in `desc`. */
function checkFarTarget(c: CpuCore, sel: number): number {
  if ((sel & 0xfffc) === 0) c.gp0();
  if (!readDescriptor(c, sel)) selFault(c, 13, sel);
  const ar = arOf(desc.w1);
  // system descriptors (call gates, task gates, TSS): not modelled
  if (!(ar & AR_S) || !(ar & TYPE_CODE)) selFault(c, 13, sel);
  const dpl = dplOf(ar);
  if (ar & TYPE_CONFORMING) { if (dpl > c.cpl) selFault(c, 13, sel); }
  else if ((sel & 3) > c.cpl || dpl !== c.cpl) selFault(c, 13, sel);
  if ((ar & AR_L) && (ar & AR_DB) && inLongMode(c)) selFault(c, 13, sel);
  if (!(ar & AR_P)) selFault(c, 11, sel);
  return ar;
}

/** Far JMP/CALL m16:16/32/64 (FF /5, FF /3). */
export function farJmpCall(c: CpuCore, i: Insn, call: boolean): number {
  ea(c, i, i.size + 2);
  const size = i.size;
  const offLo = c.readMem(size, c.eaLo, c.eaHi);
  const offHi = size === 8 ? c.t : 0;
  const a = c.eaLo + size;
  const sel = c.rd16(a >>> 0, (c.eaHi + (a > 0xffffffff ? 1 : 0)) >>> 0);
  return farTransfer(c, i, call, sel, offLo, size === 2 ? 0 : offHi, size);
}

/** Far JMP/CALL ptr16:16/32 (EA, 9A; outside 64-bit mode). */
export function farJmpCallDirect(c: CpuCore, i: Insn, call: boolean): number {
  return farTransfer(c, i, call, i.imm2, i.immLo, 0, i.size);
}

function farTransfer(c: CpuCore, i: Insn, call: boolean, sel: number, offLo: number, offHi: number, size: number): number {
  const ar = checkFarTarget(c, sel);
  const to64 = isLongCode(c, ar);
  const w0 = desc.w0, w1 = desc.w1;
  if (size === 2) offLo &= 0xffff;
  const target = targetRip(c, offLo, offHi, to64, sel);
  if (call) {
    // push CS then the return RIP, each at the operand size; probe both slots first
    const [lo, hi] = spAddr(c, -2 * size, 2 * size);
    c.probeWrite(lo, hi, 2 * size);
    const ret = i.nextAddr;
    const [cl, ch] = spAddr(c, -size, size);
    c.writeMem(size, cl, ch, c.sreg[CS], 0);
    c.writeMem(size, lo, hi, ret >>> 0, Math.floor(ret / 4294967296) >>> 0);
    if (in64BitMode(c)) setRsp(c, lo, hi); else c.rl[4] = (c.rl[4] - 2 * size) >>> 0; // (lo is linear: SS base added)
  }
  desc.w0 = w0; desc.w1 = w1;
  loadCs(c, sel, c.cpl);
  return target;
}

/** Far RET (CB, CA iw; REX.W: lretq): to the same or an outer privilege level. */
export function farRet(c: CpuCore, i: Insn): number {
  const size = i.size;
  const ripLo = stackRead(c, 0, size), ripHi = c.t;
  const sel = stackRead(c, size, size) & 0xffff;
  const newCpl = checkReturnCs(c, sel);
  const csW0 = desc.w0, csW1 = desc.w1;
  const to64 = isLongCode(c, arOf(csW1));
  const target = targetRip(c, size === 2 ? ripLo & 0xffff : ripLo, ripHi, to64, sel);
  if (newCpl === c.cpl) {
    desc.w0 = csW0; desc.w1 = csW1;
    loadCs(c, sel, newCpl);
    addSp(c, 2 * size + i.imm2);
    return target;
  }
  // to an outer level: SS:RSP follow the immediate-sized parameter area
  const spLo = stackRead(c, 2 * size + i.imm2, size), spHi = c.t;
  const ssSel = stackRead(c, 3 * size + i.imm2, size) & 0xffff;
  const ssReal = checkReturnSs(c, ssSel, newCpl, to64);
  const ssW0 = desc.w0, ssW1 = desc.w1;
  desc.w0 = csW0; desc.w1 = csW1;
  loadCs(c, sel, newCpl);
  if (ssReal) { desc.w0 = ssW0; desc.w1 = ssW1; loadCache(c, SS, ssSel); } else loadNull(c, SS, ssSel);
  const n = spLo + i.imm2;
  if (in64BitMode(c)) { c.rl[4] = n >>> 0; c.rh[4] = (spHi + (n > 0xffffffff ? 1 : 0)) >>> 0; }
  else { c.rl[4] = n >>> 0; c.rh[4] = 0; }
  nullInaccessibleSegments(c);
  return target;
}

/**
 * IRET (16-bit operand size, 66 CF)/IRETD/IRETQ in protected mode and IA-32e mode. In 64-bit
 * mode SS:RSP are always popped; elsewhere only on a return to an outer level. A 16-bit IRET
 * pops 2-byte slots and loads FLAGS (bits 15:0) only. RFLAGS: IOPL changes only at CPL 0,
 * IF only when CPL <= IOPL; RF is loaded from the image. NT=1 (task return) is #GP(0) in
 * IA-32e mode and not modelled outside it.
 */
export function iret(c: CpuCore, i: Insn): number {
  const size = i.size;
  if (c.intercepts.iret) c.exitInsn({ kind: 'iret', length: i.len });
  if (c.rflags & NT) c.gp0();
  // IRET ends NMI blocking (even if it faults later, SDM 6.7.1); a held NMI then comes next
  if (c.nmiBlocked) { c.nmiBlocked = false; c.attention = 1; }
  const from64 = in64BitMode(c);
  const ripLo = stackRead(c, 0, size), ripHi = c.t;
  const sel = stackRead(c, size, size) & 0xffff;
  const fl = stackRead(c, 2 * size, size);
  const newCpl = checkReturnCs(c, sel);
  const csW0 = desc.w0, csW1 = desc.w1;
  const to64 = isLongCode(c, arOf(csW1));
  const target = targetRip(c, ripLo, ripHi, to64, sel);
  const popsStack = from64 || newCpl > c.cpl;
  let spLo = 0, spHi = 0, ssSel = 0, ssReal = false, ssW0 = 0, ssW1 = 0;
  if (popsStack) {
    spLo = stackRead(c, 3 * size, size); spHi = c.t;
    ssSel = stackRead(c, 4 * size, size) & 0xffff;
    ssReal = checkReturnSs(c, ssSel, newCpl, to64);
    ssW0 = desc.w0; ssW1 = desc.w1;
  }
  // RFLAGS as the old CPL may change them
  const old = c.getFlags();
  let mask = IRET_MASK & ~(VM | VIF | VIP);
  if (size === 4 || size === 8) mask |= VIF | VIP;
  if (c.cpl > 0) mask &= ~IOPL;
  if (c.cpl > ((old & IOPL) >>> 12)) mask &= ~IF;
  if (c.cpl > 0) mask &= ~(VIF | VIP);
  if (size === 2) mask &= 0xffff; // a 16-bit image holds FLAGS only
  c.putFlags((old & ~mask) | (fl & mask));
  if (fl & RF) c.rflags |= RF;
  desc.w0 = csW0; desc.w1 = csW1;
  const outer = newCpl > c.cpl;
  loadCs(c, sel, newCpl);
  if (popsStack) {
    if (ssReal) { desc.w0 = ssW0; desc.w1 = ssW1; loadCache(c, SS, ssSel); } else loadNull(c, SS, ssSel);
    if (to64) { c.rl[4] = spLo >>> 0; c.rh[4] = spHi >>> 0; } else { c.rl[4] = spLo >>> 0; c.rh[4] = 0; }
  } else addSp(c, 3 * size);
  if (outer) nullInaccessibleSegments(c);
  return target;
}
