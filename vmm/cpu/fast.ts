/**
 * Specialized handlers for the instruction forms gcc code runs most (register/memory MOV,
 * LEA, ALU, TEST, INC/DEC, PUSH/POP, CALL/RET/JMP/Jcc, MOVZX/MOVSX, CMOV, SETcc), chosen
 * once per decoded instruction by bindHandler(). Everything else runs through the generic
 * exec(). Each handler has exactly the semantics of the generic path (the native
 * differential test and the workload checksums run through both).
 */
import { CpuCore } from './core';
import { Insn, Op, Handler } from './insn';
import { exec } from './exec';
import { LF } from './flags';
import { alu, incDec } from './alu';
import { shiftOp } from './shift';

/** Effective address into c.eaLo/eaHi; fast for [base+disp] and [disp] (RIP-relative). */
function ea(c: CpuCore, i: Insn): void {
  if (i.index < 0 && i.seg === 0 && i.asize === 8) {
    const b = i.base;
    if (b < 0) { c.eaLo = i.dispLo; c.eaHi = i.dispHi; return; }
    const lo = c.rl[b] + i.dispLo;
    c.eaLo = lo >>> 0;
    c.eaHi = (c.rh[b] + i.dispHi + (lo > 0xffffffff ? 1 : 0)) >>> 0;
    return;
  }
  c.calcEA(i.base, i.index, i.scale, i.dispLo, i.dispHi, i.asize, i.seg);
}

/** Condition codes with a fast path for the lazy flags of CMP/SUB and logic results. */
function cond(c: CpuCore, cc: number): boolean {
  const op = c.lfOp;
  if (op === LF.SUB && c.lfCin === 0 && cc >= 2 && cc !== 10 && cc !== 11) {
    let lt: boolean, eq: boolean, slt: boolean;
    if (c.lfSize === 8) {
      const dh = c.lfDHi, sh = c.lfSHi, dl = c.lfDLo, sl = c.lfSLo;
      eq = dh === sh && dl === sl;
      lt = dh < sh || (dh === sh && dl < sl);
      slt = (dh | 0) < (sh | 0) || (dh === sh && dl < sl);
    } else if (c.lfSize === 4) {
      const d = c.lfDLo, s = c.lfSLo;
      eq = d === s; lt = d < s; slt = (d | 0) < (s | 0);
    } else return c.cond(cc);
    switch (cc) {
      case 2: return lt;
      case 3: return !lt;
      case 4: return eq;
      case 5: return !eq;
      case 6: return lt || eq;
      case 7: return !lt && !eq;
      case 8: case 9: return c.cond(cc);
      case 12: return slt;
      case 13: return !slt;
      case 14: return slt || eq;
      default: return !slt && !eq;
    }
  }
  if (op === LF.LOGIC) {
    const zero = (c.lfRLo | c.lfRHi) === 0;
    const neg = c.lfSize === 8 ? (c.lfRHi >>> 31) !== 0 : c.lfSize === 4 ? (c.lfRLo >>> 31) !== 0 : false;
    if (c.lfSize >= 4) {
      switch (cc) {
        case 0: case 2: return false;
        case 1: case 3: return true;
        case 4: case 6: return zero;
        case 5: case 7: return !zero;
        case 8: case 12: return neg;
        case 9: case 13: return !neg;
        case 14: return zero || neg;
        case 15: return !zero && !neg;
        default: return c.cond(cc);
      }
    }
  }
  return c.cond(cc);
}

function jumpTarget(c: CpuCore, i: Insn): number {
  c.branchTaken = true;
  return i.targetHi === 0 ? i.targetLo : i.targetHi * 4294967296 + i.targetLo;
}

