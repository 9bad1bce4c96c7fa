/**
 * System instructions: flags control (CLI/STI/PUSHF/POPF/IRETQ), software interrupts,
 * instruction intercepts (HLT, CPUID, RDMSR/WRMSR, IN/OUT/INS/OUTS), MOV CR, MOV DR with
 * its exception rules, segment loads (the MOV-SS shadow), descriptor tables, SWAPGS, and
 * the privilege rules of all of them (SDM 5.9: CPL 0 only; CLI/STI/IN/OUT against IOPL).
 */
import { CpuCore, FaultKind, FAULT } from './core';
import { Insn, Op } from './insn';
import { loadE, storeE, ea, jumpTo, push16, pop16 } from './operands';
import { POPF_MASK } from './flags';
import { IF, RF, VM, IOPL } from '../x86/rflags';
import { movDr } from './mov-dr';
import { CS, loadDataSegment, in64BitMode, updateCodeMode } from './segments';
import { CR0_PE, CR0_PG, CR4_PAE, CR4_UMIP } from '../x86/control-regs';
import { EFER_LME, EFER_LMA } from '../x86/msr';
import { farJmpCall, farRet, iret } from './far-transfer';
import { syscall, sysret } from './syscall';
import { descriptorTables } from './descriptor-tables';
import { checkIoPermission } from './io-permission';
import { fetchPhys } from './mmu';
import { writeCr3, checkCr4Pcide, invpcid } from './pcid';
import { CR0_ET, CR4_PCIDE } from '../x86/control-regs';
import { AC as RFLAGS_AC_BIT } from '../x86/rflags';

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
      // NPF); if the mapping has changed since decoding, fetch again. Outside 64-bit mode
      // immLo is the EIP of that byte: beyond the CS limit #GP(0), else at CS.base + EIP.
      if (i.mode !== 0) {
        if (i.immLo > c.segLimit[CS]) return c.gp0();
        fetchPhys(c, (i.immLo + c.segBase[CS]) >>> 0, 0, false);
        return i.addr;
      }
      fetchPhys(c, i.immLo, i.immHi, false);
      return i.addr;
    case Op.INVPCID: return invpcid(c, i);
    case Op.STAC: case Op.CLAC:
      // SMAP's override (SDM Vol. 2, STAC/CLAC): #UD at CPL > 0, in every mode.
      if (c.cpl !== 0) return c.ud();
      c.rflags = i.op === Op.STAC ? (c.rflags | RFLAGS_AC_BIT) >>> 0 : (c.rflags & ~RFLAGS_AC_BIT) >>> 0;
      c.syncAlignCheck();
      return i.nextAddr;
    case Op.INVLPG:
      if (c.cpl !== 0) return c.gp0();
      ea(c, i, 1);
      c.invlpg(c.eaLo, c.eaHi);
      return i.nextAddr;
    case Op.CLI: ioplCheck(c); c.rflags &= ~IF; return i.nextAddr;
    case Op.STI:
      ioplCheck(c);
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
      // IOPL changes only at CPL 0, IF only when CPL <= IOPL (no #GP: POPF ignores them)
      let mask = POPF_MASK;
      if (c.cpl > 0) mask &= ~IOPL;
      if (c.cpl > ((old & IOPL) >>> 12)) mask &= ~IF;
      c.putFlags(((old & ~mask) | (v & mask)) & ~RF); // POPF clears RF
      return i.nextAddr;
    }
    case Op.IRET: return iret(c, i);
    // privilege and I/O-permission faults come before the VM exit (SDM 25.1.1)
    case Op.HLT: privileged(c); return c.exitReturn({ kind: 'hlt', length: i.len });
    case Op.CPUID: return c.exitReturn({ kind: 'cpuid', length: i.len });
    // VMCALL exits in VMX non-root operation, VMMCALL when SVM intercepts it (at any CPL);
    // otherwise (and the other vendor's instruction) #UD.
    case Op.VMCALL: case Op.VMMCALL:
      if (c.intercepts.hypercall !== (i.op === Op.VMCALL ? 'vmcall' : 'vmmcall')) return c.ud();
      return c.exitReturn({ kind: 'hypercall', length: i.len });
    case Op.RDMSR: privileged(c); return c.exitReturn({ kind: 'rdmsr', length: i.len });
    case Op.WRMSR: privileged(c); return c.exitReturn({ kind: 'wrmsr', length: i.len });
    case Op.IN: case Op.OUT: {
      const port = i.cnt === 0 ? i.immLo : c.rl[2] & 0xffff;
      checkIoPermission(c, port, i.size);
      return c.exitReturn({ kind: 'io', length: i.len, port, size: i.size as 1 | 2 | 4, isIn: i.op === Op.IN, string: false, rep: false });
    }
    case Op.INS: case Op.OUTS:
      checkIoPermission(c, c.rl[2] & 0xffff, i.size);
      return c.exitReturn({ kind: 'io', length: i.len, port: c.rl[2] & 0xffff, size: i.size as 1 | 2 | 4, isIn: i.op === Op.INS, string: true, rep: i.rep !== 0 });
    case Op.RDTSC: case Op.RDTSCP: {
      if (c.cr4 & 4) privileged(c); // CR4.TSD
      const tsc = c.instret + c.tscOffset;
      c.rl[0] = tsc >>> 0; c.rh[0] = 0;
      c.rl[2] = Math.floor(tsc / 4294967296) >>> 0; c.rh[2] = 0;
      if (i.op === Op.RDTSCP) { c.rl[1] = c.tscAux; c.rh[1] = 0; }
      return i.nextAddr;
    }
    case Op.RDPID: // IA32_TSC_AUX into r64 (64-bit mode) or r32, zero-extended; not affected by CR4.TSD
      c.setR(i.size, i.rm, c.tscAux, 0);
      return i.nextAddr;
    case Op.INT3: return c.softInt(3, 'swexc');
    case Op.INTN: return c.softInt(i.immLo, 'sw');
    case Op.INT1: return c.softInt(1, 'priv');
    case Op.MOV_R_CR: {
      privileged(c);
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
      privileged(c);
      const lo = c.rl[i.rm], hi = i.mode === 0 ? c.rh[i.rm] : 0; // r32 outside 64-bit mode
      switch (i.reg) {
        case 0: if (hi !== 0) c.gp0(); writeCr0(c, lo >>> 0); break;
        case 2: c.cr2Lo = lo; c.cr2Hi = hi; break;
        case 3: writeCr3(c, lo, hi); break;
        case 4: {
          if (hi !== 0) c.gp0();
          if ((c.efer & EFER_LMA) && !(lo & CR4_PAE)) c.gp0(); // PAE stays on in IA-32e mode
          checkCr4Pcide(c, lo);
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
      privileged(c);
      movDr(c, i);
      return i.nextAddr;
    case Op.MOV_SREG_E: {
      const v = loadE(c, i, 2);
      loadDataSegment(c, i.reg, v);
      if (i.reg === 2 && !(c.shadow & SHADOW_MOVSS)) c.shadowNext |= SHADOW_MOVSS;
      if (i.reg === 2) c.attention = 1;
      return i.nextAddr;
    }
    case Op.MOV_E_SREG: {
      const v = c.sreg[i.reg];
      if (i.isMem) { ea(c, i, 2); storeE(c, i, 2, v, 0); } else c.setR(i.size === 2 ? 2 : i.size, i.rm, v, 0);
      return i.nextAddr;
    }
    case Op.PUSH_SEG:
      if (i.size === 8) c.push64(c.sreg[i.sub], 0); else push16(c, c.sreg[i.sub]);
      return i.nextAddr;
    case Op.POP_SEG: {
      // the segment is loaded before RSP moves, so a faulting load leaves RSP as it was
      const v = c.readMem(i.size, c.rl[4], c.rh[4]) & 0xffff;
      loadDataSegment(c, i.sub, v);
      c.addRsp(i.size);
      return i.nextAddr;
    }
    case Op.LGDT: case Op.LIDT: case Op.SGDT: case Op.SIDT:
    case Op.SLDT: case Op.STR: case Op.LLDT: case Op.LTR:
      return descriptorTables(c, i);
    case Op.RETF: return farRet(c, i);
    case Op.JMP_FAR: return farJmpCall(c, i, false);
    case Op.CALL_FAR: return farJmpCall(c, i, true);
    case Op.SYSCALL: return syscall(c, i);
    case Op.SYSRET: return sysret(c, i);
    case Op.SWAPGS: {
      if (!in64BitMode(c)) c.ud();
      privileged(c);
      const lo = c.gsBaseLo, hi = c.gsBaseHi;
      c.gsBaseLo = c.kgsBaseLo; c.gsBaseHi = c.kgsBaseHi;
      c.kgsBaseLo = lo; c.kgsBaseHi = hi;
      return i.nextAddr;
    }
    case Op.CLTS: privileged(c); c.cr0 = (c.cr0 & ~8) >>> 0; return i.nextAddr;
    case Op.INVD: privileged(c); return i.nextAddr; // INVD/WBINVD: no caches to flush, but privileged
    case Op.SMSW: {
      if ((c.cr4 & CR4_UMIP) && c.cpl > 0) c.gp0();
      if (i.isMem) { ea(c, i, 2); c.writeMem(2, c.eaLo, c.eaHi, c.cr0 & 0xffff, 0); }
      else c.setR(i.size, i.rm, i.size === 2 ? c.cr0 & 0xffff : c.cr0 >>> 0, 0); // r32/r64: all of CR0
      return i.nextAddr;
    }
    case Op.LMSW: {
      privileged(c);
      const v = loadE(c, i, 2);
      // PE, MP, EM, TS only; PE can be set but not cleared
      writeCr0(c, ((c.cr0 & ~0xe) | (v & 0xf) | (c.cr0 & 1)) >>> 0);
      return i.nextAddr;
    }
    default:
      return c.ud();
  }
}

function privileged(c: CpuCore): void {
  if (c.cpl !== 0) c.gp0();
}

/** CLI/STI: #GP(0) when CPL > IOPL (no VME/PVI). */
function ioplCheck(c: CpuCore): void {
  if (c.cpl > ((c.rflags & IOPL) >>> 12)) c.gp0();
}

/**
 * MOV to CR0 with the paging and long-mode rules (SDM 9.8.5, MOV CR): PG without PE is
 * #GP(0); setting PG with EFER.LME = 1 needs CR4.PAE and activates IA-32e mode (EFER.LMA);
 * clearing PG leaves it, but not from 64-bit code.
 */
function writeCr0(c: CpuCore, v: number): void {
  if ((v & CR0_PG) && !(v & CR0_PE)) c.gp0();
  if ((v & 0x20000000) && !(v & 0x40000000)) c.gp0(); // NW without CD
  if (!(v & CR0_PG) && (c.cr4 & CR4_PCIDE)) c.gp0(); // PG cannot be cleared while CR4.PCIDE = 1
  const wasPg = (c.cr0 & CR0_PG) !== 0, pg = (v & CR0_PG) !== 0;
  if (!wasPg && pg && (c.efer & EFER_LME)) {
    if (!(c.cr4 & CR4_PAE)) c.gp0();
    c.efer = (c.efer | EFER_LMA) >>> 0;
  } else if (wasPg && !pg && (c.efer & EFER_LMA)) {
    if (in64BitMode(c)) c.gp0();
    c.efer = (c.efer & ~EFER_LMA) >>> 0;
  }
  const old = c.cr0;
  c.cr0 = (v | CR0_ET) >>> 0; // ET is hard-wired to 1 since the P6 family
  if ((old ^ v) & CR0_PAGING_BITS) c.pagingChanged();
  c.syncAlignCheck(); // CR0.AM
  updateCodeMode(c);
}
