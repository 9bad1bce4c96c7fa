/**
 * x86 instruction decoder for the three code modes (CpuCore.codeMode: 0 = 64-bit, 1 = 32-bit
 * default operand/address size (protected or compatibility mode, CS.D = 1), 2 = 16-bit):
 * legacy prefixes, REX (64-bit mode only; elsewhere 40-4F are INC/DEC), the one- and
 * two-byte opcode maps, ModRM/SIB/displacements/RIP-relative, the 16-bit ModRM forms and all
 * immediate sizes. Outside 64-bit mode every instruction carries its segment (Insn.seg 3-8,
 * the default DS or SS, or the override), so its data accesses add the segment base.
 * It never throws: an invalid or unimplemented opcode decodes to Op.UD, more than 15 bytes
 * to Op.GP_TOO_LONG, bytes outside guest RAM to Op.FETCH_NPF.
 */
import { Insn, Op } from './insn';
import { S, sseOpcode, ssePrefix, sseHasImm8, sseKnown, sseFormOk, sseGroupAE, x87Opcode } from './sse-decode';

const MAX_LEN = 15;

// Decoder cursor (module state: decoding is not re-entrant and never allocates).
let bytes: Uint8Array = new Uint8Array(0);
let limit = 0;
let pos = 0;
let start = 0;
let tooLong = false;
/** Linear address of the first byte that could not be fetched (valid when fetchFailed). */
let fetchFault = 0;
let fetchFailed = false;
/** bytes[pos + delta] is the byte at linear address pos. */
let delta = 0;
/** The code mode being decoded (0 = 64-bit, 1 = 32-bit, 2 = 16-bit). */
let mode = 0;
/** Outside 64-bit mode: the segment-override prefix (sreg number), or -1. */
let segOverride = -1;

function fetch(): number {
  if (pos - start >= MAX_LEN) {
    tooLong = true;
    pos++;
    return 0;
  }
  if (pos >= limit) {
    if (!fetchFailed) { fetchFault = pos; fetchFailed = true; }
    pos++;
    return 0;
  }
  return bytes[delta + pos++];
}

function imm8s(): number {
  return (fetch() << 24) >> 24;
}
function imm16u(): number {
  const a = fetch();
  return a | (fetch() << 8);
}
function imm32s(): number {
  const a = fetch(), b = fetch(), c = fetch(), d = fetch();
  return a | (b << 8) | (c << 16) | (d << 24);
}

function setImmSigned(i: Insn, v: number): void {
  i.immLo = v >>> 0;
  i.immHi = v < 0 ? 0xffffffff : 0;
}

/** Iz: 16 bits for 16-bit operands, else 32 bits sign-extended to 64. */
function immZ(i: Insn, size: number): void {
  if (size === 2) setImmSigned(i, (imm16u() << 16) >> 16);
  else setImmSigned(i, imm32s());
}

/** Jz displacement: 16 bits with a 16-bit operand size (outside 64-bit mode), else 32. */
function relZ(osz: number): number {
  return mode !== 0 && osz === 2 ? (imm16u() << 16) >> 16 : imm32s();
}

let rexR = 0, rexX = 0, rexB = 0, rexAny = 0, ripRel = false;

/** Parses ModRM (+SIB, displacement). Returns the raw reg field (0-7, without REX.R). */
function modrm(i: Insn): number {
  const m = fetch();
  const mod = m >> 6, regRaw = (m >> 3) & 7, rmRaw = m & 7;
  i.reg = regRaw | rexR;
  if (mod === 3) {
    i.isMem = false;
    i.rm = rmRaw | rexB;
    return regRaw;
  }
  i.isMem = true;
  if (i.asize === 2) { modrm16(i, mod, rmRaw); return regRaw; }
  let disp = 0;
  if (rmRaw === 4) {
    const sib = fetch();
    const ss = sib >> 6, idx = ((sib >> 3) & 7) | rexX, bs = sib & 7;
    i.scale = ss;
    i.index = idx === 4 ? -1 : idx;
    if (bs === 5 && mod === 0) {
      i.base = -1;
      disp = imm32s();
    } else {
      i.base = bs | rexB;
    }
  } else if (rmRaw === 5 && mod === 0) {
    ripRel = mode === 0; // [disp32] outside 64-bit mode
    i.base = -1;
    disp = imm32s();
  } else {
    i.base = rmRaw | rexB;
  }
  if (mod === 1) disp = imm8s();
  else if (mod === 2) disp = imm32s();
  i.dispLo = disp >>> 0;
  i.dispHi = disp < 0 ? 0xffffffff : 0;
  return regRaw;
}

