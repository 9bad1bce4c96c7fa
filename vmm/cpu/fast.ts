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
import { execSse } from './sse-exec';
import { LF, PARITY } from './flags';
import { alu, incDec, imulTrunc } from './alu';
import { shiftOp } from './shift';
import { TLB_MASK } from './mmu';
import { execLegacy, isLegacyOp } from './legacy-exec';

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
  c.calcEA(i.base, i.index, i.scale, i.dispLo, i.dispHi, i.asize, i.seg, i.size);
}

/** Condition codes with a fast path for the lazy flags of CMP/SUB and logic results. */
function cond(c: CpuCore, cc: number): boolean {
  const op = c.lfOp;
  if (op === LF.SUB && c.lfCin === 0 && cc >= 2 && cc !== 10 && cc !== 11) {
    let lt: boolean, eq: boolean, slt: boolean;
    if (c.lfSize === 8) {
      const dh = c.lf[1], sh = c.lf[3], dl = c.lf[0], sl = c.lf[2];
      eq = dh === sh && dl === sl;
      lt = dh < sh || (dh === sh && dl < sl);
      slt = (dh | 0) < (sh | 0) || (dh === sh && dl < sl);
    } else if (c.lfSize === 4) {
      const d = c.lf[0], s = c.lf[2];
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
    const zero = (c.lf[4] | c.lf[5]) === 0;
    const neg = c.lfSize === 8 ? (c.lf[5] >>> 31) !== 0 : c.lfSize === 4 ? (c.lf[4] >>> 31) !== 0 : false;
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
  return i.targetHi === 0 ? i.targetLo : (i.targetHi | 0) * 4294967296 + i.targetLo;
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

/**
 * [base+disp] loads and stores with the common case inline: a TLB fast tag for the page
 * (RAM, access allowed, no data breakpoint on the linear page), inside the page, aligned.
 * Anything else takes the general path (same semantics).
 */
const movLoad64BD: Handler = (c, i) => {
  const b = i.base;
  const s = c.rl[b] + i.dispLo;
  const a = s >>> 0;
  const e = (a >>> 12) & TLB_MASK;
  if (c.tlbR[e] === (a & ~0xfff) && c.tlbHi[e] === ((c.rh[b] + i.dispHi + (s > 0xffffffff ? 1 : 0)) | 0) && (a & 0xfff) <= 0xff8) {
    const p = c.tlbPhys[e] + (a & 0xfff);
    if ((p & 3) === 0) {
      const w = p >>> 2;
      c.rl[i.reg] = c.u32[w];
      c.rh[i.reg] = c.u32[w + 1];
      return i.nextAddr;
    }
  }
  return movLoad64(c, i);
};
const movLoad32BD: Handler = (c, i) => {
  const b = i.base;
  const s = c.rl[b] + i.dispLo;
  const a = s >>> 0;
  const e = (a >>> 12) & TLB_MASK;
  if (c.tlbR[e] === (a & ~0xfff) && c.tlbHi[e] === ((c.rh[b] + i.dispHi + (s > 0xffffffff ? 1 : 0)) | 0) && (a & 0xfff) <= 0xffc) {
    const p = c.tlbPhys[e] + (a & 0xfff);
    if ((p & 3) === 0) {
      c.rl[i.reg] = c.u32[p >>> 2];
      c.rh[i.reg] = 0;
      return i.nextAddr;
    }
  }
  return movLoad32(c, i);
};
const movStore64BD: Handler = (c, i) => {
  const b = i.base;
  const s = c.rl[b] + i.dispLo;
  const a = s >>> 0;
  const e = (a >>> 12) & TLB_MASK;
  if (c.tlbW[e] === (a & ~0xfff) && c.tlbHi[e] === ((c.rh[b] + i.dispHi + (s > 0xffffffff ? 1 : 0)) | 0) && (a & 0xfff) <= 0xff8) {
    const p = c.tlbPhys[e] + (a & 0xfff);
    if ((p & 3) === 0 && c.codePages[p >>> 12] === 0) {
      const w = p >>> 2;
      c.u32[w] = c.rl[i.reg];
      c.u32[w + 1] = c.rh[i.reg];
      return i.nextAddr;
    }
  }
  return movStore64(c, i);
};
const movStore32BD: Handler = (c, i) => {
  const b = i.base;
  const s = c.rl[b] + i.dispLo;
  const a = s >>> 0;
  const e = (a >>> 12) & TLB_MASK;
  if (c.tlbW[e] === (a & ~0xfff) && c.tlbHi[e] === ((c.rh[b] + i.dispHi + (s > 0xffffffff ? 1 : 0)) | 0) && (a & 0xfff) <= 0xffc) {
    const p = c.tlbPhys[e] + (a & 0xfff);
    if ((p & 3) === 0 && c.codePages[p >>> 12] === 0) {
      c.u32[p >>> 2] = c.rl[i.reg];
      return i.nextAddr;
    }
  }
  return movStore32(c, i);
};
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
  c.calcEA(i.base, i.index, i.scale, i.dispLo, i.dispHi, 8, 0, i.size);
  c.rl[i.reg] = c.eaLo; c.rh[i.reg] = c.eaHi;
  return i.nextAddr;
};
const movzxLoad8: Handler = (c, i) => {
  ea(c, i);
  c.rl[i.reg] = c.rd8(c.eaLo, c.eaHi);
  c.rh[i.reg] = 0;
  return i.nextAddr;
};
const movzxLoad16: Handler = (c, i) => {
  ea(c, i);
  c.rl[i.reg] = c.rd16(c.eaLo, c.eaHi);
  c.rh[i.reg] = 0;
  return i.nextAddr;
};

// ---- ALU ----------------------------------------------------------------------------------
// Operands and results travel through the scratch array X (never as call arguments or
// return values), so that 32-bit values above 2^30 are never boxed as heap numbers.
const X = new Uint32Array(6); // 0,1 destination lo/hi; 2,3 source lo/hi; 4,5 result lo/hi

/** 64-bit add/sub/cmp/and/or/xor of X[0..1] op X[2..3] into X[4..5]. */
function alu64(c: CpuCore, op: number): void {
  const dLo = X[0], dHi = X[1], sLo = X[2], sHi = X[3];
  if (op === 2 || op === 3) { // ADC/SBB read CF from the lazy state first
    X[4] = alu(c, op, 8, dLo, dHi, sLo, sHi);
    X[5] = c.t;
    return;
  }
  const L = c.lf;
  L[0] = dLo; L[1] = dHi; L[2] = sLo; L[3] = sHi;
  c.lfSize = 8;
  c.lfCin = 0;
  switch (op) {
    case 0: {
      const t = dLo + sLo;
      X[4] = t; X[5] = dHi + sHi + (t > 0xffffffff ? 1 : 0);
      c.lfOp = LF.ADD;
      break;
    }
    case 5: case 7: {
      const t = dLo - sLo;
      X[4] = t; X[5] = dHi - sHi - (t < 0 ? 1 : 0);
      c.lfOp = LF.SUB;
      break;
    }
    case 4: X[4] = dLo & sLo; X[5] = dHi & sHi; c.lfOp = LF.LOGIC; break;
    case 1: X[4] = dLo | sLo; X[5] = dHi | sHi; c.lfOp = LF.LOGIC; break;
    case 6: X[4] = dLo ^ sLo; X[5] = dHi ^ sHi; c.lfOp = LF.LOGIC; break;
    default: {
      X[4] = alu(c, op, 8, dLo, dHi, sLo, sHi);
      X[5] = c.t;
      return;
    }
  }
  L[4] = X[4]; L[5] = X[5];
}

/** 32-bit version: X[0] op X[2] into X[4]. */
function alu32(c: CpuCore, op: number): void {
  const d = X[0], s = X[2];
  if (op === 2 || op === 3) { X[4] = alu(c, op, 4, d, 0, s, 0); return; }
  const L = c.lf;
  c.lfSize = 4;
  c.lfCin = 0;
  switch (op) {
    case 0: X[4] = d + s; c.lfOp = LF.ADD; break;
    case 5: case 7: X[4] = d - s; c.lfOp = LF.SUB; break;
    case 4: X[4] = d & s; c.lfOp = LF.LOGIC; break;
    case 1: X[4] = d | s; c.lfOp = LF.LOGIC; break;
    case 6: X[4] = d ^ s; c.lfOp = LF.LOGIC; break;
    default: X[4] = alu(c, op, 4, d, 0, s, 0); return;
  }
  L[0] = d; L[1] = 0; L[2] = s; L[3] = 0; L[4] = X[4]; L[5] = 0;
}

/**
 * 64-bit ADD (op 0), SUB (5) or CMP (7) of register d with source halves sLo:sHi, inline in
 * the lazy-flag record (the commonest ALU forms: kept small so V8 inlines it).
 */
function addSubCmp64(c: CpuCore, op: number, d: number, sLo: number, sHi: number): void {
  const rl = c.rl, rh = c.rh, L = c.lf;
  const dLo = rl[d], dHi = rh[d];
  L[0] = dLo; L[1] = dHi; L[2] = sLo; L[3] = sHi;
  if (op === 0) {
    const t = dLo + sLo;
    L[4] = t; L[5] = dHi + sHi + (t > 0xffffffff ? 1 : 0);
    c.lfOp = LF.ADD;
  } else {
    const t = dLo - sLo;
    L[4] = t; L[5] = dHi - sHi - (t < 0 ? 1 : 0);
    c.lfOp = LF.SUB;
  }
  c.lfSize = 8;
  c.lfCin = 0;
  if (op !== 7) { rl[d] = L[4]; rh[d] = L[5]; }
}

const aluRR64: Handler = (c, i) => { // ALU_EG reg: rm op= reg (the commonest form: inline)
  const d = i.rm, s = i.reg, rl = c.rl, rh = c.rh, op = i.sub;
  const L = c.lf;
  switch (op) {
    case 0: case 5: case 7:
      addSubCmp64(c, op, d, rl[s], rh[s]);
      return i.nextAddr;
    case 4: case 1: case 6: {
      if (op === 4) { L[4] = rl[d] & rl[s]; L[5] = rh[d] & rh[s]; }
      else if (op === 1) { L[4] = rl[d] | rl[s]; L[5] = rh[d] | rh[s]; }
      else { L[4] = rl[d] ^ rl[s]; L[5] = rh[d] ^ rh[s]; }
      c.lfOp = LF.LOGIC;
      c.lfSize = 8;
      c.lfCin = 0;
      rl[d] = L[4]; rh[d] = L[5];
      return i.nextAddr;
    }
    default:
      X[0] = rl[d]; X[1] = rh[d]; X[2] = rl[s]; X[3] = rh[s];
      alu64(c, op);
      rl[d] = X[4]; rh[d] = X[5];
      return i.nextAddr;
  }
};
/** 32-bit ALU into register d with the common operations inline. */
function alu32Reg(c: CpuCore, op: number, d: number, sv: number, nextAddr: number): number {
  const rl = c.rl, L = c.lf;
  const dv = rl[d];
  switch (op) {
    case 0: L[4] = dv + sv; c.lfOp = LF.ADD; break;
    case 5: case 7: L[4] = dv - sv; c.lfOp = LF.SUB; break;
    case 4: L[4] = dv & sv; c.lfOp = LF.LOGIC; break;
    case 1: L[4] = dv | sv; c.lfOp = LF.LOGIC; break;
    case 6: L[4] = dv ^ sv; c.lfOp = LF.LOGIC; break;
    default:
      X[0] = dv; X[2] = sv;
      alu32(c, op);
      rl[d] = X[4]; c.rh[d] = 0;
      return nextAddr;
  }
  L[0] = dv; L[1] = 0; L[2] = sv; L[3] = 0; L[5] = 0;
  c.lfSize = 4;
  c.lfCin = 0;
  if (op !== 7) { rl[d] = L[4]; c.rh[d] = 0; }
  return nextAddr;
}

const aluRR32: Handler = (c, i) => alu32Reg(c, i.sub, i.rm, c.rl[i.reg], i.nextAddr);
const aluGR64: Handler = (c, i) => { // ALU_GE reg: reg op= rm
  const d = i.reg, s = i.rm, rl = c.rl, rh = c.rh;
  X[0] = rl[d]; X[1] = rh[d]; X[2] = rl[s]; X[3] = rh[s];
  alu64(c, i.sub);
  if (i.sub !== 7) { rl[d] = X[4]; rh[d] = X[5]; }
  return i.nextAddr;
};
const aluGR32: Handler = (c, i) => {
  const d = i.reg, rl = c.rl;
  X[0] = rl[d]; X[2] = rl[i.rm];
  alu32(c, i.sub);
  if (i.sub !== 7) { rl[d] = X[4]; c.rh[d] = 0; }
  return i.nextAddr;
};
const aluGM64: Handler = (c, i) => { // reg op= [mem]
  ea(c, i);
  X[2] = c.rd64(c.eaLo, c.eaHi); X[3] = c.t;
  const d = i.reg, rl = c.rl, rh = c.rh;
  X[0] = rl[d]; X[1] = rh[d];
  alu64(c, i.sub);
  if (i.sub !== 7) { rl[d] = X[4]; rh[d] = X[5]; }
  return i.nextAddr;
};
const aluGM32: Handler = (c, i) => {
  ea(c, i);
  X[2] = c.rd32(c.eaLo, c.eaHi);
  const d = i.reg, rl = c.rl;
  X[0] = rl[d];
  alu32(c, i.sub);
  if (i.sub !== 7) { rl[d] = X[4]; c.rh[d] = 0; }
  return i.nextAddr;
};
const aluRI64: Handler = (c, i) => {
  const d = i.rm, rl = c.rl, rh = c.rh, op = i.sub;
  if (op === 0 || op === 5 || op === 7) {
    addSubCmp64(c, op, d, i.immLo, i.immHi);
    return i.nextAddr;
  }
  X[0] = rl[d]; X[1] = rh[d]; X[2] = i.immLo; X[3] = i.immHi;
  alu64(c, op);
  rl[d] = X[4]; rh[d] = X[5];
  return i.nextAddr;
};
const aluRI32: Handler = (c, i) => alu32Reg(c, i.sub, i.rm, i.immLo, i.nextAddr);
const aluMI32: Handler = (c, i) => {
  ea(c, i);
  if (i.sub !== 7) c.probeWrite(c.eaLo, c.eaHi, 4); // write intent: no flags change before a faulting store
  X[0] = c.rd32(c.eaLo, c.eaHi); X[2] = i.immLo;
  alu32(c, i.sub);
  if (i.sub !== 7) c.wr32(c.eaLo, c.eaHi, X[4]);
  return i.nextAddr;
};
const aluMI64: Handler = (c, i) => {
  ea(c, i);
  if (i.sub !== 7) c.probeWrite(c.eaLo, c.eaHi, 8);
  X[0] = c.rd64(c.eaLo, c.eaHi); X[1] = c.t; X[2] = i.immLo; X[3] = i.immHi;
  alu64(c, i.sub);
  if (i.sub !== 7) c.wr64(c.eaLo, c.eaHi, X[4], X[5]);
  return i.nextAddr;
};
const testRR64: Handler = (c, i) => {
  const a = i.rm, b = i.reg;
  const lo = (c.rl[a] & c.rl[b]) >>> 0, hi = (c.rh[a] & c.rh[b]) >>> 0;
  { const L = c.lf; L[0] = 0; L[1] = 0; L[2] = 0; L[3] = 0; L[4] = lo; L[5] = hi; c.lfOp = LF.LOGIC; c.lfSize = 8; c.lfCin = 0; }
  return i.nextAddr;
};
const testRR32: Handler = (c, i) => {
  { const L = c.lf; L[0] = 0; L[1] = 0; L[2] = 0; L[3] = 0; L[4] = (c.rl[i.rm] & c.rl[i.reg]) >>> 0; L[5] = 0; c.lfOp = LF.LOGIC; c.lfSize = 4; c.lfCin = 0; }
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
  c.push64(n >>> 0, n > 0xffffffff || n < 0 ? Math.floor(n / 4294967296) >>> 0 : 0); // RIP < 0: the upper canonical half
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
const movStore8: Handler = (c, i) => {
  ea(c, i);
  const r = i.reg;
  c.wr8(c.eaLo, c.eaHi, r < 16 ? c.rl[r] & 0xff : (c.rl[r - 16] >>> 8) & 0xff);
  return i.nextAddr;
};
const movsxLoad: Handler = (c, i) => {
  ea(c, i);
  const n = i.srcSize;
  const v = n === 1 ? (c.rd8(c.eaLo, c.eaHi) << 24) >> 24 : n === 2 ? (c.rd16(c.eaLo, c.eaHi) << 16) >> 16 : c.rd32(c.eaLo, c.eaHi) | 0;
  c.rl[i.reg] = v;
  c.rh[i.reg] = i.size === 8 && v < 0 ? 0xffffffff : 0;
  return i.nextAddr;
};
const movsxReg: Handler = (c, i) => {
  const n = i.srcSize, r = i.rm;
  const raw = r < 16 ? c.rl[r] : c.rl[r - 16] >>> 8;
  const v = n === 1 ? (raw << 24) >> 24 : n === 2 ? (raw << 16) >> 16 : raw | 0;
  c.rl[i.reg] = v;
  c.rh[i.reg] = i.size === 8 && v < 0 ? 0xffffffff : 0;
  return i.nextAddr;
};
const movzxReg: Handler = (c, i) => {
  const r = i.rm;
  c.rl[i.reg] = i.srcSize === 1 ? (r < 16 ? c.rl[r] & 0xff : (c.rl[r - 16] >>> 8) & 0xff) : c.rl[r] & 0xffff;
  c.rh[i.reg] = 0;
  return i.nextAddr;
};
const lea32: Handler = (c, i) => {
  c.calcEA(i.base, i.index, i.scale, i.dispLo, i.dispHi, i.asize, 0, i.size);
  c.rl[i.reg] = c.eaLo; c.rh[i.reg] = 0;
  return i.nextAddr;
};
/** SHL/SHR/SAR of a 32- or 64-bit register by an immediate or CL (flags as shiftOp). */
const shiftFast: Handler = (c, i) => {
  const sub = i.sub;
  if (sub < 4) return shiftRI(c, i);
  const d = i.rm;
  let count = i.cnt === 0 ? i.immLo : i.cnt === 1 ? 1 : c.rl[1] & 0xff;
  if (i.size === 4) {
    count &= 31;
    if (count === 0) { c.rh[d] = 0; return i.nextAddr; }
    const v = c.rl[d];
    let r: number, cf: number, of: number;
    if (sub === 5) { r = v >>> count; cf = (v >>> (count - 1)) & 1; of = count === 1 ? v >>> 31 : 0; }
    else if (sub === 7) { r = ((v | 0) >> count) >>> 0; cf = ((v | 0) >> (count - 1)) & 1; of = 0; }
    else { r = (v << count) >>> 0; cf = (v >>> (32 - count)) & 1; of = (r >>> 31) ^ cf; }
    c.rl[d] = r; c.rh[d] = 0;
    c.setArith(cf | (of << 11) | 0x10 | (r === 0 ? 0x40 : 0) | ((r >>> 31) << 7) | (PARITY[r & 0xff] << 2));
    return i.nextAddr;
  }
  if (count === 0) return i.nextAddr;
  count &= 63;
  if (count === 0) return i.nextAddr;
  const lo = c.rl[d], hi = c.rh[d];
  let rLo: number, rHi: number, cf: number, of: number;
  if (sub === 5) { // SHR
    if (count < 32) { rLo = (lo >>> count) | (hi << (32 - count)); rHi = hi >>> count; cf = (lo >>> (count - 1)) & 1; }
    else { rLo = hi >>> (count - 32); rHi = 0; cf = (hi >>> (count - 33)) & 1; if (count === 32) cf = lo >>> 31; }
    of = count === 1 ? hi >>> 31 : 0;
  } else if (sub === 7) { // SAR
    if (count < 32) { rLo = (lo >>> count) | (hi << (32 - count)); rHi = (hi | 0) >> count; cf = (lo >>> (count - 1)) & 1; }
    else { rLo = (hi | 0) >> (count - 32); rHi = (hi | 0) >> 31; cf = count === 32 ? lo >>> 31 : ((hi | 0) >> (count - 33)) & 1; }
    of = 0;
  } else { // SHL/SAL
    const k = 64 - count; // CF = the last bit shifted out: bit 64-count of the operand
    cf = k >= 32 ? (hi >>> (k - 32)) & 1 : (lo >>> k) & 1;
    if (count < 32) { rHi = (hi << count) | (lo >>> (32 - count)); rLo = lo << count; }
    else { rHi = lo << (count - 32); rLo = 0; }
    of = ((rHi >>> 31) & 1) ^ cf;
  }
  c.rl[d] = rLo; c.rh[d] = rHi;
  c.setArith(cf | (of << 11) | 0x10 | (((rLo | rHi) === 0) ? 0x40 : 0) | (((rHi >>> 31) & 1) << 7) | (PARITY[rLo & 0xff] << 2));
  return i.nextAddr;
};
const imulRR: Handler = (c, i) => {
  const r = imulTrunc(c, i.size, c.rl[i.reg], c.rh[i.reg], c.rl[i.rm], c.rh[i.rm]);
  c.rl[i.reg] = r; c.rh[i.reg] = i.size === 8 ? c.t : 0;
  return i.nextAddr;
};

/** A [base+disp] memory operand with no index, segment override or 67h prefix. */
function baseDisp(i: Insn): boolean {
  return i.isMem && i.base >= 0 && i.index < 0 && i.seg === 0 && i.asize === 8;
}

/** Picks the handler for a freshly decoded instruction. */
export function bindHandler(i: Insn): void {
  i.fn = choose(i);
}

function choose(i: Insn): Handler {
  if ((i.mode !== 0 || i.op === Op.LOAD_FAR_PTR) && isLegacyOp(i.op)) return execLegacy; // chosen once, at decode
  if (i.lock) return exec;
  if (i.op === Op.SSE) return execSse;
  const s = i.size;
  const q = s === 8, d = s === 4;
  if (i.op === Op.MOV_EG && s === 1 && i.isMem) return movStore8;
  if (!q && !d && i.op !== Op.JCC && i.op !== Op.JMP_REL && i.op !== Op.CALL_REL && i.op !== Op.RET &&
    i.op !== Op.NOP && i.op !== Op.SETCC && i.op !== Op.MOVZX) return exec;
  switch (i.op) {
    case Op.NOP: return nop;
    case Op.MOV_EG:
      if (!i.isMem) return q ? movRR64 : movRR32;
      if (baseDisp(i)) return q ? movStore64BD : movStore32BD;
      return q ? movStore64 : movStore32;
    case Op.MOV_GE:
      if (!i.isMem) return q ? movGR64 : movGR32;
      if (baseDisp(i)) return q ? movLoad64BD : movLoad32BD;
      return q ? movLoad64 : movLoad32;
    case Op.MOV_RI: return movRI;
    case Op.MOV_EI: return i.isMem ? (q ? movStoreImm64 : movStoreImm32) : exec;
    case Op.LEA: return q && i.asize === 8 ? lea64 : d ? lea32 : exec;
    case Op.MOVSX: return i.isMem ? movsxLoad : movsxReg;
    case Op.IMUL_GE: return i.isMem ? exec : imulRR;
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
    case Op.SHIFT_E: return i.isMem ? exec : shiftFast;
    case Op.MOVZX: return s === 4 || s === 8 ? (i.isMem ? (i.srcSize === 1 ? movzxLoad8 : movzxLoad16) : movzxReg) : exec;
    default: return exec;
  }
}
