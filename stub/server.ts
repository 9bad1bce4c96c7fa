/**
 * startGdbServer: serves one gdb at a time over TCP (loopback unless allowRemote), a Unix
 * socket (mode 0600) or stdio (nothing but protocol bytes on stdout). The VM outlives
 * sessions: after a detach or a dropped connection it keeps its state for the next gdb.
 */
import { EventEmitter } from 'events';
import * as fs from 'fs';
import * as net from 'net';
import { Readable, Writable } from 'stream';
import { probeSocket } from '../vmm/api/control-socket';
import { VmApi } from '../vmm/api/vm-api';
import { RunControl } from './run-control';
import { FreeRun } from './free-run';
import { GdbSession, SessionIo } from './session';
import { VmTarget } from './target';

export type GdbTransport =
  | { kind: 'tcp'; host?: string; port?: number; allowRemote?: boolean }
  | { kind: 'unix'; path: string }
  | { kind: 'stdio'; input?: Readable; output?: Writable };

export interface GdbServerOptions {
  transport: GdbTransport;
  /** A non-loopback TCP address is allowed (the CLI's --allow-remote); also accepted inside the transport. */
  allowRemote?: boolean;
  /** Largest packet accepted (advertised as PacketSize). Default 0x4000. */
  packetSize?: number;
  /** Packet trace: 'stderr', a file path, or off. */
  trace?: 'stderr' | { file: string };
  /** The CLI's --trace-packets: a file, or '-' for stderr. */
  tracePackets?: string;
  /**
   * The guest console (VmApi.takeConsoleOutput). By default the stub does not drain it (the
   * CLI owns it); with this callback the stub drains it between slices and hands it over.
   */
  onConsoleOutput?: (text: string) => void;
  /** Drain the guest console between slices and show it in gdb as O packets. */
  consoleToGdb?: boolean;
  /** Diagnostics (warnings, refused connections); default stderr. */
  log?: (line: string) => void;
  /** Single-step with the guest's TF (default) or, on VT-x, the monitor trap flag. */
  stepMethod?: 'tf' | 'mtf';
}

export type GuestExit = { kind: 'exit'; status: number } | { kind: 'killed' };

export interface GdbServer extends EventEmitter {
  /** Where gdb connects: 'HOST:PORT', the socket path, or 'stdio'. */
  readonly address: string;
  /** The TCP port listened on (useful with port 0). */
  readonly port: number | undefined;
  /** Resolves when the guest ends (port 0xF4) or gdb kills it. */
  readonly guestExit: Promise<GuestExit>;
  /**
   * Resolves when the server has shut down: the guest ended (the exit status), gdb killed it
   * (undefined), the stdio debugger went away (undefined), or close() was called.
   */
  readonly closed: Promise<number | undefined>;
  /** True while a debugger is connected. */
  readonly connected: boolean;
  close(): Promise<void>;
}

const DEFAULT_PACKET_SIZE = 0x4000;
/** How long a new connection may wait for the previous gdb's hang-up to be read. */
const RECONNECT_GRACE_MS = 1000;

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host) || host === '::ffff:127.0.0.1';
}

/** Parses the CLI's --gdb value: tcp:HOST:PORT, tcp:PORT, :PORT, unix:PATH or stdio. */
export function parseGdbEndpoint(text: string, allowRemote = false): GdbTransport | undefined {
  if (text === 'stdio') return { kind: 'stdio' };
  if (text.startsWith('unix:')) return text.length > 5 ? { kind: 'unix', path: text.slice(5) } : undefined;
  const m = /^(?:tcp:)?(?:(\[[^\]]+\]|[^:]*):)?(\d{1,5})$/.exec(text);
  if (!m) return undefined;
  const port = Number(m[2]);
  if (port > 65535) return undefined;
  const host = m[1] ? m[1].replace(/^\[|\]$/g, '') : '127.0.0.1';
  return { kind: 'tcp', host, port, allowRemote };
}

function makeTracer(opt: GdbServerOptions['trace']): ((line: string) => void) | undefined {
  if (!opt) return undefined;
  if (opt === 'stderr') return (line) => process.stderr.write(`[gdb] ${line}\n`);
  const fd = fs.openSync(opt.file, 'a');
  return (line) => {
    try {
      fs.writeSync(fd, `${line}\n`);
    } catch {
      // tracing must never break the session
    }
  };
}

