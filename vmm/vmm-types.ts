/**
 * The types the hypervisor and the API share (as bhyve's <machine/vmm.h>, which the kernel's
 * vmm and libvmmapi both include): backends, capabilities, debugger slots, stops, leaks,
 * statistics, VM options and trace events. A leaf module: it imports only vmm/u64; vmm/api
 * re-exports what its clients use.
 */
import { U64 } from './u64';

/** vmx / svm: our simulated hardware; kvm: the host's real /dev/kvm (vmm/kvm). */
export type BackendName = 'vmx' | 'svm' | 'kvm';

/** One debugger-owned hardware breakpoint slot (the effective-state layer). */
export interface DebuggerSlot {
  address: U64;
  /** 'exec' = R/W 00 (len must be 1), 'write' = 01, 'io' = 10, 'access' = 11. */
  type: 'exec' | 'write' | 'io' | 'access';
  len: 1 | 2 | 4 | 8;
}

/** Capabilities a client may turn on per vCPU (as bhyve's vm_cap_type). */
export type Capability =
  | 'intercept-db'   // #DB exits to the client instead of the guest IDT
  | 'intercept-bp'   // #BP (int3) exits to the client
  | 'mtf'            // VT-x monitor trap flag stepping (vmx only)
  | 'rflags-tf';     // step with the guest's RFLAGS.TF, hidden from the guest

/**
 * Why a run stopped, as the client sees it (as bhyve's VM_EXITCODE_*). Exits the hypervisor
 * handles itself (I/O, CPUID, HLT with a timer, preemption, ...) never reach the client.
 */
export type VmStop =
  | { kind: 'slice'; vcpu: number }                 // budget used up; nothing happened
  | {
      kind: 'debug'; vcpu: number;
      /** Debugger slots (0-3, the client's numbering) that hit. */
      slotsHit: number;
      /** The client's single step completed. */
      step: boolean;
    }
  | { kind: 'breakpoint'; vcpu: number; rip: U64 } // int3 with intercept-bp; RIP at the int3
  | { kind: 'mtf'; vcpu: number }
  | { kind: 'exit'; vcpu: number; status: number }  // guest wrote port 0xF4
  | { kind: 'triple-fault'; vcpu: number; reason: string }
  | { kind: 'npf'; vcpu: number; address: number; write: boolean }
  | { kind: 'all-halted'; vcpu: number }            // every vCPU halted with nothing to wake it
  | { kind: 'entry-failed'; vcpu: number; reason: string };

export interface DebugLeak {
  transition: number;
  vcpu: number;
  register: string;     // 'dr0'..'dr7', 'debugctl', 'tf'
  expected: string;     // hex
  actual: string;       // hex
  side: 'guest' | 'host'; // which side's value leaked into the other context
  when: 'entry' | 'exit';
}

export interface VmStats {
  instructions: number;
  exits: Record<string, number>;
  transitions: number;
  leaks: number;
  hostWatchHits: number;
  /**
   * Host NMIs the host handled after NMI exits, and how many of those handlers found debug
   * registers that were not the host's (the guest's, left there by the exit path). Absent
   * where the VM has no host model (kvm).
   */
  hostNmis?: { handled: number; sawForeignDebugState: number };
}

/**
 * --dr-switch values. `full` is the FreeBSD fix, `none` the pre-fix behaviour; each
 * `no-*` value is the fix with exactly one part left out (fault injection).
 */
export const DR_SWITCH_MODES = [
  'full',
  'none',
  'no-guest-dr0-3',   // guest DR0-3 not saved/loaded
  'no-guest-dr6',     // guest DR6 not saved/loaded (VT-x; SVM has it in the VMCB)
  'no-host-dr7-debugctl', // host DR7/DEBUGCTL not saved, zeroed and restored
  'no-tf-guard',      // VT-x: host TF not cleared before the guest DR6 load
  'no-svm-dirty',     // SVM: writes of guest DR6/DR7 do not mark VMCB clean bit 6 dirty
] as const;
export type DrSwitchMode = (typeof DR_SWITCH_MODES)[number];

export const HOST_SCENARIOS = ['idle', 'host-watch', 'kdb-step', 'kdb-determined'] as const;
export type HostScenario = (typeof HOST_SCENARIOS)[number];

export interface VmOptions {
  backend: BackendName;
  drSwitch: DrSwitchMode;
  vcpus: number;
  memMiB: number;
  /** A host timer external-interrupt exit every N guest instructions; 0 = off. */
  preemptEvery: number;
  hostScenario: HostScenario;
  /**
   * A host NMI (a watchdog's) while the guest runs, every N guest instructions of each vCPU:
   * an NMI exit the host handles (README "NMIs"). 0 or absent = none. Simulated backends only.
   */
  hostNmiEvery?: number;
  /**
   * Hot guest code runs compiled (vmm/cpu/jit) unless false (`--no-jit`): the results are
   * the same either way, only the speed differs. Simulated backends only.
   */
  jit?: boolean;
}

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
