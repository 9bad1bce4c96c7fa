import { parseHexBig, parseHexNum } from '../protocol/hex';
import { parseThreadId, ThreadId } from './thread-id';

export type ResumeKind = 'continue' | 'step' | 'stop';

export interface ResumeAction {
  kind: ResumeKind;
  signal: number; // 0 = none
  thread: ThreadId; // 'all' when no thread was given
}

/** A resume request: ordered actions, the first that names a thread wins for it (vCont rules). */
export interface ResumeCommand {
  readonly actions: readonly Readonly<ResumeAction>[];
  /** c addr / s addr: resume at this address. */
  readonly address?: bigint;
}

/**
 * c [addr] | s [addr] | C sig[;addr] | S sig[;addr]. `c` resumes every vCPU; `s` steps only
 * `stepThread` (the Hc thread, or the register thread when Hc names none) and the others stay.
 */
export function parseLegacyResume(p: string, stepThread: number): ResumeCommand | undefined {
  const op = p[0];
  const rest = p.slice(1);
  const kind: ResumeKind = op === 'c' || op === 'C' ? 'continue' : 'step';
  let signal = 0;
  let addrText = rest;
  if (op === 'C' || op === 'S') {
    const [sig, addr] = rest.split(';', 2);
    const s = parseHexNum(sig);
    if (s === undefined || s > 0xff) return undefined;
    signal = s;
    addrText = addr ?? '';
  }
  let address: bigint | undefined;
  if (addrText.length > 0) {
    address = parseHexBig(addrText);
    if (address === undefined) return undefined;
  }
  const actions: ResumeAction[] = kind === 'step'
    ? [{ kind, signal, thread: stepThread }]
    : [{ kind, signal, thread: 'all' }];
  return { actions, address };
}

/** vCont;action[:tid];... */
export function parseVCont(p: string): ResumeCommand | undefined {
  if (!p.startsWith('vCont;')) return undefined;
  const parts = p.slice(6).split(';');
  const actions: ResumeAction[] = [];
  for (const part of parts) {
    const m = /^([cCsSt])([0-9a-fA-F]{2})?(?::(.+))?$/.exec(part);
    if (!m) return undefined;
    const op = m[1];
    const needsSig = op === 'C' || op === 'S';
    if (needsSig !== (m[2] !== undefined)) return undefined;
    let thread: ThreadId = 'all';
    if (m[3] !== undefined) {
      const t = parseThreadId(m[3]);
      if (t === undefined) return undefined;
      thread = t === 'any' ? 'all' : t;
    }
    const kind: ResumeKind = op === 'c' || op === 'C' ? 'continue' : op === 's' || op === 'S' ? 'step' : 'stop';
    actions.push({ kind, signal: needsSig ? parseInt(m[2]!, 16) : 0, thread });
  }
  if (actions.length === 0) return undefined;
  return { actions };
}
