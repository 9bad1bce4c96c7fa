import { isIP } from 'node:net';
import { GdbTransport } from './serve-options';
import { UsageError } from './exit-codes';

export const DEFAULT_GDB_SPEC = 'tcp:127.0.0.1:1234';

/**
 * Parses --gdb: `tcp:HOST:PORT` (HOST may be a name, an IPv4 address or a [bracketed] IPv6
 * address; `tcp::PORT` and `:PORT` mean 127.0.0.1), `unix:PATH` or `stdio`.
 */
export function parseGdbSpec(spec: string): GdbTransport {
  if (spec === 'stdio') return { kind: 'stdio' };
  if (spec.startsWith('unix:')) {
    const path = spec.slice('unix:'.length);
    if (path === '') throw new UsageError(`--gdb unix: needs a socket path (unix:PATH)`);
    if (Buffer.byteLength(path) > 100) throw new UsageError(`--gdb unix socket path is too long (at most 100 bytes): ${path}`);
    return { kind: 'unix', path };
  }
  const rest = spec.startsWith('tcp:') ? spec.slice('tcp:'.length) : spec.startsWith(':') ? spec : undefined;
  if (rest === undefined) {
    throw new UsageError(`--gdb must be tcp:HOST:PORT, unix:PATH or stdio, not '${spec}'`);
  }
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]*)):([0-9]+)$/.exec(rest);
  if (!m) throw new UsageError(`--gdb must be tcp:HOST:PORT, unix:PATH or stdio, not '${spec}'`);
  const host = m[1] ?? (m[2] === '' ? '127.0.0.1' : m[2]);
  if (m[1] !== undefined && isIP(host) !== 6) throw new UsageError(`--gdb: '${host}' is not an IPv6 address`);
  if (m[2] !== undefined && m[2] !== '' && isIP(host) === 0 && !/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(host)) {
    throw new UsageError(`--gdb: '${host}' is not a host name or address`);
  }
  const port = Number(m[3]);
  if (port < 1 || port > 65535) throw new UsageError(`--gdb: port must be 1-65535, not ${m[3]}`);
  return { kind: 'tcp', host, port };
}

/** True for addresses that only this machine can reach. */
export function isLoopbackHost(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return /^::ffff:127\./i.test(host);
}

export function describeTransport(t: GdbTransport): string {
  switch (t.kind) {
    case 'tcp': return `tcp:${isIP(t.host) === 6 ? `[${t.host}]` : t.host}:${t.port}`;
    case 'unix': return `unix:${t.path}`;
    case 'stdio': return 'stdio';
  }
}
