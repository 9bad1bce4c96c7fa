/**
 * A VMCB (APM Vol. 2 15.5 / App. B): the control area fields and state-save area fields
 * that the debug architecture needs, named as in the APM. 64-bit values as 32-bit halves.
 */
import { DR6_RESERVED1 } from '../../x86/debug-regs';

/** VMCB clean bits (15.15.3). */
export const VMCB_CLEAN_I = 1 << 0;
export const VMCB_CLEAN_IOPM = 1 << 1;
export const VMCB_CLEAN_ASID = 1 << 2;
export const VMCB_CLEAN_TPR = 1 << 3;
export const VMCB_CLEAN_NP = 1 << 4;
export const VMCB_CLEAN_CR = 1 << 5;
export const VMCB_CLEAN_DR = 1 << 6;
export const VMCB_CLEAN_DT = 1 << 7;
export const VMCB_CLEAN_SEG = 1 << 8;
export const VMCB_CLEAN_CR2 = 1 << 9;
export const VMCB_CLEAN_LBR = 1 << 10;

/** EXITCODEs (App. C). */
export const VMEXIT = {
  DR_READ: 0x20, // + n
  DR_WRITE: 0x30, // + n
  EXCP_BASE: 0x40, // + vector
  INTR: 0x60,
  NMI: 0x61,
  IRET: 0x74,
  CPUID: 0x72,
  HLT: 0x78,
  IOIO: 0x7b,
  MSR: 0x7c,
  SHUTDOWN: 0x7f,
  VMMCALL: 0x81,
  NPF: 0x400,
  INVALID: -1,
} as const;

/** EVENTINJ types (15.20). */
export const EVENTINJ_TYPE_INTR = 0;
export const EVENTINJ_TYPE_NMI = 2;
export const EVENTINJ_TYPE_EXCEPTION = 3;
export const EVENTINJ_TYPE_SOFT = 4;
export const EVENTINJ_VALID = 0x80000000;
export const EVENTINJ_EV = 1 << 11;

export class VmcbControl {
  /** +000H/+002H CR intercepts are not modelled. +004H: DR read intercepts, bit n = DRn. */
  drReadIntercepts = 0;
  /** +006H: DR write intercepts. */
  drWriteIntercepts = 0;
  /** +008H: exception intercepts, bit n = vector n. */
  exceptionIntercepts = 0;
  /** +00CH/+010H: instruction intercepts (INTR, NMI, HLT, CPUID, IOIO, MSR, SHUTDOWN, VMMCALL always on here). */
  /** +00CH bit 20: the IRET intercept (the hypervisor sets it while the guest is in its NMI handler). */
  iretIntercept = false;
  /** +0B8H bit 0: LBR_VIRTUALIZATION_ENABLE. */
  lbrVirtualizationEnable = false;
  /** +0C0H: VMCB clean bits. */
  vmcbClean = 0;
  /** +070H EXITCODE (-1 = VMEXIT_INVALID). */
  exitCode = 0;
  exitInfo1Lo = 0;
  exitInfo1Hi = 0;
  exitInfo2Lo = 0;
  exitInfo2Hi = 0;
  /** +0A8H EVENTINJ (low word) and its error code (high word). */
  eventInjLo = 0;
  eventInjErr = 0;
  /** +0C8H nRIP (next sequential instruction pointer). */
  nextRipLo = 0;
  nextRipHi = 0;
  /** +068H interrupt shadow. */
  interruptShadow = 0;
}

export class VmcbSave {
  /** +160H DR7, +168H DR6. */
  dr7Lo = 0x400;
  dr7Hi = 0;
  dr6Lo = DR6_RESERVED1;
  dr6Hi = 0;
  /** +270H DBGCTL. */
  dbgctlLo = 0;
  dbgctlHi = 0;
  ripLo = 0;
  ripHi = 0;
  rspLo = 0;
  rspHi = 0;
  rflagsLo = 2;
  rflagsHi = 0;
}

export class Vmcb {
  readonly control = new VmcbControl();
  readonly save = new VmcbSave();
}
