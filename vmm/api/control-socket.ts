/**
 * The control socket of a named VM: a Unix socket that only the same user can open, speaking
 * one JSON object per line in each direction, for vmmctl (as bhyvectl talks to a VM through
 * /dev/vmm/NAME). Every request is an operation on VmApi.
 *
 * Requests are handled from the event loop, and the VM only runs inside VmApi.run (one
 * synchronous slice at a time), so a request always sees the vCPUs stopped at an
 * instruction boundary, as bhyve freezes a vCPU for vm_get_register/vm_set_register.
 *
 * Requests (`id` is echoed back):
 *   {"id":1,"op":"info"}
 *   {"id":2,"op":"registers","cpu":0,"set":[{"reg":"dr7","value":"0x401"}],"get":["dr7"]}
 *   {"id":3,"op":"stats"}      {"id":4,"op":"leaks"}      {"id":5,"op":"debug-state","cpu":0}
 * Replies: {"id":1,"ok":true,"result":...} or {"id":1,"ok":false,"error":{"code","message"}}.
 * A `registers` request is all-or-nothing: every name, value and the cpu are checked before
 * anything is written, and a write the VM refuses undoes the writes before it.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { U64, parseU64, u64Hex } from '../u64';
import { RegName, isRegName } from './registers';
import { VmApi, VmApiError } from './vm-api';

export type ControlErrorCode = 'bad-request' | 'bad-value' | 'failed';

export interface ControlError {
  code: ControlErrorCode;
  message: string;
}

export type ControlResponse =
  | { id: unknown; ok: true; result: unknown }
  | { id: unknown; ok: false; error: ControlError };

/** A VM name: what `--name` accepts and the socket file is called after. */
export const VM_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** Longest request line accepted; anything longer closes the connection. */
export const MAX_REQUEST_BYTES = 64 * 1024;

export function vmNameProblem(name: string): string | undefined {
  if (VM_NAME_PATTERN.test(name)) return undefined;
  return `'${name}' is not a valid VM name (1-64 characters: letters, digits, '.', '_', '-'; starting with a letter or digit)`;
}

/** The per-user directory holding the sockets: $XDG_RUNTIME_DIR/vmm-gdbstub, else a 0700 one in tmp. */
export function controlSocketDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env['XDG_RUNTIME_DIR'];
  if (xdg !== undefined && xdg !== '' && path.isAbsolute(xdg)) return path.join(xdg, 'vmm-gdbstub');
  const uid = typeof process.getuid === 'function' ? process.getuid() : 0;
  return path.join(os.tmpdir(), `vmm-gdbstub-${uid}`);
}

export function controlSocketPath(name: string, env: NodeJS.ProcessEnv = process.env): string {
  return path.join(controlSocketDir(env), `${name}.sock`);
}

/** Why a control socket could not be set up; `inUse` = a live VM already has the name. */
export class ControlSocketError extends Error {
  constructor(message: string, readonly inUse = false) {
    super(message);
  }
}

/**
 * Creates the socket directory 0700 if needed and refuses one that another user owns or
 * that others can enter (a socket in it would not be private).
 */
export function ensurePrivateDir(dir: string): void {
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw new ControlSocketError(`cannot create the control-socket directory ${dir}: ${errorText(e)}`);
  }
  const st = fs.lstatSync(dir);
  if (!st.isDirectory()) throw new ControlSocketError(`${dir} is not a directory`);
  const uid = typeof process.getuid === 'function' ? process.getuid() : st.uid;
  if (st.uid !== uid) throw new ControlSocketError(`${dir} belongs to another user (uid ${st.uid}); refusing to use it`);
  if ((st.mode & 0o077) !== 0) fs.chmodSync(dir, 0o700);
}

/** True when something accepts connections on the socket at `socketPath`. */
export function probeSocket(socketPath: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(socketPath);
    const done = (alive: boolean): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(alive);
    };
    const timer = setTimeout(() => done(true), timeoutMs); // a wedged but live owner still owns it
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

export interface ControlSocketServer {
  readonly name: string;
  readonly path: string;
  close(): Promise<void>;
  /** For process exit handlers: removes the socket file synchronously. */
  closeSync(): void;
}

export interface ControlSocketOptions {
  /** Where the socket goes (default controlSocketDir()). */
  dir?: string;
  /** Extra fields for the `info` reply (the guest file, the command, ...). */
  info?: Record<string, string | number | boolean>;
}