class Server extends EventEmitter implements GdbServer {
  address = 'stdio';
  port: number | undefined;
  private socketPath: string | undefined;
  readonly guestExit: Promise<GuestExit>;
  readonly closed: Promise<number | undefined>;
  private resolveExit!: (e: GuestExit) => void;
  private resolveClosed!: (status: number | undefined) => void;
  private isClosed = false;
  private exitReported = false;
  private session: GdbSession | undefined;
  /** The socket of the current TCP / Unix session. */
  private socket: net.Socket | undefined;
  /** A connection that arrived while a session was active (see waitForTurn). */
  private waiting: { socket: net.Socket; timer: NodeJS.Timeout } | undefined;
  /** The session whose gdb sent D: when its connection ends, the guest runs on. */
  private detachedByGdb: GdbSession | undefined;
  private readonly freeRun: FreeRun;
  private listener: net.Server | undefined;
  private readonly target: VmTarget;
  private readonly run: RunControl;
  private readonly trace: ((line: string) => void) | undefined;
  private readonly log: (line: string) => void;
  private readonly packetSize: number;

  constructor(readonly vm: VmApi, private readonly opts: GdbServerOptions) {
    super();
    this.guestExit = new Promise((resolve) => { this.resolveExit = resolve; });
    this.closed = new Promise((resolve) => { this.resolveClosed = resolve; });
    this.target = new VmTarget(vm, opts.stepMethod);
    const drains = opts.onConsoleOutput !== undefined || opts.consoleToGdb === true;
    this.run = new RunControl(this.target, drains ? (text) => this.console(text) : undefined);
    this.freeRun = new FreeRun(this.run, vm.vcpuCount, {
      onExit: (status) => this.reportExit({ kind: 'exit', status }),
      log: (line) => this.log(line),
    });
    const trace = opts.trace ?? (opts.tracePackets === undefined ? undefined
      : opts.tracePackets === '-' ? 'stderr' : { file: opts.tracePackets });
    this.trace = makeTracer(trace);
    this.log = opts.log ?? ((line) => process.stderr.write(`vmm-gdbstub: ${line}\n`));
    const ps = opts.packetSize ?? DEFAULT_PACKET_SIZE;
    this.packetSize = Number.isInteger(ps) && ps >= 256 && ps <= 0x100000 ? ps : DEFAULT_PACKET_SIZE;
  }

  get connected(): boolean {
    return this.session !== undefined;
  }

  private console(text: string): void {
    if (this.opts.onConsoleOutput) this.opts.onConsoleOutput(text);
    else this.session?.sendConsole(text);
  }

  private reportExit(e: GuestExit): void {
    if (this.exitReported) return;
    this.exitReported = true;
    if (e.kind === 'killed') this.log('gdb killed the VM (kill); the server ends');
    else if (!this.session) this.log(`the guest ended (exit status ${e.status}) with no debugger attached; the server ends`);
    this.resolveExit(e);
    this.emit('guest-exit', e);
    // the W reply (or the kill) is the last thing gdb gets: shut down once it is out
    setTimeout(() => { void this.shutdown(e.kind === 'exit' ? e.status : undefined); }, 50);
  }

  /** Starts a session on a connection, or refuses it when one is active. */
  attach(io: SessionIo, onData: (h: (b: Buffer) => void) => void): GdbSession | undefined {
    if (this.session) return undefined;
    // a new debugger stops a guest that runs on after a detach, as attaching does
    this.freeRun.stop();
    const session = new GdbSession(this.vm, this.target, this.run, this.packetSize, io, {
      trace: this.trace,
      onGuestExit: (status) => this.reportExit({ kind: 'exit', status }),
      onKill: () => this.reportExit({ kind: 'killed' }),
      onDetach: () => { this.detachedByGdb = session; },
      log: (line) => this.log(line),
    });
    this.session = session;
    onData((b) => session.onData(b));
    this.emit('connect');
    return session;
  }

  detachSession(session: GdbSession): void {
    session.close();
    if (this.session === session) {
      this.session = undefined;
      this.emit('disconnect');
      // nobody can reconnect to stdio
      if (this.opts.transport.kind === 'stdio') {
        if (!this.isClosed && !this.exitReported) this.log('the debugger went away (stdio); the server ends');
        void this.shutdown(undefined);
      }
      else if (this.detachedByGdb === session && !this.isClosed) this.freeRun.start();
    }
    if (this.detachedByGdb === session) this.detachedByGdb = undefined;
    this.admitWaiting();
  }

