/**
 * Segmentation in protected and long mode (SDM Vol. 3 ch. 3 and 5): segment descriptors read
 * from the GDT/LDT, the descriptor caches of CS/SS/DS/ES/FS/GS, the checks of a data or stack
 * segment load (MOV Sreg, POP Sreg) with their #GP/#SS/#NP selector error codes, CPL and the
 * code-size mode the decoder works in.
 *
 * Cache attributes use the VMX access-rights layout: type 3:0, S 4, DPL 6:5, P 7, AVL 12,
 * L 13, D/B 14, G 15, unusable 16 (a null selector loaded in a data register).
 *
 * Outside 64-bit mode every data access adds its segment's base and is checked against its
 * limit (CpuCore.legacyEA/segmentCheck: expand-up and expand-down, #GP(0) or #SS(0) for SS,
 * unusable segments), instruction fetch is at CS.base + EIP within the CS limit (cpu.ts), and
 * near branch targets are checked against the CS limit (legacy-exec.ts). 64-bit mode: no
 * limits, only the FS/GS bases, non-canonical addresses #GP(0) in the MMU.
 *
 * Not modelled: type checks of data accesses (a write to a read-only or code segment, a read
 * of an execute-only one); the limit checks of the implicit stack pushes of event delivery
 * and of the BT family's bit-offset addressing; call gates and task gates (a far transfer
 * through one is #GP(selector), see far-transfer.ts); task switches.
 */
import { CpuCore } from './core';
import { EFER_LMA } from '../x86/msr';

export const ES = 0, CS = 1, SS = 2, DS = 3, FS = 4, GS = 5;

export const AR_S = 0x10;
export const AR_P = 0x80;
export const AR_L = 0x2000;
export const AR_DB = 0x4000;
export const AR_UNUSABLE = 0x10000;
/** Type bits of code/data descriptors (S = 1). */
export const TYPE_CODE = 8, TYPE_CONFORMING = 4, TYPE_READABLE = 2, TYPE_WRITABLE = 2, TYPE_ACCESSED = 1;

/**
 * The built-in read-only GDT GDTR points at after reset (guest ABI): 0x08 = 64-bit code,
 * 0x10 = data, both DPL 0, flat. It lives outside RAM (just below the MMU's boot page-table
 * ROM) so that it costs the guest nothing; a guest that wants a TSS, user segments or
 * compatibility-mode code loads its own GDT.
 */
export const BOOT_GDT_LO = 0xffffd000, BOOT_GDT_HI = 0x7f;
const BOOT_GDT = [0, 0, 0x0000ffff, 0x00af9b00, 0x0000ffff, 0x00cf9300];

/** Scratch for the descriptor read last: its two 32-bit words (and the next two for 16-byte system descriptors). */
export const desc = { w0: 0, w1: 0, w2: 0, w3: 0 };

/**
 * A supervisor-implicit 32-bit read of a system structure (GDT, LDT, IDT, TSS) at a linear
 * address through the MMU (no U/S check); the boot GDT is answered before translation.
 */
export function sysRd32(c: CpuCore, lo: number, hi: number): number {
  if (hi === BOOT_GDT_HI && lo >= BOOT_GDT_LO && lo < BOOT_GDT_LO + 24 && (lo & 3) === 0) return BOOT_GDT[(lo - BOOT_GDT_LO) >>> 2] >>> 0;
  return c.sysRd32(lo, hi);
}

/** A supervisor-implicit byte read (the TSS I/O permission bitmap). */
export function sysRd8(c: CpuCore, lo: number, hi: number): number {
  return c.sysRd8(lo, hi);
}

/** A supervisor-implicit 32-bit write (accessed and busy bits); the boot GDT ignores writes. */
export function sysWr32(c: CpuCore, lo: number, hi: number, v: number): void {
  if (hi === BOOT_GDT_HI && lo >= BOOT_GDT_LO && lo < BOOT_GDT_LO + 24) return;
  c.sysWr32(lo, hi, v >>> 0);
}

/** Linear address of the descriptor of `sel` (its table; bit 2 = LDT), or -1 beyond the limit. */
let descLo = 0, descHi = 0;
function locate(c: CpuCore, sel: number, size: number): boolean {
  const idx = sel & 0xfff8;
  let bLo: number, bHi: number, limit: number;
  if (sel & 4) {
    if (c.ldtrAttr & AR_UNUSABLE) return false;
    bLo = c.ldtrBaseLo; bHi = c.ldtrBaseHi; limit = c.ldtrLimit;
  } else {
    bLo = c.gdtrBaseLo; bHi = c.gdtrBaseHi; limit = c.gdtrLimit;
  }
  if (idx + size - 1 > limit) return false;
  const a = bLo + idx;
  descLo = a >>> 0;
  descHi = (bHi + (a > 0xffffffff ? 1 : 0)) >>> 0;
  return true;
}

