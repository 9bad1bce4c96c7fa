/**
 * VM trace events -> Chrome trace-event JSON (opens in Perfetto or chrome://tracing).
 *
 * `serve --trace-vm FILE` (and `run --trace-vm FILE`) open a TraceFileSink and hand its
 * `write` to vm.setTraceSink: each event is appended at once, in the JSON Array Format, so a
 * killed process still leaves a readable file. `verify --trace FILE` merges the files of all
 * cells into one timeline, one trace process per cell, one thread per vCPU.
 */
import * as fs from 'fs';

/**
 * The VM's trace events (as vmm/api/trace.ts defines them). `ts` is the VM's instruction
 * count, which the timeline uses as its clock: 1 "microsecond" = 1 guest instruction, so a
 * trace is the same on every run.
 */
export type VmTraceEvent =
  | { type: 'phase'; ts: number; vcpu: number; phase: 'guest' | 'host' }
  | { type: 'exit'; ts: number; vcpu: number; reason: string; backendReason: string }
  | { type: 'db'; ts: number; vcpu: number; dr6: number; owner: 'guest' | 'debugger' | 'both' }
  | { type: 'dr-write'; ts: number; vcpu: number; register: string; value: string; by: 'client' | 'guest' | 'hypervisor' | 'host' }
  | { type: 'leak'; ts: number; vcpu: number; leak: { transition: number; register: string; expected: string; actual: string; side: string; when: string } };

export interface ChromeTraceEvent {
  name: string;
  cat?: string;
  ph: 'B' | 'E' | 'i' | 'M';
  ts: number;
  pid: number;
  tid: number;
  s?: 't' | 'p' | 'g';
  args?: Record<string, unknown>;
}

/**
 * Converts VM trace events into Chrome events. Per vCPU the timeline alternates "guest" and
 * "host" slices; VM exits (with their reason), #DB (with DR6), debug-register writes and
 * leaks are instant events on the vCPU's track (leaks on the whole process, to stand out).
 */
export class ChromeTraceConverter {
  private readonly phase = new Map<number, 'guest' | 'host'>();
  private readonly named = new Set<number>();
  private last = 0;

  constructor(private readonly pid = 1) {}

  convert(event: VmTraceEvent): ChromeTraceEvent[] {
    const tid = event.vcpu;
    if (this.named.has(tid)) return this.convertEvent(event);
    // each vCPU's track is named once, before its first event (Perfetto shows "vCPU N")
    this.named.add(tid);
    const name: ChromeTraceEvent = { name: 'thread_name', ph: 'M', ts: 0, pid: this.pid, tid, args: { name: `vCPU ${tid}` } };
    return [name, ...this.convertEvent(event)];
  }

  private convertEvent(event: VmTraceEvent): ChromeTraceEvent[] {
    const tid = event.vcpu;
    const ts = event.ts;
    this.last = Math.max(this.last, ts);
    const base = { pid: this.pid, tid, ts };
    switch (event.type) {
      case 'phase': {
        const current = this.phase.get(tid);
        if (current === event.phase) return [];
        const out: ChromeTraceEvent[] = [];
        if (current !== undefined) out.push({ ...base, name: current, cat: 'phase', ph: 'E' });
        out.push({ ...base, name: event.phase, cat: 'phase', ph: 'B' });
        this.phase.set(tid, event.phase);
        return out;
      }
      case 'exit':
        return [{ ...base, name: `VM exit: ${event.reason}`, cat: 'exit', ph: 'i', s: 't',
          args: { reason: event.reason, backendReason: event.backendReason } }];
      case 'db': {
        // all 64 bits, as vmmctl prints registers (the reserved ones set are part of the story)
        const dr6 = `0x${(event.dr6 >>> 0).toString(16).padStart(16, '0')}`;
        return [{ ...base, name: `#DB DR6=${dr6}`, cat: 'db', ph: 'i', s: 't', args: { dr6, owner: event.owner } }];
      }
      case 'dr-write':
        return [{ ...base, name: `${event.register} = ${event.value}`, cat: 'dr-write', ph: 'i', s: 't',
          args: { register: event.register, value: event.value, by: event.by } }];
      case 'leak':
        return [{ ...base, name: `LEAK ${event.leak.register}`, cat: 'leak', ph: 'i', s: 'p', args: { ...event.leak } }];
    }
  }

  /** Closes the open slices (at the end of the run). */
  finish(): ChromeTraceEvent[] {
    const out: ChromeTraceEvent[] = [];
    for (const [tid, name] of this.phase) out.push({ name, cat: 'phase', ph: 'E', ts: this.last, pid: this.pid, tid });
    this.phase.clear();
    return out;
  }
}

/** Appends converted events to FILE as they come (the sink for vm.setTraceSink). */
export class TraceFileSink {
  private readonly fd: number;
  private readonly converter = new ChromeTraceConverter(1);
  private first = true;
  private closed = false;

  constructor(readonly file: string, label = 'vm') {
    this.fd = fs.openSync(file, 'w');
    fs.writeSync(this.fd, '[\n');
    this.append([{ name: 'process_name', ph: 'M', ts: 0, pid: 1, tid: 0, args: { name: label } }]);
  }

  /** Bound, so it can be passed as is: vm.setTraceSink(sink.write). */
  readonly write = (event: VmTraceEvent): void => {
    if (this.closed) return;
    this.append(this.converter.convert(event));
  };

  close(): void {
    if (this.closed) return;
    this.append(this.converter.finish());
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

/**
 * For `serve --trace-vm FILE` / `run --trace-vm FILE`: sends the VM's trace events to FILE
 * from now on; call the returned function when the VM is done (it closes the file).
 */
export function traceVmToFile(vm: { setTraceSink(sink: ((ev: VmTraceEvent) => void) | null): void },
  file: string, label = 'vm'): () => void {
  const sink = new TraceFileSink(file, label);
  vm.setTraceSink(sink.write);
  return () => {
    vm.setTraceSink(null);
    sink.close();
  };
}