  async listen(): Promise<void> {
    const t = this.opts.transport;
    if (t.kind === 'stdio') return this.serveStdio(t.input ?? process.stdin, t.output ?? process.stdout);
    const server = net.createServer((socket) => this.onSocket(socket));
    this.listener = server;
    server.maxConnections = 4;
    if (t.kind === 'tcp') {
      const host = t.host ?? '127.0.0.1';
      if (!isLoopback(host)) {
        if (!t.allowRemote && !this.opts.allowRemote) throw new Error(`refusing to listen on non-loopback address ${host} without allowRemote`);
        this.log(`warning: listening on ${host}: anyone who can reach it controls the VM`);
      }
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(t.port ?? 1234, host, () => { server.off('error', reject); resolve(); });
      });
      const a = server.address() as net.AddressInfo;
      this.port = a.port;
      this.address = `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
    } else {
      // a socket file a live server listens on is not ours to take over
      if (await probeSocket(t.path)) {
        throw Object.assign(new Error(`${t.path}: another server is listening on this socket`), { code: 'EADDRINUSE' });
      }
      removeStaleSocket(t.path);
      const oldMask = process.umask(0o177);
      try {
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(t.path, () => { server.off('error', reject); resolve(); });
        });
      } finally {
        process.umask(oldMask);
      }
      fs.chmodSync(t.path, 0o600);
      this.address = t.path;
      this.socketPath = t.path;
    }
    server.on('error', (e) => this.log(`listener error: ${e.message}`));
  }

  private onSocket(socket: net.Socket): void {
    socket.setNoDelay(true);
    socket.on('error', () => { /* the session ends below */ });
    if (this.session) {
      this.waitForTurn(socket);
      return;
    }
    const session = this.attach({
      write: (b) => socket.destroyed || socket.write(b),
      end: () => socket.end(),
      setReading: (on) => { if (on) socket.resume(); else socket.pause(); },
    }, (h) => socket.on('data', h));
    if (!session) {
      this.refuse(socket);
      return;
    }
    this.socket = socket;
    socket.on('drain', () => session.onWritable());
    // free the session as soon as the peer is gone, not only once the socket has closed
    const gone = (): void => {
      if (this.socket === socket) this.socket = undefined;
      this.detachSession(session);
    };
    socket.on('end', gone);
    socket.on('error', gone);
    socket.on('close', gone);
  }

  /**
   * A connection while a session is active: the previous gdb may have hung up a moment ago
   * with its end not yet read (a quick reconnect). It gets the place if that session ends
   * within RECONNECT_GRACE_MS, else it is refused. One waits at a time.
   */
  private waitForTurn(socket: net.Socket): void {
    if (this.waiting) {
      this.refuse(socket);
      return;
    }
    const timer = setTimeout(() => {
      if (this.waiting?.socket !== socket) return;
      this.waiting = undefined;
      this.refuse(socket);
    }, RECONNECT_GRACE_MS);
    this.waiting = { socket, timer };
    socket.once('close', () => {
      if (this.waiting?.socket !== socket) return;
      clearTimeout(timer);
      this.waiting = undefined;
    });
  }

  private refuse(socket: net.Socket): void {
    this.log('refusing a second debugger connection (one gdb at a time)');
    socket.destroy();
  }

  /** The session ended: a connection that waited for its turn gets it. */
  private admitWaiting(): void {
    const w = this.waiting;
    if (!w || this.session || this.isClosed) return;
    this.waiting = undefined;
    clearTimeout(w.timer);
    if (!w.socket.destroyed) this.onSocket(w.socket);
  }

  private serveStdio(input: Readable, output: Writable): void {
    const session = this.attach({
      write: (b) => output.write(b),
      end: () => { /* stdout stays open for the process */ },
      setReading: (on) => { if (on) input.resume(); else input.pause(); },
    }, (h) => input.on('data', h));
    if (!session) return;
    output.on('drain', () => session.onWritable());
    const done = (): void => this.detachSession(session);
    input.on('end', done);
    input.on('close', done);
    input.on('error', done);
  }

  async close(): Promise<void> {
    await this.shutdown(undefined);
  }

  private async shutdown(status: number | undefined): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    this.freeRun.stop();
    if (this.waiting) {
      clearTimeout(this.waiting.timer);
      this.waiting.socket.destroy();
      this.waiting = undefined;
    }
    if (this.session) this.detachSession(this.session);
    const l = this.listener;
    this.listener = undefined;
    if (l) {
      await new Promise<void>((resolve) => l.close(() => resolve()));
      if (this.socketPath) removeStaleSocket(this.socketPath);
    }
    this.resolveClosed(status);
    this.emit('close', status);
  }
}

function removeStaleSocket(path: string): void {
  try {
    if (fs.lstatSync(path).isSocket()) fs.unlinkSync(path);
  } catch {
    // nothing there
  }
}

export async function startGdbServer(vm: VmApi, opts: GdbServerOptions): Promise<GdbServer> {
  const server = new Server(vm, opts);
  await server.listen();
  return server;
}
