import * as fs from 'node:fs';
import { ElfError } from '../vmm/loader/elf-types';
import { VmApi, VmApiError } from '../vmm/api/vm-api';
import { createVmFromPlan } from '../vmm/api/create-vm';
import { detectBootProtocol } from '../vmm/loader/boot-format';
import { BootProtocol } from '../vmm/loader/boot-plan';
import { loadKernel } from '../vmm/loader/load-kernel';
import { BootFlags } from './boot-flags';
import { VmOptions } from '../vmm/api/vm-options';
import {
  ControlSocketError, ControlSocketServer, controlSocketPath, probeSocket, startControlSocket,
} from '../vmm/api/control-socket';
import { CliError, EXIT } from './exit-codes';
import type { CliDeps } from './modules';

const MIB = 1024 * 1024;

/** Reads and loads the guest ELF and creates the VM. Bad files end with EXIT.BAD_ELF. */
export function createVmFromElf(elfPath: string, opts: VmOptions, deps: CliDeps, boot?: BootFlags): VmApi {
  const parseElf = deps.parseElf();
  const createVm = deps.createVm();
  const bytes = readGuestFile(elfPath, opts.memMiB * MIB);
  // A Multiboot or PVH kernel (a PVH note or a Multiboot header) takes the PC boot path.
  const protocol = boot?.protocol ?? detectBootProtocol(bytes);
  if (protocol !== 'elf64') return createVmFromKernel(elfPath, bytes, protocol, opts, boot);
  if (boot && (boot.cmdline !== undefined || boot.modules.length > 0)) {
    throw new CliError(`--cmdline and --module need a Multiboot or PVH kernel; ${elfPath} uses the ELF64 guest ABI`, EXIT.USAGE);
  }
  try {
    return createVm(parseElf(bytes, opts.memMiB * MIB, opts.vcpus), opts);
  } catch (e) {
    if (e instanceof ElfError) throw new CliError(`bad guest ELF ${elfPath}: ${e.message}`, EXIT.BAD_ELF);
    throw e;
  }
}

/** A Multiboot / PVH kernel: its boot plan (with --cmdline / --module), then the VM. */
function createVmFromKernel(kernelPath: string, bytes: Uint8Array, protocol: BootProtocol, opts: VmOptions, boot?: BootFlags): VmApi {
  if (opts.backend === 'kvm') {
    throw new CliError(`--backend kvm boots ELF64-ABI guests only; ${kernelPath} is a ${protocol} kernel (use --backend vmx or svm)`, EXIT.USAGE);
  }
  let kernel;
  try {
    kernel = loadKernel(bytes, {
      memorySize: opts.memMiB * MIB, vcpus: opts.vcpus, protocol, kernelName: kernelPath, cmdline: boot?.cmdline, modules: boot?.modules,
    });
  } catch (e) {
    if (e instanceof ElfError) throw new CliError(`bad ${protocol} kernel ${kernelPath}: ${e.message}`, EXIT.BAD_ELF);
    throw e;
  }
  if (kernel.protocol === 'elf64') throw new CliError(`internal: ${kernelPath} is not a ${protocol} kernel`, EXIT.INTERNAL);
  try {
    return createVmFromPlan(kernel.plan, opts);
  } catch (e) {
    if (e instanceof VmApiError) throw new CliError(`cannot boot ${kernelPath}: ${e.message}`, EXIT.INTERNAL);
    throw e;
  }
}

/**
 * Reads the guest file: only a regular file (a device such as /dev/zero never ends, a FIFO
 * blocks), and no larger than guest RAM, since no loadable image can be.
 */
export function readGuestFile(elfPath: string, ramBytes: number): Uint8Array {
  const refuse = (why: string): CliError => new CliError(`cannot read guest ${elfPath}: ${why}`, EXIT.BAD_ELF);
  let fd: number | undefined;
  try {
    const st = fs.statSync(elfPath);
    if (st.isDirectory()) throw refuse('is a directory');
    if (!st.isFile()) throw refuse('not a regular file (a device, FIFO or socket cannot hold a guest ELF)');
    if (st.size > ramBytes) throw refuse(`${st.size} bytes, larger than guest RAM (${ramBytes / MIB} MiB)`);
    fd = fs.openSync(elfPath, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    // read at most RAM + 1 bytes: a file that grows after the check is still refused
    const buf = Buffer.alloc(Math.min(st.size, ramBytes) + 1);
    let n = 0;
    for (let k; n < buf.length && (k = fs.readSync(fd, buf, n, buf.length - n, null)) > 0;) n += k;
    if (n > ramBytes) throw refuse(`larger than guest RAM (${ramBytes / MIB} MiB)`);
    return buf.subarray(0, n);
  } catch (e) {
    if (e instanceof CliError) throw e;
    const err = e as NodeJS.ErrnoException;
    throw refuse(err.code === 'ENOENT' ? 'no such file' : err.code === 'EACCES' ? 'permission denied' : err.message);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/**
 * Refuses a --name that a running VM holds before anything is loaded (openControlSocket
 * checks again when it binds: two VMs started at the same moment still cannot share it).
 */
export async function checkNameFree(name: string): Promise<void> {
  const p = controlSocketPath(name);
  let isSocket = false;
  try { isSocket = fs.lstatSync(p).isSocket(); } catch { return; }
  if (isSocket && await probeSocket(p)) {
    throw new CliError(`a VM named '${name}' is already running (${p})`, EXIT.IN_USE);
  }
}

/** Opens the control socket of `--name`, mapping its failures to exit statuses. */
export async function openControlSocket(
  vm: VmApi, name: string, info: Record<string, string | number | boolean>,
): Promise<ControlSocketServer> {
  // The exit and signal handlers go in before the socket exists: a Ctrl-C or kill arriving
  // while it is being set up must not leave it behind.
  let server: ControlSocketServer | undefined;
  const dispose = onProcessEnd(() => server?.closeSync());
  try {
    server = await startControlSocket(vm, name, { info });
  } catch (e) {
    dispose();
    if (e instanceof ControlSocketError) throw new CliError(e.message, EXIT.IN_USE);
    throw e;
  }
  const s = server;
  return {
    name: s.name,
    path: s.path,
    close: async () => { dispose(); await s.close(); },
    closeSync: () => { dispose(); s.closeSync(); },
  };
}

/**
 * Runs `cleanup` on any way out of the process (normal exit, Ctrl-C, kill), then lets a
 * signal end the process as it would have. Returns a function that uninstalls it.
 */
export function onProcessEnd(cleanup: () => void): () => void {
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  const onSignal = (sig: NodeJS.Signals): void => {
    dispose();
    cleanup();
    process.kill(process.pid, sig);
  };
  const dispose = (): void => {
    process.removeListener('exit', cleanup);
    for (const s of signals) process.removeListener(s, onSignal);
  };
  process.on('exit', cleanup);
  for (const s of signals) process.on(s, onSignal);
  return dispose;
}