/** Listens for vmmctl on the socket of `name`. Refuses a name a live VM already uses. */
export async function startControlSocket(
  vm: VmApi, name: string, opts: ControlSocketOptions = {},
): Promise<ControlSocketServer> {
  const bad = vmNameProblem(name);
  if (bad !== undefined) throw new ControlSocketError(bad);
  const dir = opts.dir ?? controlSocketDir();
  ensurePrivateDir(dir);
  const socketPath = path.join(dir, `${name}.sock`);
  if (Buffer.byteLength(socketPath) > 104) {
    throw new ControlSocketError(`control socket path too long for a Unix socket: ${socketPath}`);
  }
  await removeIfStale(socketPath, name);

  const info = { name, pid: process.pid, ...opts.info };
  const connections = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    connections.add(sock);
    sock.on('close', () => connections.delete(sock));
    serveConnection(vm, sock, info);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EADDRINUSE') {
        reject(new ControlSocketError(`a VM named '${name}' is already running (${socketPath})`, true));
      } else {
        reject(new ControlSocketError(`cannot listen on ${socketPath}: ${errorText(e)}`));
      }
    });
    server.listen(socketPath, () => resolve());
  });
  fs.chmodSync(socketPath, 0o600);
  server.on('error', () => { /* later accept errors do not stop the VM */ });
  const ownInode = fs.statSync(socketPath).ino;

  let closed = false;
  const unlinkOwn = (): void => {
    try {
      if (fs.statSync(socketPath).ino === ownInode) fs.unlinkSync(socketPath);
    } catch { /* already gone */ }
  };
  return {
    name,
    path: socketPath,
    close: () => new Promise<void>((resolve) => {
      if (closed) { resolve(); return; }
      closed = true;
      for (const c of connections) c.destroy();
      server.close(() => { unlinkOwn(); resolve(); });
    }),
    closeSync: () => {
      if (closed) return;
      closed = true;
      for (const c of connections) c.destroy();
      server.close();
      unlinkOwn();
    },
  };
}

/** A socket file left by a VM that died is removed; one with a live owner means the name is taken. */
async function removeIfStale(socketPath: string, name: string): Promise<void> {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(socketPath);
  } catch {
    return; // nothing there
  }
  if (!st.isSocket()) throw new ControlSocketError(`${socketPath} exists and is not a socket; refusing to replace it`);
  if (await probeSocket(socketPath)) {
    throw new ControlSocketError(`a VM named '${name}' is already running (${socketPath})`, true);
  }
  fs.unlinkSync(socketPath);
}

/**
 * Splits a byte stream into request lines in linear time: each chunk is searched once, and
 * the part of a line that has no end yet is kept as pieces, joined only when it ends.
 */
export class LineReader {
  private partial: string[] = [];
  private partialLength = 0;
  private readonly lines: string[] = [];

  constructor(private readonly maxLine: number) {}

  /** false when the line being read grew over maxLine. */
  push(chunk: string): boolean {
    let start = 0;
    let nl: number;
    while ((nl = chunk.indexOf('\n', start)) >= 0) {
      this.partial.push(chunk.slice(start, nl));
      this.lines.push(this.partial.join(''));
      this.partial = [];
      this.partialLength = 0;
      start = nl + 1;
    }
    if (start < chunk.length) {
      this.partial.push(chunk.slice(start));
      this.partialLength += chunk.length - start;
    }
    return this.partialLength <= this.maxLine;
  }

  /** The next complete line, in order. */
  next(): string | undefined {
    return this.lines.shift();
  }
}

/**
 * One vmmctl connection. Backpressure: while the client does not read the answers, the
 * connection is not read either, so a client that only sends costs bounded memory.
 */
function serveConnection(vm: VmApi, sock: net.Socket, info: Record<string, unknown>): void {
  const reader = new LineReader(MAX_REQUEST_BYTES);
  let blocked = false;
  sock.setEncoding('utf8');
  sock.on('error', () => sock.destroy());
  const answer = (): void => {
    let line: string | undefined;
    while (!blocked && (line = reader.next()) !== undefined) {
      if (line.trim() === '') continue;
      if (!sock.write(JSON.stringify(handleControlLine(vm, line, info)) + '\n')) blocked = true;
    }
    if (blocked) sock.pause();
  };
  sock.on('drain', () => {
    blocked = false;
    sock.resume();
    answer();
  });
  sock.on('data', (chunk: string) => {
    if (!reader.push(chunk)) {
      sock.end(JSON.stringify(failure(null, 'bad-request', 'request too long')) + '\n');
      sock.pause();
      return;
    }
    answer();
  });
}

