/**
 * Executes one decoded instruction (general-purpose integer instructions). Returns the RIP
 * of the next instruction; faults are thrown (see core.ts) with RIP still at the instruction
 * and no architectural state changed by the faulting instruction.
 */
import { CpuCore, MASK } from './core';
import { Insn, Op } from './insn';
import { alu, incDec, imulTrunc, mulWide, divide, mergeArith, szp } from './alu';
import { shiftOp, shiftDouble } from './shift';
import { execString } from './exec-string';
import { execSystem } from './exec-system';
import { execSse } from './sse-exec';
import { loadE, loadRmw, storeE, ea, jumpTo, push16, pop16 } from './operands';
import { ARITH_MASK } from './flags';
import { CF, ZF, DF, AF, PF, OF } from '../x86/rflags';

function pushNext(c: CpuCore, next: number): void {
  c.push64(next >>> 0, Math.floor(next / 4294967296) >>> 0);
}

function checkLock(i: Insn): boolean {
  if (!i.isMem) return false;
  switch (i.op) {
    case Op.ALU_EG: case Op.ALU_EI: return i.sub !== 7;
    case Op.INC_E: case Op.DEC_E: case Op.NOT_E: case Op.NEG_E:
    case Op.XCHG_EG: case Op.XADD: case Op.CMPXCHG: case Op.CMPXCHG16B:
      return true;
    case Op.BT_EG: case Op.BT_EI: return i.sub !== 0;
    default: return false;
  }
}

function sxLo(size: number, v: number): number {
  return size === 1 ? (v << 24) >> 24 : size === 2 ? (v << 16) >> 16 : v | 0;
}