// 16-bit ModRM forms: rm 0-7 = [bx+si] [bx+di] [bp+si] [bp+di] [si] [di] [bp] [bx]
const RM16_BASE = [3, 3, 5, 5, 6, 7, 5, 3];
const RM16_INDEX = [6, 7, 6, 7, -1, -1, -1, -1];

function modrm16(i: Insn, mod: number, rm: number): void {
  let disp = 0;
  if (mod === 0 && rm === 6) { i.base = -1; i.index = -1; disp = imm16u(); }
  else {
    i.base = RM16_BASE[rm];
    i.index = RM16_INDEX[rm];
    if (mod === 1) disp = imm8s();
    else if (mod === 2) disp = (imm16u() << 16) >> 16;
  }
  i.scale = 0;
  i.dispLo = disp >>> 0;
  i.dispHi = disp < 0 ? 0xffffffff : 0;
}

/** Without any REX prefix, byte-register numbers 4-7 name AH, CH, DH, BH (16-19 here). */
function byteRegs(i: Insn, rmIsReg: boolean): void {
  if (rexAny) return;
  if (i.reg >= 4 && i.reg < 8) i.reg += 12;
  if (rmIsReg && !i.isMem && i.rm >= 4 && i.rm < 8) i.rm += 12;
}

function relTarget(i: Insn, rel: number): void {
  // Computed after the whole instruction is known (relative to the next instruction).
  i.targetLo = rel; // temporarily the displacement; fixed up in finish()
  i.targetHi = 1;
}

/** Decodes the instruction at `addr` with linear = physical (bytes past memSize: FETCH_NPF). */
export function decode(mem: Uint8Array, memSize: number, addr: number, i: Insn): void {
  decodeAt(mem, 0, memSize, addr, i);
}

/**
 * Decodes the instruction at linear `addr` whose bytes are buf[addr + off ...], available up
 * to linear address `end` (exclusive); a byte at or past `end` makes it Op.FETCH_NPF with
 * the linear address of that byte in immLo/immHi.
 */
export function decodeAt(buf: Uint8Array, off: number, end: number, addr: number, i: Insn, codeMode = 0): void {
  mode = codeMode;
  segOverride = -1;
  bytes = buf;
  delta = off;
  limit = end;
  pos = addr;
  start = addr;
  tooLong = false;
  fetchFailed = false;
  ripRel = false;
  i.addr = addr;
  i.op = Op.UD;
  i.mode = codeMode;
  i.size = 4;
  i.asize = codeMode === 0 ? 8 : codeMode === 1 ? 4 : 2;
  i.rep = 0;
  i.lock = false;
  i.seg = 0;
  i.sub = 0;
  i.cnt = 0;
  i.cc = 0;
  i.srcSize = 0;
  i.reg = 0;
  i.rm = 0;
  i.isMem = false;
  i.base = -1;
  i.index = -1;
  i.scale = 0;
  i.dispLo = 0;
  i.dispHi = 0;
  i.immLo = 0;
  i.immHi = 0;
  i.imm2 = 0;
  i.targetLo = 0;
  i.targetHi = 0;
  i.nextInsn = null;
  i.takenInsn = null;

  let op16 = false, rex = 0, b = 0;
  for (;;) {
    b = fetch();
    if (tooLong || fetchFailed) break;
    if (b === 0x66) op16 = true;
    else if (b === 0x67) i.asize = codeMode === 2 ? 4 : codeMode === 1 ? 2 : 4;
    else if (b === 0xf0) i.lock = true;
    else if (b === 0xf2) i.rep = 2;
    else if (b === 0xf3) i.rep = 1;
    else if (b === 0x2e || b === 0x36 || b === 0x3e || b === 0x26) {
      // null segment prefixes in 64-bit mode; CS/SS/DS/ES overrides elsewhere
      if (codeMode !== 0) segOverride = b === 0x26 ? 0 : b === 0x2e ? 1 : b === 0x36 ? 2 : 3;
    }
    else if (b === 0x64) { i.seg = 1; segOverride = 4; }
    else if (b === 0x65) { i.seg = 2; segOverride = 5; }
    else if ((b & 0xf0) === 0x40 && codeMode === 0) { rex = b; continue; }
    else break;
    rex = 0; // a REX prefix followed by a legacy prefix is ignored
  }
  rexAny = rex;
  rexR = (rex & 4) << 1;
  rexX = (rex & 2) << 2;
  rexB = (rex & 1) << 3;
  // operand size: CS.D (or 64-bit mode) with 66h toggling; REX.W makes it 64
  const osz = rex & 8 ? 8 : (codeMode === 2) !== op16 ? 2 : 4;
  const stk = codeMode !== 0 ? osz : op16 ? 2 : 8; // push/pop operand size
  i.size = osz;

  if (!tooLong && !fetchFailed) {
    if (b === 0x0f) decodeTwoByte(i, osz, stk, op16);
    else if (codeMode !== 0 && decodeLegacyOnly(i, b, osz, stk)) { /* done */ }
    else decodeOneByte(i, b, osz, stk, osz === 2);
  }
  if (codeMode !== 0) legacySegment(i);
  finish(i, addr);
}

