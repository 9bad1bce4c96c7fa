import { Argv } from 'yargs';
import { DR_SWITCH_MODES } from '../vmm/api/vm-options';
import { vmNameProblem } from '../vmm/api/control-socket';
import { UsageError } from './exit-codes';
import { DEFAULT_GDB_SPEC } from './gdb-spec';
import { CliDeps, realDeps } from './modules';
import { Output, processOutput, reportAndExit } from './output';
import { parseChoiceList, parseIntegerFlag, singleString } from './parse-values';
import { runCommand } from './run-command';
import { checkWritable } from './writable-file';
import { serveCommand } from './serve-command';
import { BACKENDS, VM_BACKENDS, VM_OPTION_SPECS, vmOptionsFromArgs } from './vm-options-cli';
import { BOOT_OPTION_SPECS, bootFlagsFromArgs } from './boot-flags';
import { VerifyOptions } from './verify-options';
import { reportError } from './report-error';
import { versionLine } from './version';
import { makeParser, refuseSwitchValues } from './yargs-setup';
import { difftestYargsCommand, hostcheckYargsCommand, refuseKvmOnlyFlags } from './kvm-cli';

type Args = Record<string, unknown>;
const COMMANDS = ['run', 'serve', 'verify', 'hostcheck', 'difftest'];
/** What a parsed command line asks for, run after yargs is done with it. */
type Action = () => Promise<number>;

const TRACE_VM_HELP = 'write the VM\'s trace events (guest/host phases, VM exits, #DB, debug-register writes, leaks) '
  + 'to FILE as Chrome trace events (verify --trace merges them)';

const SERIAL_INPUT_HELP = 'feed FILE (- for stdin) into COM1\'s receive line (the 16550 at 0x3F8)';

const EXIT_EPILOGUE =
  'Exit status: the guest\'s own status (0-127), or 128 usage error, 129 bad ELF, 130 guest triple fault, '
  + '131 access outside guest memory, 132 all vCPUs halted, 133 VM entry failed, 134 internal error, '
  + '135 name or address in use.';

function withVmOptions(y: Argv): Argv {
  let out = y;
  for (const [flag, spec] of Object.entries(VM_OPTION_SPECS)) {
    // a switch (--no-jit) takes no value: only the valued options require one
    out = out.option(flag, { ...spec, requiresArg: spec.type !== 'boolean', group: 'VM options:' });
  }
  for (const [flag, spec] of Object.entries(BOOT_OPTION_SPECS)) {
    out = out.option(flag, { ...spec, requiresArg: true, group: 'Boot (Multiboot/PVH kernels):' });
  }
  return out;
}

function guestPositional(y: Argv): Argv {
  return y.positional('guest', { type: 'string', describe: 'the guest: a static ELF64 x86-64 executable' });
}

/** --name: checked here so that a bad name is a usage error before anything starts. */
function nameFlag(args: Args): string | undefined {
  const name = singleString('name', args['name']);
  if (name === undefined) return undefined;
  const bad = vmNameProblem(name);
  if (bad !== undefined) throw new UsageError(`--name: ${bad}`);
  return name;
}

function switchFlag(flag: string, raw: unknown): boolean {
  const values = Array.isArray(raw) ? raw : [raw];
  if (values.some((v) => v !== true && v !== undefined && v !== false)) throw new UsageError(`--${flag} takes no value`);
  return values.includes(true);
}

function guestArg(args: Args): string {
  const extra = (args['_'] as unknown[]).slice(1);
  if (extra.length > 0) throw new UsageError(`unexpected argument '${String(extra[0])}'`);
  const guest = singleString('guest', args['guest']);
  if (guest === undefined || guest === '') throw new UsageError('missing the guest ELF file');
  return guest;
}

function optionalFile(flag: string, args: Args): string | undefined {
  const f = singleString(flag, args[flag]);
  if (f === '') throw new UsageError(`--${flag} needs a file name`);
  return f;
}

