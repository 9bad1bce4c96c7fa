/**
 * The CLI side of --backend kvm (vmm/kvm): the flags that do not apply to it are refused as
 * usage errors; the addon is loaded and /dev/kvm opened only when a kvm VM is created.
 */
import { Argv } from 'yargs';
import { LoadedImage } from '../vmm/loader/elf-types';
import { VmApi } from '../vmm/api/vm-api';
import { VmOptions } from '../vmm/api/vm-options';
import { kvmOptionProblems } from '../vmm/kvm/kvm-options';
import { kvmProblem } from '../vmm/kvm/kvm-device';
import { createKvmVm } from '../vmm/kvm/kvm-vm';
import { CliError, EXIT, UsageError } from './exit-codes';
import { Output } from './output';
import { checkWritable } from './writable-file';
import { hostcheckCommand } from './hostcheck-command';
import { difftestCommand } from './difftest-kvm';
import { parseIntegerFlag, singleString } from './parse-values';

/** /dev/kvm missing or unusable, or the addon not built (as verify's 137: a tool not installed). */

/** The raw values of --flag in argv (both `--flag V` and `--flag=V`). */
function flagValues(argv: readonly string[], flag: string): string[] {
  const out: string[] = [];
  argv.forEach((a, i) => {
    if (a === `--${flag}` && i + 1 < argv.length) out.push(argv[i + 1]);
    else if (a.startsWith(`--${flag}=`)) out.push(a.slice(flag.length + 3));
  });
  return out;
}

/**
 * run/serve with --backend kvm: --dr-switch does not apply even when given as `full` (the
 * default is only a default), and neither do host scenarios other than idle.
 */
export function refuseKvmOnlyFlags(argv: readonly string[]): void {
  if (!['run', 'serve'].includes(argv[0] ?? '')) return;
  if (!flagValues(argv, 'backend').includes('kvm')) return;
  const dr = flagValues(argv, 'dr-switch');
  if (dr.length > 0) throw new UsageError(`--dr-switch ${dr[0]} does not apply to --backend kvm: the host kernel switches the debug registers`);
}

/** After parsing: the option values kvm cannot honour. */
export function checkKvmOptions(o: VmOptions): void {
  if (o.backend !== 'kvm') return;
  const problems = kvmOptionProblems(o);
  if (problems.length > 0) throw new UsageError(problems[0]);
}

/** createVm for every backend: kvm from vmm/kvm, loaded on demand; the rest from `simulated`. */
export function createVmAnyBackend(simulated: (image: LoadedImage, opts: VmOptions) => VmApi) {
  return (image: LoadedImage, opts: VmOptions): VmApi => {
    if (opts.backend !== 'kvm') return simulated(image, opts);
    const problem = kvmProblem(); // loads the addon and opens /dev/kvm, for kvm only
    if (problem !== undefined) throw new CliError(`--backend kvm: ${problem}`, EXIT.KVM_UNAVAILABLE);
    return createKvmVm(image, opts);
  };
}

/** The yargs registration of `hostcheck` (main.ts spreads it into .command()). */
export function hostcheckYargsCommand(
  out: Output, setAction: (a: () => Promise<number>) => void, jsonFlag: (args: Record<string, unknown>) => string | undefined,
): [string, string, (y: Argv) => Argv, (args: Record<string, unknown>) => void] {
  return [
    'hostcheck',
    'probe this host\'s /dev/kvm: do instruction, data and I/O breakpoints, single-step and DR6 work for guest-set and debugger-set breakpoints, and do DR0-3/DR7 survive VM exits',
    (y: Argv) => y
      .option('json', { type: 'string', requiresArg: true, describe: 'write the results as JSON to FILE' })
      .epilogue('Exit status: 0 every check works, 1 some check does not, 128 usage error, 137 /dev/kvm missing or unusable (or as/ld not installed).'),
    (args: Record<string, unknown>) => {
      const extra = (args['_'] as unknown[]).slice(1);
      if (extra.length > 0) throw new UsageError(`unexpected argument '${String(extra[0])}'`);
      const json = jsonFlag(args);
      if (json !== undefined) checkWritable(json, '--json');
      setAction(() => hostcheckCommand({ json }, out));
    },
  ];
}

/** The yargs registration of `difftest --against kvm GUEST [--steps N]`. */
export function difftestYargsCommand(
  out: Output, setAction: (a: () => Promise<number>) => void,
): [string, string, (y: Argv) => Argv, (args: Record<string, unknown>) => void] {
  return [
    'difftest <guest>',
    'run a guest on our CPU and on this host\'s /dev/kvm and compare: the console output, or with --steps N every register after each of N single-steps',
    (y: Argv) => y
      .positional('guest', { type: 'string', describe: 'the guest: a static ELF64 x86-64 executable' })
      .option('against', { type: 'string', requiresArg: true, describe: 'what to compare with: kvm (the only choice)' })
      .option('steps', { type: 'string', requiresArg: true, describe: 'single-step in lockstep for up to N instructions, comparing registers after each' })
      .epilogue('Exit status: 0 no mismatch, 1 mismatches (listed), 128 usage error, 129 bad ELF, 137 /dev/kvm missing or unusable.'),
    (args: Record<string, unknown>) => {
      const extra = (args['_'] as unknown[]).slice(1);
      if (extra.length > 0) throw new UsageError(`unexpected argument '${String(extra[0])}'`);
      const against = singleString('against', args['against']);
      if (against !== 'kvm') throw new UsageError(`--against must be kvm${against === undefined ? ' (give --against kvm)' : `, not '${against}'`}`);
      const guest = singleString('guest', args['guest']);
      if (guest === undefined || guest === '') throw new UsageError('missing the guest ELF file');
      const steps = args['steps'] === undefined ? undefined : parseIntegerFlag('steps', args['steps'], 1, 10_000_000, 1);
      setAction(() => difftestCommand({ guest, steps }, out));
    },
  ];
}