/** The segment of the data accesses outside 64-bit mode: the override, else SS for [ESP]/[EBP]/[BP] bases, else DS. */
function legacySegment(i: Insn): void {
  const s = segOverride >= 0 ? segOverride : i.isMem && (i.base === 4 || i.base === 5) ? 2 : 3;
  i.seg = 3 + s;
}

/**
 * The one-byte opcodes that differ outside 64-bit mode. Returns false for the shared ones.
 * BCD arithmetic (DAA/DAS/AAA/AAS/AAM/AAD), BOUND, ARPL, INTO, SALC decode to #UD: gcc
 * never emits them.
 */
function decodeLegacyOnly(i: Insn, b: number, osz: number, stk: number): boolean {
  if (b >= 0x40 && b <= 0x4f) {
    i.op = b < 0x48 ? Op.INC_E : Op.DEC_E; i.isMem = false; i.rm = b & 7;
    return true;
  }
  switch (b) {
    case 0x06: case 0x0e: case 0x16: case 0x1e: i.op = Op.PUSH_SEG; i.sub = b >> 3; i.size = stk; return true;
    case 0x07: case 0x17: case 0x1f: i.op = Op.POP_SEG; i.sub = b >> 3; i.size = stk; return true;
    case 0x27: case 0x2f: case 0x37: case 0x3f: case 0x62: case 0x63: case 0xce: case 0xd4: case 0xd5: case 0xd6:
      i.op = Op.UD; return true;
    case 0x60: i.op = Op.PUSHA; i.size = stk; return true;
    case 0x61: i.op = Op.POPA; i.size = stk; return true;
    case 0x82: i.op = Op.ALU_EI; i.size = 1; i.sub = modrm(i); byteRegs(i, true); setImmSigned(i, imm8s()); return true;
    case 0x9a: case 0xea:
      i.op = b === 0xea ? Op.JMP_FAR_PTR : Op.CALL_FAR_PTR;
      i.immLo = osz === 2 ? imm16u() : imm32s() >>> 0;
      i.imm2 = imm16u();
      return true;
    case 0xc4: case 0xc5:
      i.op = Op.LOAD_FAR_PTR; i.sub = b === 0xc4 ? 0 : 3; modrm(i);
      if (!i.isMem) i.op = Op.UD;
      return true;
    case 0xa0: case 0xa1: case 0xa2: case 0xa3:
      i.op = b < 0xa2 ? Op.MOV_GE : Op.MOV_EG;
      if (!(b & 1)) i.size = 1;
      i.reg = 0; i.isMem = true;
      i.dispLo = i.asize === 2 ? imm16u() : imm32s() >>> 0;
      return true;
    case 0xe8: i.op = Op.CALL_REL; relTarget(i, relZ(osz)); return true;
    case 0xe9: i.op = Op.JMP_REL; relTarget(i, relZ(osz)); return true;
    case 0xff: {
      const r = modrm(i);
      switch (r) {
        case 0: i.op = Op.INC_E; return true;
        case 1: i.op = Op.DEC_E; return true;
        case 2: i.op = Op.CALL_E; return true;
        case 3: i.op = i.isMem ? Op.CALL_FAR : Op.UD; return true;
        case 4: i.op = Op.JMP_E; return true;
        case 5: i.op = i.isMem ? Op.JMP_FAR : Op.UD; return true;
        case 6: i.op = Op.PUSH_E; i.size = stk; return true;
        default: i.op = Op.UD; return true;
      }
    }
    case 0xcf: i.op = Op.IRET; return true; // IRETD, or IRET with a 16-bit operand size (66 CF)
    default: return false;
  }
}

