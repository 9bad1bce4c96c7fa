/**
 * The set-up the real-gdb tests on the real VM share: called inside a `describe`, it skips
 * the suite (with a note) when the vmm or the guests are not in this build, closes the
 * server after each test, and gives `serve` (a built-in guest on a TCP port, its console
 * collected) and `gdb` (stock gdb with that guest's symbols).
 */
import { GdbServer, GdbTransport, startGdbServer } from '../../stub/server';
import { BackendName } from '../../vmm/api/vm-api';
import { VmOptions } from '../../vmm/api/vm-options';
import { GdbRun, GdbRunOptions, runGdb } from './gdb-runner';
import { makeRealVm, RealVm } from './real-vm';

export interface RealVmGdb {
  /** The VM the last serve() made. */
  readonly real: RealVm;
  /** The guest console since the last serve(). */
  readonly console: string;
  /** Serves `guest` (a built-in guest's name) on a loopback TCP port; gdb's target. */
  serve(guest: string, opts?: Partial<VmOptions>, stepMethod?: 'tf' | 'mtf'): Promise<string>;
  /** Serves `real` on another transport (e.g. a Unix socket), closed after the test. */
  serveOn(real: RealVm, transport: GdbTransport): Promise<void>;
  /** Closes the server now (before the test ends). */
  close(): Promise<void>;
  /** gdb with the served guest's symbols, the commands in batch mode. */
  gdb(target: string, cmds: string[], opts?: GdbRunOptions): Promise<GdbRun>;
}

export function realVmGdb(backend: BackendName, gdbDefaults: GdbRunOptions = {}): RealVmGdb {
  const available = makeRealVm('counter') !== undefined;
  let server: GdbServer | undefined;
  let real: RealVm | undefined;
  let console = '';

  before(function () {
    if (!available) {
      process.stderr.write('    (skipped: vmm/api/create-vm or the guests are not in this build)\n');
      this.skip();
    }
  });

  const close = async (): Promise<void> => {
    if (server) await server.close();
    server = undefined;
  };
  afterEach(close);

  return {
    get real(): RealVm {
      if (real === undefined) throw new Error('realVmGdb: nothing served yet');
      return real;
    },
    get console(): string { return console; },
    async serve(guest, opts = {}, stepMethod = 'tf') {
      real = makeRealVm(guest, { backend, ...opts })!;
      console = '';
      server = await startGdbServer(real.vm, {
        transport: { kind: 'tcp', host: '127.0.0.1', port: 0 },
        onConsoleOutput: (t) => { console += t; },
        stepMethod,
      });
      return server.address;
    },
    async serveOn(r, transport) {
      real = r;
      server = await startGdbServer(r.vm, { transport });
    },
    close,
    gdb(target, cmds, opts = {}) {
      if (real === undefined) throw new Error('realVmGdb: nothing served yet');
      return runGdb(target, [`file ${real.elf}`, ...cmds], { ...gdbDefaults, ...opts });
    },
  };
}
