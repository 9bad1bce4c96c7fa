/**
 * The <linux/kvm.h> structs the kvm backend exchanges with KVM_GET/SET_*, read and written
 * as 64-bit values in two 32-bit halves (U64). Sizes and the offsets that matter are checked
 * against the addon's `constants` (taken from the header at build time) when a VM starts.
 */
import { U64 } from '../u64';

/** struct kvm_regs, in order. */
export const KVM_REGS_ORDER = [
  'rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rsp', 'rbp',
  'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'rip', 'rflags',
] as const;
export type KvmRegName = (typeof KVM_REGS_ORDER)[number];
export const KVM_REGS_SIZE = 8 * KVM_REGS_ORDER.length;

/** struct kvm_sregs: eight kvm_segment (24 bytes), gdt, idt, then the control registers. */
export const SEGMENT_SIZE = 24;
export const SREGS_SEGMENTS = ['cs', 'ds', 'es', 'fs', 'gs', 'ss', 'tr', 'ldt'] as const;
export type SregSegment = (typeof SREGS_SEGMENTS)[number];
export const SREGS_GDT = 192;
export const SREGS_IDT = 208;
export const SREGS_CONTROL = ['cr0', 'cr2', 'cr3', 'cr4', 'cr8', 'efer', 'apic_base'] as const;
export type SregControl = (typeof SREGS_CONTROL)[number];
export const SREGS_CR0 = 224;
export const KVM_SREGS_SIZE = 312;

/** struct kvm_debugregs: db[4], dr6, dr7, flags, reserved[9]. */
export const KVM_DEBUGREGS_SIZE = 128;
export const DEBUGREGS_DR6 = 32;
export const DEBUGREGS_DR7 = 40;

/**
 * struct kvm_xsave: the standard (non-compacted) XSAVE image, 4096 bytes: the 512-byte FXSAVE
 * legacy region, then the XSAVE header (XSTATE_BV at 512). KVM_GET_FPU is not used: on
 * XSAVE hosts it reports MXCSR 0 and drops an MXCSR written with KVM_SET_FPU.
 */
export const KVM_XSAVE_SIZE = 4096;
const XSTATE_BV = 512;
const FXSAVE_STATE_BYTES = 416;

/** The 512-byte FXSAVE image in a kvm_xsave (a copy; bytes 416-511 zero). */
export function xsaveToFxsave(x: Uint8Array): Uint8Array {
  const img = new Uint8Array(512);
  img.set(x.subarray(0, FXSAVE_STATE_BYTES));
  return img;
}

/**
 * A kvm_xsave with the x87 and SSE state of `img` put into `x` (in place): the legacy region
 * but MXCSR_MASK (KVM's), and XSTATE_BV bits 0-1 set so that the loaded values are used
 * rather than the components' initial state.
 */
export function fxsaveIntoXsave(x: Uint8Array, img: Uint8Array): void {
  x.set(img.subarray(0, 28), 0);
  x.set(img.subarray(32, FXSAVE_STATE_BYTES), 32);
  x[XSTATE_BV] |= 3;
}

/** struct kvm_translation: linear_address in; physical_address, valid, writeable, usermode out. */
export const KVM_TRANSLATION_SIZE = 24;
export const TRANSLATION_PHYSICAL = 8;
export const TRANSLATION_VALID = 16;

/** struct kvm_guest_debug: control, pad, debugreg[8]. */
export const KVM_GUEST_DEBUG_SIZE = 72;
export const GUEST_DEBUG_DEBUGREG = 8;

export interface Segment {
  base: number;
  limit: number;
  selector: number;
  type: number;
  present: number;
  dpl: number;
  db: number;
  s: number;
  l: number;
  g: number;
  unusable: number;
}

export function getU64(dv: DataView, off: number): U64 {
  return { lo: dv.getUint32(off, true), hi: dv.getUint32(off + 4, true) };
}

export function setU64(dv: DataView, off: number, v: U64): void {
  dv.setUint32(off, v.lo >>> 0, true);
  dv.setUint32(off + 4, v.hi >>> 0, true);
}

/** A number below 2^53 as a little-endian u64. */
export function setNumber64(dv: DataView, off: number, n: number): void {
  dv.setUint32(off, n % 0x100000000 >>> 0, true);
  dv.setUint32(off + 4, Math.floor(n / 0x100000000) >>> 0, true);
}

export function getNumber64(dv: DataView, off: number): number {
  return dv.getUint32(off + 4, true) * 0x100000000 + dv.getUint32(off, true);
}

export function segmentOffset(name: SregSegment): number {
  return SREGS_SEGMENTS.indexOf(name) * SEGMENT_SIZE;
}

export function controlOffset(name: SregControl): number {
  return SREGS_CR0 + 8 * SREGS_CONTROL.indexOf(name);
}

export function writeSegment(dv: DataView, off: number, s: Segment): void {
  setNumber64(dv, off, s.base);
  dv.setUint32(off + 8, s.limit >>> 0, true);
  dv.setUint16(off + 12, s.selector, true);
  dv.setUint8(off + 14, s.type);
  dv.setUint8(off + 15, s.present);
  dv.setUint8(off + 16, s.dpl);
  dv.setUint8(off + 17, s.db);
  dv.setUint8(off + 18, s.s);
  dv.setUint8(off + 19, s.l);
  dv.setUint8(off + 20, s.g);
  dv.setUint8(off + 21, 0);
  dv.setUint8(off + 22, s.unusable);
}
