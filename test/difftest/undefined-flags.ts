/**
 * Which arithmetic flags the SDM leaves undefined after an instruction, so the differential
 * test compares only defined flags. A small decoder of legacy prefixes, REX and the opcodes
 * that leave flags undefined; everything else defines all the flags it writes.
 *   AND/OR/XOR/TEST: AF.  MUL/IMUL: SF ZF AF PF.  DIV/IDIV: all six.
 *   Shifts (count masked to 5/6 bits): count 0 changes nothing; else AF, OF unless count=1,
 *   CF (SHL/SHR) when count >= the width of an 8/16-bit operand. Rotates: OF unless count=1.
 *   SHLD/SHRD: AF, OF unless count=1, everything when count > width (16-bit).
 *   BSF/BSR: all but ZF. TZCNT/LZCNT (F3 0F BC/BD, BSF/BSR on CPUs without BMI): all six.
 *   BT/BTS/BTR/BTC: OF SF AF PF.
 */
export const CF = 0x1;
export const PF = 0x4;
export const AF = 0x10;
export const ZF = 0x40;
export const SF = 0x80;
export const DF = 0x400;
export const OF = 0x800;
export const ARITH = CF | PF | AF | ZF | SF | OF;
/** The RFLAGS bits the differential test compares (IF/TF/RF differ by environment). */
export const COMPARED = ARITH | DF;

interface Decoded {
  rexW: boolean;
  opsize16: boolean;
  rep: number; // 0, 0xF2 or 0xF3
  op: number; // one-byte opcode, or 0x0F00 | second byte
  modrmReg: number;
  afterModrm: number; // offset just past ModRM (+SIB +disp), for immediates
}

function decode(b: Uint8Array): Decoded | undefined {
  let i = 0;
  let opsize16 = false;
  let rep = 0;
  let rexW = false;
  for (; i < 14; i++) {
    const c = b[i];
    if (c === 0x66) opsize16 = true;
    else if (c === 0xf2 || c === 0xf3) rep = c;
    else if (c === 0x67 || c === 0xf0 || c === 0x2e || c === 0x36 || c === 0x3e || c === 0x26 || c === 0x64 || c === 0x65) continue;
    else break;
  }
  if (b[i] >= 0x40 && b[i] <= 0x4f) {
    rexW = (b[i] & 8) !== 0;
    i++;
  }
  let op = b[i++];
  if (op === 0x0f) op = 0x0f00 | b[i++];
  const modrm = b[i] ?? 0;
  let after = i + 1;
  const mod = modrm >> 6;
  const rm = modrm & 7;
  if (mod !== 3) {
    if (rm === 4) {
      const sib = b[i + 1] ?? 0;
      after++;
      if (mod === 0 && (sib & 7) === 5) after += 4;
    }
    if (mod === 1) after += 1;
    else if (mod === 2) after += 4;
    else if (mod === 0 && rm === 5) after += 4;
  }
  return { rexW, opsize16, rep, op, modrmReg: (modrm >> 3) & 7, afterModrm: after };
}

function width(d: Decoded, byteOp: boolean): number {
  if (byteOp) return 8;
  if (d.rexW) return 64;
  return d.opsize16 ? 16 : 32;
}

function shiftUndefined(kind: number, rawCount: number, w: number): number {
  const count = rawCount & (w === 64 ? 63 : 31);
  if (count === 0) return 0;
  const rotate = kind <= 3;
  let u = count === 1 ? 0 : OF;
  if (!rotate) {
    u |= AF;
    if (w <= 16 && count >= w && kind !== 7) u |= CF; // SAR's CF stays defined (the sign)
  }
  return u;
}

/**
 * Undefined flags of the instruction whose bytes start `code`, given RCX before it (for
 * CL-count shifts).
 */
export function undefinedFlags(code: Uint8Array, rcxLow: number): number {
  const d = decode(code);
  if (!d) return 0;
  const op = d.op;
  const reg = d.modrmReg;
  // Logic: AND OR XOR (all forms) and TEST.
  if ((op >= 0x08 && op <= 0x0d) || (op >= 0x20 && op <= 0x25) || (op >= 0x30 && op <= 0x35)) return AF;
  if (op === 0x84 || op === 0x85 || op === 0xa8 || op === 0xa9) return AF;
  if ((op === 0x80 || op === 0x81 || op === 0x83) && (reg === 1 || reg === 4 || reg === 6)) return AF;
  if (op === 0xf6 || op === 0xf7) {
    if (reg <= 1) return AF;
    if (reg === 4 || reg === 5) return SF | ZF | AF | PF;
    if (reg >= 6) return ARITH;
    return 0;
  }
  if (op === 0x69 || op === 0x6b || op === 0x0faf) return SF | ZF | AF | PF;
  if (op === 0xc0 || op === 0xc1) return shiftUndefined(reg, code[d.afterModrm] ?? 0, width(d, op === 0xc0));
  if (op === 0xd0 || op === 0xd1) return shiftUndefined(reg, 1, width(d, op === 0xd0));
  if (op === 0xd2 || op === 0xd3) return shiftUndefined(reg, rcxLow & 0xff, width(d, op === 0xd2));
  if (op === 0x0fa4 || op === 0x0fac || op === 0x0fa5 || op === 0x0fad) {
    const w = width(d, false);
    const raw = op === 0x0fa4 || op === 0x0fac ? code[d.afterModrm] ?? 0 : rcxLow & 0xff;
    const count = raw & (w === 64 ? 63 : 31);
    if (count === 0) return 0;
    if (count > w) return ARITH;
    return AF | (count === 1 ? 0 : OF);
  }
  if (op === 0x0fbc || op === 0x0fbd) return d.rep === 0xf3 ? ARITH : CF | OF | SF | AF | PF;
  if (op === 0x0fa3 || op === 0x0fab || op === 0x0fb3 || op === 0x0fbb || op === 0x0fba) return OF | SF | AF | PF;
  return 0;
}