export function exec(c: CpuCore, i: Insn): number {
  if (i.lock && !checkLock(i)) c.ud();
  const size = i.size;
  switch (i.op) {
    case Op.NOP: return i.nextAddr;
    case Op.MOV_EG: {
      const lo = c.getR(size, i.reg), hi = c.t;
      if (i.isMem) { ea(c, i); c.writeMem(size, c.eaLo, c.eaHi, lo, hi); } else c.setR(size, i.rm, lo, hi);
      return i.nextAddr;
    }
    case Op.MOV_GE: {
      const lo = loadE(c, i, size);
      c.setR(size, i.reg, lo, c.t);
      return i.nextAddr;
    }
    case Op.MOV_EI:
      if (i.isMem) ea(c, i);
      storeE(c, i, size, i.immLo, i.immHi);
      return i.nextAddr;
    case Op.MOV_RI:
      c.setR(size, i.rm, i.immLo, i.immHi);
      return i.nextAddr;
    case Op.ALU_EG: {
      const dLo = i.sub !== 7 ? loadRmw(c, i, size) : loadE(c, i, size), dHi = c.t;
      const sLo = c.getR(size, i.reg), sHi = c.t;
      const r = alu(c, i.sub, size, dLo, dHi, sLo, sHi);
      if (i.sub !== 7) storeE(c, i, size, r, c.t);
      return i.nextAddr;
    }
    case Op.ALU_GE: {
      const sLo = loadE(c, i, size), sHi = c.t;
      const dLo = c.getR(size, i.reg), dHi = c.t;
      const r = alu(c, i.sub, size, dLo, dHi, sLo, sHi);
      if (i.sub !== 7) c.setR(size, i.reg, r, c.t);
      return i.nextAddr;
    }
    case Op.ALU_EI: {
      const dLo = i.sub !== 7 ? loadRmw(c, i, size) : loadE(c, i, size), dHi = c.t;
      const r = alu(c, i.sub, size, dLo, dHi, i.immLo, i.immHi);
      if (i.sub !== 7) storeE(c, i, size, r, c.t);
      return i.nextAddr;
    }
    case Op.TEST_EG: {
      const dLo = loadE(c, i, size), dHi = c.t;
      const sLo = c.getR(size, i.reg), sHi = c.t;
      alu(c, 4, size, dLo, dHi, sLo, sHi);
      return i.nextAddr;
    }
    case Op.TEST_EI: {
      const dLo = loadE(c, i, size), dHi = c.t;
      alu(c, 4, size, dLo, dHi, i.immLo, i.immHi);
      return i.nextAddr;
    }
    case Op.INC_E: case Op.DEC_E: {
      const dLo = loadRmw(c, i, size), dHi = c.t;
      const r = incDec(c, i.op === Op.DEC_E, size, dLo, dHi);
      storeE(c, i, size, r, c.t);
      return i.nextAddr;
    }
    case Op.NOT_E: {
      const dLo = loadRmw(c, i, size), dHi = c.t;
      storeE(c, i, size, ~dLo >>> 0, ~dHi >>> 0);
      return i.nextAddr;
    }
    case Op.NEG_E: {
      const dLo = loadRmw(c, i, size), dHi = c.t;
      const r = alu(c, 5, size, 0, 0, dLo, size === 8 ? dHi : 0);
      storeE(c, i, size, r, c.t);
      return i.nextAddr;
    }
    case Op.MUL_E: case Op.IMUL1_E: {
      const sLo = loadE(c, i, size), sHi = c.t;
      mulWide(c, i.op === Op.IMUL1_E, size, sLo, sHi);
      return i.nextAddr;
    }
    case Op.DIV_E: case Op.IDIV_E: {
      const sLo = loadE(c, i, size), sHi = c.t;
      divide(c, i.op === Op.IDIV_E, size, sLo, sHi);
      mergeArith(c, ARITH_MASK & ~(CF | OF), AF); // undefined flags: as AMD Zen
      return i.nextAddr;
    }
    case Op.IMUL_GE: {
      const sLo = loadE(c, i, size), sHi = c.t;
      const dLo = c.getR(size, i.reg), dHi = c.t;
      const r = imulTrunc(c, size, dLo, dHi, sLo, sHi);
      c.setR(size, i.reg, r, c.t);
      return i.nextAddr;
    }
    case Op.IMUL_GEI: {
      const sLo = loadE(c, i, size), sHi = c.t;
      const r = imulTrunc(c, size, sLo, sHi, i.immLo, i.immHi);
      c.setR(size, i.reg, r, c.t);
      return i.nextAddr;
    }
    case Op.SHIFT_E: {
      const count = i.cnt === 0 ? i.immLo : i.cnt === 1 ? 1 : c.rl[1] & 0xff;
      const masked = count & (size === 8 ? 63 : 31);
      const vLo = masked !== 0 ? loadRmw(c, i, size) : loadE(c, i, size), vHi = c.t;
      const r = shiftOp(c, i.sub, size, vLo, vHi, count);
      if (masked !== 0 || !i.isMem) storeE(c, i, size, r, c.t);
      return i.nextAddr;
    }
    case Op.SHLD: case Op.SHRD: {
      const count = i.cnt === 0 ? i.immLo : c.rl[1] & 0xff;
      const masked = count & (size === 8 ? 63 : 31);
      const dLo = masked !== 0 ? loadRmw(c, i, size) : loadE(c, i, size), dHi = c.t;
      const sLo = c.getR(size, i.reg), sHi = c.t;
      const r = shiftDouble(c, i.op === Op.SHLD, size, dLo, dHi, sLo, sHi, count);
      if (masked !== 0 || !i.isMem) storeE(c, i, size, r, c.t);
      return i.nextAddr;
    }
    case Op.MOVZX: {
      const v = loadE(c, i, i.srcSize);
      c.setR(size, i.reg, v, 0);
      return i.nextAddr;
    }
    case Op.MOVSX: {
      const v = sxLo(i.srcSize, loadE(c, i, i.srcSize));
      c.setR(size, i.reg, v >>> 0, v < 0 ? 0xffffffff : 0);
      return i.nextAddr;
    }
    case Op.LEA:
      c.calcEA(i.base, i.index, i.scale, i.dispLo, i.dispHi, i.asize, 0, 0);
      c.setR(size, i.reg, c.eaLo, c.eaHi);
      return i.nextAddr;
    case Op.XCHG_EG: {
      const aLo = loadRmw(c, i, size), aHi = c.t;
      const bLo = c.getR(size, i.reg), bHi = c.t;
      storeE(c, i, size, bLo, bHi);
      c.setR(size, i.reg, aLo, aHi);
      return i.nextAddr;
    }
    case Op.PUSH_R:
      if (size === 8) c.push64(c.rl[i.rm], c.rh[i.rm]);
      else push16(c, c.rl[i.rm] & 0xffff);
      return i.nextAddr;
    case Op.POP_R:
      if (size === 8) { const lo = c.pop64(); c.setR(8, i.rm, lo, c.t); }
      else { const v = pop16(c); c.setR(2, i.rm, v, 0); }
      return i.nextAddr;
    case Op.PUSH_I:
      if (size === 8) c.push64(i.immLo, i.immHi);
      else push16(c, i.immLo & 0xffff);
      return i.nextAddr;
    case Op.PUSH_E: {
      const lo = loadE(c, i, size), hi = c.t;
      if (size === 8) c.push64(lo, hi); else push16(c, lo);
      return i.nextAddr;
    }
    case Op.POP_E: {
      // The destination address is computed with RSP already incremented (SDM POP).
      const spLo = c.rl[4], spHi = c.rh[4];
      const lo = c.readMem(size, spLo, spHi), hi = c.t;
      c.addRsp(size);
      const nLo = c.rl[4], nHi = c.rh[4];
      if (i.isMem) {
        ea(c, i);
        c.rl[4] = spLo; c.rh[4] = spHi;
        c.writeMem(size, c.eaLo, c.eaHi, lo, hi);
        c.rl[4] = nLo; c.rh[4] = nHi;
      } else c.setR(size, i.rm, lo, hi);
      return i.nextAddr;
    }
    case Op.CMOV: {
      const lo = loadE(c, i, size), hi = c.t;
      if (c.cond(i.cc)) c.setR(size, i.reg, lo, hi);
      else if (size === 4) c.rh[i.reg] = 0; // 32-bit CMOVcc zero-extends even when false
      return i.nextAddr;
    }
    case Op.SETCC:
      if (i.isMem) ea(c, i);
      storeE(c, i, 1, c.cond(i.cc) ? 1 : 0, 0);
      return i.nextAddr;
    case Op.JCC:
      if (c.cond(i.cc)) return jumpTo(c, i.targetLo, i.targetHi);
      return i.nextAddr;
    case Op.JMP_REL:
      return jumpTo(c, i.targetLo, i.targetHi);
    case Op.CALL_REL:
      pushNext(c, i.nextAddr);
      return jumpTo(c, i.targetLo, i.targetHi);
    case Op.JMP_E: {
      const lo = loadE(c, i, 8);
      return jumpTo(c, lo, c.t);
    }
    case Op.CALL_E: {
      const lo = loadE(c, i, 8), hi = c.t;
      const top = hi >>> 15;
      if (hi !== 0 && top !== 0 && top !== 0x1ffff) c.gp0();
      pushNext(c, i.nextAddr);
      return jumpTo(c, lo, hi);
    }
    case Op.RET: {
      const spLo = c.rl[4], spHi = c.rh[4];
      const lo = c.rd64(spLo, spHi), hi = c.t;
      const r = jumpTo(c, lo, hi);
      c.addRsp(8 + i.imm2);
      return r;
    }
    case Op.LEAVE: {
      const bLo = c.rl[5], bHi = c.rh[5];
      if (size === 8) {
        const lo = c.rd64(bLo, bHi), hi = c.t;
        c.rl[4] = bLo; c.rh[4] = bHi;
        c.addRsp(8);
        c.rl[5] = lo; c.rh[5] = hi;
      } else {
        const v = c.rd16(bLo, bHi);
        c.rl[4] = bLo; c.rh[4] = bHi;
        c.addRsp(2);
        c.setR(2, 5, v, 0);
      }
      return i.nextAddr;
    }
    case Op.CBW: {
      const rl = c.rl;
      if (size === 2) rl[0] = (rl[0] & 0xffff0000) | (((rl[0] << 24) >> 24) & 0xffff);
      else if (size === 4) { rl[0] = ((rl[0] << 16) >> 16) >>> 0; c.rh[0] = 0; }
      else c.rh[0] = (rl[0] | 0) < 0 ? 0xffffffff : 0;
      return i.nextAddr;
    }
    case Op.CWD: {
      const rl = c.rl;
      if (size === 2) rl[2] = (rl[2] & 0xffff0000) | (rl[0] & 0x8000 ? 0xffff : 0);
      else if (size === 4) { rl[2] = (rl[0] | 0) < 0 ? 0xffffffff : 0; c.rh[2] = 0; }
      else { const s = (c.rh[0] | 0) < 0 ? 0xffffffff : 0; rl[2] = s; c.rh[2] = s; }
      return i.nextAddr;
    }
    case Op.BT_EG: case Op.BT_EI: return bitTest(c, i);
    case Op.BSF: case Op.BSR: {
      const lo = loadE(c, i, size), hi = size === 8 ? c.t : 0;
      const v = size === 8 ? lo : (lo & MASK[size]) >>> 0;
      // undefined flags as AMD Zen: CF OF SF AF = 0, PF from the result (index or old dest)
      if ((v | hi) === 0) { c.setArith(ZF | PF); return i.nextAddr; }
      let idx: number;
      if (i.op === Op.BSF) idx = v !== 0 ? 31 - Math.clz32(v & -v) : 32 + 31 - Math.clz32(hi & -hi);
      else idx = hi !== 0 ? 63 - Math.clz32(hi) : 31 - Math.clz32(v);
      c.setR(size, i.reg, idx, 0);
      c.setArith(szp(1, idx, 0) & PF);
      return i.nextAddr;
    }
    case Op.BSWAP: {
      const r = i.rm;
      if (size === 8) { const lo = c.rl[r]; c.rl[r] = sw(c.rh[r]); c.rh[r] = sw(lo); }
      else if (size === 4) { c.rl[r] = sw(c.rl[r]); c.rh[r] = 0; }
      else c.rl[r] = c.rl[r] & 0xffff0000; // 16-bit BSWAP is undefined: we clear the word
      return i.nextAddr;
    }
    case Op.XADD: {
      const dLo = loadRmw(c, i, size), dHi = c.t;
      const sLo = c.getR(size, i.reg), sHi = c.t;
      const r = alu(c, 0, size, dLo, dHi, sLo, sHi), rHi = c.t;
      c.setR(size, i.reg, dLo, dHi);
      storeE(c, i, size, r, rHi);
      return i.nextAddr;
    }
    case Op.CMPXCHG: {
      const dLo = loadRmw(c, i, size), dHi = c.t; // the destination is written either way
      const aLo = c.getR(size, 0), aHi = c.t;
      alu(c, 7, size, aLo, aHi, dLo, dHi);
      if (c.getZF()) {
        const sLo = c.getR(size, i.reg), sHi = c.t;
        storeE(c, i, size, sLo, sHi);
      } else {
        if (i.isMem) storeE(c, i, size, dLo, dHi); // the destination is always written back
        c.setR(size, 0, dLo, dHi);
      }
      return i.nextAddr;
    }
    case Op.CMPXCHG16B: return cmpxchgWide(c, i);
    case Op.CLC: mergeArith(c, CF, 0); return i.nextAddr;
    case Op.STC: mergeArith(c, CF, CF); return i.nextAddr;
    case Op.CMC: mergeArith(c, CF, c.getCF() ? 0 : CF); return i.nextAddr;
    case Op.CLD: c.rflags &= ~DF; return i.nextAddr;
    case Op.STD: c.rflags |= DF; return i.nextAddr;
    case Op.SAHF: {
      const ah = (c.rl[0] >>> 8) & 0xff;
      mergeArith(c, 0xd5, ah);
      return i.nextAddr;
    }
    case Op.LAHF: {
      const f = (c.getFlags() & 0xd5) | 2;
      c.rl[0] = (c.rl[0] & 0xffff00ff) | (f << 8);
      return i.nextAddr;
    }
    case Op.LOOP: {
      const a64 = i.asize === 8;
      if (i.sub !== 3) {
        // decrement rCX without touching flags
        let lo = c.rl[1] - 1, hi = c.rh[1];
        if (lo < 0) { lo += 4294967296; hi = a64 ? (hi - 1) >>> 0 : hi; }
        c.rl[1] = lo; if (a64) c.rh[1] = hi; else c.rh[1] = 0;
      }
      const zero = a64 ? (c.rl[1] | c.rh[1]) === 0 : c.rl[1] === 0;
      let take: boolean;
      switch (i.sub) {
        case 0: take = !zero && !c.getZF(); break;
        case 1: take = !zero && c.getZF() !== 0; break;
        case 2: take = !zero; break;
        default: take = zero; break;
      }
      return take ? jumpTo(c, i.targetLo, i.targetHi) : i.nextAddr;
    }
    case Op.MOVS: case Op.STOS: case Op.LODS: case Op.CMPS: case Op.SCAS:
      return execString(c, i);
    case Op.UD: case Op.UD2:
      return c.ud();
    case Op.GP_TOO_LONG:
      return c.gp0();
    case Op.SSE:
      return execSse(c, i);
    default:
      return execSystem(c, i);
  }
}

