/**
 * One gdb connection: acks and no-ack mode, retransmission, the 0x03 interrupt, dispatch of
 * packets to the feature handlers, and stop replies. Never throws on any input.
 */
import { VmApi } from '../vmm/api/vm-api';
import { ResumeCommand } from './commands/resume';
import { ThreadId } from './commands/thread-id';
import { handleBase } from './features/base';
import { handleBreakpoints } from './features/breakpoints';
import { EMPTY, ERR_BAD_PACKET, ERR_FAILED, HandlerResult, HexReply, SessionContext } from './features/context';
import { handleMemory } from './features/memory';
import { handleMonitor } from './features/monitor';
import { handleRegisters } from './features/registers';
import { handleResume } from './features/resume';
import { handleThreads, threadIdHex } from './features/threads';
import { handleXfer } from './features/xfer';
import { FrameEvent, PacketDecoder } from './protocol/framing';
import { hex2, textToHex } from './protocol/hex';
import { ReplyParts, ReplyWriter, TextReply } from './protocol/reply-writer';
import { REGNO_RBP, REGNO_RIP, REGNO_RSP } from './register-layout';
import { ResumePlan, RunControl, StopReport } from './run-control';
import { VmTarget } from './target';

export interface SessionIo {
  /** false when the connection's write buffer is full: wait for onWritable() before more. */
  write(data: Buffer): boolean;
  /** Ends the connection (after pending writes). */
  end(): void;
  /** Stop / start reading from the connection (backpressure); absent = cannot. */
  setReading?(on: boolean): void;
}

export interface SessionHooks {
  trace?: (line: string) => void;
  onGuestExit(status: number): void;
  onKill(): void;
  /** gdb sent D (detach): the server lets the guest run on once the connection is gone. */
  onDetach?(): void;
  /** Diagnostics for the server's log. */
  log?(line: string): void;
}

/**
 * Bytes of packets held back (while the VM runs or while gdb is not reading our replies)
 * before the session stops reading the connection: memory stays bounded for any client.
 */
export const QUEUE_LIMIT_BYTES = 256 * 1024;

/**
 * Registers sent with every stop reply. gdb 13 reads nothing else after a stepi or a watch hit
 * (`set debug remote 1`: the stop reply, then memory for the unwinder), as with gdbserver.
 */
const EXPEDITED = [REGNO_RBP, REGNO_RSP, REGNO_RIP];
const EXPEDITED_PREFIX = EXPEDITED.map((n) => `${hex2(n)}:`);
const SIGNAL_PREFIX = Array.from({ length: 256 }, (_, n) => 'T' + hex2(n));
/** `thread:NN;` of the first vCPUs, built once. */
const THREAD_PART = Array.from({ length: 64 }, (_, v) => `thread:${threadIdHex(v)};`);

/** Output held in one batch before it is written anyway (the write's backpressure then applies). */
const BATCH_FLUSH_BYTES = 16 * 1024;

export class GdbSession implements SessionContext {
  gdbFeatures = new Set<string>();
  gVcpu = 0;
  cThread: ThreadId = 'all';
  private noAck = false;
  private readonly out = new ReplyWriter();
  /** Inside onData / drainQueue: replies wait in `out` and leave in one write at the end. */
  private batching = false;
  private readonly decoder: PacketDecoder;
  /**
   * Packets held back while the VM runs (gdb should send none) or while the connection's
   * write buffer is full (a client that sends and never reads); handled in order later.
   */
  private readonly queued: FrameEvent[] = [];
  private queuedBytes = 0;
  private writeBlocked = false;
  private readingPaused = false;
  private dropped = 0;
  private closed = false;
  /** Resume plans of (cached, never modified) resume commands. */
  private readonly plans = new WeakMap<ResumeCommand, { vcpus: number; plan: ResumePlan }>();

  constructor(
    readonly vm: VmApi,
    readonly target: VmTarget,
    readonly run: RunControl,
    readonly packetSize: number,
    private readonly io: SessionIo,
    private readonly hooks: SessionHooks,
  ) {
    this.decoder = new PacketDecoder(packetSize);
  }

  // ---- bytes in ----------------------------------------------------------------------

  onData(chunk: Uint8Array): void {
    if (this.closed) return;
    this.batched(this.pushChunk, chunk);
  }

  private pushChunk(chunk: Uint8Array): void {
    this.decoder.push(chunk, this.onFrame);
  }

  /**
   * Runs f(a) as a method of this session with output batched: everything it sends leaves
   * in one write. (A method and its argument, not a closure: onData runs per chunk read.)
   */
  private batched<A>(f: (this: GdbSession, a: A) => void, a: A): void {
    if (this.batching) return f.call(this, a);
    this.batching = true;
    try {
      f.call(this, a);
    } finally {
      this.batching = false;
      this.flush();
    }
  }

  private readonly onFrame = (e: FrameEvent): void => {
    if (e.kind === 'interrupt') {
      this.trace('<- ^C');
      this.run.interrupt();
      return;
    }
    if (e.kind !== 'ack' && e.kind !== 'nack' && (this.run.running || this.writeBlocked || this.queued.length > 0)) {
      this.hold(e);
      return;
    }
    this.handleFrame(e);
  };