function finish(i: Insn, addr: number): void {
  i.len = pos - addr;
  i.nextAddr = addr + i.len;
  if (tooLong || i.len > MAX_LEN) {
    i.op = Op.GP_TOO_LONG;
    i.len = Math.min(i.len, MAX_LEN);
  } else if (fetchFailed) {
    i.op = Op.FETCH_NPF;
    i.immLo = fetchFault >>> 0;
    i.immHi = fetchFault < 0 ? 0xffffffff : Math.floor(fetchFault / 4294967296) >>> 0;
  }
  if (ripRel) {
    const t = i.nextAddr + ((i.dispLo | 0));
    setAbs(i, t, true);
  }
  if (i.targetHi === 1) {
    const t = i.nextAddr + (i.targetLo | 0);
    if (mode !== 0) { i.targetLo = i.size === 2 ? t & 0xffff : t >>> 0; i.targetHi = 0; } // EIP/IP wrap
    else setAbs(i, t, false);
  }
}

/** Stores an absolute 64-bit address (possibly negative = wrapped) in disp or target. */
function setAbs(i: Insn, t: number, toDisp: boolean): void {
  let lo: number, hi: number;
  if (t < 0) {
    lo = t >>> 0;
    hi = 0xffffffff;
  } else {
    lo = t >>> 0;
    hi = Math.floor(t / 4294967296) >>> 0;
  }
  if (toDisp) { i.dispLo = lo; i.dispHi = hi; } else { i.targetLo = lo; i.targetHi = hi; }
}

