/**
 * Which general registers an interpreter handler reads and writes, for the instructions a
 * compiled block hands to their handler with only those registers passed through CpuCore
 * (emit.ts): the others stay in the block's locals. Listed only where it is certain from the
 * decoded fields; any other instruction is a full call-out (every register stored and
 * reloaded).
 *
 * The listed handlers also change no register before they can fault (a fault leaves the
 * block's locals as the state to restore), and never branch.
 */
import { Insn, Op } from '../insn';

/**
 * reads: registers whose values the handler may use; writes: those it may change. The block
 * stores both sets before the call (a register written only sometimes, or only in part, keeps
 * its value through CpuCore) and reloads the written ones after; no other register is touched.
 */
export interface RegEffects {
  reads: number[];
  writes: number[];
}

const RAX = 0, RCX = 1, RDX = 2;

/** The full register of a ModRM register operand (AH..BH, 16-19, are bits 15:8 of 0-3). */
function full(r: number): number {
  return r >= 16 ? r - 16 : r;
}

/** Registers read to address i's r/m operand, or the register it names. */
function rmRegs(i: Insn): number[] {
  if (!i.isMem) return [full(i.rm)];
  const out: number[] = [];
  if (i.base >= 0) out.push(i.base);
  if (i.index >= 0) out.push(i.index);
  return out;
}

/** The r/m operand's register if it is a register (written), else none. */
function rmWrite(i: Insn): number[] {
  return i.isMem ? [] : [full(i.rm)];
}

/** Register effects of i's handler, or null if the block must make a full call-out. */
export function regEffects(i: Insn): RegEffects | null {
  if (i.lock) return null;
  const e = rmRegs(i), g = full(i.reg);
  switch (i.op) {
    case Op.ALU_EG: return { reads: [...e, g], writes: i.sub === 7 ? [] : rmWrite(i) };
    case Op.ALU_GE: return { reads: [...e, g], writes: i.sub === 7 ? [] : [g] };
    case Op.ALU_EI: return { reads: e, writes: i.sub === 7 ? [] : rmWrite(i) };
    case Op.TEST_EG: return { reads: [...e, g], writes: [] };
    case Op.TEST_EI: return { reads: e, writes: [] };
    case Op.INC_E: case Op.DEC_E: case Op.NOT_E: case Op.NEG_E:
      return { reads: e, writes: rmWrite(i) };
    // a byte or word destination keeps its other bits: read too
    case Op.MOV_EG: return { reads: [...e, g], writes: rmWrite(i) };
    case Op.MOV_GE: case Op.MOVZX: case Op.MOVSX: case Op.CMOV: case Op.BSF: case Op.BSR:
    case Op.IMUL_GE: case Op.IMUL_GEI:
      return { reads: [...e, g], writes: [g] };
    case Op.MOV_EI: case Op.SETCC: return { reads: e, writes: rmWrite(i) };
    case Op.MOV_RI: return { reads: [full(i.rm)], writes: [full(i.rm)] };
    // a word multiply keeps bits 63:16 of RDX: read too
    case Op.MUL_E: case Op.IMUL1_E: return { reads: [...e, RAX, RDX], writes: [RAX, RDX] };
    case Op.DIV_E: case Op.IDIV_E: return { reads: [...e, RAX, RDX], writes: [RAX, RDX] };
    case Op.SHIFT_E: return { reads: [...e, RCX], writes: rmWrite(i) };
    case Op.SHLD: case Op.SHRD: return { reads: [...e, g, RCX], writes: rmWrite(i) };
    case Op.BT_EG: return { reads: [...e, g], writes: i.sub === 0 ? [] : rmWrite(i) };
    case Op.BT_EI: return { reads: e, writes: i.sub === 0 ? [] : rmWrite(i) };
    case Op.BSWAP: return { reads: [i.rm], writes: [i.rm] };
    case Op.CBW: return { reads: [RAX], writes: [RAX] };
    case Op.CWD: return { reads: [RAX, RDX], writes: [RDX] };
    default: return null;
  }
}