// ---- MOV ----------------------------------------------------------------------------------
const movRR64: Handler = (c, i) => { c.rl[i.rm] = c.rl[i.reg]; c.rh[i.rm] = c.rh[i.reg]; return i.nextAddr; };
const movRR32: Handler = (c, i) => { c.rl[i.rm] = c.rl[i.reg]; c.rh[i.rm] = 0; return i.nextAddr; };
const movGR64: Handler = (c, i) => { c.rl[i.reg] = c.rl[i.rm]; c.rh[i.reg] = c.rh[i.rm]; return i.nextAddr; };
const movGR32: Handler = (c, i) => { c.rl[i.reg] = c.rl[i.rm]; c.rh[i.reg] = 0; return i.nextAddr; };
const movStore64: Handler = (c, i) => { ea(c, i); c.wr64(c.eaLo, c.eaHi, c.rl[i.reg], c.rh[i.reg]); return i.nextAddr; };
const movStore32: Handler = (c, i) => { ea(c, i); c.wr32(c.eaLo, c.eaHi, c.rl[i.reg]); return i.nextAddr; };
const movLoad64: Handler = (c, i) => { ea(c, i); const v = c.rd64(c.eaLo, c.eaHi); c.rl[i.reg] = v; c.rh[i.reg] = c.t; return i.nextAddr; };
const movLoad32: Handler = (c, i) => { ea(c, i); const v = c.rd32(c.eaLo, c.eaHi); c.rl[i.reg] = v; c.rh[i.reg] = 0; return i.nextAddr; };
const movRI: Handler = (c, i) => { c.rl[i.rm] = i.immLo; c.rh[i.rm] = i.size === 8 ? i.immHi : 0; return i.nextAddr; };
const movStoreImm64: Handler = (c, i) => { ea(c, i); c.wr64(c.eaLo, c.eaHi, i.immLo, i.immHi); return i.nextAddr; };
const movStoreImm32: Handler = (c, i) => { ea(c, i); c.wr32(c.eaLo, c.eaHi, i.immLo); return i.nextAddr; };
const lea64: Handler = (c, i) => {
  if (i.index < 0) {
    if (i.base < 0) { c.rl[i.reg] = i.dispLo; c.rh[i.reg] = i.dispHi; return i.nextAddr; }
    const lo = c.rl[i.base] + i.dispLo;
    c.rh[i.reg] = (c.rh[i.base] + i.dispHi + (lo > 0xffffffff ? 1 : 0)) >>> 0;
    c.rl[i.reg] = lo >>> 0;
    return i.nextAddr;
  }
  c.calcEA(i.base, i.index, i.scale, i.dispLo, i.dispHi, 8, 0);
  c.rl[i.reg] = c.eaLo; c.rh[i.reg] = c.eaHi;
  return i.nextAddr;
};
const movzxLoad: Handler = (c, i) => {
  ea(c, i);
  const v = i.srcSize === 1 ? c.rd8(c.eaLo, c.eaHi) : c.rd16(c.eaLo, c.eaHi);
  c.rl[i.reg] = v; c.rh[i.reg] = 0;
  return i.nextAddr;
};

// ---- ALU ----------------------------------------------------------------------------------
/** 64-bit add/sub/cmp/and/or/xor; returns lo, hi in c.t. */
function alu64(c: CpuCore, op: number, dLo: number, dHi: number, sLo: number, sHi: number): number {
  let rLo: number, rHi: number;
  switch (op) {
    case 0: {
      const s = dLo + sLo;
      rLo = s >>> 0; rHi = (dHi + sHi + (s > 0xffffffff ? 1 : 0)) >>> 0;
      c.setLazy(LF.ADD, 8, dLo, dHi, sLo, sHi, rLo, rHi, 0);
      break;
    }
    case 5: case 7: {
      const s = dLo - sLo;
      rLo = s >>> 0; rHi = (dHi - sHi - (s < 0 ? 1 : 0)) >>> 0;
      c.setLazy(LF.SUB, 8, dLo, dHi, sLo, sHi, rLo, rHi, 0);
      break;
    }
    case 4: rLo = (dLo & sLo) >>> 0; rHi = (dHi & sHi) >>> 0; c.setLazy(LF.LOGIC, 8, 0, 0, 0, 0, rLo, rHi, 0); break;
    case 1: rLo = (dLo | sLo) >>> 0; rHi = (dHi | sHi) >>> 0; c.setLazy(LF.LOGIC, 8, 0, 0, 0, 0, rLo, rHi, 0); break;
    case 6: rLo = (dLo ^ sLo) >>> 0; rHi = (dHi ^ sHi) >>> 0; c.setLazy(LF.LOGIC, 8, 0, 0, 0, 0, rLo, rHi, 0); break;
    default: return alu(c, op, 8, dLo, dHi, sLo, sHi);
  }
  c.t = rHi;
  return rLo;
}

function alu32(c: CpuCore, op: number, d: number, s: number): number {
  let r: number;
  switch (op) {
    case 0: r = (d + s) >>> 0; c.setLazy(LF.ADD, 4, d, 0, s, 0, r, 0, 0); return r;
    case 5: case 7: r = (d - s) >>> 0; c.setLazy(LF.SUB, 4, d, 0, s, 0, r, 0, 0); return r;
    case 4: r = (d & s) >>> 0; break;
    case 1: r = (d | s) >>> 0; break;
    case 6: r = (d ^ s) >>> 0; break;
    default: return alu(c, op, 4, d, 0, s, 0);
  }
  c.setLazy(LF.LOGIC, 4, 0, 0, 0, 0, r, 0, 0);
  return r;
}

