/**
 * The instructions whose behaviour outside 64-bit mode (protected and compatibility mode)
 * differs from 64-bit mode in the stack or the instruction pointer: PUSH/POP (general,
 * immediate, memory, segment registers, flags), PUSHA/POPA, near CALL/RET/JMP through
 * registers or memory, LEAVE, far JMP/CALL ptr16:32, and LDS/LES/LSS/LFS/LGS (also valid in
 * 64-bit mode). The stack is SS:ESP, or SS:SP when SS.B = 0; every access adds the SS base.
 * bindHandler() routes these here for instructions decoded outside 64-bit mode only, so
 * the 64-bit paths pay nothing.
 */
import { CpuCore } from './core';
import { Insn, Op } from './insn';
import { exec } from './exec';
import { loadE, storeE, ea } from './operands';
import { CS, SS, AR_DB, loadDataSegment } from './segments';
import { farJmpCallDirect } from './far-transfer';
import { POPF_MASK } from './flags';
import { IF, RF, VM, IOPL } from '../x86/rflags';
import { SHADOW_MOVSS } from './exec-system';

function wide(c: CpuCore): boolean {
  return (c.segAttr[SS] & AR_DB) !== 0;
}

/** ESP (or SP) after moving by delta. */
function movedSp(c: CpuCore, delta: number): number {
  const sp = c.rl[4];
  return wide(c) ? (sp + delta) >>> 0 : ((sp & 0xffff0000) | ((sp + delta) & 0xffff)) >>> 0;
}

/** Linear address of the `size`-byte stack slot `off` bytes above the current top (SS limit: #SS(0)). */
function slot(c: CpuCore, off: number, size: number): number {
  const sp = wide(c) ? (c.rl[4] + off) >>> 0 : (c.rl[4] + off) & 0xffff;
  if (c.segLimit[SS] !== 0xffffffff || (c.segAttr[SS] & 4) !== 0) c.segmentCheck(SS, sp, size);
  return (c.segBase[SS] + sp) >>> 0;
}

function setSp(c: CpuCore, sp: number): void {
  c.rl[4] = sp;
  c.rh[4] = 0;
}

export function lpush(c: CpuCore, size: number, v: number): void {
  const a = slot(c, -size, size);
  c.writeMem(size, a, 0, v, 0);
  setSp(c, movedSp(c, -size));
}

export function lpop(c: CpuCore, size: number): number {
  const v = c.readMem(size, slot(c, 0, size), 0);
  setSp(c, movedSp(c, size));
  return v;
}

/** A near branch: the target EIP (IP) must be within the CS limit, else #GP(0) at the branch (SDM JMP, CALL, RET, Jcc). */
function branch(c: CpuCore, i: Insn, target: number): number {
  const t = i.size === 2 ? target & 0xffff : target >>> 0;
  if (t > c.segLimit[CS]) c.gp0();
  c.branchTaken = true;
  return t;
}

/** Jcc, JMP rel, LOOPcc/JECXZ: the generic path, then the CS-limit check of a taken branch (ECX unchanged on #GP). */
function relBranch(c: CpuCore, i: Insn): number {
  const ecx = c.rl[1];
  const t = exec(c, i);
  if (t !== i.nextAddr && t > c.segLimit[CS]) { c.rl[1] = ecx; c.gp0(); }
  return t;
}

/** A segment register and a general register from memory (m16:16/32/64). */
function loadFarPointer(c: CpuCore, i: Insn): number {
  ea(c, i, i.size + 2);
  const size = i.size;
  const off = c.readMem(size, c.eaLo, c.eaHi), offHi = size === 8 ? c.t : 0;
  const a = c.eaLo + size;
  const sel = c.rd16(a >>> 0, (c.eaHi + (a > 0xffffffff ? 1 : 0)) >>> 0);
  loadDataSegment(c, i.sub, sel);
  if (i.sub === SS) { c.shadowNext |= SHADOW_MOVSS; c.attention = 1; }
  c.setR(size, i.reg, off, offHi);
  return i.nextAddr;
}

/** The CS-limit check of a CALL/RET target before the stack changes. */
function checkedTarget(c: CpuCore, i: Insn, target: number): number {
  const t = i.size === 2 ? target & 0xffff : target >>> 0;
  if (t > c.segLimit[CS]) c.gp0();
  return t;
}

