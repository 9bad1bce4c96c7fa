/**
 * The descriptor-table registers (SDM Vol. 2 LGDT/LIDT, SGDT/SIDT, LLDT/SLDT, LTR/STR):
 * loads at CPL 0 only, stores refused at CPL > 0 when CR4.UMIP = 1. LTR marks the TSS busy
 * and refuses a busy one; in IA-32e mode LDT and TSS descriptors are 16 bytes.
 */
import { CpuCore } from './core';
import { Insn, Op } from './insn';
import { loadE, storeE, ea } from './operands';
import { desc, readDescriptor, markDescriptor, selFault, arOf, baseOf, limitOf, inLongMode, in64BitMode, AR_S, AR_P, AR_UNUSABLE } from './segments';
import { CR4_UMIP } from '../x86/control-regs';

function privileged(c: CpuCore): void {
  if (c.cpl !== 0) c.gp0();
}

function umip(c: CpuCore): void {
  if (c.cpl !== 0 && (c.cr4 & CR4_UMIP)) c.gp0();
}

export function descriptorTables(c: CpuCore, i: Insn): number {
  switch (i.op) {
    case Op.LGDT: case Op.LIDT: {
      privileged(c);
      ea(c, i, in64BitMode(c) ? 10 : 6);
      const limit = c.rd16(c.eaLo, c.eaHi);
      const a = c.eaLo + 2;
      const aHi = (c.eaHi + (a > 0xffffffff ? 1 : 0)) >>> 0;
      let bLo: number, bHi: number;
      if (in64BitMode(c)) { bLo = c.rd64(a >>> 0, aHi); bHi = c.t; } else { bLo = c.rd32(a >>> 0, aHi); bHi = 0; if (i.size === 2) bLo &= 0xffffff; }
      if (i.op === Op.LGDT) { c.gdtrLimit = limit; c.gdtrBaseLo = bLo; c.gdtrBaseHi = bHi; }
      else { c.idtrLimit = limit; c.idtrBaseLo = bLo; c.idtrBaseHi = bHi; }
      return i.nextAddr;
    }
    case Op.SGDT: case Op.SIDT: {
      umip(c);
      ea(c, i, in64BitMode(c) ? 10 : 6);
      const g = i.op === Op.SGDT;
      const wide = in64BitMode(c);
      c.probeWrite(c.eaLo, c.eaHi, wide ? 10 : 6);
      c.wr16(c.eaLo, c.eaHi, g ? c.gdtrLimit : c.idtrLimit);
      const a = c.eaLo + 2;
      const aHi = (c.eaHi + (a > 0xffffffff ? 1 : 0)) >>> 0;
      if (wide) c.wr64(a >>> 0, aHi, g ? c.gdtrBaseLo : c.idtrBaseLo, g ? c.gdtrBaseHi : c.idtrBaseHi);
      else c.wr32(a >>> 0, aHi, g ? c.gdtrBaseLo : c.idtrBaseLo);
      return i.nextAddr;
    }
    case Op.SLDT: case Op.STR: {
      umip(c);
      const v = i.op === Op.SLDT ? c.ldtrSel : c.trSel;
      if (i.isMem) { ea(c, i, 2); storeE(c, i, 2, v, 0); } else c.setR(i.size, i.rm, v, 0);
      return i.nextAddr;
    }
    case Op.LLDT: {
      privileged(c);
      const sel = loadE(c, i, 2);
      if ((sel & 0xfffc) === 0) {
        c.ldtrSel = sel; c.ldtrAttr = AR_UNUSABLE; c.ldtrBaseLo = 0; c.ldtrBaseHi = 0; c.ldtrLimit = 0;
        return i.nextAddr;
      }
      if (sel & 4) selFault(c, 13, sel);
      const long = inLongMode(c);
      if (!readDescriptor(c, sel, long)) selFault(c, 13, sel);
      const ar = arOf(desc.w1);
      if ((ar & AR_S) || (ar & 0xf) !== 2) selFault(c, 13, sel);
      if (!(ar & AR_P)) selFault(c, 11, sel);
      c.ldtrSel = sel; c.ldtrAttr = ar;
      c.ldtrBaseLo = baseOf(desc.w0, desc.w1); c.ldtrBaseHi = long ? desc.w2 : 0;
      c.ldtrLimit = limitOf(desc.w0, desc.w1);
      return i.nextAddr;
    }
    case Op.LTR: {
      privileged(c);
      const sel = loadE(c, i, 2);
      if ((sel & 0xfffc) === 0) c.gp0();
      if (sel & 4) selFault(c, 13, sel);
      const long = inLongMode(c);
      if (!readDescriptor(c, sel, long)) selFault(c, 13, sel);
      const ar = arOf(desc.w1);
      const type = ar & 0xf;
      // an available TSS: 32-bit/64-bit (9); the 16-bit one (1) only outside IA-32e mode
      if ((ar & AR_S) || !(type === 9 || (type === 1 && !long))) selFault(c, 13, sel);
      if (!(ar & AR_P)) selFault(c, 11, sel);
      markDescriptor(c, 0x200); // busy
      c.trSel = sel; c.trAttr = arOf(desc.w1);
      c.trBaseLo = baseOf(desc.w0, desc.w1); c.trBaseHi = long ? desc.w2 : 0;
      c.trLimit = limitOf(desc.w0, desc.w1);
      return i.nextAddr;
    }
    default:
      return c.ud();
  }
}