/**
 * Reads the 8-byte descriptor of a non-null selector into `desc` (16 bytes when `wide`: the
 * system descriptors of long mode). Returns false when the selector is beyond its table's
 * limit (the caller raises #GP(selector) or #TS).
 */
export function readDescriptor(c: CpuCore, sel: number, wide = false): boolean {
  if (!locate(c, sel, wide ? 16 : 8)) return false;
  desc.w0 = sysRd32(c, descLo, descHi);
  desc.w1 = sysRd32(c, descLo + 4, descHi);
  if (wide) {
    desc.w2 = sysRd32(c, descLo + 8, descHi);
    desc.w3 = sysRd32(c, descLo + 12, descHi);
  }
  return true;
}

/** Sets bits in the high word of the descriptor read last (accessed, busy). */
export function markDescriptor(c: CpuCore, bits: number): void {
  if ((desc.w1 & bits) === bits) return;
  desc.w1 = (desc.w1 | bits) >>> 0;
  sysWr32(c, descLo + 4, descHi, desc.w1);
}

export function arOf(w1: number): number {
  return (w1 >>> 8) & 0xf0ff;
}
export function baseOf(w0: number, w1: number): number {
  return ((w0 >>> 16) | ((w1 & 0xff) << 16) | (w1 & 0xff000000)) >>> 0;
}
export function limitOf(w0: number, w1: number): number {
  const l = (w0 & 0xffff) | (w1 & 0xf0000);
  return w1 & 0x800000 ? ((l << 12) | 0xfff) >>> 0 : l;
}
export function dplOf(ar: number): number {
  return (ar >>> 5) & 3;
}

/** Raises exception `vector` with the selector error code of `sel` (RPL bits cleared). */
export function selFault(c: CpuCore, vector: number, sel: number): never {
  return c.exception(vector, sel & 0xfffc);
}

export function inLongMode(c: CpuCore): boolean {
  return (c.efer & EFER_LMA) !== 0;
}
export function in64BitMode(c: CpuCore): boolean {
  return (c.efer & EFER_LMA) !== 0 && (c.segAttr[CS] & AR_L) !== 0;
}

/** Recomputes the code-size mode from EFER.LMA and CS.L/D; a change drops the decoded code. */
export function updateCodeMode(c: CpuCore): void {
  const a = c.segAttr[CS];
  const m = (c.efer & EFER_LMA) !== 0 && (a & AR_L) !== 0 ? 0 : a & AR_DB ? 1 : 2;
  c.codeMode = m; // the code cache is keyed by it
  c.attention = 1;
}

/** Loads segment register r's selector and cache from the descriptor in `desc`. */
export function loadCache(c: CpuCore, r: number, sel: number): void {
  const w0 = desc.w0, w1 = desc.w1;
  const base = baseOf(w0, w1), limit = limitOf(w0, w1);
  // a new CS base or limit changes what the fetch sees: decoded-block links are re-checked
  if (r === CS && (c.segBase[CS] !== base || c.segLimit[CS] !== limit)) { c.xlatEpoch++; c.attention = 1; }
  c.sreg[r] = sel;
  c.segAttr[r] = arOf(w1);
  c.segLimit[r] = limit;
  if (r === FS) { c.fsBaseLo = base; c.fsBaseHi = 0; }
  else if (r === GS) { c.gsBaseLo = base; c.gsBaseHi = 0; }
  else c.segBase[r] = base;
}

/** A null selector in a data register: the register is unusable (FS/GS base zeroed, as loading null does in 64-bit mode on Intel). */
export function loadNull(c: CpuCore, r: number, sel: number): void {
  c.sreg[r] = sel;
  c.segAttr[r] = AR_UNUSABLE | (r === SS ? (sel & 3) << 5 : 0);
  c.segLimit[r] = 0;
  if (r === FS) { c.fsBaseLo = 0; c.fsBaseHi = 0; }
  else if (r === GS) { c.gsBaseLo = 0; c.gsBaseHi = 0; }
  else c.segBase[r] = 0;
}

/** CS loaded by a far transfer, interrupt, IRET or SYSCALL/SYSRET: new CPL and code mode. */
export function loadCs(c: CpuCore, sel: number, cpl: number): void {
  loadCache(c, CS, (sel & 0xfffc) | cpl);
  setCpl(c, cpl);
  updateCodeMode(c);
}

