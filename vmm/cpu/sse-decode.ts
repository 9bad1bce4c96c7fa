/**
 * The SSE/SSE2 part of the two-byte opcode map (0F xx with the mandatory prefixes none,
 * 66, F3, F2) and the x87/state-management instructions, as small numbers (S.*) that
 * decoder.ts stores in Insn.sub with Op.SSE. sse-exec.ts executes them. MMX forms (no
 * prefix on the 0F 60-7F/D0-FF integer opcodes) are not implemented and stay #UD.
 */

export const enum S {
  NONE = 0,
  // moves
  MOVUPS, MOVUPS_ST, MOVAPS, MOVAPS_ST, MOVNT_ST, MOVSS, MOVSS_ST, MOVSD, MOVSD_ST,
  MOVLPS, MOVLPS_ST, MOVHPS, MOVHPS_ST, MOVLPD, MOVHPD,
  MOVD_TO_X, MOVD_FROM_X, MOVQ_X_XM, MOVQ_XM_X, MOVDQU, MOVDQU_ST,
  MOVMSKPS, MOVMSKPD, PMOVMSKB, MOVNTI,
  // float logic
  ANDP, ANDNP, ORP, XORP,
  // float arithmetic: F_* with a width suffix given separately (sub-codes below)
  ADDPS, ADDPD, ADDSS, ADDSD, SUBPS, SUBPD, SUBSS, SUBSD, MULPS, MULPD, MULSS, MULSD,
  DIVPS, DIVPD, DIVSS, DIVSD, MINPS, MINPD, MINSS, MINSD, MAXPS, MAXPD, MAXSS, MAXSD,
  SQRTPS, SQRTPD, SQRTSS, SQRTSD, RSQRTPS, RSQRTSS, RCPPS, RCPSS,
  CMPPS, CMPPD, CMPSS, CMPSD,
  UCOMISS, UCOMISD, COMISS, COMISD,
  // conversions
  CVTSI2SS, CVTSI2SD, CVTTSS2SI, CVTTSD2SI, CVTSS2SI, CVTSD2SI,
  CVTPS2PD, CVTPD2PS, CVTSS2SD, CVTSD2SS, CVTDQ2PS, CVTPS2DQ, CVTTPS2DQ,
  CVTTPD2DQ, CVTDQ2PD, CVTPD2DQ,
  // shuffles
  UNPCKLPS, UNPCKLPD, UNPCKHPS, UNPCKHPD, SHUFPS, SHUFPD,
  PSHUFD, PSHUFHW, PSHUFLW,
  PUNPCKLBW, PUNPCKLWD, PUNPCKLDQ, PUNPCKLQDQ, PUNPCKHBW, PUNPCKHWD, PUNPCKHDQ, PUNPCKHQDQ,
  PACKSSWB, PACKSSDW, PACKUSWB,
  PINSRW, PEXTRW,
  // packed integer
  PADDB, PADDW, PADDD, PADDQ, PSUBB, PSUBW, PSUBD, PSUBQ,
  PADDSB, PADDSW, PADDUSB, PADDUSW, PSUBSB, PSUBSW, PSUBUSB, PSUBUSW,
  PCMPEQB, PCMPEQW, PCMPEQD, PCMPGTB, PCMPGTW, PCMPGTD,
  PAND, PANDN, POR, PXOR,
  PMULLW, PMULHW, PMULHUW, PMULUDQ, PMADDWD, PSADBW,
  PMINUB, PMAXUB, PMINSW, PMAXSW, PAVGB, PAVGW,
  PSRLW, PSRLD, PSRLQ, PSRAW, PSRAD, PSLLW, PSLLD, PSLLQ, // by xmm/m128 count
  PSRLW_I, PSRLD_I, PSRLQ_I, PSRAW_I, PSRAD_I, PSLLW_I, PSLLD_I, PSLLQ_I, PSRLDQ_I, PSLLDQ_I,
  // state management (0F AE, 0F 01 D0/D1) and x87 control
  FXSAVE, FXRSTOR, LDMXCSR, STMXCSR, XSAVE, XRSTOR, XGETBV, XSETBV,
  FWAIT, FNINIT, FNCLEX, FNSTCW, FLDCW, FNSTSW, FNSTSW_AX,
}

