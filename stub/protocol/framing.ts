/**
 * RSP framing: turns a byte stream into events ($packet#cs, '+', '-', raw 0x03) and packets
 * into bytes. Bounded: a packet body longer than `maxPacket` is dropped while it streams in
 * (memory stays bounded for an endless packet) and reported as 'oversized' at its end.
 */

export type FrameEvent =
  | { kind: 'packet'; body: Buffer; checksumOk: boolean }
  | { kind: 'oversized' }
  | { kind: 'ack' }
  | { kind: 'nack' }
  | { kind: 'interrupt' };

const DOLLAR = 0x24;
const HASH = 0x23;
const ESCAPE = 0x7d;
const STAR = 0x2a;

type State = 'idle' | 'body' | 'cs1' | 'cs2';

// the events without data are the same objects every time (no allocation per ack)
const ACK: FrameEvent = { kind: 'ack' };
const NACK: FrameEvent = { kind: 'nack' };
const INTERRUPT: FrameEvent = { kind: 'interrupt' };
const OVERSIZED: FrameEvent = { kind: 'oversized' };

function hexVal(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

export class PacketDecoder {
  private state: State = 'idle';
  private buf: Buffer;
  private len = 0;
  private sum = 0;
  private overflow = false;
  private cs = 0;
  private csBad = false;

  constructor(readonly maxPacket: number) {
    this.buf = Buffer.alloc(maxPacket);
  }

  /** Feeds bytes; calls `emit` for each complete event. Never throws for any input. */
  push(data: Uint8Array, emit: (e: FrameEvent) => void): void {
    for (let i = 0; i < data.length; i++) {
      const c = data[i];
      switch (this.state) {
        case 'idle':
          if (c === DOLLAR) this.startPacket();
          else if (c === 0x2b) emit(ACK);
          else if (c === 0x2d) emit(NACK);
          else if (c === 0x03) emit(INTERRUPT);
          // anything else between packets is line noise: ignored
          break;
        case 'body':
          if (c === HASH) {
            this.state = 'cs1';
          } else if (c === DOLLAR) {
            this.startPacket(); // gdb restarts a frame on an unescaped '$'
          } else {
            this.sum = (this.sum + c) & 0xff;
            if (this.len < this.maxPacket) this.buf[this.len++] = c;
            else this.overflow = true;
          }
          break;
        case 'cs1': {
          const v = hexVal(c);
          this.csBad = v < 0;
          this.cs = (v < 0 ? 0 : v) << 4;
          this.state = 'cs2';
          break;
        }
        case 'cs2': {
          const v = hexVal(c);
          if (v < 0) this.csBad = true;
          else this.cs |= v;
          this.state = 'idle';
          if (this.overflow) emit(OVERSIZED);
          else {
            const body = Buffer.allocUnsafe(this.len);
            this.buf.copy(body, 0, 0, this.len);
            emit({ kind: 'packet', body, checksumOk: !this.csBad && this.cs === this.sum });
          }
          break;
        }
      }
    }
  }

  private startPacket(): void {
    this.state = 'body';
    this.len = 0;
    this.sum = 0;
    this.overflow = false;
  }
}

/** Escapes '#', '$', '}' and '*' (gdb's read_frame undoes this for every packet). */
export function escapeBinary(data: Uint8Array): Buffer {
  let extra = 0;
  for (let i = 0; i < data.length; i++) {
    const c = data[i];
    if (c === DOLLAR || c === HASH || c === ESCAPE || c === STAR) extra++;
  }
  if (extra === 0) return Buffer.from(data);
  const out = Buffer.alloc(data.length + extra);
  let j = 0;
  for (let i = 0; i < data.length; i++) {
    const c = data[i];
    if (c === DOLLAR || c === HASH || c === ESCAPE || c === STAR) {
      out[j++] = ESCAPE;
      out[j++] = c ^ 0x20;
    } else out[j++] = c;
  }
  return out;
}

/** Undoes '}' escapes (X packet data); undefined when the data ends inside an escape. */
export function unescapeBinary(data: Uint8Array): Uint8Array | undefined {
  const out = new Uint8Array(data.length);
  let j = 0;
  for (let i = 0; i < data.length; i++) {
    if (data[i] === ESCAPE) {
      if (i + 1 >= data.length) return undefined;
      out[j++] = data[++i] ^ 0x20;
    } else out[j++] = data[i];
  }
  return out.subarray(0, j);
}

const HEX = '0123456789abcdef';

/** Frames an (already escaped-as-needed) body: $body#cs. */
export function framePacket(body: Uint8Array): Buffer {
  let sum = 0;
  for (let i = 0; i < body.length; i++) sum = (sum + body[i]) & 0xff;
  const out = Buffer.alloc(body.length + 4);
  out[0] = DOLLAR;
  out.set(body, 1);
  out[body.length + 1] = HASH;
  out[body.length + 2] = HEX.charCodeAt(sum >> 4);
  out[body.length + 3] = HEX.charCodeAt(sum & 15);
  return out;
}

/**
 * Run-length encodes a reply made only of hex digits (g, m, p): "X*n" stands for n-29 more
 * copies of X. Counts that would give '#' or '$' (6 and 7) are avoided, as the spec asks.
 */
export function rleEncodeHex(text: string): string {
  return rleEncodeBytes(Buffer.from(text, 'latin1')).toString('latin1');
}

/** rleEncodeHex on bytes, without building strings (the g/m reply path). */
export function rleEncodeBytes(src: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(src.length);
  let j = 0;
  let i = 0;
  while (i < src.length) {
    const ch = src[i];
    let run = 1;
    while (i + run < src.length && src[i + run] === ch && run < 98) run++;
    if (run >= 4) {
      let extra = run - 1;
      if (extra === 6 || extra === 7) extra = 5; // '#' and '$' are not allowed as counts
      out[j++] = ch;
      out[j++] = STAR;
      out[j++] = extra + 29;
      i += extra + 1;
    } else {
      for (let k = 0; k < run; k++) out[j++] = ch;
      i += run;
    }
  }
  return out.subarray(0, j);
}

/** Frames a reply: the text is escaped so binary-looking characters are safe. */
export function encodeReply(reply: string | Uint8Array): Buffer {
  const raw = typeof reply === 'string' ? Buffer.from(reply, 'latin1') : reply;
  return framePacket(escapeBinary(raw));
}
