/**
 * What `vmm-gdbstub serve` hands to the gdb stub (stub/server.ts: startGdbServer(vm, opts)).
 * The CLI parses and checks every flag; the stub gets only validated values. The CLI owns
 * the guest console: it drains VmApi.takeConsoleOutput itself (stdout, or stderr in stdio
 * mode), so the stub must not.
 */
export type GdbTransport =
  | { kind: 'tcp'; host: string; port: number }
  | { kind: 'unix'; path: string }
  | { kind: 'stdio' };

export interface GdbServeOptions {
  transport: GdbTransport;
  /** --allow-remote was given: a non-loopback TCP address is allowed (the CLI warns). */
  allowRemote: boolean;
  /** --trace-packets: a file to write the packet trace to, '-' for stderr; undefined = off. */
  tracePackets?: string;
  /** Diagnostics for the user (never stdout: in stdio mode stdout carries the protocol). */
  log: (line: string) => void;
}

/** What startGdbServer resolves to once it listens. */
export interface GdbServerHandle {
  /** Where gdb should connect, for the "listening on" line (e.g. '127.0.0.1:1234'). */
  readonly address?: string;
  /** Resolves when the server has shut down (the VM ended, or a `k`); a number is the exit status. */
  readonly closed?: Promise<unknown>;
  close?(): unknown;
}

export type StartGdbServer = (vm: unknown, opts: GdbServeOptions) => Promise<GdbServerHandle | void> | GdbServerHandle | void;