/** Mandatory-prefix index: 0 none, 1 66, 2 F3, 3 F2 (F2/F3 win over 66, as on hardware). */
export function ssePrefix(rep: number, op66: boolean): number {
  return rep === 1 ? 2 : rep === 2 ? 3 : op66 ? 1 : 0;
}

const TABLE = new Uint8Array(256 * 4);
function def(op: number, none: S, p66: S, f3: S, f2: S): void {
  TABLE[op * 4] = none;
  TABLE[op * 4 + 1] = p66;
  TABLE[op * 4 + 2] = f3;
  TABLE[op * 4 + 3] = f2;
}
/** 66-only opcodes (SSE2 integer forms; the unprefixed MMX forms are #UD). */
function def66(op: number, s: S): void {
  def(op, S.NONE, s, S.NONE, S.NONE);
}

def(0x10, S.MOVUPS, S.MOVUPS, S.MOVSS, S.MOVSD);
def(0x11, S.MOVUPS_ST, S.MOVUPS_ST, S.MOVSS_ST, S.MOVSD_ST);
def(0x12, S.MOVLPS, S.MOVLPD, S.NONE, S.NONE);
def(0x13, S.MOVLPS_ST, S.MOVLPS_ST, S.NONE, S.NONE);
def(0x14, S.UNPCKLPS, S.UNPCKLPD, S.NONE, S.NONE);
def(0x15, S.UNPCKHPS, S.UNPCKHPD, S.NONE, S.NONE);
def(0x16, S.MOVHPS, S.MOVHPD, S.NONE, S.NONE);
def(0x17, S.MOVHPS_ST, S.MOVHPS_ST, S.NONE, S.NONE);
def(0x28, S.MOVAPS, S.MOVAPS, S.NONE, S.NONE);
def(0x29, S.MOVAPS_ST, S.MOVAPS_ST, S.NONE, S.NONE);
def(0x2a, S.NONE, S.NONE, S.CVTSI2SS, S.CVTSI2SD);
def(0x2b, S.MOVNT_ST, S.MOVNT_ST, S.NONE, S.NONE);
def(0x2c, S.NONE, S.NONE, S.CVTTSS2SI, S.CVTTSD2SI);
def(0x2d, S.NONE, S.NONE, S.CVTSS2SI, S.CVTSD2SI);
def(0x2e, S.UCOMISS, S.UCOMISD, S.NONE, S.NONE);
def(0x2f, S.COMISS, S.COMISD, S.NONE, S.NONE);
def(0x50, S.MOVMSKPS, S.MOVMSKPD, S.NONE, S.NONE);
def(0x51, S.SQRTPS, S.SQRTPD, S.SQRTSS, S.SQRTSD);
def(0x52, S.RSQRTPS, S.NONE, S.RSQRTSS, S.NONE);
def(0x53, S.RCPPS, S.NONE, S.RCPSS, S.NONE);
def(0x54, S.ANDP, S.ANDP, S.NONE, S.NONE);
def(0x55, S.ANDNP, S.ANDNP, S.NONE, S.NONE);
def(0x56, S.ORP, S.ORP, S.NONE, S.NONE);
def(0x57, S.XORP, S.XORP, S.NONE, S.NONE);
def(0x58, S.ADDPS, S.ADDPD, S.ADDSS, S.ADDSD);
def(0x59, S.MULPS, S.MULPD, S.MULSS, S.MULSD);
def(0x5a, S.CVTPS2PD, S.CVTPD2PS, S.CVTSS2SD, S.CVTSD2SS);
def(0x5b, S.CVTDQ2PS, S.CVTPS2DQ, S.CVTTPS2DQ, S.NONE);
def(0x5c, S.SUBPS, S.SUBPD, S.SUBSS, S.SUBSD);
def(0x5d, S.MINPS, S.MINPD, S.MINSS, S.MINSD);
def(0x5e, S.DIVPS, S.DIVPD, S.DIVSS, S.DIVSD);
def(0x5f, S.MAXPS, S.MAXPD, S.MAXSS, S.MAXSD);
def66(0x60, S.PUNPCKLBW);
def66(0x61, S.PUNPCKLWD);
def66(0x62, S.PUNPCKLDQ);
def66(0x63, S.PACKSSWB);
def66(0x64, S.PCMPGTB);
def66(0x65, S.PCMPGTW);
def66(0x66, S.PCMPGTD);
def66(0x67, S.PACKUSWB);
def66(0x68, S.PUNPCKHBW);
def66(0x69, S.PUNPCKHWD);
def66(0x6a, S.PUNPCKHDQ);
def66(0x6b, S.PACKSSDW);
def66(0x6c, S.PUNPCKLQDQ);
def66(0x6d, S.PUNPCKHQDQ);
def66(0x6e, S.MOVD_TO_X);
def(0x6f, S.NONE, S.MOVAPS, S.MOVDQU, S.NONE);
def(0x70, S.NONE, S.PSHUFD, S.PSHUFHW, S.PSHUFLW);
def66(0x74, S.PCMPEQB);
def66(0x75, S.PCMPEQW);
def66(0x76, S.PCMPEQD);
def(0x7e, S.NONE, S.MOVD_FROM_X, S.MOVQ_X_XM, S.NONE);
def(0x7f, S.NONE, S.MOVAPS_ST, S.MOVDQU_ST, S.NONE);
def(0xc2, S.CMPPS, S.CMPPD, S.CMPSS, S.CMPSD);
def(0xc3, S.MOVNTI, S.NONE, S.NONE, S.NONE);
def66(0xc4, S.PINSRW);
def66(0xc5, S.PEXTRW);
def(0xc6, S.SHUFPS, S.SHUFPD, S.NONE, S.NONE);
def66(0xd1, S.PSRLW);
def66(0xd2, S.PSRLD);
def66(0xd3, S.PSRLQ);
def66(0xd4, S.PADDQ);
def66(0xd5, S.PMULLW);
def66(0xd6, S.MOVQ_XM_X);
def66(0xd7, S.PMOVMSKB);
def66(0xd8, S.PSUBUSB);
def66(0xd9, S.PSUBUSW);
def66(0xda, S.PMINUB);
def66(0xdb, S.PAND);
def66(0xdc, S.PADDUSB);
def66(0xdd, S.PADDUSW);
def66(0xde, S.PMAXUB);
def66(0xdf, S.PANDN);
def66(0xe0, S.PAVGB);
def66(0xe1, S.PSRAW);
def66(0xe2, S.PSRAD);
def66(0xe3, S.PAVGW);
def66(0xe4, S.PMULHUW);
def66(0xe5, S.PMULHW);
def(0xe6, S.NONE, S.CVTTPD2DQ, S.CVTDQ2PD, S.CVTPD2DQ);
def66(0xe7, S.MOVNT_ST);
def66(0xe8, S.PSUBSB);
def66(0xe9, S.PSUBSW);
def66(0xea, S.PMINSW);
def66(0xeb, S.POR);
def66(0xec, S.PADDSB);
def66(0xed, S.PADDSW);
def66(0xee, S.PMAXSW);
def66(0xef, S.PXOR);
def66(0xf1, S.PSLLW);
def66(0xf2, S.PSLLD);
def66(0xf3, S.PSLLQ);
def66(0xf4, S.PMULUDQ);
def66(0xf5, S.PMADDWD);
def66(0xf6, S.PSADBW);
def66(0xf8, S.PSUBB);
def66(0xf9, S.PSUBW);
def66(0xfa, S.PSUBD);
def66(0xfb, S.PSUBQ);
def66(0xfc, S.PADDB);
def66(0xfd, S.PADDW);
def66(0xfe, S.PADDD);