export function setCpl(c: CpuCore, cpl: number): void {
  if (cpl !== c.cpl) {
    c.cpl = cpl;
    c.attention = 1;
  }
}

/**
 * MOV/POP to SS, DS, ES, FS or GS in protected mode (SDM MOV, POP): the descriptor checks
 * and then the cache load. Faults leave the register unchanged.
 */
export function loadDataSegment(c: CpuCore, r: number, sel: number): void {
  const cpl = c.cpl;
  const rpl = sel & 3;
  if ((sel & 0xfffc) === 0) {
    if (r === SS) {
      // 64-bit mode allows a null SS below CPL 3 with RPL = CPL
      if (!in64BitMode(c) || cpl === 3 || rpl !== cpl) c.gp0();
    }
    loadNull(c, r, sel);
    return;
  }
  if (!readDescriptor(c, sel)) selFault(c, 13, sel);
  const ar = arOf(desc.w1);
  const type = ar & 0xf;
  const dpl = dplOf(ar);
  if (!(ar & AR_S)) selFault(c, 13, sel);
  if (r === SS) {
    if (rpl !== cpl || (type & TYPE_CODE) || !(type & TYPE_WRITABLE) || dpl !== cpl) selFault(c, 13, sel);
    if (!(ar & AR_P)) selFault(c, 12, sel);
  } else {
    if ((type & TYPE_CODE) && !(type & TYPE_READABLE)) selFault(c, 13, sel);
    const conformingCode = (type & (TYPE_CODE | TYPE_CONFORMING)) === (TYPE_CODE | TYPE_CONFORMING);
    if (!conformingCode && (rpl > dpl || cpl > dpl)) selFault(c, 13, sel);
    if (!(ar & AR_P)) selFault(c, 11, sel);
  }
  markDescriptor(c, TYPE_ACCESSED << 8);
  loadCache(c, r, sel);
}

/** After a return to an outer level: data registers the new CPL may not use become null (SDM RET, IRET). */
export function nullInaccessibleSegments(c: CpuCore): void {
  const cpl = c.cpl;
  for (const r of [ES, DS, FS, GS]) {
    const ar = c.segAttr[r];
    if (ar & AR_UNUSABLE) continue;
    const type = ar & 0xf;
    const conformingCode = (type & (TYPE_CODE | TYPE_CONFORMING)) === (TYPE_CODE | TYPE_CONFORMING);
    if (!conformingCode && dplOf(ar) < cpl) {
      // the selector and base stay in 64-bit mode for FS/GS (the bases are MSRs); the register is unusable
      c.sreg[r] = 0;
      c.segAttr[r] = AR_UNUSABLE;
    }
  }
}

/**
 * The checks of a code-segment descriptor that a far RET or IRET returns to (SDM RET, IRET):
 * reads `sel`'s descriptor into `desc`. Returns the new CPL (= RPL).
 */
export function checkReturnCs(c: CpuCore, sel: number): number {
  if ((sel & 0xfffc) === 0) c.gp0();
  if (!readDescriptor(c, sel)) selFault(c, 13, sel);
  const ar = arOf(desc.w1);
  const rpl = sel & 3;
  if (!(ar & AR_S) || !(ar & (TYPE_CODE))) selFault(c, 13, sel);
  if (rpl < c.cpl) selFault(c, 13, sel);
  const dpl = dplOf(ar);
  if (ar & TYPE_CONFORMING) { if (dpl > rpl) selFault(c, 13, sel); }
  else if (dpl !== rpl) selFault(c, 13, sel);
  if ((ar & AR_L) && (ar & AR_DB)) selFault(c, 13, sel); // L and D both set is reserved
  if (!(ar & AR_P)) selFault(c, 11, sel);
  return rpl;
}

/**
 * The checks of the SS a return to an outer level loads (SDM RET, IRET); reads the
 * descriptor into `desc` (or leaves a null SS to loadNull). Returns false for a null SS.
 */
export function checkReturnSs(c: CpuCore, sel: number, newCpl: number, to64: boolean): boolean {
  if ((sel & 0xfffc) === 0) {
    // 64-bit mode: a null SS is allowed when returning to 64-bit code below CPL 3
    if (!to64 || newCpl === 3 || (sel & 3) !== newCpl) c.gp0();
    return false;
  }
  if (!readDescriptor(c, sel)) selFault(c, 13, sel);
  const ar = arOf(desc.w1);
  const type = ar & 0xf;
  if ((sel & 3) !== newCpl || !(ar & AR_S) || (type & TYPE_CODE) || !(type & TYPE_WRITABLE) || dplOf(ar) !== newCpl) selFault(c, 13, sel);
  if (!(ar & AR_P)) selFault(c, 12, sel);
  return true;
}
