/**
 * RFLAGS bits and the lazy arithmetic-flags scheme.
 *
 * The ALU records the last flag-setting operation (kind, operand size, destination, source,
 * result, carry-in) and the six arithmetic flags are computed only when something reads them
 * (Jcc, SETcc, CMOVcc, PUSHF, ADC...). Instructions whose flags are awkward to express lazily
 * (shifts, rotates, multiply, bit tests...) compute them at once and store them materialized.
 *
 * What this CPU produces for the flags the SDM calls undefined. Where cheap we copy what the
 * AMD EPYC (Zen) these machines run on does, so that the native differential test can
 * compare flags that carry over to later instructions:
 *  - AND/OR/XOR/TEST: AF = 0.
 *  - SHL/SHR/SAR (count != 0): AF = 1; OF for count > 1 by the count==1 formula
 *    (SHL: MSB(result) XOR CF; SHR and SAR: 0). For 8/16-bit SHL/SHR with count
 *    >= the width, CF = the last bit shifted out (0 when count > width).
 *  - ROL/ROR/RCL/RCR: OF for count > 1 by the count==1 formula.
 *  - SHLD/SHRD: AF = 1, OF by the count==1 formula; 16-bit counts > 16 shift through the
 *    32-bit concatenation.
 *  - MUL/IMUL: SF, ZF, AF, PF unchanged.
 *  - DIV/IDIV: CF, OF unchanged; AF = 1; SF = ZF = PF = 0.
 *  - BSF/BSR: CF = OF = SF = AF = 0; PF from the result; source 0: ZF = PF = 1 and the
 *    destination unchanged. F3 0F BC/BD run as BSF/BSR (our CPUID reports no BMI1/LZCNT).
 *  - BT/BTS/BTR/BTC: OF, SF, AF, PF, ZF unchanged.
 *  - 16-bit BSWAP: the word is cleared.
 */
import { CF, PF, AF, ZF, SF, TF, IF, DF, OF, IOPL, NT, RF, AC, VIF, VIP, ID } from '../x86/rflags';

// The RFLAGS bits themselves live with the other x86 facts (vmm/x86/rflags.ts); importers take
// them from there: a re-export compiles to a getter, which hot code then calls on every read.

export const ARITH_MASK = CF | PF | AF | ZF | SF | OF;
/** Bits POPF may change at CPL 0 in 64-bit mode (RF is cleared, VM/VIP/VIF kept). */
export const POPF_MASK = ARITH_MASK | TF | IF | DF | IOPL | NT | AC | ID;
/** Bits IRETQ may load at CPL 0. */
export const IRET_MASK = POPF_MASK | RF | VIF | VIP;

/** Lazy flag kinds. */
export const enum LF {
  /** Arithmetic flags are materialized in `rflags`. */
  NONE = 0,
  ADD = 1,
  SUB = 2,
  LOGIC = 3,
  /** INC/DEC: like ADD/SUB with source 1, CF kept in lfCin. */
  INC = 4,
  DEC = 5,
}

/** PF for each byte value (1 = even number of set bits). */
export const PARITY = new Uint8Array(256);
for (let i = 0; i < 256; i++) {
  let b = i;
  b ^= b >> 4;
  b ^= b >> 2;
  b ^= b >> 1;
  PARITY[i] = (b & 1) ^ 1;
}