  private hold(e: FrameEvent): void {
    const size = e.kind === 'packet' ? e.body.length + 4 : 4;
    if (this.queuedBytes + size > QUEUE_LIMIT_BYTES && !this.writeBlocked) {
      // packets while the guest runs (gdb sends none but 0x03): drop what is over the
      // bound and keep reading, so that 0x03 and a hang-up are still seen
      if (this.dropped++ === 0) this.hooks.log?.(`dropping packets sent while the guest runs (over ${QUEUE_LIMIT_BYTES >> 10} KiB held)`);
      return;
    }
    this.queued.push(e);
    this.queuedBytes += size;
    // a client that sends and does not read our replies: stop reading until it does
    if (this.queuedBytes > QUEUE_LIMIT_BYTES) this.setReading(false);
  }

  private setReading(on: boolean): void {
    if (this.readingPaused === !on || !this.io.setReading) return;
    this.readingPaused = !on;
    this.io.setReading(on);
  }

  private handleFrame(e: FrameEvent): void {
    switch (e.kind) {
      case 'interrupt':
        return;
      case 'ack':
        return;
      case 'nack':
        if (!this.noAck && this.out.resend()) {
          this.trace('<- - (resend)');
          this.flushIfFull();
        }
        return;
      case 'oversized':
        this.trace('<- (oversized packet dropped)');
        if (!this.noAck) this.out.ack(true);
        this.send(ERR_BAD_PACKET);
        return;
      case 'packet': {
        const text = e.body.toString('latin1');
        if (this.hooks.trace) this.trace('<- $' + text);
        if (!this.noAck) {
          if (!e.checksumOk) {
            this.trace('-> - (bad checksum)');
            this.out.ack(false);
            return;
          }
          // leaves together with the reply (one write), or alone when the reply comes later
          this.out.ack(true);
        }
        this.dispatch(text);
      }
    }
  }

  private dispatch(p: string): void {
    let result: HandlerResult;
    try {
      result = this.handle(p);
    } catch (err) {
      this.trace(`!! ${p.slice(0, 40)}: ${err instanceof Error ? err.message : String(err)}`);
      result = ERR_FAILED;
    }
    if (result === 'async') return;
    if (Array.isArray(result)) for (const r of result) this.send(r);
    else this.send(result);
  }

  /** Routes by the first character, so the hot packets (g, m, Z, vCont) go straight to their feature. */
  private handle(p: string): HandlerResult {
    switch (p[0]) {
      case 'g': case 'G': case 'p': case 'P':
        return handleRegisters(this, p) ?? EMPTY;
      case 'm': case 'M': case 'X':
        return handleMemory(this, p) ?? EMPTY;
      case 'Z': case 'z':
        return handleBreakpoints(this, p) ?? EMPTY;
      case 'c': case 'C': case 's': case 'S':
        return handleResume(this, p) ?? EMPTY;
      case 'v':
        return handleResume(this, p) ?? handleBase(this, p) ?? EMPTY;
      case 'H': case 'T':
        return handleThreads(this, p) ?? EMPTY;
      case 'q': case 'Q':
        // a monitor command sees the VM as it is between resumes, without a step's set-up
        if (p.startsWith('qRcmd,')) this.run.settle();
        return handleBase(this, p) ?? handleThreads(this, p) ?? handleXfer(this, p) ?? handleMonitor(this, p) ?? EMPTY;
      case '?': case 'D': case 'k':
        return handleBase(this, p) ?? EMPTY;
      default:
        return EMPTY;
    }
  }

  // ---- bytes out ---------------------------------------------------------------------

  private send(reply: string | HexReply): void {
    if (this.closed) return;
    if (typeof reply === 'string') {
      if (this.hooks.trace) this.trace('-> $' + (reply.length > 200 ? reply.slice(0, 200) + '...' : reply));
      this.out.text(reply);
    } else {
      // hex replies (g, m, p) go run-length encoded, as gdbserver sends them
      if (this.hooks.trace) this.trace('-> $' + Buffer.from(reply.bytes.subarray(0, 100)).toString('hex') + (reply.bytes.length > 100 ? '...' : ''));
      this.out.hex(reply.bytes);
    }
    this.flushIfFull();
  }

  /** Writes the output now outside a batch; inside one, only once it has grown large (so the write's backpressure holds gdb's next packets). */
  private flushIfFull(): void {
    if (!this.batching || this.out.pendingBytes >= BATCH_FLUSH_BYTES) this.flush();
  }

  private flush(): void {
    const buf = this.out.take();
    if (buf && !this.closed && !this.io.write(buf)) this.writeBlocked = true;
  }

  /** The connection took what we wrote: handle the packets held back meanwhile. */
  onWritable(): void {
    this.writeBlocked = false;
    this.batched(this.drainQueue, undefined);
  }

