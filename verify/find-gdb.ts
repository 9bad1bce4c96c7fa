/** Finds stock gdb; its absence is a clear error with the install hint. */
import { spawnSync } from 'child_process';

export class MissingToolError extends Error {}

/** The gdb to run: $VMM_GDB or `gdb` on the PATH. */
export function findGdb(env: NodeJS.ProcessEnv = process.env): string {
  const gdb = env.VMM_GDB || 'gdb';
  const probe = spawnSync(gdb, ['--version'], { encoding: 'utf8' });
  if (probe.error !== undefined || probe.status !== 0) {
    throw new MissingToolError(
      `cannot run ${gdb}: ${probe.error?.message ?? `exit status ${probe.status}`}; ` +
      'verify drives the stock GNU gdb: install it with `apt-get install gdb` (or set VMM_GDB to its path)');
  }
  return gdb;
}