export function execLegacy(c: CpuCore, i: Insn): number {
  const size = i.size;
  switch (i.op) {
    case Op.PUSH_R: lpush(c, size, c.rl[i.rm]); return i.nextAddr;
    case Op.POP_R: { const v = lpop(c, size); c.setR(size, i.rm, v, 0); return i.nextAddr; }
    case Op.PUSH_I: lpush(c, size, i.immLo); return i.nextAddr;
    case Op.PUSH_E: { const v = loadE(c, i, size); lpush(c, size, v); return i.nextAddr; }
    case Op.POP_E: {
      // the destination address is computed with ESP already incremented (SDM POP)
      const old = c.rl[4];
      const v = c.readMem(size, slot(c, 0, size), 0);
      setSp(c, movedSp(c, size));
      if (i.isMem) {
        ea(c, i);
        c.rl[4] = old;
        storeE(c, i, size, v, 0);
        setSp(c, movedSp(c, size));
      } else c.setR(size, i.rm, v, 0);
      return i.nextAddr;
    }
    case Op.PUSH_SEG: lpush(c, size, c.sreg[i.sub]); return i.nextAddr;
    case Op.POP_SEG: {
      // the segment is loaded before ESP moves, so a faulting load leaves ESP as it was
      const v = c.readMem(size, slot(c, 0, size), 0) & 0xffff;
      loadDataSegment(c, i.sub, v);
      setSp(c, movedSp(c, size));
      if (i.sub === SS) { c.shadowNext |= SHADOW_MOVSS; c.attention = 1; }
      return i.nextAddr;
    }
    case Op.PUSHA: {
      const sp = c.rl[4];
      c.probeWrite(slot(c, -8 * size, 8 * size), 0, 8 * size);
      for (let r = 0; r < 8; r++) lpush(c, size, r === 4 ? sp : c.rl[r]);
      return i.nextAddr;
    }
    case Op.POPA: {
      for (let r = 7; r >= 0; r--) {
        const v = lpop(c, size);
        if (r !== 4) c.setR(size, r, v, 0); // the saved ESP is skipped
      }
      return i.nextAddr;
    }
    case Op.PUSHF: {
      const f = c.getFlags() & ~(RF | VM); // RF and VM are cleared in the image
      lpush(c, size, size === 2 ? f & 0xffff : f);
      return i.nextAddr;
    }
    case Op.POPF: {
      const old = c.getFlags();
      let v = lpop(c, size);
      if (size === 2) v = (v & 0xffff) | (old & 0xffff0000);
      // IOPL changes only at CPL 0, IF only when CPL <= IOPL (no #GP: POPF ignores them)
      let mask = POPF_MASK;
      if (c.cpl > 0) mask &= ~IOPL;
      if (c.cpl > ((old & IOPL) >>> 12)) mask &= ~IF;
      c.putFlags(((old & ~mask) | (v & mask)) & ~RF); // POPF clears RF
      return i.nextAddr;
    }
    case Op.CALL_REL: { const t = checkedTarget(c, i, i.targetLo); lpush(c, size, i.nextAddr); return branch(c, i, t); }
    case Op.CALL_E: { const t = checkedTarget(c, i, loadE(c, i, size)); lpush(c, size, i.nextAddr); return branch(c, i, t); }
    case Op.JMP_E: return branch(c, i, loadE(c, i, size));
    case Op.RET: {
      const t = checkedTarget(c, i, c.readMem(size, slot(c, 0, size), 0));
      setSp(c, movedSp(c, size + i.imm2));
      return branch(c, i, t);
    }
    case Op.JCC: case Op.JMP_REL: case Op.LOOP: return relBranch(c, i);
    case Op.LEAVE: {
      const bp = wide(c) ? c.rl[5] : c.rl[5] & 0xffff;
      setSp(c, wide(c) ? bp : ((c.rl[4] & 0xffff0000) | bp) >>> 0);
      c.setR(size, 5, lpop(c, size), 0);
      return i.nextAddr;
    }
    case Op.JMP_FAR_PTR: return farJmpCallDirect(c, i, false);
    case Op.CALL_FAR_PTR: return farJmpCallDirect(c, i, true);
    case Op.LOAD_FAR_PTR: return loadFarPointer(c, i);
    default: return exec(c, i);
  }
}

/** The instructions execLegacy handles differently outside 64-bit mode. */
export function isLegacyOp(op: Op): boolean {
  switch (op) {
    case Op.PUSH_R: case Op.POP_R: case Op.PUSH_I: case Op.PUSH_E: case Op.POP_E:
    case Op.PUSH_SEG: case Op.POP_SEG: case Op.PUSHA: case Op.POPA: case Op.PUSHF: case Op.POPF:
    case Op.CALL_REL: case Op.CALL_E: case Op.JMP_E: case Op.RET: case Op.LEAVE:
    case Op.JMP_FAR_PTR: case Op.CALL_FAR_PTR: case Op.LOAD_FAR_PTR:
    case Op.JCC: case Op.JMP_REL: case Op.LOOP:
      return true;
    default:
      return false;
  }
}
