import { BackendName } from './vm-api';

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
}

export const DEFAULT_VM_OPTIONS: VmOptions = {
  backend: 'vmx',
  drSwitch: 'full',
  vcpus: 1,
  memMiB: 64,
  preemptEvery: 0,
  hostScenario: 'idle',
};
