import { hexToText, parseHexNum } from '../protocol/hex';
import { parseThreadId, ThreadId } from './thread-id';

export interface XferReadCommand { object: string; annex: string; offset: number; length: number }

/** qXfer:object:read:annex:offset,length */
export function parseXferRead(p: string): XferReadCommand | undefined {
  const m = /^qXfer:([^:]+):read:([^:]*):([0-9a-fA-F]{1,8}),([0-9a-fA-F]{1,8})$/.exec(p);
  if (!m) return undefined;
  return { object: m[1], annex: m[2], offset: parseHexNum(m[3])!, length: parseHexNum(m[4])! };
}

/** qRcmd,hex-encoded command text */
export function parseMonitor(p: string): string | undefined {
  if (!p.startsWith('qRcmd,')) return undefined;
  return hexToText(p.slice(6));
}

/** qSupported[:feature;feature...]: the features gdb announces. */
export function parseSupported(p: string): Set<string> {
  const colon = p.indexOf(':');
  return new Set(colon < 0 ? [] : p.slice(colon + 1).split(';').filter((f) => f.length > 0));
}

/** H op tid */
export function parseSetThread(p: string): { op: string; thread: ThreadId } | undefined {
  if (p.length < 3) return undefined;
  const op = p[1];
  if (op !== 'g' && op !== 'c') return undefined;
  const thread = parseThreadId(p.slice(2));
  return thread === undefined ? undefined : { op, thread };
}

/** T tid / qThreadExtraInfo,tid */
export function parseThreadArg(text: string): ThreadId | undefined {
  return parseThreadId(text);
}