export function buildParser(argv: readonly string[], deps: CliDeps, out: Output, setAction: (a: Action) => void): Argv {
  return makeParser(argv, 'vmm-gdbstub')
    .usage('$0 <command> [options]   ($0 --version: the version)\n\nA simulated x86-64 VT-x/SVM hypervisor with a gdb stub.')
    .command(
      'run <guest>',
      'run a guest to its end; its debug console goes to stdout, its exit status is ours',
      (y) => withVmOptions(guestPositional(y))
        .option('stats', { type: 'boolean', describe: 'print statistics on stderr at the end' })
        .option('json', { type: 'string', requiresArg: true, describe: 'write the statistics as JSON to FILE' })
        .option('name', { type: 'string', requiresArg: true, describe: 'name the VM: vmmctl --vm NAME can reach it' })
        .option('trace-vm', { type: 'string', requiresArg: true, describe: TRACE_VM_HELP })
        .option('serial-input', { type: 'string', requiresArg: true, describe: SERIAL_INPUT_HELP + '; the run waits for input while every vCPU is halted' })
        .epilogue(EXIT_EPILOGUE),
      (args: Args) => {
        const req = {
          elf: guestArg(args),
          vm: vmOptionsFromArgs(args),
          boot: bootFlagsFromArgs(args),
          stats: switchFlag('stats', args['stats']),
          json: optionalFile('json', args),
          name: nameFlag(args),
          traceVm: optionalFile('trace-vm', args),
          serialInput: optionalFile('serial-input', args),
        };
        setAction(() => runCommand(req, deps, out));
      },
    )
    .command(
      'serve <guest>',
      'start the VM stopped at its entry point and wait for gdb',
      (y) => withVmOptions(guestPositional(y))
        .option('gdb', {
          type: 'string', requiresArg: true, default: DEFAULT_GDB_SPEC,
          describe: 'where gdb connects: tcp:HOST:PORT, unix:PATH or stdio (target remote | vmm-gdbstub serve ... --gdb stdio)',
        })
        .option('name', { type: 'string', requiresArg: true, describe: 'name the VM: vmmctl --vm NAME can reach it' })
        .option('allow-remote', { type: 'boolean', describe: 'allow a --gdb address other than loopback (anyone reaching it controls the VM)' })
        .option('trace-packets', { type: 'string', requiresArg: true, describe: 'log every RSP packet to FILE, or - for stderr' })
        .option('trace-vm', { type: 'string', requiresArg: true, describe: TRACE_VM_HELP })
        .option('serial-input', { type: 'string', requiresArg: true, describe: SERIAL_INPUT_HELP })
        .epilogue(EXIT_EPILOGUE),
      (args: Args) => {
        const req = {
          elf: guestArg(args),
          vm: vmOptionsFromArgs(args),
          boot: bootFlagsFromArgs(args),
          serialInput: optionalFile('serial-input', args),
          gdb: singleString('gdb', args['gdb']) ?? DEFAULT_GDB_SPEC,
          name: nameFlag(args),
          allowRemote: switchFlag('allow-remote', args['allow-remote']),
          tracePackets: optionalFile('trace-packets', args),
          traceVm: optionalFile('trace-vm', args),
        };
        setAction(() => serveCommand(req, deps, out));
      },
    )
    .command(
      'verify',
      'run the verification matrix (backends x dr-switch modes x scenarios) with stock gdb',
      (y) => y
        .option('backend', { type: 'string', requiresArg: true, describe: `backends to run, comma-separated (${VM_BACKENDS.join(',')}; default ${BACKENDS.join(',')}: kvm, the host's /dev/kvm, only when named)` })
        .option('dr-switch', { type: 'string', requiresArg: true, describe: `dr-switch modes, comma-separated (${DR_SWITCH_MODES.join(',')}; default all)` })
        .option('scenario', { type: 'string', requiresArg: true, describe: 'scenarios to run, comma-separated (default all)' })
        .option('json', { type: 'string', requiresArg: true, describe: 'write the result table as JSON to FILE' })
        .option('trace', { type: 'string', requiresArg: true, describe: 'write a Chrome trace-event timeline (Perfetto, chrome://tracing) to FILE' })
        .option('jobs', { type: 'string', requiresArg: true, describe: 'at most N cells run in parallel (default: the verifier chooses)' })
        .option('wide', { type: 'boolean', describe: 'one table row per cell (expected, observed) instead of the compact grid' })
        .epilogue('Scenario kut-debug runs kvm-unit-tests\' debug.flat from $KVM_UNIT_TESTS_DIR (default: a shared/kvm-unit-tests '
          + 'folder beside or above the repository); without it its cells are n/a.\n\n'
          + 'Exit status: 0 only if every full cell passes and every pre-fix cell shows its failure, 1 otherwise; 128 usage error; 134 verify not in this build; 137 gdb not installed.'),
      (args: Args) => {
        const extra = (args['_'] as unknown[]).slice(1);
        if (extra.length > 0) throw new UsageError(`unexpected argument '${String(extra[0])}'`);
        const scenarios = scenarioList(args['scenario']);
        const opts: VerifyOptions = {
          backends: parseChoiceList('backend', args['backend'], VM_BACKENDS) ?? [...BACKENDS],
          drSwitch: parseChoiceList('dr-switch', args['dr-switch'], DR_SWITCH_MODES) ?? [...DR_SWITCH_MODES],
          ...(scenarios !== undefined ? { scenarios } : {}),
        };
        const json = optionalFile('json', args);
        const trace = optionalFile('trace', args);
        if (json !== undefined) { checkWritable(json, '--json'); opts.json = json; }
        if (trace !== undefined) { checkWritable(trace, '--trace'); opts.trace = trace; }
        if (args['jobs'] !== undefined) opts.jobs = parseIntegerFlag('jobs', args['jobs'], 1, 64, 1);
        if (switchFlag('wide', args['wide'])) opts.wide = true;
        setAction(() => verifyCommand(opts, deps));
      },
    )
    .command(...hostcheckYargsCommand(out, setAction, (a) => optionalFile('json', a)))
    .command(...difftestYargsCommand(out, setAction))
    .demandCommand(1, 'give a command: run, serve, verify or hostcheck')
    .epilogue(EXIT_EPILOGUE);
}

