import { VmOptions } from '../api/vm-options';

/**
 * VM options the kvm backend cannot honour, one line each (empty = fine): the host kernel,
 * not us, switches the debug registers and owns the host side (no --dr-switch modes, no host
 * scenarios). A leaf module so that the CLI can check without loading the addon.
 */
export function kvmOptionProblems(o: VmOptions): string[] {
  const out: string[] = [];
  if (o.drSwitch !== 'full') out.push(`--dr-switch ${o.drSwitch} does not apply to --backend kvm: the host kernel switches the debug registers`);
  if (o.hostScenario !== 'idle') out.push(`--host-scenario ${o.hostScenario} does not apply to --backend kvm: the host side is this machine's kernel, which we do not drive`);
  if ((o.hostNmiEvery ?? 0) > 0) out.push('--host-nmi-every does not apply to --backend kvm: the host\'s NMIs are this machine\'s');
  return out;
}
