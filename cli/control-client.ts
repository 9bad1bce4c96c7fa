import * as fs from 'node:fs';
import * as net from 'node:net';
import { CliError, EXIT } from './exit-codes';

export interface ControlReply {
  ok: boolean;
  result?: unknown;
  error?: { code: string; message: string };
}

/**
 * A connection to a VM's control socket: JSON-lines requests answered in order.
 * Connection failures become CliErrors that say whether the VM exists.
 */
export class ControlClient {
  private buffer = '';
  private waiting: Array<{ resolve: (r: ControlReply) => void; reject: (e: Error) => void }> = [];
  private nextId = 1;
  private failure: Error | undefined;

  private constructor(private readonly sock: net.Socket) {
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => this.onData(chunk));
    sock.on('error', (e) => this.fail(new CliError(`control socket error: ${e.message}`, EXIT.INTERNAL)));
    sock.on('close', () => this.fail(new CliError('the VM closed the control connection', EXIT.INTERNAL)));
  }

  static connect(name: string, socketPath: string, timeoutMs = 5000): Promise<ControlClient> {
    if (!fs.existsSync(socketPath)) {
      return Promise.reject(new CliError(`no VM named '${name}' is running (no control socket ${socketPath})`, EXIT.NO_SUCH_VM));
    }
    return new Promise((resolve, reject) => {
      const sock = net.connect(socketPath);
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new CliError(`VM '${name}' does not answer on ${socketPath}`, EXIT.INTERNAL));
      }, timeoutMs);
      sock.once('connect', () => {
        clearTimeout(timer);
        resolve(new ControlClient(sock));
      });
      sock.once('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        if (e.code === 'ECONNREFUSED' || e.code === 'ENOENT') {
          reject(new CliError(`no VM named '${name}' is running (stale control socket ${socketPath} of a VM that ended)`, EXIT.NO_SUCH_VM));
        } else if (e.code === 'EACCES') {
          reject(new CliError(`permission denied on ${socketPath} (the VM belongs to another user)`, EXIT.NO_SUCH_VM));
        } else {
          reject(new CliError(`cannot connect to VM '${name}' at ${socketPath}: ${e.message}`, EXIT.INTERNAL));
        }
      });
    });
  }

  request(op: string, fields: Record<string, unknown> = {}, timeoutMs = 10000): Promise<ControlReply> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise<ControlReply>((resolve, reject) => {
      const timer = setTimeout(() => reject(new CliError(`the VM did not answer '${op}' within ${timeoutMs} ms`, EXIT.INTERNAL)), timeoutMs);
      this.waiting.push({
        resolve: (r) => { clearTimeout(timer); resolve(r); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      });
      this.sock.write(JSON.stringify({ id, op, ...fields }) + '\n');
    });
  }

  close(): void {
    this.failure = new CliError('connection closed', EXIT.INTERNAL);
    this.sock.end();
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    let nl: number;
    while ((nl = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, nl);
      this.buffer = this.buffer.slice(nl + 1);
      const w = this.waiting.shift();
      if (!w) continue;
      try {
        const r = JSON.parse(line) as ControlReply;
        if (typeof r !== 'object' || r === null || typeof r.ok !== 'boolean') throw new Error('bad reply');
        w.resolve(r);
      } catch {
        w.reject(new CliError(`the VM sent a reply that is not valid: ${line.slice(0, 200)}`, EXIT.INTERNAL));
      }
    }
  }

  private fail(e: Error): void {
    if (!this.failure) this.failure = e;
    for (const w of this.waiting.splice(0)) w.reject(this.failure);
  }
}
