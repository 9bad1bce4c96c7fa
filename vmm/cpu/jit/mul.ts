/**
 * Truncating signed multiply (IMUL r, r/m and IMUL r, r/m, imm) for compiled blocks, without
 * the 128-bit product: the low 64 bits exactly (16-bit limbs), and whether the signed result
 * overflowed (CF = OF) from the magnitude of the double product, which is exact enough away
 * from 2^63. Near 2^63 the answer is UNSURE and the block calls the interpreter's imulTrunc.
 */

/** Product halves of the last mul64lo (int32). */
export const MUL = new Int32Array(2);

export const OV_NO = 0;
export const OV_YES = 1;
export const OV_UNSURE = 2;

/** Bits 63:32 of the unsigned product of two uint32 (given as any int32 bit pattern). */
function umulhi(x: number, y: number): number {
  const xl = x & 0xffff, xh = x >>> 16, yl = y & 0xffff, yh = y >>> 16;
  const ll = xl * yl, lh = xl * yh, hl = xh * yl;
  const mid = (ll >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  return (xh * yh + (lh >>> 16) + (hl >>> 16) + (mid >>> 16)) | 0;
}

/** a * b (64-bit halves, any bit patterns) into MUL; returns OV_NO, OV_YES or OV_UNSURE for the signed overflow. */
export function mul64lo(aL: number, aH: number, bL: number, bH: number): number {
  MUL[0] = Math.imul(aL, bL);
  MUL[1] = (umulhi(aL, bL) + Math.imul(aL, bH) + Math.imul(aH, bL)) | 0;
  const p = Math.abs(((aH | 0) * 4294967296 + (aL >>> 0)) * ((bH | 0) * 4294967296 + (bL >>> 0)));
  // 2^63 = 9.223e18; the double product is within 2^-50 of the true one
  if (p < 9.2e18) return OV_NO;
  if (p > 9.25e18) return OV_YES;
  return OV_UNSURE;
}
