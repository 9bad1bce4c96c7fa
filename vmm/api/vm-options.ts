import { VmOptions } from '../vmm-types';

export { DR_SWITCH_MODES, HOST_SCENARIOS } from '../vmm-types';
export type { DrSwitchMode, HostScenario, VmOptions } from '../vmm-types';

export const DEFAULT_VM_OPTIONS: VmOptions = {
  backend: 'vmx',
  drSwitch: 'full',
  vcpus: 1,
  memMiB: 64,
  preemptEvery: 0,
  hostScenario: 'idle',
};