/** Shift-by-immediate groups 0F 71/72/73 (66 prefix, register operand): /r -> op. */
const SHIFT_GROUPS: Record<number, (S | 0)[]> = {
  0x71: [0, 0, S.PSRLW_I, 0, S.PSRAW_I, 0, S.PSLLW_I, 0],
  0x72: [0, 0, S.PSRLD_I, 0, S.PSRAD_I, 0, S.PSLLD_I, 0],
  0x73: [0, 0, S.PSRLQ_I, S.PSRLDQ_I, 0, 0, S.PSLLQ_I, S.PSLLDQ_I],
};

/**
 * The SSE op of two-byte opcode `op` under prefix index `pfx`, or S.NONE (#UD). For the
 * shift groups 0F 71-73 the ModRM reg field `reg` selects it.
 */
export function sseOpcode(op: number, pfx: number, reg: number): S {
  const g = SHIFT_GROUPS[op];
  if (g !== undefined) return pfx === 1 ? (g[reg & 7] as S) : S.NONE;
  return TABLE[op * 4 + pfx] as S;
}

/** True for the opcodes that carry an 8-bit immediate after ModRM. */
export function sseHasImm8(op: number): boolean {
  return op === 0x70 || op === 0x71 || op === 0x72 || op === 0x73 || op === 0xc2 || op === 0xc4 ||
    op === 0xc5 || op === 0xc6;
}

