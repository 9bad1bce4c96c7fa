/**
 * System instructions: flags control (CLI/STI/PUSHF/POPF/IRETQ), software interrupts,
 * instruction intercepts (HLT, CPUID, RDMSR/WRMSR, IN/OUT/INS/OUTS), MOV CR, MOV DR with
 * its exception rules, segment loads (the MOV-SS shadow), descriptor tables, SWAPGS.
 */
import { CpuCore, FaultKind, FAULT } from './core';
import { Insn, Op } from './insn';
import { loadE, storeE, ea, jumpTo, push16, pop16 } from './operands';
import { IF, RF, VM, POPF_MASK, IRET_MASK } from './flags';
import { movDr } from './mov-dr';
import { fetchPhys } from './mmu';

/** CR0 bits whose change re-selects paging / flushes the TLB: PE, WP, PG. */
const CR0_PAGING_BITS = 0x80010001;
/** CR4 bits that change translation: PSE, PAE, PGE, PCIDE, SMEP, SMAP. */
const CR4_PAGING_BITS = 0x10 | 0x20 | 0x80 | 0x20000 | 0x100000 | 0x200000;

export const SHADOW_STI = 1;
export const SHADOW_MOVSS = 2;

export function execSystem(c: CpuCore, i: Insn): number {
  switch (i.op) {
    case Op.FETCH_NPF:
      // An instruction byte that cannot be fetched: raise what the fetch gets (#PF, #GP,
      // NPF); if the mapping has changed since decoding, fetch again.
      fetchPhys(c, i.immLo, i.immHi, false);
      return i.addr;
    case Op.INVLPG:
      if (c.cpl !== 0) return c.gp0();
      ea(c, i);
      c.invlpg(c.eaLo, c.eaHi);
      return i.nextAddr;
    case Op.CLI: c.rflags &= ~IF; return i.nextAddr;
    case Op.STI:
      // STI shadow only if IF was 0 (SDM STI); it does not suppress single-step.
      if (!(c.rflags & IF)) c.shadowNext |= SHADOW_STI;
      c.rflags |= IF;
      c.attention = 1;
      return i.nextAddr;
    case Op.PUSHF: {
      const f = c.getFlags() & ~(RF | VM); // RF and VM are cleared in the image
      if (i.size === 8) c.push64(f, 0); else push16(c, f & 0xffff);
      return i.nextAddr;
    }
    case Op.POPF: {
      let v: number;
      if (i.size === 8) v = c.pop64(); else v = pop16(c) | (c.getFlags() & 0xffff0000);
      const old = c.getFlags();
      c.putFlags(((old & ~POPF_MASK) | (v & POPF_MASK)) & ~RF); // POPF clears RF
      return i.nextAddr;
    }
    case Op.IRET: return iret(c, i);
    case Op.HLT: return c.exitReturn({ kind: 'hlt', length: i.len });
    case Op.CPUID: return c.exitReturn({ kind: 'cpuid', length: i.len });
    case Op.RDMSR: return c.exitReturn({ kind: 'rdmsr', length: i.len });
    case Op.WRMSR: return c.exitReturn({ kind: 'wrmsr', length: i.len });
    case Op.IN: case Op.OUT: {
      const port = i.cnt === 0 ? i.immLo : c.rl[2] & 0xffff;
      return c.exitReturn({ kind: 'io', length: i.len, port, size: i.size as 1 | 2 | 4, isIn: i.op === Op.IN, string: false, rep: false });
    }
    case Op.INS: case Op.OUTS:
      return c.exitReturn({ kind: 'io', length: i.len, port: c.rl[2] & 0xffff, size: i.size as 1 | 2 | 4, isIn: i.op === Op.INS, string: true, rep: i.rep !== 0 });
    case Op.RDTSC: case Op.RDTSCP: {
      const tsc = c.instret + c.tscOffset;
      c.rl[0] = tsc >>> 0; c.rh[0] = 0;
      c.rl[2] = Math.floor(tsc / 4294967296) >>> 0; c.rh[2] = 0;
      if (i.op === Op.RDTSCP) { c.rl[1] = 0; c.rh[1] = 0; }
      return i.nextAddr;
    }
    case Op.INT3: return c.softInt(3, 'swexc');
    case Op.INTN: return c.softInt(i.immLo, 'sw');
    case Op.INT1: return c.softInt(1, 'priv');
    case Op.MOV_R_CR: {
      let lo: number, hi = 0;
      switch (i.reg) {
        case 0: lo = c.cr0; break;
        case 2: lo = c.cr2Lo; hi = c.cr2Hi; break;
        case 3: lo = c.cr3Lo; hi = c.cr3Hi; break;
        case 4: lo = c.cr4; break;
        case 8: lo = c.cr8; break;
        default: return c.ud();
      }
      c.setR(8, i.rm, lo >>> 0, hi);
      return i.nextAddr;
    }
    case Op.MOV_CR_R: {
      const lo = c.rl[i.rm], hi = c.rh[i.rm];
      switch (i.reg) {
        case 0: {
          if (hi !== 0) c.gp0();
          const old = c.cr0;
          c.cr0 = lo >>> 0;
          if ((old ^ lo) & CR0_PAGING_BITS) c.pagingChanged();
          break;
        }
        case 2: c.cr2Lo = lo; c.cr2Hi = hi; break;
        case 3: c.cr3Lo = lo; c.cr3Hi = hi; c.cr3Loaded(); break;
        case 4: {
          if (hi !== 0) c.gp0();
          const old = c.cr4;
          c.cr4 = lo >>> 0;
          c.refreshBreakpoints(); // CR4.DE changes I/O breakpoints and DR4/DR5
          if ((old ^ lo) & CR4_PAGING_BITS) c.pagingChanged();
          break;
        }
        case 8: if (hi !== 0 || lo > 15) c.gp0(); c.cr8 = lo; break;
        default: return c.ud();
      }
      return i.nextAddr;
    }
    case Op.MOV_R_DR: case Op.MOV_DR_R:
      movDr(c, i);
      return i.nextAddr;
    case Op.MOV_SREG_E: {
      const v = loadE(c, i, 2);
      c.sreg[i.reg] = v;
      if (i.reg === 2 && !(c.shadow & SHADOW_MOVSS)) c.shadowNext |= SHADOW_MOVSS;
      if (i.reg === 2) c.attention = 1;
      return i.nextAddr;
    }
    case Op.MOV_E_SREG: {
      const v = c.sreg[i.reg];
      if (i.isMem) { ea(c, i); storeE(c, i, 2, v, 0); } else c.setR(i.size === 2 ? 2 : i.size, i.rm, v, 0);
      return i.nextAddr;
    }
    case Op.PUSH_SEG:
      if (i.size === 8) c.push64(c.sreg[i.sub], 0); else push16(c, c.sreg[i.sub]);
      return i.nextAddr;
    case Op.POP_SEG: {
      const v = i.size === 8 ? c.pop64() & 0xffff : pop16(c);
      c.sreg[i.sub] = v;
      return i.nextAddr;
    }
    case Op.LGDT: case Op.LIDT: {
      ea(c, i);
      const limit = c.rd16(c.eaLo, c.eaHi);
      const a = c.eaLo + 2;
      const bLo = c.rd64(a >>> 0, (c.eaHi + (a > 0xffffffff ? 1 : 0)) >>> 0), bHi = c.t;
      if (i.op === Op.LGDT) { c.gdtrLimit = limit; c.gdtrBaseLo = bLo; c.gdtrBaseHi = bHi; }
      else { c.idtrLimit = limit; c.idtrBaseLo = bLo; c.idtrBaseHi = bHi; }
      return i.nextAddr;
    }
    case Op.SGDT: case Op.SIDT: {
      ea(c, i);
      const g = i.op === Op.SGDT;
      c.probeWrite(c.eaLo, c.eaHi, 10);
      c.wr16(c.eaLo, c.eaHi, g ? c.gdtrLimit : c.idtrLimit);
      c.wr64(c.eaLo + 2, c.eaHi, g ? c.gdtrBaseLo : c.idtrBaseLo, g ? c.gdtrBaseHi : c.idtrBaseHi);
      return i.nextAddr;
    }
    case Op.SWAPGS: {
      const lo = c.gsBaseLo, hi = c.gsBaseHi;
      c.gsBaseLo = c.kgsBaseLo; c.gsBaseHi = c.kgsBaseHi;
      c.kgsBaseLo = lo; c.kgsBaseHi = hi;
      return i.nextAddr;
    }
    case Op.CLTS: c.cr0 = (c.cr0 & ~8) >>> 0; return i.nextAddr;
    default:
      return c.ud();
  }
}

