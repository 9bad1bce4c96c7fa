import { DebugLeak } from './vm-api';

/**
 * Events for the verify command's Chrome trace. `ts` is the VM's instruction count (all
 * vCPUs), not wall time, so traces are reproducible.
 */
export type TraceEvent =
  /** The vCPU's physical CPU switched to running the guest or the host. */
  | { type: 'phase'; ts: number; vcpu: number; phase: 'guest' | 'host' }
  /** A VM exit: generic reason and the backend's own (vmx:N / svm:0xN). */
  | { type: 'exit'; ts: number; vcpu: number; reason: string; backendReason: string }
  /** A #DB the hypervisor saw: its DR6 status bits and whose it was. */
  | { type: 'db'; ts: number; vcpu: number; dr6: number; owner: 'guest' | 'debugger' | 'both' }
  /**
   * A debug-register write through the hypervisor (register interface, emulated MOV DR) or by
   * the host (vcpu -1). Guest MOV DR writes that are not intercepted go straight to the
   * hardware and are not seen.
   */
  | { type: 'dr-write'; ts: number; vcpu: number; register: string; value: string; by: 'client' | 'guest' | 'hypervisor' | 'host' }
  | { type: 'leak'; ts: number; vcpu: number; leak: DebugLeak };

export type TraceSink = (ev: TraceEvent) => void;
