/** A minimal RSP client for tests and the benchmark: framed requests, replies in order. */
import * as net from 'net';

export class RspClient {
  private buf = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  readonly acks: string[] = [];
  noAck = false;
  closed = false;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake();
    });
    socket.on('close', () => { this.closed = true; this.wake(); });
    socket.on('error', () => { this.closed = true; this.wake(); });
  }

  static connect(opts: net.NetConnectOpts): Promise<RspClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect(opts, () => { s.setNoDelay(true); resolve(new RspClient(s)); });
      s.once('error', reject);
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  static frame(body: string | Buffer): Buffer {
    const b = typeof body === 'string' ? Buffer.from(body, 'latin1') : body;
    let sum = 0;
    for (const c of b) sum = (sum + c) & 0xff;
    return Buffer.concat([Buffer.from('$'), b, Buffer.from('#' + sum.toString(16).padStart(2, '0'))]);
  }

  sendRaw(data: string | Buffer): void {
    this.socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  }

  send(body: string | Buffer): void {
    this.sendRaw(RspClient.frame(body));
  }

  /** Next packet body from the stub (acks are collected in `acks`). */
  async next(timeoutMs = 5000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      while (this.buf.length > 0 && (this.buf[0] === 0x2b || this.buf[0] === 0x2d)) {
        this.acks.push(String.fromCharCode(this.buf[0]));
        this.buf = this.buf.subarray(1);
      }
      const start = this.buf.indexOf(0x24);
      const hash = start >= 0 ? this.buf.indexOf(0x23, start) : -1;
      if (hash >= 0 && this.buf.length >= hash + 3) {
        const body = this.buf.subarray(start + 1, hash).toString('latin1');
        this.buf = this.buf.subarray(hash + 3);
        if (!this.noAck) this.sendRaw('+');
        return RspClient.decodeBody(body);
      }
      if (this.closed) throw new Error('connection closed');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timeout waiting for a reply');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
  }

  /** Undoes '}' escapes and run-length encoding ('X*n': n - 29 more copies of X, as gdbserver sends). */
  static decodeBody(body: string): string {
    if (body.indexOf('}') < 0 && body.indexOf('*') < 0) return body;
    let out = '';
    for (let i = 0; i < body.length; i++) {
      const ch = body[i];
      if (ch === '}' && i + 1 < body.length) {
        out += String.fromCharCode(body.charCodeAt(++i) ^ 0x20);
      } else if (ch === '*' && i + 1 < body.length && out.length > 0) {
        out += out[out.length - 1].repeat(body.charCodeAt(++i) - 29);
      } else out += ch;
    }
    return out;
  }

  async request(body: string | Buffer, timeoutMs = 5000): Promise<string> {
    this.send(body);
    return this.next(timeoutMs);
  }

  /** Handshake as gdb does it, ending in no-ack mode. */
  async handshake(): Promise<string> {
    this.sendRaw('+');
    const sup = await this.request('qSupported:multiprocess+;swbreak+;hwbreak+;vContSupported+;xmlRegisters=i386');
    await this.request('QStartNoAckMode');
    this.noAck = true;
    return sup;
  }

  close(): void {
    this.socket.destroy();
  }
}
