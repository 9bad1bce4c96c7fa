import { VmApi } from '../vmm/api/vm-api';

/**
 * What `vmm-gdbstub serve` hands to the gdb stub: startGdbServer(vm, opts) of stub/server.ts.
 * These types mirror the stub's GdbServerOptions / GdbServer (structurally, so that the CLI
 * builds without the stub); the CLI parses and checks every flag, the stub gets only
 * validated values.
 */
export type GdbTransport =
  | { kind: 'tcp'; host: string; port: number; allowRemote?: boolean }
  | { kind: 'unix'; path: string }
  | { kind: 'stdio' };

export interface GdbServeOptions {
  transport: GdbTransport;
  /** --trace-packets: 'stderr' for `-`, else a file; undefined = off. */
  trace?: 'stderr' | { file: string };
  /** Guest console output (port 0xE9): stdout, or stderr in stdio mode. */
  onConsoleOutput: (text: string) => void;
  /** Diagnostics for the user (stderr: in stdio mode stdout carries the protocol). */
  log: (line: string) => void;
}

export type GdbGuestExit = { kind: 'exit'; status: number } | { kind: 'killed' };

/** What startGdbServer resolves to once it listens. */
export interface GdbServerHandle {
  /** Where gdb connects ('HOST:PORT', the socket path, 'stdio'), for the "waiting" line. */
  readonly address?: string | { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string } | { kind: 'stdio' };
  /**
   * Resolves when the server has shut down: the guest ended (its exit status), gdb killed it
   * or the stdio debugger went away (undefined). Preferred over guestExit when present.
   */
  readonly closed?: Promise<number | undefined>;
  /** Resolves when the guest ends (port 0xF4) or gdb kills it. */
  readonly guestExit?: Promise<GdbGuestExit>;
  close(): Promise<void>;
}

export type StartGdbServer = (vm: VmApi, opts: GdbServeOptions) => Promise<GdbServerHandle>;