function decodeOneByte(i: Insn, b: number, osz: number, stk: number, op16: boolean): void {
  if (b < 0x40 && (b & 7) < 6) {
    i.sub = b >> 3;
    switch (b & 7) {
      case 0: i.op = Op.ALU_EG; i.size = 1; modrm(i); byteRegs(i, true); return;
      case 1: i.op = Op.ALU_EG; modrm(i); return;
      case 2: i.op = Op.ALU_GE; i.size = 1; modrm(i); byteRegs(i, true); return;
      case 3: i.op = Op.ALU_GE; modrm(i); return;
      case 4: i.op = Op.ALU_EI; i.size = 1; i.rm = 0; setImmSigned(i, imm8s()); return;
      default: i.op = Op.ALU_EI; i.rm = 0; immZ(i, osz); return;
    }
  }
  if (b >= 0x50 && b <= 0x57) { i.op = Op.PUSH_R; i.size = stk; i.rm = (b & 7) | rexB; return; }
  if (b >= 0x58 && b <= 0x5f) { i.op = Op.POP_R; i.size = stk; i.rm = (b & 7) | rexB; return; }
  if (b >= 0x70 && b <= 0x7f) { i.op = Op.JCC; i.cc = b & 15; relTarget(i, imm8s()); return; }
  if (b >= 0x91 && b <= 0x97) { i.op = Op.XCHG_EG; i.rm = (b & 7) | rexB; i.reg = 0; return; }
  if (b >= 0xb0 && b <= 0xb7) {
    i.op = Op.MOV_RI; i.size = 1; i.rm = (b & 7) | rexB;
    if (!rexAny && i.rm >= 4) i.rm += 12;
    setImmSigned(i, imm8s());
    return;
  }
  if (b >= 0xb8 && b <= 0xbf) {
    i.op = Op.MOV_RI; i.rm = (b & 7) | rexB;
    if (osz === 8) { i.immLo = imm32s() >>> 0; i.immHi = imm32s() >>> 0; }
    else if (osz === 4) { i.immLo = imm32s() >>> 0; }
    else i.immLo = imm16u();
    return;
  }
  switch (b) {
    case 0x63:
      if (osz === 8) { i.op = Op.MOVSX; i.srcSize = 4; } else i.op = Op.MOV_GE;
      modrm(i); return;
    case 0x68: i.op = Op.PUSH_I; i.size = stk; immZ(i, stk === 2 ? 2 : 4); return;
    case 0x6a: i.op = Op.PUSH_I; i.size = stk; setImmSigned(i, imm8s()); return;
    case 0x69: i.op = Op.IMUL_GEI; modrm(i); immZ(i, osz); return;
    case 0x6b: i.op = Op.IMUL_GEI; modrm(i); setImmSigned(i, imm8s()); return;
    case 0x6c: i.op = Op.INS; i.size = 1; return;
    case 0x6d: i.op = Op.INS; i.size = op16 ? 2 : 4; return;
    case 0x6e: i.op = Op.OUTS; i.size = 1; return;
    case 0x6f: i.op = Op.OUTS; i.size = op16 ? 2 : 4; return;
    case 0x80: i.op = Op.ALU_EI; i.size = 1; i.sub = modrm(i); byteRegs(i, true); setImmSigned(i, imm8s()); return;
    case 0x81: i.op = Op.ALU_EI; i.sub = modrm(i); immZ(i, osz); return;
    case 0x83: i.op = Op.ALU_EI; i.sub = modrm(i); setImmSigned(i, imm8s()); return;
    case 0x84: i.op = Op.TEST_EG; i.size = 1; modrm(i); byteRegs(i, true); return;
    case 0x85: i.op = Op.TEST_EG; modrm(i); return;
    case 0x86: i.op = Op.XCHG_EG; i.size = 1; modrm(i); byteRegs(i, true); return;
    case 0x87: i.op = Op.XCHG_EG; modrm(i); return;
    case 0x88: i.op = Op.MOV_EG; i.size = 1; modrm(i); byteRegs(i, true); return;
    case 0x89: i.op = Op.MOV_EG; modrm(i); return;
    case 0x8a: i.op = Op.MOV_GE; i.size = 1; modrm(i); byteRegs(i, true); return;
    case 0x8b: i.op = Op.MOV_GE; modrm(i); return;
    case 0x8c: {
      i.op = Op.MOV_E_SREG; const r = modrm(i); i.reg = r;
      if (r > 5) i.op = Op.UD;
      if (i.isMem) i.size = 2;
      return;
    }
    case 0x8d: i.op = Op.LEA; modrm(i); if (!i.isMem) i.op = Op.UD; return;
    case 0x8e: {
      i.op = Op.MOV_SREG_E; const r = modrm(i); i.reg = r; i.size = 2;
      if (r > 5 || r === 1) i.op = Op.UD;
      return;
    }
    case 0x8f: i.op = Op.POP_E; i.size = stk; if (modrm(i) !== 0) i.op = Op.UD; return;
    case 0x90:
      if (rexB) { i.op = Op.XCHG_EG; i.rm = 8; i.reg = 0; } else i.op = Op.NOP;
      return;
    case 0x98: i.op = Op.CBW; return;
    case 0x99: i.op = Op.CWD; return;
    case 0x9c: i.op = Op.PUSHF; i.size = stk; return;
    case 0x9d: i.op = Op.POPF; i.size = stk; return;
    case 0x9b: i.op = Op.SSE; i.sub = S.FWAIT; return;
    case 0xd8: case 0xd9: case 0xda: case 0xdb: case 0xdc: case 0xdd: case 0xde: case 0xdf: {
      const save = pos, m = fetch(); // x87: only the control/state forms (sse-decode.ts)
      if (m < 0xc0) { pos = save; modrm(i); }
      i.sub = x87Opcode(b, m);
      i.op = i.sub !== S.NONE ? Op.SSE : Op.UD;
      return;
    }
    case 0x9e: i.op = Op.SAHF; return;
    case 0x9f: i.op = Op.LAHF; return;
    case 0xa0: case 0xa1: case 0xa2: case 0xa3: {
      i.op = b < 0xa2 ? Op.MOV_GE : Op.MOV_EG;
      if (!(b & 1)) i.size = 1;
      i.reg = 0; i.isMem = true;
      if (i.asize === 8) { i.dispLo = imm32s() >>> 0; i.dispHi = imm32s() >>> 0; }
      else i.dispLo = imm32s() >>> 0;
      return;
    }
    case 0xa4: i.op = Op.MOVS; i.size = 1; return;
    case 0xa5: i.op = Op.MOVS; return;
    case 0xa6: i.op = Op.CMPS; i.size = 1; return;
    case 0xa7: i.op = Op.CMPS; return;
    case 0xa8: i.op = Op.TEST_EI; i.size = 1; i.rm = 0; setImmSigned(i, imm8s()); return;
    case 0xa9: i.op = Op.TEST_EI; i.rm = 0; immZ(i, osz); return;
    case 0xaa: i.op = Op.STOS; i.size = 1; return;
    case 0xab: i.op = Op.STOS; return;
    case 0xac: i.op = Op.LODS; i.size = 1; return;
    case 0xad: i.op = Op.LODS; return;
    case 0xae: i.op = Op.SCAS; i.size = 1; return;
    case 0xaf: i.op = Op.SCAS; return;
    case 0xc0: case 0xc1: case 0xd0: case 0xd1: case 0xd2: case 0xd3:
      i.op = Op.SHIFT_E;
      if (!(b & 1)) i.size = 1;
      i.sub = modrm(i);
      if (i.size === 1) byteRegs(i, true);
      if (b < 0xd0) { i.cnt = 0; i.immLo = fetch(); } else i.cnt = b < 0xd2 ? 1 : 2;
      return;
    case 0xc2: i.op = Op.RET; i.imm2 = imm16u(); return;
    case 0xc3: i.op = Op.RET; return;
    case 0xc6: i.op = Op.MOV_EI; i.size = 1; if (modrm(i) !== 0) i.op = Op.UD; byteRegs(i, true); setImmSigned(i, imm8s()); return;
    case 0xc7: i.op = Op.MOV_EI; if (modrm(i) !== 0) i.op = Op.UD; immZ(i, osz); return;
    case 0xc9: i.op = Op.LEAVE; i.size = stk; return;
    case 0xca: i.op = Op.RETF; i.imm2 = imm16u(); return;
    case 0xcb: i.op = Op.RETF; return;
    case 0xcc: i.op = Op.INT3; return;
    case 0xcd: i.op = Op.INTN; i.immLo = fetch(); return;
    case 0xcf: i.op = Op.IRET; i.size = osz === 8 ? 8 : op16 ? 2 : 4; return; // IRETQ, IRETD, 66 CF: IRET (16-bit)
    case 0xe0: case 0xe1: case 0xe2: case 0xe3:
      i.op = Op.LOOP; i.sub = b - 0xe0; relTarget(i, imm8s()); return;
    case 0xe4: case 0xe5: case 0xe6: case 0xe7: case 0xec: case 0xed: case 0xee: case 0xef:
      i.op = b & 2 ? Op.OUT : Op.IN;
      i.size = b & 1 ? (op16 ? 2 : 4) : 1;
      if (b < 0xe8) { i.cnt = 0; i.immLo = fetch(); } else i.cnt = 1;
      return;
    case 0xe8: i.op = Op.CALL_REL; relTarget(i, imm32s()); return;
    case 0xe9: i.op = Op.JMP_REL; relTarget(i, imm32s()); return;
    case 0xeb: i.op = Op.JMP_REL; relTarget(i, imm8s()); return;
    case 0xf1: i.op = Op.INT1; return;
    case 0xf4: i.op = Op.HLT; return;
    case 0xf5: i.op = Op.CMC; return;
    case 0xf6: case 0xf7: {
      if (b === 0xf6) i.size = 1;
      const r = modrm(i);
      if (i.size === 1) byteRegs(i, true);
      switch (r) {
        case 0: case 1:
          i.op = Op.TEST_EI;
          if (i.size === 1) setImmSigned(i, imm8s()); else immZ(i, osz);
          return;
        case 2: i.op = Op.NOT_E; return;
        case 3: i.op = Op.NEG_E; return;
        case 4: i.op = Op.MUL_E; return;
        case 5: i.op = Op.IMUL1_E; return;
        case 6: i.op = Op.DIV_E; return;
        default: i.op = Op.IDIV_E; return;
      }
    }
    case 0xf8: i.op = Op.CLC; return;
    case 0xf9: i.op = Op.STC; return;
    case 0xfa: i.op = Op.CLI; return;
    case 0xfb: i.op = Op.STI; return;
    case 0xfc: i.op = Op.CLD; return;
    case 0xfd: i.op = Op.STD; return;
    case 0xfe: {
      i.size = 1;
      const r = modrm(i); byteRegs(i, true);
      i.op = r === 0 ? Op.INC_E : r === 1 ? Op.DEC_E : Op.UD;
      return;
    }
    case 0xff: {
      const r = modrm(i);
      switch (r) {
        case 0: i.op = Op.INC_E; return;
        case 1: i.op = Op.DEC_E; return;
        case 2: i.op = Op.CALL_E; i.size = 8; return;
        case 3: i.op = i.isMem ? Op.CALL_FAR : Op.UD; return;
        case 4: i.op = Op.JMP_E; i.size = 8; return;
        case 5: i.op = i.isMem ? Op.JMP_FAR : Op.UD; return;
        case 6: i.op = Op.PUSH_E; i.size = stk; return;
        default: i.op = Op.UD; return;
      }
    }
    default:
      i.op = Op.UD;
  }
}

