/** qRcmd (gdb's `monitor`): output as O packets, then OK. */
import { parseMonitor } from '../commands/query';
import { dr7ForSlots } from '../dregs';
import { textToHex } from '../protocol/hex';
import { ERR_BAD_PACKET, HandlerResult, SessionContext } from './context';

const HELP = [
  'monitor commands of vmm-gdbstub:',
  '  help              this list',
  '  dr [VCPU]         debug state per vCPU: guest view, effective, physical, debugger slots',
  '  vmexits           VM exits by reason',
  '  leaks             the debug-state leak detector\'s report',
  '  host              the host scenario',
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

function run(ctx: SessionContext, text: string): string[] | undefined {
  const words = text.trim().split(/\s+/).filter((w) => w.length > 0);
  const cmd = words[0] ?? 'help';
  switch (cmd) {
    case 'help':
      return HELP;
    case 'dr': {
      let vcpus = [...Array(ctx.vm.vcpuCount).keys()];
      if (words[1] !== undefined) {
        const v = Number(words[1]);
        if (!ctx.target.validVcpu(v)) return [`dr: no vCPU ${words[1]} (this VM has ${ctx.vm.vcpuCount})`];
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
    case 'host':
      return [`host scenario: ${ctx.vm.hostScenario ?? 'not reported by this VM'}`, `backend: ${ctx.vm.backend}`,
        `host watchpoint hits so far: ${ctx.vm.stats().hostWatchHits}`];
    default:
      return undefined;
  }
}

export function handleMonitor(ctx: SessionContext, p: string): HandlerResult | undefined {
  if (!p.startsWith('qRcmd,')) return undefined;
  const text = parseMonitor(p);
  if (text === undefined) return ERR_BAD_PACKET;
  let lines: string[] | undefined;
  try {
    lines = run(ctx, text);
  } catch (e) {
    lines = [`monitor ${text}: ${e instanceof Error ? e.message : String(e)}`];
  }
  if (!lines) lines = [`unknown monitor command "${text.trim()}"; try "monitor help"`];
  const output = lines.join('\n') + '\n';
  // O packets of at most a quarter of the packet size each
  const chunk = Math.max(16, Math.floor(ctx.packetSize / 4));
  const replies: string[] = [];
  for (let i = 0; i < output.length; i += chunk) replies.push('O' + textToHex(output.slice(i, i + chunk)));
  replies.push('OK');
  return replies;
}