/** True for the ops whose ModRM must name a register (mod = 3), else #UD. */
export function sseRegOnly(s: S): boolean {
  switch (s) {
    case S.MOVMSKPS: case S.MOVMSKPD: case S.PMOVMSKB: case S.PEXTRW:
    case S.PSRLW_I: case S.PSRLD_I: case S.PSRLQ_I: case S.PSRAW_I: case S.PSRAD_I:
    case S.PSLLW_I: case S.PSLLD_I: case S.PSLLQ_I: case S.PSRLDQ_I: case S.PSLLDQ_I:
      return true;
    default:
      return false;
  }
}

/** True for the ops whose ModRM must name memory (mod != 3), else #UD. */
export function sseMemOnly(s: S): boolean {
  switch (s) {
    // (the unprefixed register forms of MOVLPS/MOVHPS loads are MOVHLPS/MOVLHPS)
    case S.MOVLPS_ST: case S.MOVHPS_ST: case S.MOVNT_ST: case S.MOVNTI: case S.MOVLPD: case S.MOVHPD:
      return true;
    default:
      return false;
  }
}

/** 0F AE with a memory operand: /0 FXSAVE .. /5 XRSTOR (XSAVEOPT /6 is not implemented). */
export function sseGroupAE(reg: number): S {
  const ops = [S.FXSAVE, S.FXRSTOR, S.LDMXCSR, S.STMXCSR, S.XSAVE, S.XRSTOR];
  return reg < ops.length ? ops[reg] : S.NONE;
}

/**
 * The x87 instructions implemented (control and state only, no x87 arithmetic): opcode
 * `b` (D8-DF) with ModRM byte `m`. FNINIT DB E3, FNCLEX DB E2, FNSTSW AX DF E0,
 * FLDCW m16 D9 /5, FNSTCW m16 D9 /7, FNSTSW m16 DD /7.
 */
export function x87Opcode(b: number, m: number): S {
  const reg = (m >> 3) & 7;
  if (m >= 0xc0) return b === 0xdb && m === 0xe3 ? S.FNINIT : b === 0xdb && m === 0xe2 ? S.FNCLEX :
    b === 0xdf && m === 0xe0 ? S.FNSTSW_AX : S.NONE;
  if (b === 0xd9) return reg === 5 ? S.FLDCW : reg === 7 ? S.FNSTCW : S.NONE;
  if (b === 0xdd) return reg === 7 ? S.FNSTSW : S.NONE;
  return S.NONE;
}

/** True if two-byte opcode `op` belongs to this map under some prefix (it has a ModRM). */
export function sseKnown(op: number): boolean {
  return SHIFT_GROUPS[op] !== undefined || (TABLE[op * 4] | TABLE[op * 4 + 1] | TABLE[op * 4 + 2] | TABLE[op * 4 + 3]) !== 0;
}

/** The operand form (register or memory) is allowed for this op. */
export function sseFormOk(s: S, isMem: boolean): boolean {
  return s !== S.NONE && (isMem ? !sseRegOnly(s) : !sseMemOnly(s));
}
