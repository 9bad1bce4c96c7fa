/** qRcmd (gdb's `monitor`): output as O packets, then OK. */
import { parseMonitor } from '../commands/query';
import { dr7ForSlots } from '../dregs';
import { textToHex } from '../protocol/hex';
import { ERR_BAD_PACKET, HandlerResult, SessionContext } from './context';
import { INFO_HELP, runInfo } from './monitor-info';

const HELP = [
  'monitor commands of vmm-gdbstub:',
  '  help              this list',
  '  dr [VCPU]         debug state per vCPU: guest view, effective, physical, debugger slots',
  '  vmexits           VM exits by reason',
  '  leaks             the debug-state leak detector\'s report',
  '  host              the host scenario',
  ...INFO_HELP,
  '  system_reset      restart the VM from its boot state (then: maintenance flush register-cache)',
  '  nmi               inject an NMI into every vCPU (taken through the guest\'s IDT when it can take one)',
];

function describeSlots(ctx: SessionContext): string[] {
  const lines = ['debugger slots (stub):'];
  ctx.target.slots.forEach((s, i) => {
    lines.push(s
      ? `  slot ${i}: ${s.type} len ${s.len} at 0x${s.address.toString(16)} (refs ${s.refs})`
      : `  slot ${i}: free`);
  });
  lines.push(`  dr7 for these slots: 0x${dr7ForSlots(ctx.target.slots).toString(16)}`);
  return lines;
}

const HOST_SCENARIO_MEANING: Record<string, string> = {
  'idle': 'the host never touches its own debug registers',
  'host-watch': 'a host thread with its own hardware watchpoints is switched in on preemption and I/O exits',
  'kdb-step': 'a host kernel debugger single-steps the VM-entry path (host TF set)',
  'kdb-determined': 'a determined host debugger: a breakpoint after the guest DR6 load, then single-stepping',
};

/** Largest argument count of each command (`dr` and `info` take one). */
const MAX_ARGS: Record<string, number> = { help: 0, dr: 1, vmexits: 0, leaks: 0, host: 0, info: 1, system_reset: 0, nmi: 0 };

/** The output lines, or an error (gdb shows it as the command's error). */
type MonitorResult = { lines: string[] } | { error: string };

function run(ctx: SessionContext, text: string): MonitorResult {
  const words = text.trim().split(/\s+/).filter((w) => w.length > 0);
  const cmd = words[0] ?? 'help';
  const max = MAX_ARGS[cmd];
  if (max === undefined) return { error: `unknown monitor command "${cmd}"; "monitor help" lists them` };
  if (words.length - 1 > max) {
    return { error: `monitor ${cmd} takes ${max === 0 ? 'no arguments' : `at most ${max} argument`}, not "${words.slice(1).join(' ')}"` };
  }
  const lines = runCommand(ctx, cmd, words);
  return 'error' in lines ? lines : { lines };
}

function runCommand(ctx: SessionContext, cmd: string, words: string[]): string[] | { error: string } {
  switch (cmd) {
    case 'help':
      return HELP;
    case 'info':
      return runInfo(ctx, words[1]);
    case 'system_reset': {
      if (!ctx.vm.reset) return { error: 'monitor system_reset: this VM cannot be reset' };
      ctx.vm.reset();
      ctx.run.afterReset();
      const dropped = ctx.target.afterReset();
      ctx.gVcpu = 0;
      return ['VM reset to its boot state (RAM reloaded, vCPUs at the entry, devices and counters new);',
        'debugger hardware slots kept, int3s written again' + (dropped ? ` (${dropped} dropped: not mapped at boot)` : ''),
        'gdb still shows the old registers: run "maintenance flush register-cache"'];
    }
    case 'nmi': {
      const vm = ctx.vm;
      if (!vm.injectNmi) return { error: `monitor nmi: this VM (backend ${vm.backend}) cannot inject NMIs` };
      for (let v = 0; v < vm.vcpuCount; v++) vm.injectNmi(v);
      return [`NMI injected into ${vm.vcpuCount === 1 ? 'vCPU 0' : `vCPUs 0-${vm.vcpuCount - 1}`}`];
    }
    case 'dr': {
      let vcpus = [...Array(ctx.vm.vcpuCount).keys()];
      if (words[1] !== undefined) {
        const v = Number(words[1]);
        if (!/^\d+$/.test(words[1]) || !ctx.target.validVcpu(v)) {
          return { error: `monitor dr: no vCPU ${words[1]} (this VM has ${ctx.vm.vcpuCount}: 0-${ctx.vm.vcpuCount - 1})` };
        }
        vcpus = [v];
      }
      const out: string[] = [];
      for (const v of vcpus) {
        out.push(`vCPU ${v}:`, ...ctx.vm.describeDebugState(v).split('\n').map((l) => '  ' + l));
      }
      return [...out, ...describeSlots(ctx)];
    }
    case 'vmexits': {
      const st = ctx.vm.stats();
      const lines = [`VM exits (${st.transitions} transitions, ${st.instructions} instructions):`];
      const entries = Object.entries(st.exits).sort((a, b) => b[1] - a[1]);
      if (entries.length === 0) lines.push('  none');
      for (const [reason, n] of entries) lines.push(`  ${reason.padEnd(24)} ${n}`);
      return lines;
    }
    case 'leaks': {
      const leaks = ctx.vm.leaks();
      if (leaks.length === 0) return ['no debug-state leaks detected'];
      return [`${leaks.length} debug-state leak(s):`, ...leaks.map((l) =>
        `  transition ${l.transition} vCPU ${l.vcpu} at ${l.when}: ${l.register} expected ${l.expected} actual ${l.actual} (${l.side} value leaked)`)];
    }
    case 'host': {
      const scenario = ctx.vm.hostScenario;
      const meaning = scenario === undefined ? 'not reported by this VM' : `${scenario}: ${HOST_SCENARIO_MEANING[scenario] ?? 'see --help'}`;
      const st = ctx.vm.stats();
      const hits = scenario === 'host-watch' ? [`host watchpoint hits so far: ${st.hostWatchHits}`] : [];
      const nmis = st.hostNmis !== undefined && st.hostNmis.handled > 0
        ? [`host NMIs handled so far: ${st.hostNmis.handled} (their handler found foreign debug registers ${st.hostNmis.sawForeignDebugState} times)`] : [];
      return [`host scenario ${meaning}`, `backend: ${ctx.vm.backend}`, ...hits, ...nmis];
    }
    default:
      return HELP;
  }
}

export function handleMonitor(ctx: SessionContext, p: string): HandlerResult | undefined {
  if (!p.startsWith('qRcmd,')) return undefined;
  const text = parseMonitor(p);
  if (text === undefined) return ERR_BAD_PACKET;
  let result: MonitorResult;
  try {
    result = run(ctx, text);
  } catch (e) {
    result = { error: `monitor ${text.trim()}: ${e instanceof Error ? e.message : String(e)}` };
  }
  // gdb 13 shows no E.text for qRcmd: the reason goes out as output, then an error reply
  // makes the command fail ("Protocol error with Rcmd"), so a script stops there
  const failed = 'error' in result;
  const output = ('error' in result ? [result.error] : result.lines).join('\n') + '\n';
  // O packets of at most a quarter of the packet size each
  const chunk = Math.max(16, Math.floor(ctx.packetSize / 4));
  const replies: string[] = [];
  for (let i = 0; i < output.length; i += chunk) replies.push('O' + textToHex(output.slice(i, i + chunk)));
  replies.push(failed ? ERR_BAD_PACKET : 'OK');
  return replies;
}
