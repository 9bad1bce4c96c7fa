/** Debug-register bit names (SDM 17.2). */
export const DR6_B_MASK = 0xf;
export const DR6_BD = 1 << 13;
export const DR6_BS = 1 << 14;
export const DR6_BT = 1 << 15;
/** DR6 reset value: the bits that read as 1. */
export const DR6_RESERVED1 = 0xffff0ff0;
export const DR7_RESERVED1 = 0x400;
export const DR7_GD = 1 << 13;
/** DR7 bits 12, 14, 15: always 0 (VM entry forces them). */
export const DR7_MUST_BE_ZERO = (1 << 12) | (1 << 14) | (1 << 15);
export const RFLAGS_TF = 1 << 8;
export const DEBUGCTL_BTF = 1 << 1;
/** IA32_DEBUGCTL bits this CPU model accepts (LBR, BTF, TR..RTM); the rest are reserved. */
export const DEBUGCTL_VALID = 0xffc3;

/** DR7 as the hardware holds it: bit 10 set, bits 12/14/15 clear. */
export function normalizeDr7(lo: number): number {
  return ((lo & ~DR7_MUST_BE_ZERO) | DR7_RESERVED1) >>> 0;
}

/** Slot n is enabled when its L or G bit is set. */
export function dr7SlotEnabled(dr7: number, n: number): boolean {
  return ((dr7 >>> (n * 2)) & 3) !== 0;
}

/** R/W field of slot n (0 exec, 1 write, 2 io, 3 access). */
export function dr7SlotRw(dr7: number, n: number): number {
  return (dr7 >>> (16 + n * 4)) & 3;
}

/** Length in bytes of slot n from its LEN field (00=1, 01=2, 10=8, 11=4). */
export function dr7SlotLen(dr7: number, n: number): number {
  return [1, 2, 8, 4][(dr7 >>> (18 + n * 4)) & 3];
}

/** The register names used by leak reports and traces, index = DR number. */
export const DR_NAMES = ['dr0', 'dr1', 'dr2', 'dr3', 'dr4', 'dr5', 'dr6', 'dr7'];

export function hex(lo: number, hi = 0): string {
  return '0x' + ((BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0)).toString(16);
}

/**
 * B bits of the enabled R/W=10 (I/O) slots that an access to [port, port+size) matches,
 * against a DR0-3/DR7 set (index = DR number). Only meaningful with CR4.DE=1.
 */
export function matchIoBreakpoints(lo: ArrayLike<number>, hi: ArrayLike<number>, port: number, size: number): number {
  const dr7 = lo[7];
  let bits = 0;
  for (let n = 0; n < 4; n++) {
    if (!dr7SlotEnabled(dr7, n) || dr7SlotRw(dr7, n) !== 2 || hi[n] !== 0) continue;
    const len = dr7SlotLen(dr7, n);
    const start = (lo[n] & ~(len - 1)) >>> 0;
    if (port < start + len && start < port + size) bits |= 1 << n;
  }
  return bits;
}
