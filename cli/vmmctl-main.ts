import { parseU64, u64ToBigInt } from '../vmm/u64';
import { GPR_NAMES, RegName } from '../vmm/api/registers';
import { controlSocketPath, listRunningVms, vmNameProblem } from '../vmm/api/control-socket';
import { DebugLeak, VmStats } from '../vmm/api/vm-api';
import { CliError, EXIT, UsageError } from './exit-codes';
import { ControlClient, ControlReply } from './control-client';
import { parseIntegerFlag, singleString } from './parse-values';
import { makeParser, refuseSwitchValues } from './yargs-setup';
import { versionLine } from './version';
import { Output, processOutput, reportAndExit } from './output';
import { reportError } from './report-error';

/** The registers vmmctl reads and writes (the guest view of the debug registers). */
export const VMMCTL_REGISTERS: readonly RegName[] = [
  'dr0', 'dr1', 'dr2', 'dr3', 'dr6', 'dr7', 'debugctl', 'rip', 'rflags', ...GPR_NAMES,
];

export interface VmmctlRequest {
  /** --list: print the names of the running VMs, nothing else. */
  list?: boolean;
  vm: string;
  cpu: number;
  sets: Array<{ reg: RegName; value: string }>;
  gets: RegName[];
  stats: boolean;
  leaks: boolean;
  debugState: boolean;
}

/** Parses a vmmctl command line; undefined when --help was shown. */
export async function parseVmmctlArgs(argv: readonly string[]): Promise<VmmctlRequest | undefined> {
  refuseSwitchValues(argv, (f) => f === 'help' || f.startsWith('get-'));
  const order = flagOrder(argv);
  let parser = makeParser(argv, 'vmmctl')
    .usage('$0 --vm NAME [--cpu N] [--get-REG ...] [--set-REG=VALUE ...] [--get-stats] [--get-leaks]\n\n'
      + 'Reads and writes the registers of a running VM (started by `vmm-gdbstub run|serve --name NAME`), '
      + 'as bhyvectl does. Debug registers are the guest view. Writes are done first, all or nothing, then reads.')
    .option('vm', { type: 'string', describe: 'name of the VM (its --name)', requiresArg: true })
    .option('list', { type: 'boolean', describe: 'list the running VMs' })
    .option('cpu', { type: 'string', describe: 'vCPU index', default: '0', requiresArg: true })
    .option('get-stats', { type: 'boolean', describe: 'print the VM statistics (instructions, VM exits, leaks)' })
    .option('get-leaks', { type: 'boolean', describe: 'print the debug-state leaks detected' })
    .option('get-all', { type: 'boolean', describe: 'print every register vmmctl knows (as bhyvectl --get-all)' })
    .option('get-debug-state', { type: 'boolean', describe: 'print the guest, effective and physical debug state of the vCPU' })
    .example('$0 --vm demo --get-dr7', 'prints dr7[0]\\t0x0000000000000400')
    .example('$0 --vm demo --cpu 1 --set-dr0=0x1000 --set-dr7=0x401 --get-dr7', '')
    .epilogue(`Registers: ${VMMCTL_REGISTERS.join(', ')}. Values: 0x hex or decimal, 64 bits.`);
  for (const reg of VMMCTL_REGISTERS) {
    parser = parser
      .option(`get-${reg}`, { type: 'boolean', describe: `print ${reg}`, hidden: !['dr0', 'dr7', 'rip'].includes(reg) })
      .option(`set-${reg}`, { type: 'string', describe: `write ${reg}`, requiresArg: true, hidden: !['dr0', 'dr7', 'rip'].includes(reg) });
  }
  let parsed: Record<string, unknown> | undefined;
  await parser.command('$0', false, () => {}, (a) => { parsed = a; }).parseAsync();
  if (parsed === undefined) return undefined;
  const args = parsed;

  if (args['_'] !== undefined && (args['_'] as unknown[]).length > 0) {
    throw new UsageError(`unexpected argument '${String((args['_'] as unknown[])[0])}'`);
  }
  if (args['list'] === true) {
    const others = Object.keys(args).filter((k) => k !== '_' && k !== '$0' && k !== 'list' && k !== 'cpu' && args[k] !== undefined);
    if (others.length > 0) throw new UsageError(`--list takes no other flag (got --${others[0]})`);
    return { list: true, vm: '', cpu: 0, sets: [], gets: [], stats: false, leaks: false, debugState: false };
  }
  const vm = singleString('vm', args['vm']);
  if (vm === undefined) throw new UsageError('--vm NAME is required (vmmctl --list shows the running VMs)');
  const bad = vmNameProblem(vm);
  if (bad !== undefined) throw new UsageError(`--vm: ${bad}`);
  const cpu = parseIntegerFlag('cpu', args['cpu'], 0, 4095, 0);

  const sets: VmmctlRequest['sets'] = [];
  const gets: RegName[] = [];
  for (const flag of order) {
    const m = /^(get|set)-(.*)$/.exec(flag);
    const reg = m ? VMMCTL_REGISTERS.find((r) => r === m[2]) : undefined;
    if (!m || reg === undefined) continue;
    if (m[1] === 'get') {
      checkNoValue(flag, args[flag]);
      if (!gets.includes(reg)) gets.push(reg);
    } else if (!sets.some((s) => s.reg === reg)) {
      const text = singleString(flag, args[flag]);
      if (text === undefined) continue;
      const value = parseU64(text);
      if (value === undefined) throw new UsageError(`--${flag}: '${text}' is not a 64-bit value (0x hex or decimal)`);
      sets.push({ reg, value: '0x' + u64ToBigInt(value).toString(16) });
    }
  }
  for (const flag of ['get-stats', 'get-leaks', 'get-debug-state', 'get-all']) checkNoValue(flag, args[flag]);
  if (args['get-all'] === true) {
    for (const reg of VMMCTL_REGISTERS) if (!gets.includes(reg)) gets.push(reg);
  }
  const req: VmmctlRequest = {
    vm, cpu, sets, gets,
    stats: args['get-stats'] === true,
    leaks: args['get-leaks'] === true,
    debugState: args['get-debug-state'] === true,
  };
  if (!req.sets.length && !req.gets.length && !req.stats && !req.leaks && !req.debugState) {
    throw new UsageError('nothing to do: give at least one --get-REG, --set-REG=VALUE, --get-stats or --get-leaks');
  }
  return req;
}