function sw(v: number): number {
  return (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)) >>> 0;
}


/** BT/BTS/BTR/BTC: CF = the selected bit; memory bit strings use the signed register offset. */
function bitTest(c: CpuCore, i: Insn): number {
  const size = i.size, bits = size * 8;
  let bit: number;
  if (i.op === Op.BT_EI) {
    bit = i.immLo & (bits - 1);
    if (i.isMem) ea(c, i);
  } else {
    const oLo = c.getR(size, i.reg), oHi = c.t;
    if (!i.isMem) bit = oLo & (bits - 1);
    else {
      // signed bit offset of the operand size
      let off: number;
      if (size === 8) off = (oHi | 0) * 4294967296 + oLo;
      else off = sxLo(size, oLo);
      const unit = Math.floor(off / bits);
      bit = off - unit * bits;
      ea(c, i);
      const d = unit * size;
      const lo = c.eaLo + d;
      c.eaLo = lo >>> 0;
      c.eaHi = (c.eaHi + Math.floor(lo / 4294967296)) >>> 0;
    }
  }
  let vLo: number, vHi = 0;
  // BTS/BTR/BTC read with write intent: a read-only page faults before CF changes
  if (i.isMem && i.sub !== 0) c.probeWrite(c.eaLo, c.eaHi, size);
  if (i.isMem) { vLo = c.readMem(size, c.eaLo, c.eaHi); vHi = size === 8 ? c.t : 0; }
  else { vLo = c.getR(size, i.rm); vHi = size === 8 ? c.t : 0; }
  const cf = bit < 32 ? (vLo >>> bit) & 1 : (vHi >>> (bit - 32)) & 1;
  mergeArith(c, CF, cf);
  if (i.sub !== 0) {
    const m = bit < 32 ? (1 << bit) >>> 0 : 0;
    const mh = bit >= 32 ? (1 << (bit - 32)) >>> 0 : 0;
    let nLo: number, nHi: number;
    if (i.sub === 1) { nLo = vLo | m; nHi = vHi | mh; }
    else if (i.sub === 2) { nLo = vLo & ~m; nHi = vHi & ~mh; }
    else { nLo = vLo ^ m; nHi = vHi ^ mh; }
    storeE(c, i, size, nLo >>> 0, nHi >>> 0);
  }
  return i.nextAddr;
}

