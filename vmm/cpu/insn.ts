import type { CpuCore } from './core';

function notBound(): number {
  throw new Error('instruction executed before a handler was bound');
}

/**
 * A decoded instruction. Decoding happens once per address (the decoded-instruction cache);
 * execution reads these fields only. Fields are all initialized in the constructor so that
 * every Insn has the same hidden class.
 */
export const enum Op {
  UD, // #UD (unimplemented or invalid opcode)
  GP_TOO_LONG, // more than 15 bytes
  FETCH_NPF, // instruction bytes outside guest RAM
  NOP,
  ALU_EG, ALU_GE, ALU_EI, // sub = 0 add,1 or,2 adc,3 sbb,4 and,5 sub,6 xor,7 cmp
  TEST_EG, TEST_EI,
  INC_E, DEC_E, NOT_E, NEG_E,
  MUL_E, IMUL1_E, DIV_E, IDIV_E, IMUL_GE, IMUL_GEI,
  SHIFT_E, // sub = /r (0 rol..7 sar); cnt: 0 imm, 1 one, 2 CL
  SHLD, SHRD, // cnt: 0 imm, 2 CL
  MOV_EG, MOV_GE, MOV_EI, MOV_RI, MOV_AO, MOV_OA,
  MOVZX, MOVSX, // srcSize
  LEA,
  XCHG_EG,
  PUSH_R, POP_R, PUSH_I, PUSH_E, POP_E,
  CMOV, SETCC, JCC, JMP_REL, CALL_REL, JMP_E, CALL_E, RET, LEAVE, ENTER,
  CBW, CWD,
  BT_EG, BT_EI, // sub: 0 bt, 1 bts, 2 btr, 3 btc
  BSF, BSR, BSWAP,
  MOVS, STOS, LODS, CMPS, SCAS, INS, OUTS,
  XADD, CMPXCHG, CMPXCHG16B,
  CLC, STC, CMC, CLD, STD, CLI, STI, SAHF, LAHF, PUSHF, POPF,
  HLT, IN, OUT, CPUID, VMCALL, VMMCALL, RDTSC, RDTSCP, RDPID, RDMSR, WRMSR,
  INT3, INTN, INT1, IRET, UD2,
  MOV_R_CR, MOV_CR_R, MOV_R_DR, MOV_DR_R,
  MOV_SREG_E, MOV_E_SREG, PUSH_SEG, POP_SEG,
  LGDT, LIDT, SGDT, SIDT, SWAPGS,
  LOOP, // sub: 0 loopne, 1 loope, 2 loop, 3 jrcxz
  CLTS,
  SSE, // x87/SSE/SSE2 and FPU-state instructions: sub = S (sse-decode.ts), run by sse-exec.ts
  // modes and privilege (segments.ts, far-transfer.ts, syscall.ts, descriptor-tables.ts)
  RETF, JMP_FAR, CALL_FAR, // size = operand size; RETF: imm2 = bytes to release
  SYSCALL, SYSRET, // SYSRET: size 8 (REX.W) returns to 64-bit mode, 4 to compatibility mode
  SLDT, STR, LLDT, LTR,
  INVLPG,
  // outside 64-bit mode (legacy-exec.ts)
  PUSHA, POPA, JMP_FAR_PTR, CALL_FAR_PTR, // far ptr16:16/32: immLo = offset, imm2 = selector
  LOAD_FAR_PTR, // LES/LDS/LSS/LFS/LGS: sub = segment register
  INVD, // INVD and WBINVD (#GP(0) at CPL > 0)
  SMSW, LMSW,
  INVPCID, // 66 0F 38 82 /r (pcid.ts)
  STAC, CLAC, // 0F 01 CB / 0F 01 CA: RFLAGS.AC for SMAP
}

/** Executes one decoded instruction; returns the next RIP (see exec.ts). */
export type Handler = (c: CpuCore, i: Insn) => number;

export class Insn {
  /** The specialized implementation chosen after decoding (fast.ts), else the generic exec. */
  fn: Handler = notBound;
  addr = 0;
  len = 0;
  /** Address of the next instruction. */
  nextAddr = 0;
  op: Op = Op.UD;
  /** The code mode it was decoded in (CpuCore.codeMode). */
  mode = 0;
  /** Operand size in bytes: 1, 2, 4 or 8. */
  size = 4;
  /** Address size in bytes: 8, 4 or 2. */
  asize = 8;
  /** 0 none, 1 F3 (REP/REPE), 2 F2 (REPNE). */
  rep = 0;
  lock = false;
  /** 64-bit mode: 0 none, 1 FS, 2 GS. Elsewhere 3 + the segment register (ES 3 .. GS 8). */
  seg = 0;
  sub = 0;
  cnt = 0;
  cc = 0;
  srcSize = 0;
  /** ModRM reg field (with REX.R); byte registers AH..BH are 16..19. */
  reg = 0;
  /** ModRM rm (with REX.B) for register operands, or the register of +r opcodes. */
  rm = 0;
  isMem = false;
  /** Memory operand: base register or -1; index or -1; scale shift; disp (64-bit halves). */
  base = -1;
  index = -1;
  scale = 0;
  dispLo = 0;
  dispHi = 0;
  immLo = 0;
  immHi = 0;
  imm2 = 0;
  /** Branch target (absolute) for relative branches. */
  targetLo = 0;
  targetHi = 0;
  /** Decoded-cache bookkeeping: the cache epoch this belongs to and linked successors. */
  epoch = -1;
  nextInsn: Insn | null = null;
  takenInsn: Insn | null = null;
}
