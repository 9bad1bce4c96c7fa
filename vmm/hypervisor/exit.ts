/**
 * The generic VM exit: each backend maps its own exit record (VT-x exit reason +
 * qualification, SVM EXITCODE + EXITINFO1/2) to one of these kinds, so that the exit
 * handlers read like bhyve's vmx_exit_process / svm_vmexit, once for both.
 */
export type GenericExitKind =
  | 'exception' | 'extint' | 'triple-fault' | 'hlt' | 'cpuid' | 'hypercall' | 'io' | 'rdmsr' | 'wrmsr'
  | 'mov-dr' | 'mtf' | 'npf' | 'entry-failed' | 'slice'
  /** A host NMI (VT-x exit reason 0 with an NMI, SVM VMEXIT_NMI): the host's, the guest sees nothing. */
  | 'nmi'
  /** VT-x NMI-window exit (the guest's NMI blocking ended) / SVM IRET intercept (its NMI handler returns). */
  | 'nmi-window' | 'iret'
  /** The hypervisor's step saw an event delivered: RIP at the handler's first instruction. */
  | 'step-event';

export interface GenericExit {
  kind: GenericExitKind;
  /** The backend's own record, for traces and stats: 'vmx:10' / 'svm:0x72'. */
  backendReason: string;
  /** Length of the intercepted instruction (0 for event-like exits). */
  length: number;
  /** exception */
  vector: number;
  errorCode: number | undefined;
  eventType: 'hw' | 'sw' | 'swexc' | 'priv';
  /** #DB: B0-B3 (bits 3:0), BD (13), BS (14) as the exit reported them. */
  dbStatus: number;
  /** io */
  port: number;
  size: 1 | 2 | 4;
  isIn: boolean;
  string: boolean;
  rep: boolean;
  /** mov-dr */
  dr: number;
  gpr: number;
  toDr: boolean;
  /** npf */
  address: number;
  write: boolean;
  /** triple-fault / entry-failed */
  reason: string;
}

/** One reusable record per vCPU: the exit path allocates nothing. */
export function newGenericExit(): GenericExit {
  return {
    kind: 'slice', backendReason: '', length: 0, vector: 0, errorCode: undefined, eventType: 'hw',
    dbStatus: 0, port: 0, size: 1, isIn: false, string: false, rep: false, dr: 0, gpr: 0,
    toDr: false, address: 0, write: false, reason: '',
  };
}