function decodeTwoByte(i: Insn, osz: number, stk: number, op16: boolean): void {
  const b = fetch();
  if (b >= 0x40 && b <= 0x4f) { i.op = Op.CMOV; i.cc = b & 15; modrm(i); return; }
  if (b >= 0x80 && b <= 0x8f) { i.op = Op.JCC; i.cc = b & 15; relTarget(i, relZ(osz)); return; }
  if (b >= 0x90 && b <= 0x9f) { i.op = Op.SETCC; i.cc = b & 15; i.size = 1; modrm(i); byteRegs(i, true); return; }
  if (b >= 0xc8 && b <= 0xcf) { i.op = Op.BSWAP; i.rm = (b & 7) | rexB; return; }
  if (b >= 0x18 && b <= 0x1f) { i.op = Op.NOP; modrm(i); return; }
  switch (b) {
    case 0x01: {
      const save = pos;
      const m = fetch();
      if (m >> 6 === 3) {
        if (m === 0xf8) i.op = Op.SWAPGS;
        else if (m === 0xf9) i.op = Op.RDTSCP;
        else if (m === 0xc1) i.op = Op.VMCALL;
        else if (m === 0xd9) i.op = Op.VMMCALL;
        else if (m === 0xcb || m === 0xca) i.op = m === 0xcb ? Op.STAC : Op.CLAC;
        else if (m === 0xd0 || m === 0xd1) { i.op = Op.SSE; i.sub = m === 0xd0 ? S.XGETBV : S.XSETBV; }
        else if (((m >> 3) & 7) === 4 || ((m >> 3) & 7) === 6) { pos = save; i.op = modrm(i) === 4 ? Op.SMSW : Op.LMSW; }
        else i.op = Op.UD;
        return;
      }
      pos = save;
      const r = modrm(i);
      i.op = r === 0 ? Op.SGDT : r === 1 ? Op.SIDT : r === 2 ? Op.LGDT : r === 3 ? Op.LIDT : r === 4 ? Op.SMSW : r === 6 ? Op.LMSW : r === 7 ? Op.INVLPG : Op.UD;
      return;
    }
    case 0x00: {
      const r = modrm(i);
      i.size = 2;
      i.op = r === 0 ? Op.SLDT : r === 1 ? Op.STR : r === 2 ? Op.LLDT : r === 3 ? Op.LTR : Op.UD;
      if (!i.isMem && (r === 0 || r === 1)) i.size = osz; // SLDT/STR r32/r64 zero-extend
      return;
    }
    case 0x05: i.op = Op.SYSCALL; return;
    case 0x07: i.op = Op.SYSRET; i.size = osz === 8 ? 8 : 4; return;
    case 0x06: i.op = Op.CLTS; return;
    case 0x08: case 0x09: i.op = Op.INVD; return;
    case 0x0b: i.op = Op.UD2; return;
    case 0x0d: i.op = Op.NOP; modrm(i); return;
    case 0x20: case 0x21: case 0x22: case 0x23: {
      // MOV CR/DR: the mod field is ignored, the operand is always a register.
      const m = fetch();
      i.reg = ((m >> 3) & 7) | rexR;
      i.rm = (m & 7) | rexB;
      i.isMem = false;
      i.size = mode === 0 ? 8 : 4;
      i.op = b === 0x20 ? Op.MOV_R_CR : b === 0x21 ? Op.MOV_R_DR : b === 0x22 ? Op.MOV_CR_R : Op.MOV_DR_R;
      if (i.lock && (b === 0x21 || b === 0x23)) i.op = Op.UD;
      return;
    }
    case 0x30: i.op = Op.WRMSR; return;
    case 0x38: {
      // the three-byte map: only INVPCID (66 0F 38 82 /r, memory operand); no SSSE3/SSE4
      const b3 = fetch();
      modrm(i);
      i.op = b3 === 0x82 && op16 && i.rep === 0 && i.isMem && !i.lock ? Op.INVPCID : Op.UD;
      i.size = mode === 0 ? 8 : 4;
      return;
    }
    case 0x31: i.op = Op.RDTSC; return;
    case 0x32: i.op = Op.RDMSR; return;
    case 0xb2: case 0xb4: case 0xb5:
      i.op = Op.LOAD_FAR_PTR; i.sub = b === 0xb2 ? 2 : b - 0xb0; modrm(i);
      if (!i.isMem) i.op = Op.UD;
      return;
    case 0xa0: i.op = Op.PUSH_SEG; i.sub = 4; i.size = stk; return;
    case 0xa1: i.op = Op.POP_SEG; i.sub = 4; i.size = stk; return;
    case 0xa8: i.op = Op.PUSH_SEG; i.sub = 5; i.size = stk; return;
    case 0xa9: i.op = Op.POP_SEG; i.sub = 5; i.size = stk; return;
    case 0xa2: i.op = Op.CPUID; return;
    case 0xa3: i.op = Op.BT_EG; i.sub = 0; modrm(i); return;
    case 0xab: i.op = Op.BT_EG; i.sub = 1; modrm(i); return;
    case 0xb3: i.op = Op.BT_EG; i.sub = 2; modrm(i); return;
    case 0xbb: i.op = Op.BT_EG; i.sub = 3; modrm(i); return;
    case 0xa4: i.op = Op.SHLD; modrm(i); i.cnt = 0; i.immLo = fetch(); return;
    case 0xa5: i.op = Op.SHLD; modrm(i); i.cnt = 2; return;
    case 0xac: i.op = Op.SHRD; modrm(i); i.cnt = 0; i.immLo = fetch(); return;
    case 0xad: i.op = Op.SHRD; modrm(i); i.cnt = 2; return;
    case 0xae: {
      const save = pos;
      const m = fetch();
      if (m >> 6 === 3) { i.op = m >= 0xe8 ? Op.NOP : Op.UD; return; } // LFENCE/MFENCE/SFENCE
      pos = save;
      const r = modrm(i);
      i.sub = sseGroupAE(r);
      i.op = r === 7 ? Op.NOP : i.sub !== S.NONE ? Op.SSE : Op.UD; // CLFLUSH, FXSAVE..XRSTOR
      return;
    }
    case 0xaf: i.op = Op.IMUL_GE; modrm(i); return;
    case 0xb0: i.op = Op.CMPXCHG; i.size = 1; modrm(i); byteRegs(i, true); return;
    case 0xb1: i.op = Op.CMPXCHG; modrm(i); return;
    case 0xb6: i.op = Op.MOVZX; i.srcSize = 1; modrm(i); byteRegs(i, true); fixByteRegField(i); return;
    case 0xb7: i.op = Op.MOVZX; i.srcSize = 2; modrm(i); return;
    case 0xbe: i.op = Op.MOVSX; i.srcSize = 1; modrm(i); byteRegs(i, true); fixByteRegField(i); return;
    case 0xbf: i.op = Op.MOVSX; i.srcSize = 2; modrm(i); return;
    case 0xba: {
      const r = modrm(i);
      i.immLo = fetch();
      if (r < 4) { i.op = Op.UD; return; }
      i.op = Op.BT_EI; i.sub = r - 4;
      return;
    }
    case 0xbc: i.op = Op.BSF; modrm(i); return; // F3 0F BC (TZCNT) runs as BSF: no BMI1 in CPUID
    case 0xbd: i.op = Op.BSR; modrm(i); return;
    case 0xc0: i.op = Op.XADD; i.size = 1; modrm(i); byteRegs(i, true); return;
    case 0xc1: i.op = Op.XADD; modrm(i); return;
    case 0xc7: {
      const r = modrm(i);
      i.op = r === 1 && i.isMem ? Op.CMPXCHG16B : Op.UD;
      if (r === 7 && !i.isMem && i.rep === 1) { i.op = Op.RDPID; i.size = mode === 0 ? 8 : 4; } // F3 0F C7 /7
      return;
    }
    default:
      if (sseKnown(b)) decodeSse(i, b, op16); else i.op = Op.UD;
  }
}

/** 0F xx of the SSE/SSE2 map (sse-decode.ts): ModRM, then an imm8 for some. */
function decodeSse(i: Insn, b: number, op16: boolean): void {
  const s = sseOpcode(b, ssePrefix(i.rep, op16), modrm(i));
  if (sseHasImm8(b)) i.immLo = fetch();
  i.sub = s;
  i.op = sseFormOk(s, i.isMem) ? Op.SSE : Op.UD;
}

/** MOVZX/MOVSX r, r/m8: the destination is a full register, only the source is a byte reg. */
function fixByteRegField(i: Insn): void {
  if (i.reg >= 16) i.reg -= 12;
}
