import { parseHexNum } from '../protocol/hex';

/** A thread id as gdb writes it: 'all' (-1), 'any' (0) or a thread number (vCPU + 1). */
export type ThreadId = 'all' | 'any' | number;

/** Parses "-1", "0", "1f" or the multiprocess form "p1.2"; undefined when malformed. */
export function parseThreadId(s: string): ThreadId | undefined {
  let t = s;
  if (t.startsWith('p')) {
    const dot = t.indexOf('.');
    if (dot < 0) return 'all'; // "pPID" alone: every thread of the process
    t = t.slice(dot + 1);
  }
  if (t === '-1') return 'all';
  const n = parseHexNum(t);
  if (n === undefined) return undefined;
  return n === 0 ? 'any' : n;
}
