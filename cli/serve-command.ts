import * as fs from 'node:fs';
import * as path from 'node:path';
import { VmOptions } from '../vmm/api/vm-options';
import { CliError, EXIT, UsageError } from './exit-codes';
import { describeTransport, isLoopbackHost, parseGdbSpec } from './gdb-spec';
import { CliDeps } from './modules';
import { Output } from './output';
import { GdbServeOptions, GdbServerHandle, GdbTransport } from './serve-options';
import { checkWritable } from './writable-file';
import { checkNameFree, createVmFromElf, openControlSocket } from './start-vm';
import { BootFlags } from './boot-flags';
import { startVmTrace } from './trace-vm';
import { SerialInput } from './serial-input';

export interface ServeRequest {
  elf: string;
  vm: VmOptions;
  /** --boot/--cmdline/--module (absent: detect, none). */
  boot?: BootFlags;
  gdb: string;
  name?: string;
  allowRemote: boolean;
  tracePackets?: string;
  /** --trace-vm FILE */
  traceVm?: string;
  /** --serial-input FILE|-: COM1's input */
  serialInput?: string;
}

/** Checks the serve-only flags; a non-loopback address needs --allow-remote. */
export function serveTransport(req: ServeRequest): GdbTransport {
  const transport = parseGdbSpec(req.gdb);
  if (transport.kind === 'tcp' && !isLoopbackHost(transport.host) && !req.allowRemote) {
    throw new UsageError(
      `--gdb ${req.gdb} listens on a non-loopback address: anyone who can reach it controls the VM; add --allow-remote to do it anyway`,
    );
  }
  if (req.tracePackets !== undefined && req.tracePackets !== '-') checkWritable(req.tracePackets, '--trace-packets');
  if (req.traceVm !== undefined) checkWritable(req.traceVm, '--trace-vm');
  if (req.serialInput === '-' && transport.kind === 'stdio') {
    throw new UsageError('--serial-input -: with --gdb stdio, stdin carries the gdb protocol; give a file');
  }
  return transport;
}

/**
 * `vmm-gdbstub serve`: the VM waits at its entry point for gdb; the process ends when the
 * guest does (exit status: the guest's) or gdb kills it (0). In stdio mode nothing but
 * protocol bytes goes to stdout: the guest console and all diagnostics go to stderr.
 */
export async function serveCommand(req: ServeRequest, deps: CliDeps, out: Output): Promise<number> {
  const transport = serveTransport(req);
  const startGdbServer = deps.startGdbServer();
  if (req.name !== undefined) await checkNameFree(req.name);
  const serialSource = req.serialInput === undefined ? undefined : SerialInput.source(req.serialInput);
  const vm = createVmFromElf(req.elf, req.vm, deps, req.boot);
  const consoleOut = transport.kind === 'stdio' ? out.stderr : out.stdout;
  const log = (line: string): void => out.stderr(`vmm-gdbstub: ${line}\n`);
  const serial = serialSource === undefined ? undefined : SerialInput.attach(serialSource, vm, log);
  const control = req.name === undefined ? undefined
    : await openControlSocket(vm, req.name, { command: 'serve', guest: req.elf, gdb: describeTransport(transport) });
  const stopTrace = req.traceVm === undefined ? undefined : startVmTrace(vm, req.traceVm, req.elf, req.vm, deps);

  const opts: GdbServeOptions = {
    transport: transport.kind === 'tcp' ? { ...transport, allowRemote: req.allowRemote } : transport,
    onConsoleOutput: consoleOut,
    log,
    ...(req.tracePackets === undefined ? {} : { trace: req.tracePackets === '-' ? 'stderr' as const : { file: req.tracePackets } }),
  };
  let server: GdbServerHandle | undefined;
  try {
    try {
      server = await startGdbServer(vm, opts);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code === 'EADDRINUSE') throw new CliError(`${describeTransport(transport)} is already in use`, EXIT.IN_USE);
      const dir = transport.kind === 'unix' ? path.dirname(path.resolve(transport.path)) : undefined;
      if (dir !== undefined && !fs.existsSync(dir)) {
        throw new CliError(`cannot listen on ${describeTransport(transport)}: directory ${dir} does not exist`, EXIT.IN_USE);
      }
      if (err.code === 'EACCES' || err.code === 'EADDRNOTAVAIL') {
        throw new CliError(`cannot listen on ${describeTransport(transport)}: ${err.message}`, EXIT.IN_USE);
      }
      throw e;
    }
    if (transport.kind !== 'stdio') log(`waiting for gdb on ${describeAddress(server.address) ?? describeTransport(transport)}`);
    return await serverEnd(server);
  } finally {
    serial?.close();
    await server?.close();
    stopTrace?.();
    const rest = vm.takeConsoleOutput();
    if (rest) consoleOut(rest);
    await control?.close();
  }
}

/** The exit status of serve: the guest's when it ended, 0 after a kill or a gone stdio gdb. */
async function serverEnd(server: GdbServerHandle): Promise<number> {
  if (server.closed !== undefined) {
    const status = await server.closed;
    return typeof status === 'number' ? status & 0x7f : 0;
  }
  if (server.guestExit !== undefined) {
    const end = await server.guestExit;
    return end.kind === 'exit' ? end.status & 0x7f : 0;
  }
  return new Promise<number>(() => { /* serve until a signal ends the process */ });
}

function describeAddress(a: GdbServerHandle['address']): string | undefined {
  if (a === undefined) return undefined;
  if (typeof a === 'string') return a;
  switch (a.kind) {
    case 'tcp': return `tcp:${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`;
    case 'unix': return `unix:${a.path}`;
    case 'stdio': return 'stdio';
  }
}
