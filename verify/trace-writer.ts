/**
 * VM trace events -> Chrome trace-event JSON (opens in Perfetto or chrome://tracing).
 *
 * `serve --trace-vm FILE` (and `run --trace-vm FILE`) open a TraceFileSink and hand its
 * `write` to vm.setTraceSink: each event is appended at once, in the JSON Array Format, so a
 * killed process still leaves a readable file. `verify --trace FILE` merges the files of all
 * cells into one timeline, one trace process per cell, one thread per vCPU.
 */
import * as fs from 'fs';

/** The fields of a VM trace event that the timeline uses (vmm/api/trace.ts has the full types). */
export interface VmTraceEventLike {
  kind: string;
  vcpu?: number;
  [field: string]: unknown;
}

export interface ChromeTraceEvent {
  name: string;
  cat?: string;
  ph: 'B' | 'E' | 'i' | 'M' | 'X' | 'C';
  ts: number;
  pid: number;
  tid: number;
  s?: 't' | 'p' | 'g';
  args?: Record<string, unknown>;
}

function hex(value: unknown): unknown {
  return typeof value === 'number' ? `0x${value.toString(16)}` : value;
}

/** The event's own fields, minus the ones the Chrome record already carries. */
function argsOf(event: VmTraceEventLike): Record<string, unknown> {
  const args: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(event)) {
    if (key !== 'kind' && key !== 'vcpu') args[key] = value;
  }
  return args;
}

/**
 * Converts one VM trace event at time `ts` (microseconds) into Chrome events. Per vCPU, the
 * timeline alternates "guest" and "host" slices: a VM entry ends the host slice and begins
 * the guest one, a VM exit the other way round; #DB, debug-register writes and leaks are
 * instant events on the vCPU's track.
 */
export class ChromeTraceConverter {
  private readonly phase = new Map<number, 'guest' | 'host'>();

  constructor(private readonly pid = 1) {}

  convert(event: VmTraceEventLike, ts: number): ChromeTraceEvent[] {
    const tid = event.vcpu ?? 0;
    const base = { pid: this.pid, tid, ts };
    const kind = event.kind.toLowerCase();
    const out: ChromeTraceEvent[] = [];
    const switchTo = (next: 'guest' | 'host') => {
      const current = this.phase.get(tid);
      if (current === next) return;
      if (current !== undefined) out.push({ ...base, name: current, cat: 'phase', ph: 'E' });
      out.push({ ...base, name: next, cat: 'phase', ph: 'B' });
      this.phase.set(tid, next);
    };
    if (kind.includes('entry') || kind === 'enter') {
      switchTo('guest');
    } else if (kind.includes('exit') && !kind.includes('guest-exit')) {
      const reason = String(event.reason ?? event.exitReason ?? 'exit');
      out.push({ ...base, name: `VM exit: ${reason}`, cat: 'exit', ph: 'i', s: 't', args: argsOf(event) });
      switchTo('host');
    } else if (kind === 'db' || kind.includes('#db') || kind.includes('debug-exception')) {
      out.push({ ...base, name: `#DB DR6=${hex(event.dr6)}`, cat: 'db', ph: 'i', s: 't', args: argsOf(event) });
    } else if (kind.includes('dr-write') || kind.includes('dr_write') || kind.includes('drwrite')) {
      const reg = String(event.register ?? event.reg ?? 'dr');
      out.push({ ...base, name: `${reg} = ${hex(event.value)}`, cat: 'dr-write', ph: 'i', s: 't', args: argsOf(event) });
    } else if (kind.includes('leak')) {
      const reg = String(event.register ?? 'dr');
      out.push({ ...base, name: `LEAK ${reg}`, cat: 'leak', ph: 'i', s: 'p', args: argsOf(event) });
    } else {
      out.push({ ...base, name: event.kind, cat: 'vm', ph: 'i', s: 't', args: argsOf(event) });
    }
    return out;
  }

  /** Closes the open slices (at the end of the run). */
  finish(ts: number): ChromeTraceEvent[] {
    const out: ChromeTraceEvent[] = [];
    for (const [tid, name] of this.phase) out.push({ name, cat: 'phase', ph: 'E', ts, pid: this.pid, tid });
    this.phase.clear();
    return out;
  }
}

/** Microseconds since the sink was opened. */
function clock(start: bigint): number {
  return Number((process.hrtime.bigint() - start) / 1000n);
}

/** Appends converted events to FILE as they come (the sink for vm.setTraceSink). */
export class TraceFileSink {
  private readonly fd: number;
  private readonly converter = new ChromeTraceConverter(1);
  private readonly start = process.hrtime.bigint();
  private first = true;
  private closed = false;

  constructor(readonly file: string, label = 'vm') {
    this.fd = fs.openSync(file, 'w');
    fs.writeSync(this.fd, '[\n');
    this.append([{ name: 'process_name', ph: 'M', ts: 0, pid: 1, tid: 0, args: { name: label } }]);
  }

  /** Bound, so it can be passed as is: vm.setTraceSink(sink.write). */
  readonly write = (event: VmTraceEventLike): void => {
    if (this.closed) return;
    this.append(this.converter.convert(event, clock(this.start)));
  };

  close(): void {
    if (this.closed) return;
    this.append(this.converter.finish(clock(this.start)));
    fs.writeSync(this.fd, '\n]\n');
    fs.closeSync(this.fd);
    this.closed = true;
  }

  private append(events: ChromeTraceEvent[]): void {
    for (const event of events) {
      fs.writeSync(this.fd, (this.first ? '' : ',\n') + JSON.stringify(event));
      this.first = false;
    }
  }
}

/** Reads a sink's file, complete or cut short (a killed process leaves no closing bracket). */
export function readTraceFile(file: string): ChromeTraceEvent[] {
  const text = fs.readFileSync(file, 'utf8').trim();
  if (text === '') return [];
  const body = text.endsWith(']') ? text : text.replace(/,\s*$/, '') + ']';
  try {
    const parsed = JSON.parse(body) as unknown;
    if (Array.isArray(parsed)) return parsed as ChromeTraceEvent[];
    const obj = parsed as { traceEvents?: ChromeTraceEvent[] };
    return obj.traceEvents ?? [];
  } catch {
    // A line cut in the middle: keep the complete ones.
    const events: ChromeTraceEvent[] = [];
    for (const line of text.split('\n')) {
      try { events.push(JSON.parse(line.replace(/^\[/, '').replace(/,$/, '')) as ChromeTraceEvent); } catch { /* partial */ }
    }
    return events;
  }
}

/** Merges per-run trace files into one Chrome trace; returns the number of events written. */
export function mergeTraceFiles(files: readonly { file: string; label: string; pid: number }[], out: string): number {
  const traceEvents: ChromeTraceEvent[] = [];
  for (const { file, label, pid } of files) {
    for (const event of readTraceFile(file)) {
      if (event.ph === 'M' && event.name === 'process_name') continue;
      traceEvents.push({ ...event, pid });
    }
    traceEvents.push({ name: 'process_name', ph: 'M', ts: 0, pid, tid: 0, args: { name: label } });
  }
  fs.writeFileSync(out, JSON.stringify({ traceEvents, displayTimeUnit: 'ms' }) + '\n');
  return traceEvents.length;
}