/** Scenario names are the verifier's to know; here only their shape is checked. */
function scenarioList(raw: unknown): string[] | undefined {
  if (raw === undefined) return undefined;
  const names = (Array.isArray(raw) ? raw : [raw]).flatMap((v) => {
    if (typeof v === 'boolean') throw new UsageError('--scenario needs a value');
    return String(v).split(',');
  }).map((s) => s.trim());
  for (const n of names) {
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(n)) throw new UsageError(`--scenario: '${n}' is not a scenario name`);
  }
  return [...new Set(names)];
}

async function verifyCommand(opts: VerifyOptions, deps: CliDeps): Promise<number> {
  const { runVerify, scenarios } = deps.runVerify();
  if (scenarios !== undefined && opts.scenarios !== undefined) {
    const unknown = opts.scenarios.filter((s) => !scenarios.includes(s));
    if (unknown.length > 0) {
      throw new UsageError(`--scenario: unknown scenario '${unknown[0]}' (known: ${scenarios.join(', ')})`);
    }
  }
  return runVerify(opts);
}


/** Parses and runs one command line; resolves to the exit status. Never throws. */
export async function vmmGdbstubMain(argv: readonly string[], out: Output, deps: CliDeps = realDeps): Promise<number> {
  try {
    const first = argv[0];
    if (first === '--version' && argv.length === 1) {
      out.stdout(versionLine('vmm-gdbstub'));
      return 0;
    }
    if (first !== undefined && !first.startsWith('-') && !COMMANDS.includes(first)) {
      throw new UsageError(`unknown command '${first}' (commands: ${COMMANDS.join(', ')})`);
    }
    refuseSwitchValues(argv, (f) => ['stats', 'allow-remote', 'help', 'wide', 'no-jit'].includes(f));
    refuseKvmOnlyFlags(argv);
    let action: Action | undefined;
    await buildParser(argv, deps, out, (a) => { action = a; }).parseAsync();
    if (action === undefined) return 0; // --help was shown
    return await action();
  } catch (e) {
    return reportError('vmm-gdbstub', e, out);
  }
}

/** Entry point of bin/vmm-gdbstub.js. */
export function vmmGdbstubProcess(): void {
  void vmmGdbstubMain(process.argv.slice(2), processOutput()).then(reportAndExit);
}