const aluRR64: Handler = (c, i) => { // ALU_EG reg: rm op= reg
  const d = i.rm, s = i.reg;
  const r = alu64(c, i.sub, c.rl[d], c.rh[d], c.rl[s], c.rh[s]);
  if (i.sub !== 7) { c.rl[d] = r; c.rh[d] = c.t; }
  return i.nextAddr;
};
const aluRR32: Handler = (c, i) => {
  const d = i.rm;
  const r = alu32(c, i.sub, c.rl[d], c.rl[i.reg]);
  if (i.sub !== 7) { c.rl[d] = r; c.rh[d] = 0; }
  return i.nextAddr;
};
const aluGR64: Handler = (c, i) => { // ALU_GE reg: reg op= rm
  const d = i.reg, s = i.rm;
  const r = alu64(c, i.sub, c.rl[d], c.rh[d], c.rl[s], c.rh[s]);
  if (i.sub !== 7) { c.rl[d] = r; c.rh[d] = c.t; }
  return i.nextAddr;
};
const aluGR32: Handler = (c, i) => {
  const d = i.reg;
  const r = alu32(c, i.sub, c.rl[d], c.rl[i.rm]);
  if (i.sub !== 7) { c.rl[d] = r; c.rh[d] = 0; }
  return i.nextAddr;
};
const aluGM64: Handler = (c, i) => { // reg op= [mem]
  ea(c, i);
  const sLo = c.rd64(c.eaLo, c.eaHi), sHi = c.t;
  const d = i.reg;
  const r = alu64(c, i.sub, c.rl[d], c.rh[d], sLo, sHi);
  if (i.sub !== 7) { c.rl[d] = r; c.rh[d] = c.t; }
  return i.nextAddr;
};
const aluGM32: Handler = (c, i) => {
  ea(c, i);
  const s = c.rd32(c.eaLo, c.eaHi);
  const d = i.reg;
  const r = alu32(c, i.sub, c.rl[d], s);
  if (i.sub !== 7) { c.rl[d] = r; c.rh[d] = 0; }
  return i.nextAddr;
};
const aluRI64: Handler = (c, i) => {
  const d = i.rm;
  const r = alu64(c, i.sub, c.rl[d], c.rh[d], i.immLo, i.immHi);
  if (i.sub !== 7) { c.rl[d] = r; c.rh[d] = c.t; }
  return i.nextAddr;
};
const aluRI32: Handler = (c, i) => {
  const d = i.rm;
  const r = alu32(c, i.sub, c.rl[d], i.immLo);
  if (i.sub !== 7) { c.rl[d] = r; c.rh[d] = 0; }
  return i.nextAddr;
};
const aluMI32: Handler = (c, i) => {
  ea(c, i);
  const d = c.rd32(c.eaLo, c.eaHi);
  const r = alu32(c, i.sub, d, i.immLo);
  if (i.sub !== 7) c.wr32(c.eaLo, c.eaHi, r);
  return i.nextAddr;
};
const aluMI64: Handler = (c, i) => {
  ea(c, i);
  const dLo = c.rd64(c.eaLo, c.eaHi), dHi = c.t;
  const r = alu64(c, i.sub, dLo, dHi, i.immLo, i.immHi);
  if (i.sub !== 7) c.wr64(c.eaLo, c.eaHi, r, c.t);
  return i.nextAddr;
};
const testRR64: Handler = (c, i) => {
  const a = i.rm, b = i.reg;
  const lo = (c.rl[a] & c.rl[b]) >>> 0, hi = (c.rh[a] & c.rh[b]) >>> 0;
  c.setLazy(LF.LOGIC, 8, 0, 0, 0, 0, lo, hi, 0);
  return i.nextAddr;
};
const testRR32: Handler = (c, i) => {
  c.setLazy(LF.LOGIC, 4, 0, 0, 0, 0, (c.rl[i.rm] & c.rl[i.reg]) >>> 0, 0, 0, );
  return i.nextAddr;
};
const incDecR: Handler = (c, i) => {
  const d = i.rm;
  const r = incDec(c, i.op === Op.DEC_E, i.size, c.rl[d], c.rh[d]);
  c.rl[d] = r; c.rh[d] = i.size === 8 ? c.t : 0;
  return i.nextAddr;
};