/** CMPXCHG8B (no REX.W) / CMPXCHG16B (REX.W, 16-byte aligned). */
function cmpxchgWide(c: CpuCore, i: Insn): number {
  ea(c, i, i.size === 8 ? 16 : 8);
  const a = c.eaLo, ah = c.eaHi;
  if (i.size === 8) {
    if (a & 15) c.gp0();
    const m0 = c.rd64(a, ah), m1 = c.t;
    const hiA = a + 8;
    const m2 = c.rd64(hiA >>> 0, ah), m3 = c.t;
    c.probeWrite(a, ah, 16);
    const eq = m0 === c.rl[0] && m1 === c.rh[0] && m2 === c.rl[2] && m3 === c.rh[2];
    if (eq) {
      c.wr64(a, ah, c.rl[3], c.rh[3]);
      c.wr64(hiA >>> 0, ah, c.rl[1], c.rh[1]);
    } else {
      c.wr64(a, ah, m0, m1); c.wr64(hiA >>> 0, ah, m2, m3);
      c.rl[0] = m0; c.rh[0] = m1; c.rl[2] = m2; c.rh[2] = m3;
    }
    mergeArith(c, ZF, eq ? ZF : 0);
  } else {
    const m0 = c.rd64(a, ah), m1 = c.t;
    const eq = m0 === c.rl[0] && m1 === c.rl[2];
    if (eq) c.wr64(a, ah, c.rl[3], c.rl[1]);
    else {
      c.wr64(a, ah, m0, m1);
      c.rl[0] = m0; c.rh[0] = 0; c.rl[2] = m1; c.rh[2] = 0;
    }
    mergeArith(c, ZF, eq ? ZF : 0);
  }
  return i.nextAddr;
}