  /** Guest console output while the VM runs, shown by gdb. */
  sendConsole(text: string): void {
    if (this.run.running) this.send('O' + textToHex(text));
  }

  private trace(line: string): void {
    if (this.hooks.trace) this.hooks.trace(line);
  }

  // ---- SessionContext ----------------------------------------------------------------

  startNoAck(): void {
    // our '+' for this packet is already out; gdb acks the OK, then nobody acks any more
    this.noAck = true;
    this.out.keepLast = false;
  }

  resume(cmd: ResumeCommand): void {
    if (cmd.address !== undefined) {
      const t = cmd.actions[0].thread;
      this.target.setPc(typeof t === 'number' && this.target.validVcpu(t - 1) ? t - 1 : this.gVcpu, cmd.address);
    }
    this.run.resume(this.planOf(cmd), this.onStopBound);
  }

  private readonly onStopBound = (r: StopReport): void => this.onStop(r);

  /** The vCPUs a resume runs and steps; kept per command (gdb repeats the same vCont). */
  private planOf(cmd: ResumeCommand): ResumePlan {
    const n = this.target.vcpuCount;
    const known = this.plans.get(cmd);
    if (known !== undefined && known.vcpus === n) return known.plan;
    const plan: ResumePlan = { run: [], step: [] };
    for (let v = 0; v < n; v++) {
      const tid = v + 1;
      const a = cmd.actions.find((x) => x.thread === 'all' || x.thread === tid);
      if (!a || a.kind === 'stop') continue;
      plan.run.push(v);
      if (a.kind === 'step') plan.step.push(v);
    }
    this.plans.set(cmd, { vcpus: n, plan });
    return plan;
  }

  private onStop(r: StopReport): void {
    if (this.closed) return;
    this.batched(this.reportStop, r);
  }

  private reportStop(r: StopReport): void {
    if (r.kind === 'exited') {
      this.send('W' + hex2(r.status & 0xff));
      this.hooks.onGuestExit(r.status);
    } else {
      if (r.message) this.send('O' + textToHex(`vmm-gdbstub: ${r.message}\n`));
      this.gVcpu = r.vcpu;
      if (this.hooks.trace) {
        this.send(this.currentStopReplyOf(r));
      } else if (!this.closed) {
        // framed in place: no strings built for the most frequent reply
        this.out.beginPacket();
        try {
          this.stopReply(this.out, r);
        } catch (e) {
          this.out.abortPacket(); // no half-built packet on the wire
          throw e;
        }
        this.out.endPacket();
        this.flushIfFull();
      }
    }
    this.drainQueue();
  }

  private drainQueue(): void {
    while (this.queued.length > 0 && !this.run.running && !this.writeBlocked && !this.closed) {
      const e = this.queued.shift()!;
      this.queuedBytes -= e.kind === 'packet' ? e.body.length + 4 : 4;
      this.handleFrame(e);
    }
    if (this.queued.length === 0) {
      this.queuedBytes = 0;
      this.dropped = 0;
      this.setReading(true);
    }
  }

  private stopReply(out: ReplyParts, r: Extract<StopReport, { kind: 'stopped' }>): void {
    out.putText(SIGNAL_PREFIX[r.signal & 0xff]);
    if (this.target.validVcpu(r.vcpu)) {
      for (let i = 0; i < EXPEDITED.length; i++) {
        out.putText(EXPEDITED_PREFIX[i]);
        this.target.putRegisterHex(out, r.vcpu, EXPEDITED[i]);
        out.putText(';');
      }
    }
    out.putText(THREAD_PART[r.vcpu] ?? `thread:${threadIdHex(r.vcpu)};`);
    const reason = r.reason;
    if (reason) {
      if (reason.kind === 'swbreak') {
        if (this.gdbFeatures.has('swbreak+')) out.putText('swbreak:;');
      } else if (reason.kind === 'hwbreak') {
        if (this.gdbFeatures.has('hwbreak+')) out.putText('hwbreak:;');
      } else {
        out.putText(`${reason.kind}:${reason.address.toString(16).padStart(16, '0')};`);
      }
    }
  }

  private currentStopReplyOf(r: Extract<StopReport, { kind: 'stopped' }>): string {
    const t = new TextReply();
    this.stopReply(t, r);
    return t.text;
  }

  currentStopReply(): string {
    const status = this.run.exited;
    if (status !== undefined) return 'W' + hex2(status & 0xff);
    return this.currentStopReplyOf({ kind: 'stopped', vcpu: this.gVcpu, signal: 5 });
  }

  detach(): void {
    this.target.detach();
    this.hooks.onDetach?.();
  }

  kill(): void {
    this.target.detach();
    this.hooks.onKill();
    // after the reply to vKill (if any) is out
    setImmediate(() => this.close());
  }

  // ---- lifecycle ---------------------------------------------------------------------

  /** The connection is gone (or we end it): stop the VM where it is, remove our traces. */
  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    this.run.cancel();
    try {
      this.target.detach();
    } catch (e) {
      this.trace(`!! detach: ${e instanceof Error ? e.message : String(e)}`);
    }
    this.io.end();
  }
}
