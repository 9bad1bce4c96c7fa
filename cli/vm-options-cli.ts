import {
  DEFAULT_VM_OPTIONS, DR_SWITCH_MODES, HOST_SCENARIOS, VmOptions,
} from '../vmm/api/vm-options';
import { BackendName } from '../vmm/api/vm-api';
import { UsageError } from './exit-codes';
import { parseChoiceFlag, parseIntegerFlag } from './parse-values';
import { checkKvmOptions } from './kvm-cli';

export const BACKENDS: readonly BackendName[] = ['vmx', 'svm'];
/** run / serve also take kvm (the host's /dev/kvm, vmm/kvm); verify's default stays BACKENDS. */
export const VM_BACKENDS: readonly BackendName[] = [...BACKENDS, 'kvm'];

/** bhyve's historical VM_MAXCPU; each vCPU also needs its own stack at the top of RAM. */
export const MAX_VCPUS = 16;
/** Guest RAM stays below 2 GiB so that every guest-physical address fits in 31 bits. */
export const MAX_MEM_MIB = 2048;
export const MIN_MEM_MIB = 1;
/** The guest ABI reserves at least 64 KiB of stack per vCPU at the top of guest memory. */
export const STACK_KIB_PER_VCPU = 64;

/** Left-out parts of the fix that exist on one backend only (README, VM options). */
const BACKEND_ONLY_MODES: Partial<Record<string, BackendName>> = { 'no-tf-guard': 'vmx', 'no-svm-dirty': 'svm' };

/** The yargs option table shared by every command that starts a VM. */
export const VM_OPTION_SPECS = {
  backend: {
    type: 'string', describe: 'simulated hardware virtualization: vmx (VT-x) or svm (AMD-V); or kvm: this host\'s /dev/kvm',
    default: DEFAULT_VM_OPTIONS.backend,
  },
  'dr-switch': {
    type: 'string',
    describe: `debug-register switch at VM entry/exit: full (the FreeBSD fix), none (pre-fix), or the fix with one part left out (${DR_SWITCH_MODES.slice(2).join(', ')})`,
    default: DEFAULT_VM_OPTIONS.drSwitch,
  },
  vcpus: { type: 'string', describe: `number of vCPUs (1-${MAX_VCPUS})`, default: String(DEFAULT_VM_OPTIONS.vcpus) },
  mem: { type: 'string', describe: `guest RAM in MiB (${MIN_MEM_MIB}-${MAX_MEM_MIB})`, default: String(DEFAULT_VM_OPTIONS.memMiB) },
  'preempt-every': {
    type: 'string', describe: 'a host timer external-interrupt VM exit every N guest instructions (0 = off)',
    default: String(DEFAULT_VM_OPTIONS.preemptEvery),
  },
  'host-nmi-every': {
    type: 'string', describe: 'a host NMI (as a watchdog\'s) causes an NMI VM exit every N guest instructions (0 = off)',
    default: '0',
  },
  'no-jit': {
    type: 'boolean', describe: 'interpret every guest instruction (no block compiler); results are the same, only slower',
    default: false,
  },
  'host-scenario': {
    type: 'string',
    describe: `what the host does with its own debug registers: ${HOST_SCENARIOS.join(', ')}`,
    default: DEFAULT_VM_OPTIONS.hostScenario,
  },
} as const;

/** Validates the VM flags of a parsed command line into VmOptions (UsageError when bad). */
export function vmOptionsFromArgs(args: Record<string, unknown>): VmOptions {
  const backend = parseChoiceFlag('backend', args['backend'], VM_BACKENDS, DEFAULT_VM_OPTIONS.backend);
  const drSwitch = parseChoiceFlag('dr-switch', args['dr-switch'], DR_SWITCH_MODES, DEFAULT_VM_OPTIONS.drSwitch);
  const vcpus = parseIntegerFlag('vcpus', args['vcpus'], 1, MAX_VCPUS, DEFAULT_VM_OPTIONS.vcpus);
  const memMiB = parseIntegerFlag('mem', args['mem'], MIN_MEM_MIB, MAX_MEM_MIB, DEFAULT_VM_OPTIONS.memMiB);
  const preemptEvery = parseIntegerFlag('preempt-every', args['preempt-every'], 0, 0x7fffffff, DEFAULT_VM_OPTIONS.preemptEvery);
  const hostScenario = parseChoiceFlag('host-scenario', args['host-scenario'], HOST_SCENARIOS, DEFAULT_VM_OPTIONS.hostScenario);
  const hostNmiEvery = parseIntegerFlag('host-nmi-every', args['host-nmi-every'], 0, 0x7fffffff, 0);

  const otherBackend = BACKEND_ONLY_MODES[drSwitch];
  if (otherBackend !== undefined && otherBackend !== backend) {
    throw new UsageError(`--dr-switch ${drSwitch} leaves out a part of the fix that only ${otherBackend} has; it means nothing with --backend ${backend}`);
  }

  // The per-vCPU stacks live at the top of RAM; leave at least as much again for the image.
  const stacksKiB = vcpus * STACK_KIB_PER_VCPU;
  if (memMiB * 1024 < 2 * stacksKiB) {
    throw new UsageError(
      `--mem ${memMiB} is too small for ${vcpus} vCPUs (their stacks need ${stacksKiB} KiB; give at least ${Math.ceil((2 * stacksKiB) / 1024)} MiB)`,
    );
  }
  const opts: VmOptions = { backend, drSwitch, vcpus, memMiB, preemptEvery, hostScenario };
  if (args['no-jit'] === true) opts.jit = false;
  if (hostNmiEvery > 0) opts.hostNmiEvery = hostNmiEvery; // --no-jit=VALUE: refused with the other switches (main.ts)
  checkKvmOptions(opts);
  return opts;
}
