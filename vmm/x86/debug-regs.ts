/**
 * The x86 debug registers as the SDM defines them (Vol. 3 17.2): DR6 and DR7 bits, and the
 * one DR7 codec (L/G enables, R/W and LEN fields) that the CPU's breakpoint matching, the
 * hypervisor's slot merge and the gdb stub's slot allocator all use. Pure facts: imports
 * nothing.
 */

/** DR6 B0-B3: which breakpoint conditions were met. */
export const DR6_B_MASK = 0xf;
/** DR6.BD: the next instruction accesses a debug register while DR7.GD=1. */
export const DR6_BD = 1 << 13;
/** DR6.BS: single step (TF). */
export const DR6_BS = 1 << 14;
/** DR6.BT: task switch with TSS.T=1. */
export const DR6_BT = 1 << 15;
/** DR6 reset value: the reserved bits that read as 1. */
export const DR6_RESERVED1 = 0xffff0ff0;
/** DR6 bits a MOV to DR6 can set (B0-3, BD, BS, BT). */
export const DR6_WRITABLE = 0xe00f;

/** DR7 bit 10 reads as 1. */
export const DR7_RESERVED1 = 0x400;
/** DR7.GD: general detect (MOV DR faults with #DB, DR6.BD). */
export const DR7_GD = 1 << 13;
/** DR7 bits 12, 14, 15: always 0 (a MOV to DR7 and VM entry clear them). */
export const DR7_MUST_BE_ZERO = (1 << 12) | (1 << 14) | (1 << 15);
/** DR7.LE and GE (exact breakpoints; ignored by modern processors, set by gdb). */
export const DR7_LE = 1 << 8;
export const DR7_GE = 1 << 9;

/** DR6 as a MOV to DR6 leaves it: the reserved bits read 1, bit 12 reads 0. */
export function normalizeDr6Write(lo: number): number {
  return (DR6_RESERVED1 | (lo & DR6_WRITABLE)) >>> 0;
}

/** DR7 as the hardware holds it: bit 10 set, bits 12/14/15 clear. */
export function normalizeDr7(lo: number): number {
  return ((lo & ~DR7_MUST_BE_ZERO) | DR7_RESERVED1) >>> 0;
}

/** Register names by DR number (leak reports, traces). */
export const DR_NAMES = ['dr0', 'dr1', 'dr2', 'dr3', 'dr4', 'dr5', 'dr6', 'dr7'];

// ---- the DR7 codec -------------------------------------------------------------------------

/** The R/W field of a breakpoint: 00 instruction, 01 data write, 10 I/O (CR4.DE=1), 11 data read/write. */
export type BreakpointKind = 'exec' | 'write' | 'io' | 'access';
/** A breakpoint's length in bytes (LEN 00=1, 01=2, 10=8, 11=4; 17.2.6). */
export type BreakpointLen = 1 | 2 | 4 | 8;

export const DR7_RW_EXEC = 0;
export const DR7_RW_WRITE = 1;
export const DR7_RW_IO = 2;
export const DR7_RW_ACCESS = 3;

const RW_CODE: Readonly<Record<BreakpointKind, number>> = { exec: DR7_RW_EXEC, write: DR7_RW_WRITE, io: DR7_RW_IO, access: DR7_RW_ACCESS };
const LEN_CODE: Readonly<Record<BreakpointLen, number>> = { 1: 0, 2: 1, 8: 2, 4: 3 };
/** Length in bytes by LEN code. */
const LEN_BYTES: readonly BreakpointLen[] = [1, 2, 8, 4];

/** Slot n is enabled when its L or G bit is set. */
export function dr7SlotEnabled(dr7: number, n: number): boolean {
  return ((dr7 >>> (n * 2)) & 3) !== 0;
}

/** R/W field of slot n (DR7_RW_*). */
export function dr7SlotRw(dr7: number, n: number): number {
  return (dr7 >>> (16 + n * 4)) & 3;
}

/** Length in bytes of slot n from its LEN field. */
export function dr7SlotLen(dr7: number, n: number): BreakpointLen {
  return LEN_BYTES[(dr7 >>> (18 + n * 4)) & 3];
}

/** The 4-bit R/W+LEN control field of slot n, unshifted. */
export function dr7SlotControl(dr7: number, n: number): number {
  return (dr7 >>> (16 + n * 4)) & 0xf;
}

/** Slot n's R/W+LEN field for a breakpoint of `kind` and `len` bytes, shifted into place (exec: LEN 00). */
export function dr7EncodeSlot(n: number, kind: BreakpointKind, len: BreakpointLen): number {
  const lenCode = kind === 'exec' ? 0 : LEN_CODE[len];
  return (((lenCode << 2) | RW_CODE[kind]) << (16 + n * 4)) >>> 0;
}

/** Slot n's local (L) enable bit. */
export function dr7LocalEnable(n: number): number {
  return 1 << (n * 2);
}

/** Slot n's global (G) enable bit. */
export function dr7GlobalEnable(n: number): number {
  return 2 << (n * 2);
}

/**
 * The low address bits a breakpoint of slot n ignores: DRn is masked by its LEN
 * (17.2.5: "it uses LENn field bits to mask the lower address bits").
 */
export function dr7SlotAddressMask(dr7: number, n: number): number {
  return dr7SlotLen(dr7, n) - 1;
}

