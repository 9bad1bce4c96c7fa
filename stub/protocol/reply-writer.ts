/**
 * The session's output: acks and framed replies are encoded straight into one growing byte
 * buffer and leave in one write per turn (the ack of a packet and its reply together, an O
 * packet and the stop reply together), so a round trip costs one write syscall and no
 * intermediate strings. Hex replies (g, p, m) are encoded from their bytes with the
 * run-length encoding gdbserver uses, in the same pass as the checksum.
 */

const DOLLAR = 0x24;
const HASH = 0x23;
const ESCAPE = 0x7d;
const STAR = 0x2a;
const HEX = Uint8Array.from('0123456789abcdef', (c) => c.charCodeAt(0));
/** Hex replies at least this long are run-length encoded (shorter ones gain nothing). */
const RLE_MIN_DIGITS = 64;
/** Longest run one "X*n" covers: n = run - 1 + 29 must stay printable (<= '~'). */
const RLE_MAX_RUN = 98;

/** Where a reply is built piece by piece (the stop reply): into the output bytes, or a string. */
export interface ReplyParts {
  /** Text with no '$', '#', '}' or '*' in it. */
  putText(s: string): void;
  /** A 32-bit value's four bytes, little-endian, as eight hex digits. */
  putHexLe32(n: number): void;
}

/** ReplyParts gathered into a string (the `?` reply, traces). */
export class TextReply implements ReplyParts {
  text = '';

  putText(s: string): void {
    this.text += s;
  }

  putHexLe32(n: number): void {
    for (let k = 0; k < 32; k += 8) {
      const b = (n >>> k) & 0xff;
      this.text += String.fromCharCode(HEX[b >> 4], HEX[b & 15]);
    }
  }
}

export class ReplyWriter implements ReplyParts {
  private buf = Buffer.allocUnsafe(4096);
  private len = 0;
  /** The last framed packet, for a resend on '-' (kept only while acks are in use). */
  private last = Buffer.allocUnsafe(0);
  private lastLen = 0;
  keepLast = true;

  get pendingBytes(): number {
    return this.len;
  }

  ack(ok: boolean): void {
    this.room(1);
    this.buf[this.len++] = ok ? 0x2b : 0x2d;
  }

  /** A reply given as text: '#', '$', '}' and '*' are escaped. */
  text(reply: string): void {
    const n = reply.length;
    this.room(2 * n + 4);
    const b = this.buf;
    const start = this.len;
    let j = start + 1;
    let sum = 0;
    b[start] = DOLLAR;
    for (let i = 0; i < n; i++) {
      const c = reply.charCodeAt(i) & 0xff;
      if (c === DOLLAR || c === HASH || c === ESCAPE || c === STAR) {
        b[j++] = ESCAPE;
        b[j++] = c ^ 0x20;
        sum += ESCAPE + (c ^ 0x20);
      } else {
        b[j++] = c;
        sum += c;
      }
    }
    this.end(start, j, sum);
  }

  /** A reply that is the hex digits of `bytes` (g, p, m). */
  hex(bytes: Uint8Array): void {
    const digits = bytes.length * 2;
    this.room(digits + 4);
    const b = this.buf;
    const start = this.len;
    let j = start + 1;
    let sum = 0;
    b[start] = DOLLAR;
    if (digits < RLE_MIN_DIGITS) {
      for (let i = 0; i < bytes.length; i++) {
        const hi = HEX[bytes[i] >> 4];
        const lo = HEX[bytes[i] & 15];
        b[j++] = hi;
        b[j++] = lo;
        sum += hi + lo;
      }
      this.end(start, j, sum);
      return;
    }
    let k = 0;
    while (k < digits) {
      const d = nibble(bytes, k);
      let run = 1;
      while (k + run < digits && run < RLE_MAX_RUN && nibble(bytes, k + run) === d) run++;
      const ch = HEX[d];
      if (run >= 4) {
        // "X*n" stands for n - 29 more copies of X; 6 and 7 would give '#' and '$'
        let extra = run - 1;
        if (extra === 6 || extra === 7) extra = 5;
        b[j++] = ch;
        b[j++] = STAR;
        b[j++] = extra + 29;
        sum += ch + STAR + extra + 29;
        k += extra + 1;
      } else {
        for (let r = 0; r < run; r++) b[j++] = ch;
        sum += ch * run;
        k += run;
      }
    }
    this.end(start, j, sum);
  }

  /** Where the packet being built in place started (its '$'), or -1. */
  private open = -1;
  private openSum = 0;

  /** Starts a packet built in place with putText / putHexLe32 (no strings in between), ended by endPacket. */
  beginPacket(): void {
    this.room(1);
    this.open = this.len;
    this.openSum = 0;
    this.buf[this.len++] = DOLLAR;
  }

  putText(s: string): void {
    const n = s.length;
    this.room(n + 3);
    const b = this.buf;
    let j = this.len;
    let sum = this.openSum;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i) & 0xff;
      b[j++] = c;
      sum += c;
    }
    this.len = j;
    this.openSum = sum;
  }

  putHexLe32(n: number): void {
    this.room(8 + 3);
    const b = this.buf;
    let j = this.len;
    let sum = this.openSum;
    for (let k = 0; k < 32; k += 8) {
      const v = (n >>> k) & 0xff;
      const hi = HEX[v >> 4];
      const lo = HEX[v & 15];
      b[j++] = hi;
      b[j++] = lo;
      sum += hi + lo;
    }
    this.len = j;
    this.openSum = sum;
  }

  /** Drops the packet being built (its builder failed): nothing of it leaves. */
  abortPacket(): void {
    if (this.open < 0) return;
    this.len = this.open;
    this.open = -1;
  }

  endPacket(): void {
    if (this.open < 0) return;
    this.room(3);
    this.end(this.open, this.len, this.openSum);
    this.open = -1;
  }

  /** Appends the last framed packet again (gdb asked for a resend). */
  resend(): boolean {
    if (this.lastLen === 0) return false;
    this.room(this.lastLen);
    this.last.copy(this.buf, this.len, 0, this.lastLen);
    this.len += this.lastLen;
    return true;
  }

  /** The bytes written since the last take, as a buffer of their own (the write may keep it). */
  take(): Buffer | undefined {
    if (this.len === 0) return undefined;
    const out = Buffer.allocUnsafe(this.len);
    this.buf.copy(out, 0, 0, this.len);
    this.len = 0;
    return out;
  }

  private end(start: number, j: number, sum: number): void {
    const b = this.buf;
    b[j] = HASH;
    b[j + 1] = HEX[(sum >> 4) & 15];
    b[j + 2] = HEX[sum & 15];
    this.len = j + 3;
    if (this.keepLast) {
      const n = this.len - start;
      if (this.last.length < n) this.last = Buffer.allocUnsafe(Math.max(n, 2 * this.last.length));
      b.copy(this.last, 0, start, this.len);
      this.lastLen = n;
    }
  }

  private room(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.len + n, 2 * this.buf.length));
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }
}

function nibble(bytes: Uint8Array, k: number): number {
  const v = bytes[k >> 1];
  return (k & 1) === 0 ? v >> 4 : v & 15;
}