/** Parses and answers one request line. Never throws. */
export function handleControlLine(vm: VmApi, line: string, info: Record<string, unknown> = {}): ControlResponse {
  let req: unknown;
  try {
    req = JSON.parse(line);
  } catch {
    return failure(null, 'bad-request', 'request is not JSON');
  }
  if (!isObject(req)) return failure(null, 'bad-request', 'request is not a JSON object');
  try {
    return handleControlRequest(vm, req, info);
  } catch (e) {
    // A VmApi call that threw something unexpected: report it, keep serving.
    return failure(req['id'] ?? null, 'failed', errorText(e));
  }
}

export function handleControlRequest(
  vm: VmApi, req: Record<string, unknown>, info: Record<string, unknown> = {},
): ControlResponse {
  const id = req['id'] ?? null;
  switch (req['op']) {
    case 'info':
      return success(id, {
        ...info, backend: vm.backend, vcpuCount: vm.vcpuCount, memorySize: vm.memorySize,
      });
    case 'stats':
      return success(id, vm.stats());
    case 'leaks':
      return success(id, vm.leaks());
    case 'debug-state': {
      const cpu = checkCpu(vm, req['cpu']);
      if (typeof cpu === 'string') return failure(id, 'bad-request', cpu);
      return success(id, vm.describeDebugState(cpu));
    }
    case 'registers':
      return registersRequest(vm, id, req);
    default:
      return failure(id, 'bad-request', `unknown op ${JSON.stringify(req['op'])}`);
  }
}

function registersRequest(vm: VmApi, id: unknown, req: Record<string, unknown>): ControlResponse {
  const cpu = checkCpu(vm, req['cpu']);
  if (typeof cpu === 'string') return failure(id, 'bad-request', cpu);
  const setList = req['set'] ?? [];
  const getList = req['get'] ?? [];
  if (!Array.isArray(setList) || !Array.isArray(getList)) {
    return failure(id, 'bad-request', "'set' and 'get' must be arrays");
  }
  const writes: Array<{ reg: RegName; value: U64 }> = [];
  for (const item of setList) {
    if (!isObject(item) || typeof item['reg'] !== 'string' || typeof item['value'] !== 'string') {
      return failure(id, 'bad-request', "each 'set' item is {reg, value} with string values");
    }
    const reg = item['reg'];
    if (!isRegName(reg)) return failure(id, 'bad-request', `unknown register '${reg}'`);
    const value = parseU64(item['value']);
    if (value === undefined) return failure(id, 'bad-value', `'${item['value']}' is not a 64-bit value for ${reg}`);
    writes.push({ reg, value });
  }
  const reads: RegName[] = [];
  for (const reg of getList) {
    if (typeof reg !== 'string' || !isRegName(reg)) return failure(id, 'bad-request', `unknown register ${JSON.stringify(reg)}`);
    reads.push(reg);
  }

  const undo: Array<{ reg: RegName; value: U64 }> = [];
  for (const w of writes) {
    const before = vm.getRegister(cpu, w.reg);
    try {
      vm.setRegister(cpu, w.reg, w.value);
    } catch (e) {
      for (const u of undo.reverse()) {
        try { vm.setRegister(cpu, u.reg, u.value); } catch { /* the value it had before */ }
      }
      const code: ControlErrorCode = e instanceof VmApiError ? 'bad-value' : 'failed';
      return failure(id, code, `cannot set ${w.reg} of vCPU ${cpu} to ${u64Hex(w.value)}: ${errorText(e)}`);
    }
    undo.push({ reg: w.reg, value: before });
  }
  const values = reads.map((reg) => ({ reg, value: u64Hex(vm.getRegister(cpu, reg)) }));
  return success(id, { cpu, values });
}

function checkCpu(vm: VmApi, raw: unknown): number | string {
  const cpu = raw ?? 0;
  if (typeof cpu !== 'number' || !Number.isInteger(cpu) || cpu < 0 || cpu >= vm.vcpuCount) {
    return `no vCPU ${JSON.stringify(cpu)} (this VM has vCPUs 0-${vm.vcpuCount - 1})`;
  }
  return cpu;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function success(id: unknown, result: unknown): ControlResponse {
  return { id, ok: true, result };
}

function failure(id: unknown, code: ControlErrorCode, message: string): ControlResponse {
  return { id, ok: false, error: { code, message } };
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** The names of the VMs whose control sockets answer (stale ones are left out). */
export async function listRunningVms(dir: string = controlSocketDir()): Promise<string[]> {
  let entries: string[];
  try {
    entries = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const names = entries.filter((e) => e.endsWith('.sock')).map((e) => e.slice(0, -'.sock'.length)).filter((n) => VM_NAME_PATTERN.test(n));
  const alive = await Promise.all(names.map((n) => probeSocket(path.join(dir, `${n}.sock`), 500)));
  return names.filter((_, i) => alive[i]).sort();
}
