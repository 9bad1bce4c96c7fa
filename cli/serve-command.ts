import { VmOptions } from '../vmm/api/vm-options';
import { CliError, EXIT, UsageError } from './exit-codes';
import { describeTransport, isLoopbackHost, parseGdbSpec } from './gdb-spec';
import { CliDeps } from './modules';
import { Output } from './output';
import { GdbServeOptions, GdbServerHandle, GdbTransport } from './serve-options';
import { checkWritable } from './run-command';
import { createVmFromElf, openControlSocket } from './start-vm';

export interface ServeRequest {
  elf: string;
  vm: VmOptions;
  gdb: string;
  name?: string;
  allowRemote: boolean;
  tracePackets?: string;
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
  return transport;
}

/**
 * `vmm-gdbstub serve`: the VM waits at its entry point for gdb. The CLI owns the guest
 * console (it drains VmApi.takeConsoleOutput between slices); the stub owns everything
 * gdb sees. In stdio mode nothing but protocol bytes goes to stdout.
 */
export async function serveCommand(req: ServeRequest, deps: CliDeps, out: Output): Promise<number> {
  const transport = serveTransport(req);
  const startGdbServer = deps.startGdbServer();
  const vm = createVmFromElf(req.elf, req.vm, deps);
  const consoleOut = transport.kind === 'stdio' ? out.stderr : out.stdout;
  const log = (line: string): void => out.stderr(`vmm-gdbstub: ${line}\n`);
  if (transport.kind === 'tcp' && !isLoopbackHost(transport.host)) {
    log(`warning: serving gdb on ${describeTransport(transport)}, reachable from other machines (--allow-remote)`);
  }
  const control = req.name === undefined ? undefined
    : await openControlSocket(vm, req.name, { command: 'serve', guest: req.elf, gdb: describeTransport(transport) });

  // Timers run between slices, at instruction boundaries, like control-socket requests.
  const drain = (): void => {
    const text = vm.takeConsoleOutput();
    if (text) consoleOut(text);
  };
  const poll = setInterval(drain, 20);
  const opts: GdbServeOptions = {
    transport, allowRemote: req.allowRemote, log,
    ...(req.tracePackets !== undefined ? { tracePackets: req.tracePackets } : {}),
  };
  try {
    let handle: GdbServerHandle | void;
    try {
      handle = await startGdbServer(vm, opts);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code === 'EADDRINUSE') throw new CliError(`${describeTransport(transport)} is already in use`, EXIT.IN_USE);
      if (err.code === 'EACCES' || err.code === 'EADDRNOTAVAIL') {
        throw new CliError(`cannot listen on ${describeTransport(transport)}: ${err.message}`, EXIT.IN_USE);
      }
      throw e;
    }
    if (transport.kind !== 'stdio') log(`waiting for gdb on ${handle?.address ?? describeTransport(transport)}`);
    const result = handle?.closed !== undefined ? await handle.closed : await new Promise<never>(() => {});
    return typeof result === 'number' ? result : 0;
  } finally {
    clearInterval(poll);
    drain();
    await control?.close();
  }
}