/** A --get-* flag is a switch: `--get-dr7=5` is a mistake, not a read. */
function checkNoValue(flag: string, raw: unknown): void {
  const values = Array.isArray(raw) ? raw : [raw];
  if (values.some((v) => v !== true && v !== undefined)) throw new UsageError(`--${flag} takes no value`);
}

/** The flags in command-line order (without values), so output follows the user's order. */
function flagOrder(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (const a of argv) {
    const m = /^--([^=]+)/.exec(a);
    if (m && !out.includes(m[1])) out.push(m[1]);
  }
  return out;
}

/** bhyvectl's line: `dr7[0]\t0x0000000000000400`. */
export function formatRegister(reg: string, cpu: number, hex: string): string {
  const v = BigInt(hex).toString(16).padStart(16, '0');
  return `${reg}[${cpu}]\t0x${v}`;
}

export function formatStats(s: VmStats): string[] {
  const lines = [`instructions retired\t${s.instructions}`];
  const total = Object.values(s.exits).reduce((a, b) => a + b, 0);
  lines.push(`vm exits\t${total}`);
  for (const [reason, n] of Object.entries(s.exits).sort()) lines.push(`vm exits (${reason})\t${n}`);
  lines.push(`transitions\t${s.transitions}`);
  lines.push(`debug-state leaks\t${s.leaks}`);
  lines.push(`host watchpoint hits\t${s.hostWatchHits}`);
  return lines;
}

export function formatLeak(l: DebugLeak, i: number): string {
  const own = l.side === 'guest' ? 'guest value in the host' : 'host value in the guest';
  return `leak[${i}]\ttransition ${l.transition} vCPU ${l.vcpu} at ${l.when}: ${l.register} expected ${l.expected} actual ${l.actual} (${own})`;
}

function check(reply: ControlReply): unknown {
  if (reply.ok) return reply.result;
  const err = reply.error ?? { code: 'failed', message: 'request failed' };
  throw new CliError(err.message, err.code === 'failed' ? EXIT.INTERNAL : EXIT.USAGE);
}

export async function vmmctlMain(argv: readonly string[], out: Output): Promise<number> {
  let client: ControlClient | undefined;
  try {
    if (argv.length === 1 && argv[0] === '--version') {
      out.stdout(versionLine('vmmctl'));
      return 0;
    }
    const req = await parseVmmctlArgs(argv);
    if (req === undefined) return 0;
    if (req.list) {
      for (const name of await listRunningVms()) out.stdout(name + '\n');
      return 0;
    }
    try {
      client = await ControlClient.connect(req.vm, controlSocketPath(req.vm));
    } catch (e) {
      if (e instanceof CliError && e.exitCode === EXIT.NO_SUCH_VM) {
        const running = await listRunningVms();
        throw new CliError(`${e.message}; running VMs: ${running.length ? running.join(', ') : 'none'}`, e.exitCode);
      }
      throw e;
    }
    if (req.sets.length || req.gets.length) {
      const result = check(await client.request('registers', { cpu: req.cpu, set: req.sets, get: req.gets })) as {
        values: Array<{ reg: string; value: string }>;
      };
      for (const v of result.values) out.stdout(formatRegister(v.reg, req.cpu, v.value) + '\n');
    }
    if (req.debugState) {
      const text = check(await client.request('debug-state', { cpu: req.cpu })) as string;
      out.stdout(text.endsWith('\n') ? text : text + '\n');
    }
    if (req.stats) {
      const stats = check(await client.request('stats')) as VmStats;
      for (const line of formatStats(stats)) out.stdout(line + '\n');
    }
    if (req.leaks) {
      const leaks = check(await client.request('leaks')) as DebugLeak[];
      if (leaks.length === 0) out.stdout('no debug-state leaks\n');
      leaks.forEach((l, i) => out.stdout(formatLeak(l, i) + '\n'));
    }
    return 0;
  } catch (e) {
    return reportError('vmmctl', e, out);
  } finally {
    client?.close();
  }
}

/** Entry point of bin/vmmctl.js. */
export function vmmctlProcess(): void {
  void vmmctlMain(process.argv.slice(2), processOutput()).then(reportAndExit);
}
