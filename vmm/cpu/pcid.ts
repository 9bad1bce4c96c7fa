/**
 * PCID (SDM Vol. 3 4.10.1, 4.10.4; Vol. 2 MOV CR, INVPCID): CR4.PCIDE, CR3 bits 11:0 as the
 * current PCID, bit 63 of a MOV-to-CR3 source as the no-flush hint, and INVPCID types 0-3.
 *
 * The TLB is not tagged by PCID: every CR3 load flushes the non-global entries (also with the
 * no-flush hint), so it only ever holds translations of the current PCID and global ones. The
 * SDM allows a processor to invalidate more than an operation requires, never less, and each
 * INVPCID type below flushes at least what it must.
 */
import type { CpuCore } from './core';
import type { Insn } from './insn';
import { ea } from './operands';
import { tlbFlushAll, tlbFlushNonGlobal, tlbInvalidatePage } from './mmu';
import { CR4_PCIDE, CR3_NOFLUSH_HI } from '../x86/control-regs';
import { EFER_LMA } from '../x86/msr';

/** CR3 bits 63:52 and those above MAXPHYADDR (40, CPUID 8000_0008H) are reserved in IA-32e mode. */
const CR3_RESERVED_HI = 0xffffff00;

/** MOV to CR3 (CPL 0 checked by the caller). #GP(0) for reserved bits in IA-32e mode. */
export function writeCr3(c: CpuCore, lo: number, hi: number): void {
  if (c.efer & EFER_LMA) {
    if (c.cr4 & CR4_PCIDE) hi &= ~CR3_NOFLUSH_HI; // the hint is not part of CR3
    if (hi & CR3_RESERVED_HI) c.gp0();
  } else hi = 0; // outside IA-32e mode CR3 is 32 bits (MOV CR3 takes r32)
  c.cr3Lo = lo >>> 0;
  c.cr3Hi = hi >>> 0;
  c.cr3Loaded(); // flushes even with the no-flush hint: allowed (see above)
}

/** The PCIDE rules of MOV to CR4 (#GP(0)): PCIDE 0 -> 1 only in IA-32e mode and with CR3[11:0] = 0. */
export function checkCr4Pcide(c: CpuCore, newCr4: number): void {
  if ((newCr4 & CR4_PCIDE) && !(c.cr4 & CR4_PCIDE)) {
    if (!(c.efer & EFER_LMA) || (c.cr3Lo & 0xfff) !== 0) c.gp0();
  }
}

/**
 * INVPCID r, m128 (66 0F 38 82): type in the register (64 bits in 64-bit mode), descriptor
 * = PCID in bits 11:0 (63:12 reserved), linear address in bits 127:64.
 */
export function invpcid(c: CpuCore, i: Insn): number {
  if (c.cpl !== 0) c.gp0();
  const typeHi = i.mode === 0 ? c.rh[i.reg] : 0;
  const type = c.rl[i.reg];
  ea(c, i, 16);
  const dLo = c.rd64(c.eaLo, c.eaHi), dHi = c.t;
  const a = c.eaLo + 8;
  const aLo = c.rd64(a >>> 0, (c.eaHi + (a > 0xffffffff ? 1 : 0)) >>> 0), aHi = c.t;
  if (typeHi !== 0 || type > 3) c.gp0();
  if ((dLo & ~0xfff) !== 0 || dHi !== 0) c.gp0();
  const pcid = dLo & 0xfff;
  const pcide = (c.cr4 & CR4_PCIDE) !== 0;
  switch (type) {
    case 0: { // one address of one PCID (global translations of it may go too)
      const top = aHi >>> 15;
      if (top !== 0 && top !== 0x1ffff) c.gp0();
      if (!pcide && pcid !== 0) c.gp0();
      tlbInvalidatePage(c, aLo, aHi);
      break;
    }
    case 1: // one PCID, global translations excepted (we hold no other PCID's)
      if (!pcide && pcid !== 0) c.gp0();
      tlbFlushNonGlobal(c);
      break;
    case 2: tlbFlushAll(c); break; // everything, global translations included
    default: tlbFlushNonGlobal(c); // every PCID, global translations excepted
  }
  return i.nextAddr;
}