/** IRETQ (and IRETD): pops RIP, CS, RFLAGS, RSP, SS; RF is loaded from the image. */
function iret(c: CpuCore, i: Insn): number {
  const spLo = c.rl[4], spHi = c.rh[4];
  let ripLo: number, ripHi: number, cs: number, fl: number, rspLo: number, rspHi: number, ss: number;
  if (i.size === 8) {
    ripLo = c.rd64(spLo, spHi); ripHi = c.t;
    cs = c.rd64(spLo + 8, spHi) & 0xffff;
    fl = c.rd64(spLo + 16, spHi);
    rspLo = c.rd64(spLo + 24, spHi); rspHi = c.t;
    ss = c.rd64(spLo + 32, spHi) & 0xffff;
  } else {
    ripLo = c.rd32(spLo, spHi); ripHi = 0;
    cs = c.rd32(spLo + 4, spHi) & 0xffff;
    fl = c.rd32(spLo + 8, spHi);
    rspLo = c.rd32(spLo + 12, spHi); rspHi = 0;
    ss = c.rd32(spLo + 16, spHi) & 0xffff;
  }
  const target = jumpTo(c, ripLo, ripHi);
  const old = c.getFlags();
  c.putFlags((old & ~IRET_MASK) | (fl & IRET_MASK));
  c.sreg[1] = cs;
  c.sreg[2] = ss;
  c.rl[4] = rspLo; c.rh[4] = rspHi;
  return target;
}
