/** Threads are vCPUs (thread id = vCPU index + 1): H, T, qfThreadInfo/qsThreadInfo, qC, qThreadExtraInfo. */
import { parseSetThread, parseThreadArg } from '../commands/query';
import { hex2, textToHex } from '../protocol/hex';
import { ERR_BAD_PACKET, HandlerResult, SessionContext, vcpuOf } from './context';

export function threadIdHex(vcpu: number): string {
  const t = vcpu + 1;
  return t < 256 ? hex2(t) : t.toString(16);
}

export function handleThreads(ctx: SessionContext, p: string): HandlerResult | undefined {
  if (p[0] === 'H') {
    const cmd = parseSetThread(p);
    if (!cmd) return ERR_BAD_PACKET;
    const v = vcpuOf(ctx, cmd.thread);
    if (v === undefined) return ERR_BAD_PACKET;
    if (cmd.op === 'g') {
      if (cmd.thread !== 'any' && cmd.thread !== 'all') ctx.gVcpu = v;
    } else ctx.cThread = cmd.thread;
    return 'OK';
  }
  if (p[0] === 'T' && p.length > 1) {
    const t = parseThreadArg(p.slice(1));
    return t !== undefined && typeof t === 'number' && vcpuOf(ctx, t) !== undefined ? 'OK' : ERR_BAD_PACKET;
  }
  if (p === 'qfThreadInfo') {
    const ids: string[] = [];
    for (let v = 0; v < ctx.target.vcpuCount; v++) ids.push(threadIdHex(v));
    return 'm' + ids.join(',');
  }
  if (p === 'qsThreadInfo') return 'l';
  if (p === 'qC') return 'QC' + threadIdHex(ctx.gVcpu);
  if (p.startsWith('qThreadExtraInfo,')) {
    const t = parseThreadArg(p.slice('qThreadExtraInfo,'.length));
    if (t === undefined || typeof t !== 'number') return ERR_BAD_PACKET;
    const v = vcpuOf(ctx, t);
    if (v === undefined) return ERR_BAD_PACKET;
    return textToHex(threadExtraInfo(ctx, v));
  }
  return undefined;
}

/** What `info threads` shows after the thread's name (qThreadExtraInfo, and the qXfer:threads text). */
export function threadExtraInfo(ctx: SessionContext, vcpu: number): string {
  return `vCPU ${vcpu}, ${ctx.vm.backend}, ${threadState(ctx.vm.vcpuState(vcpu))}`;
}

/**
 * qXfer:threads:read: every thread and its extra info in one document, so gdb updates its
 * thread list after a stop with one round trip instead of qfThreadInfo + qsThreadInfo (and
 * asks no qThreadExtraInfo: the text is in the document).
 */
export function threadsXml(ctx: SessionContext): string {
  let xml = '<?xml version="1.0"?>\n<threads>\n';
  for (let v = 0; v < ctx.target.vcpuCount; v++) {
    xml += `<thread id="${threadIdHex(v)}" core="${v}">${escapeXml(threadExtraInfo(ctx, v))}</thread>\n`;
  }
  return xml + '</threads>\n';
}

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * How `info threads` describes a vCPU. gdb asks only while the VM is stopped (all-stop), so
 * the VM's 'running' means "stopped by the debugger, ready to run".
 */
function threadState(state: string): string {
  switch (state) {
    case 'running': return 'stopped';
    case 'halted': return 'halted (HLT, waiting for an interrupt)';
    case 'wait-for-sipi': return 'waiting for INIT-SIPI-SIPI';
    case 'stopped': return 'ended (the VM cannot run on)';
    default: return state;
  }
}
