import { U64 } from '../../u64';

/** VMCS field encodings (SDM Vol. 3 App. B) of the fields this VMCS models. */
export const VMCS = {
  PIN_BASED_CTLS: 0x4000,
  PRI_PROC_BASED_CTLS: 0x4002,
  EXCEPTION_BITMAP: 0x4004,
  EXIT_CTLS: 0x400c,
  ENTRY_CTLS: 0x4012,
  ENTRY_INTR_INFO: 0x4016,
  ENTRY_EXCEPTION_ERROR: 0x4018,
  ENTRY_INST_LENGTH: 0x401a,
  EXIT_REASON: 0x4402,
  EXIT_INTR_INFO: 0x4404,
  EXIT_INTR_ERRCODE: 0x4406,
  EXIT_INSTRUCTION_LENGTH: 0x440c,
  GUEST_INTERRUPTIBILITY: 0x4824,
  GUEST_ACTIVITY: 0x4826,
  GUEST_PHYSICAL_ADDRESS: 0x2400,
  GUEST_IA32_DEBUGCTL: 0x2802,
  EXIT_QUALIFICATION: 0x6400,
  GUEST_DR7: 0x681a,
  GUEST_RSP: 0x681c,
  GUEST_RIP: 0x681e,
  GUEST_RFLAGS: 0x6820,
  GUEST_PENDING_DBG_EXCEPTIONS: 0x6822,
} as const;

/** Pin-based VM-execution controls (Table 24-5): NMIs exit; the guest's NMI blocking is virtual. */
export const PINBASED_NMI_EXITING = 1 << 3;
export const PINBASED_VIRTUAL_NMIS = 1 << 5;
/** Primary processor-based VM-execution controls (Table 24-6). */
export const PROCBASED_HLT_EXITING = 1 << 7;
export const PROCBASED_NMI_WINDOW_EXITING = 1 << 22;
export const PROCBASED_MOV_DR_EXITING = 1 << 23;
export const PROCBASED_UNCOND_IO_EXITING = 1 << 24;
export const PROCBASED_MTF = 1 << 27;
/** VM-entry control bit 2 / VM-exit control bit 2. */
export const VM_ENTRY_LOAD_DEBUG_CONTROLS = 1 << 2;
export const VM_EXIT_SAVE_DEBUG_CONTROLS = 1 << 2;

/** Basic exit reasons (App. C). */
export const EXIT_REASON = {
  EXCEPTION_NMI: 0,
  EXT_INTR: 1,
  TRIPLE_FAULT: 2,
  NMI_WINDOW: 8,
  CPUID: 10,
  HLT: 12,
  VMCALL: 18,
  DR_ACCESS: 29,
  INOUT: 30,
  RDMSR: 31,
  WRMSR: 32,
  INVAL_VMCS: 33,
  MTF: 37,
  EPT_VIOLATION: 48,
} as const;
export const EXIT_REASON_ENTRY_FAIL = 0x80000000;

/** Interruption-information types (Table 24-15/24-17). */
export const INTR_T_EXTINT = 0;
export const INTR_T_NMI = 2;
export const INTR_T_HWEXCEPTION = 3;
export const INTR_T_SWINTR = 4;
export const INTR_T_PRIV_SWEXCEPTION = 5;
export const INTR_T_SWEXCEPTION = 6;
export const INTR_INFO_VALID = 0x80000000;
export const INTR_INFO_ERRCODE_VALID = 1 << 11;

const ENCODINGS: readonly number[] = Object.values(VMCS);
/** Encoding -> storage slot (-1: no such field); encodings are below 7000H. */
const SLOT_OF = new Int8Array(0x7000).fill(-1);
ENCODINGS.forEach((enc, i) => { SLOT_OF[enc] = i; });

/** Storage slot of a field (for the backend's hot path; VMREAD/VMWRITE go by encoding). */
export function vmcsSlot(encoding: number): number {
  return SLOT_OF[encoding];
}

/** Thrown for a VMREAD/VMWRITE of a field this VMCS does not have (VMfailValid). */
export class VmcsError extends Error {}

/**
 * A VMCS: fields read and written by encoding, as VMREAD / VMWRITE do. Natural-width and
 * 64-bit fields hold 64 bits; 32-bit fields keep only the low half.
 */
export class Vmcs {
  /** Storage by slot (see vmcsSlot): the processor's internal VMCS copy, for the backend's hot path. */
  readonly lo = new Uint32Array(ENCODINGS.length);
  readonly hi = new Uint32Array(ENCODINGS.length);

  private slot(encoding: number): number {
    const i = encoding >= 0 && encoding < SLOT_OF.length ? SLOT_OF[encoding] : -1;
    if (i < 0) throw new VmcsError(`VMCS field ${encoding.toString(16)}H does not exist`);
    return i;
  }

  /** 32-bit fields have encoding bits 14:13 = 2. */
  private static is32(encoding: number): boolean {
    return ((encoding >>> 13) & 3) === 2;
  }

  read(encoding: number): U64 {
    const i = this.slot(encoding);
    return { lo: this.lo[i], hi: this.hi[i] };
  }

  write(encoding: number, v: U64): void {
    const i = this.slot(encoding);
    this.lo[i] = v.lo >>> 0;
    this.hi[i] = Vmcs.is32(encoding) ? 0 : v.hi >>> 0;
  }

  /** Low 32 bits, without allocating (hot path). */
  read32(encoding: number): number {
    return this.lo[this.slot(encoding)];
  }

  write32(encoding: number, lo: number, hi = 0): void {
    const i = this.slot(encoding);
    this.lo[i] = lo >>> 0;
    this.hi[i] = Vmcs.is32(encoding) ? 0 : hi >>> 0;
  }

  readHi(encoding: number): number {
    return this.hi[this.slot(encoding)];
  }
}