// ---- stack and control flow -------------------------------------------------------------
const pushR: Handler = (c, i) => { c.push64(c.rl[i.rm], c.rh[i.rm]); return i.nextAddr; };
const popR: Handler = (c, i) => { const lo = c.pop64(); c.rl[i.rm] = lo; c.rh[i.rm] = c.t; return i.nextAddr; };
const callRel: Handler = (c, i) => {
  const n = i.nextAddr;
  c.push64(n >>> 0, n > 0xffffffff ? Math.floor(n / 4294967296) >>> 0 : 0);
  return jumpTarget(c, i);
};
const ret: Handler = (c, i) => {
  const spLo = c.rl[4], spHi = c.rh[4];
  const lo = c.rd64(spLo, spHi), hi = c.t;
  if (hi !== 0) return exec(c, i); // non-canonical/high target: the generic path decides
  const n = spLo + 8 + i.imm2;
  c.rl[4] = n >>> 0;
  if (n > 0xffffffff) c.rh[4] = (spHi + 1) >>> 0;
  c.branchTaken = true;
  return lo;
};
const jmpRel: Handler = (c, i) => jumpTarget(c, i);
const jcc: Handler = (c, i) => (cond(c, i.cc) ? jumpTarget(c, i) : i.nextAddr);
const cmovRR: Handler = (c, i) => {
  if (cond(c, i.cc)) { c.rl[i.reg] = c.rl[i.rm]; c.rh[i.reg] = i.size === 8 ? c.rh[i.rm] : 0; }
  else if (i.size === 4) c.rh[i.reg] = 0;
  return i.nextAddr;
};
const setccR: Handler = (c, i) => { c.setR(1, i.rm, cond(c, i.cc) ? 1 : 0, 0); return i.nextAddr; };
const shiftRI: Handler = (c, i) => {
  const d = i.rm;
  const count = i.cnt === 0 ? i.immLo : i.cnt === 1 ? 1 : c.rl[1] & 0xff;
  const r = shiftOp(c, i.sub, i.size, c.rl[d], c.rh[d], count);
  if (i.size === 8) { c.rl[d] = r; c.rh[d] = c.t; } else { c.rl[d] = r; c.rh[d] = 0; }
  return i.nextAddr;
};
const nop: Handler = (_c, i) => i.nextAddr;

/** Picks the handler for a freshly decoded instruction. */
export function bindHandler(i: Insn): void {
  i.fn = choose(i);
}

function choose(i: Insn): Handler {
  if (i.lock) return exec;
  const s = i.size;
  const q = s === 8, d = s === 4;
  if (!q && !d && i.op !== Op.JCC && i.op !== Op.JMP_REL && i.op !== Op.CALL_REL && i.op !== Op.RET &&
    i.op !== Op.NOP && i.op !== Op.SETCC && i.op !== Op.MOVZX) return exec;
  switch (i.op) {
    case Op.NOP: return nop;
    case Op.MOV_EG: return i.isMem ? (q ? movStore64 : movStore32) : (q ? movRR64 : movRR32);
    case Op.MOV_GE: return i.isMem ? (q ? movLoad64 : movLoad32) : (q ? movGR64 : movGR32);
    case Op.MOV_RI: return movRI;
    case Op.MOV_EI: return i.isMem ? (q ? movStoreImm64 : movStoreImm32) : exec;
    case Op.LEA: return q && i.asize === 8 ? lea64 : exec;
    case Op.ALU_EG: return i.isMem ? exec : q ? aluRR64 : aluRR32;
    case Op.ALU_GE: return i.isMem ? (q ? aluGM64 : aluGM32) : q ? aluGR64 : aluGR32;
    case Op.ALU_EI: return i.isMem ? (q ? aluMI64 : aluMI32) : q ? aluRI64 : aluRI32;
    case Op.TEST_EG: return i.isMem ? exec : q ? testRR64 : testRR32;
    case Op.INC_E: case Op.DEC_E: return i.isMem ? exec : incDecR;
    case Op.PUSH_R: return q ? pushR : exec;
    case Op.POP_R: return q ? popR : exec;
    case Op.CALL_REL: return callRel;
    case Op.RET: return ret;
    case Op.JMP_REL: return jmpRel;
    case Op.JCC: return jcc;
    case Op.CMOV: return i.isMem ? exec : cmovRR;
    case Op.SETCC: return i.isMem ? exec : setccR;
    case Op.SHIFT_E: return i.isMem ? exec : shiftRI;
    case Op.MOVZX: return i.isMem && (s === 4 || s === 8) ? movzxLoad : exec;
    default: return exec;
  }
}
