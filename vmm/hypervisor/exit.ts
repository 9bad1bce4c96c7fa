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

/** Every GenericExitKind, in a fixed order: the index of each is its counter's. */
const EXIT_KINDS: readonly GenericExitKind[] = [
  'cpuid', 'io', 'slice', 'extint', 'hlt', 'rdmsr', 'wrmsr', 'hypercall', 'exception', 'mov-dr', 'mtf',
  'step-event', 'nmi', 'nmi-window', 'iret', 'npf', 'triple-fault', 'entry-failed',
];

/** exitKindIndex: a switch on constant strings (compared by identity), no hashing. */
function exitKindIndex(kind: GenericExitKind): number {
  switch (kind) {
    case 'cpuid': return 0;
    case 'io': return 1;
    case 'slice': return 2;
    case 'extint': return 3;
    case 'hlt': return 4;
    case 'rdmsr': return 5;
    case 'wrmsr': return 6;
    case 'hypercall': return 7;
    case 'exception': return 8;
    case 'mov-dr': return 9;
    case 'mtf': return 10;
    case 'step-event': return 11;
    case 'nmi': return 12;
    case 'nmi-window': return 13;
    case 'iret': return 14;
    case 'npf': return 15;
    case 'triple-fault': return 16;
    case 'entry-failed': return 17;
  }
}

/**
 * The VM's exits by kind (the stats' `exits`): a counter per kind, counted on every exit
 * without a keyed property store; record() lists the kinds in the order they first exited.
 */
export class ExitCounts {
  private readonly counts = new Float64Array(EXIT_KINDS.length);
  private readonly order: GenericExitKind[] = [];

  count(kind: GenericExitKind): void {
    const i = exitKindIndex(kind);
    if (this.counts[i]++ === 0) this.order.push(kind);
  }

  record(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const k of this.order) out[k] = this.counts[exitKindIndex(k)];
    return out;
  }
}
