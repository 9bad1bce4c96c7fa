/**
 * One vCPU of a KVM VM: its fd, its kvm_run page (shared with the kernel), its KVM_RUN
 * thread (in the addon), and what userspace adds on top of KVM without an in-kernel irqchip:
 * the guest ABI timer, interrupt injection when the window opens, HLT, and the debugger's
 * KVM_SET_GUEST_DEBUG state.
 */
import { DebuggerSlot } from '../api/vm-api';
import { KvmBinding } from './binding';

export type KvmVcpuRunState =
  /** Out of KVM_RUN with a consistent state. */
  | 'idle'
  /** In (or entering) KVM_RUN on its thread. */
  | 'running'
  /** Back from an I/O exit that was handled: the instruction completes at the next KVM_RUN. */
  | 'io-pending';

export type HaltState = 'no' | 'timer' | 'forever';

/** The guest ABI timer, on the vCPU's guest clock (guestClockMs). */
export interface GuestTimer {
  vector: number;
  periodMs: number;
  dueMs: number;
}

/** The debugger's wishes for this vCPU, turned into one KVM_SET_GUEST_DEBUG. */
export interface DebuggerRequest {
  slots: Array<DebuggerSlot | null>;
  swBreakpoints: boolean;  // intercept-bp -> KVM_GUESTDBG_USE_SW_BP
  singleStep: boolean;     // rflags-tf -> KVM_GUESTDBG_SINGLESTEP
  interceptDb: boolean;    // intercept-db -> KVM_GUESTDBG_USE_HW_BP (with at least one slot)
}

export class KvmVcpu {
  state: KvmVcpuRunState = 'idle';
  halt: HaltState = 'no';
  timer: GuestTimer | null = null;
  pendingVector: number | null = null;
  /** Guest clock when pendingVector became pending. */
  pendingSinceMs = 0;
  /**
   * Single-stepping, an I/O exit was handled: the next KVM_RUN only completes the instruction
   * (immediate_exit), and its end is the step (this host's KVM loses the step trap after a
   * userspace I/O completion and runs one more instruction).
   */
  completeForStep = false;
  /** RIP where the current single step started (-1: not stepping). */
  stepFrom = -1;
  /** The last return from KVM_RUN was not an HLT exit (a kick, I/O, a debug exit, ...). */
  lastExitWasKick = false;
  /** A stop found while the other vCPUs were being stopped: reported by the next run. */
  pendingStop: import('../api/vm-api').VmStop | null = null;
  readonly debug: DebuggerRequest = { slots: [null, null, null, null], swBreakpoints: false, singleStep: false, interceptDb: false };
  debugDirty = true;
  /** RIP (linear) of the last instruction-breakpoint stop: resume there with RFLAGS.RF. */
  rfAt: number | null = null;
  /** The control word last given to KVM_SET_GUEST_DEBUG. */
  guestDebugControl = 0;
  readonly guestDebugRegs = new Uint8Array(8 * 8);
  readonly run: DataView;
  /**
   * Guest clock: host milliseconds this vCPU spent in KVM_RUN, plus the waits it skipped in
   * HLT. Time the host spends between runs (exits handled here, the stub, gdb) is not the
   * guest's: a tick cannot fall between two guest instructions only because we were slow.
   */
  guestMs = 0;
  runStartMs = 0;
  /** When it was kicked during this run (the guest stopped then, not when we noticed). */
  kickMs: number | null = null;

  constructor(
    readonly index: number,
    readonly fd: number,
    readonly handle: number,
    runPage: ArrayBuffer,
    private readonly binding: KvmBinding,
  ) {
    this.run = new DataView(runPage);
  }

  private get c(): Record<string, number> {
    return this.binding.constants;
  }

  exitReason(): number { return this.run.getUint32(this.c.off_run_exit_reason, true); }
  readyForInterrupt(): boolean { return this.run.getUint8(this.c.off_run_ready_for_interrupt_injection) !== 0; }
  ifFlag(): boolean { return this.run.getUint8(this.c.off_run_if_flag) !== 0; }

  /** Slots in use by the debugger (bit i = DR i) while KVM_GUESTDBG_USE_HW_BP is on. */
  activeSlotMask(): number {
    if (!this.debug.interceptDb) return 0;
    let m = 0;
    this.debug.slots.forEach((s, i) => { if (s !== null) m |= 1 << i; });
    return m;
  }
}
