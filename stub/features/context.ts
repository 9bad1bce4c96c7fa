/** What a feature handler sees of the session: the target, the thread selection, replies. */
import { VmApi } from '../../vmm/api/vm-api';
import { ResumeCommand } from '../commands/resume';
import { ThreadId } from '../commands/thread-id';
import { RunControl } from '../run-control';
import { VmTarget } from '../target';

/** A reply that is the hex digits of these bytes (g, p, m): encoded without an intermediate string. */
export class HexReply {
  constructor(readonly bytes: Uint8Array) {}
}

/** A handler's answer: one reply, several (O packets then OK), or 'async' (a stop reply comes later). */
export type HandlerResult = string | HexReply | string[] | 'async';

export interface SessionContext {
  readonly vm: VmApi;
  readonly target: VmTarget;
  readonly run: RunControl;
  readonly packetSize: number;
  /** Features gdb announced in qSupported (swbreak+, hwbreak+, ...). */
  gdbFeatures: Set<string>;
  /** vCPU index that g/G/p/P/m act on (Hg, and every stop reply with thread:). */
  gVcpu: number;
  /** Thread of legacy c/s (Hc). */
  cThread: ThreadId;
  startNoAck(): void;
  /** Starts the VM; the stop reply is sent when it stops. */
  resume(cmd: ResumeCommand): void;
  /** The stop reply for the current state ('?'). */
  currentStopReply(): string;
  detach(): void;
  kill(): void;
}

export const EMPTY = '';
export const ERR_BAD_PACKET = 'E01';
export const ERR_FAILED = 'E02';
export const ERR_MEMORY = 'E0e';

/** vCPU index for a thread id; undefined when it names no vCPU. */
export function vcpuOf(ctx: SessionContext, t: ThreadId): number | undefined {
  if (t === 'all' || t === 'any') return 0;
  const v = t - 1;
  return ctx.target.validVcpu(v) ? v : undefined;
}

/**
 * `E.text`: an error reply gdb shows with its reason ("remote failure reply 'E.…'"). The
 * text keeps to printable ASCII without the framing characters.
 */
export function errorText(why: string | undefined): string | undefined {
  if (why === undefined) return undefined;
  return 'E.' + why.replace(/[^ -~]|[#$}*]/g, '?');
}
