/**
 * `vmm-gdbstub hostcheck [--json FILE]`: does this machine's virtualization get the debug
 * registers right? Runs the probe guests (cli/hostcheck/probes.ts) on /dev/kvm and prints,
 * per feature, what the guest-set (MOV DR) and the debugger-set (KVM_SET_GUEST_DEBUG)
 * variants did: works / does not fire / wrong value, with the evidence.
 * Exit status: 0 everything works, 1 something does not, 137 /dev/kvm (or as/ld) unusable.
 */
import * as fs from 'node:fs';
import { kvmProblem } from '../vmm/kvm/kvm-device';
import { CliError, EXIT } from './exit-codes';
import { Output } from './output';
import { ProbeResult, runProbes } from './hostcheck/probes';
import { ToolMissing } from './hostcheck/probe-asm';

export interface HostcheckRequest {
  json?: string;
}

export function formatHostcheckTable(results: readonly ProbeResult[]): string {
  const rows = results.map((r) => [r.feature, r.setBy === 'guest' ? 'guest-set' : 'debugger-set (KVM_SET_GUEST_DEBUG)', r.verdict, r.evidence]);
  const head = ['feature', 'set by', 'result', 'evidence'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.slice().map((r) => (i < 3 ? r[i].length : 0))));
  const line = (cells: string[]): string => cells.map((c, i) => (i < 3 ? c.padEnd(widths[i]) : c)).join('  ').trimEnd();
  const out = [line(head), line(widths.map((w, i) => '-'.repeat(i < 3 ? w : 8))), ...rows.map(line)];
  const bad = results.filter((r) => r.verdict !== 'works').length;
  out.push('', bad === 0 ? `all ${results.length} checks work` : `${results.length - bad} of ${results.length} checks work; ${bad} do not`);
  return out.join('\n') + '\n';
}

export async function hostcheckCommand(req: HostcheckRequest, out: Output): Promise<number> {
  const problem = kvmProblem();
  if (problem !== undefined) throw new CliError(`hostcheck: ${problem}`, EXIT.KVM_UNAVAILABLE);
  let results: ProbeResult[];
  try {
    results = runProbes((line) => out.stderr(`hostcheck: ${line}\n`));
  } catch (e) {
    if (e instanceof ToolMissing) throw new CliError(`hostcheck: ${e.message}`, EXIT.KVM_UNAVAILABLE);
    throw e;
  }
  out.stdout(formatHostcheckTable(results));
  if (req.json !== undefined) {
    try {
      fs.writeFileSync(req.json, JSON.stringify({ device: '/dev/kvm', results }, null, 2) + '\n');
    } catch (e) {
      throw new CliError(`cannot write --json ${req.json}: ${(e as Error).message}`, 134);
    }
  }
  return results.every((r) => r.verdict === 'works') ? 0 : 1;
}