/** True for a REP/REPE/REPNE-prefixed string instruction (MOVS, CMPS, STOS, LODS, SCAS, INS, OUTS). */
export function isRepString(code: Uint8Array): boolean {
  const d = decode(code);
  if (!d || !d.rep) return false;
  const op = d.op;
  return (op >= 0xa4 && op <= 0xa7) || (op >= 0xaa && op <= 0xaf) || (op >= 0x6c && op <= 0x6f);
}

/**
 * The arithmetic flags and DF the instruction at `code` writes (defined or not), given RCX
 * before it; for the block-mode difftest, which must know when a flag left undefined is
 * written again. Instructions not listed here count as writing none: that errs on the side
 * of treating a flag as still undefined (not compared), never the other way.
 */
export function writtenFlags(code: Uint8Array, rcxLow: number): number {
  const d = decode(code);
  if (!d) return 0;
  const op = d.op;
  const reg = d.modrmReg;
  if (op < 0x40 && (op & 7) < 6 && op !== 0x0f) return ARITH; // ADD OR ADC SBB AND SUB XOR CMP
  if (op >= 0x80 && op <= 0x83) return ARITH;
  if (op === 0x84 || op === 0x85 || op === 0xa8 || op === 0xa9) return ARITH;
  if (op === 0xf6 || op === 0xf7) return reg === 2 ? 0 : ARITH;
  if (op === 0xfe || op === 0xff) return reg <= 1 ? ARITH & ~CF : 0;
  if (op === 0x69 || op === 0x6b || op === 0x0faf) return ARITH;
  const shift = (raw: number, byteOp: boolean) => {
    const w = width(d, byteOp);
    if ((raw & (w === 64 ? 63 : 31)) === 0) return 0;
    return reg <= 3 ? CF | OF : ARITH;
  };
  if (op === 0xc0 || op === 0xc1) return shift(code[d.afterModrm] ?? 0, op === 0xc0);
  if (op === 0xd0 || op === 0xd1) return shift(1, op === 0xd0);
  if (op === 0xd2 || op === 0xd3) return shift(rcxLow & 0xff, op === 0xd2);
  if (op === 0x0fa4 || op === 0x0fac || op === 0x0fa5 || op === 0x0fad) {
    const raw = op === 0x0fa4 || op === 0x0fac ? code[d.afterModrm] ?? 0 : rcxLow & 0xff;
    return (raw & (width(d, false) === 64 ? 63 : 31)) === 0 ? 0 : ARITH;
  }
  if (op === 0x0fbc || op === 0x0fbd || op === 0x0fb8) return ARITH; // BSF BSR (TZCNT LZCNT) POPCNT
  if (op === 0x0fa3 || op === 0x0fab || op === 0x0fb3 || op === 0x0fbb || op === 0x0fba) return ARITH;
  if (op === 0x0fb0 || op === 0x0fb1 || op === 0x0fc0 || op === 0x0fc1) return ARITH; // CMPXCHG XADD
  if (op === 0x0f2e || op === 0x0f2f) return ARITH; // (U)COMISS/SD
  if (op === 0xa6 || op === 0xa7 || op === 0xae || op === 0xaf) return d.rep && rcxLow === 0 ? 0 : ARITH; // CMPS SCAS (RCX low half: a guess for 0 that only widens)
  if (op === 0x9e) return ARITH & ~OF; // SAHF
  if (op === 0x9d) return ARITH | DF; // POPF
  if (op === 0xf5 || op === 0xf8 || op === 0xf9) return CF; // CMC CLC STC
  if (op === 0xfc || op === 0xfd) return DF;
  return 0;
}

/** The arithmetic flags the instruction at `code` reads (Jcc, SETcc, CMOVcc, ADC/SBB, RCL/RCR, LAHF, PUSHF, CMC). */
export function readFlags(code: Uint8Array): number {
  const d = decode(code);
  if (!d) return 0;
  const op = d.op;
  const reg = d.modrmReg;
  const cc = (n: number) => [OF, OF, CF, CF, ZF, ZF, CF | ZF, CF | ZF, SF, SF, PF, PF, SF | OF, SF | OF, ZF | SF | OF, ZF | SF | OF][n & 15];
  if ((op >= 0x70 && op <= 0x7f) || (op >= 0x0f80 && op <= 0x0f8f) || (op >= 0x0f90 && op <= 0x0f9f) || (op >= 0x0f40 && op <= 0x0f4f)) return cc(op);
  if (op < 0x40 && ((op >> 3) === 2 || (op >> 3) === 3) && (op & 7) < 6) return CF; // ADC SBB
  if (op >= 0x80 && op <= 0x83 && (reg === 2 || reg === 3)) return CF;
  if ((op === 0xc0 || op === 0xc1 || (op >= 0xd0 && op <= 0xd3)) && (reg === 2 || reg === 3)) return CF; // RCL RCR
  if (op === 0x9f) return SF | ZF | AF | PF | CF; // LAHF
  if (op === 0x9c) return ARITH; // PUSHF
  if (op === 0xf5) return CF; // CMC
  return 0;
}
