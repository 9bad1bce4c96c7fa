/**
 * The N-API addon (native/kvm_addon.c) that makes the few system calls node cannot: open,
 * ioctl, mmap of guest RAM and kvm_run (shared with KVM, no copies), and one thread per vCPU
 * for KVM_RUN so that node's event loop never blocks in the guest.
 *
 * Why an addon and not an FFI library: a vCPU must be kicked out of KVM_RUN by a signal sent
 * to the very thread that is in it (kvm_run.immediate_exit + pthread_kill), with a handler
 * installed without SA_RESTART. That takes pthreads and sigaction, which an FFI library in
 * worker threads makes awkward and fragile; ~400 lines of C built by node-gyp at `npm ci`
 * (node's own headers, no download) give full control, and a failed build only disables kvm.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface KvmConstants {
  readonly [name: string]: number;
}

export interface KvmBinding {
  /** open(2) O_RDWR; throws an Error with the errno text. */
  open(path: string): number;
  close(fd: number): void;
  /** ioctl(2) with an integer or a pointer to the array's bytes; the result or -errno. */
  ioctl(fd: number, request: number, arg: number | ArrayBufferView | ArrayBuffer): number;
  /** Fresh zeroed anonymous memory, as an ArrayBuffer over it (unmapped when collected). */
  mapAnonymous(size: number): ArrayBuffer;
  /** KVM_SET_USER_MEMORY_REGION with a mapAnonymous buffer; 0 or -errno. */
  setMemoryRegion(vmFd: number, slot: number, guestPhys: number, memory: ArrayBuffer): number;
  /** Maps the vCPU's kvm_run and starts its KVM_RUN thread. */
  addVcpu(vcpuFd: number, runMmapSize: number): { index: number; run: ArrayBuffer };
  removeVcpu(handle: number): void;
  /** The vCPU's thread enters KVM_RUN (immediateExit 1: only completes a pending I/O). */
  start(handle: number, immediateExit: number): void;
  /** A running vCPU leaves KVM_RUN at the next instruction boundary (EINTR). */
  kick(handle: number): void;
  /** [handle, 0 or -errno] of a vCPU back from KVM_RUN, or null after timeoutMs. */
  waitAny(timeoutMs: number): [number, number] | null;
  readonly constants: KvmConstants;
}

const ADDON = path.join(__dirname, '..', '..', '..', 'native', 'build', 'Release', 'kvm_addon.node');
const BUILD_ERROR = path.join(__dirname, '..', '..', '..', 'native', 'build-error.txt');

let cached: { binding?: KvmBinding; problem?: string } | undefined;

/** The addon, or why it cannot be loaded (not built, build failed, wrong node). */
export function loadKvmBinding(): { binding?: KvmBinding; problem?: string } {
  if (cached) return cached;
  if (!fs.existsSync(ADDON)) {
    let why = 'the kvm addon is not built (npm ci builds it with node-gyp)';
    try { why += `: ${fs.readFileSync(BUILD_ERROR, 'utf8').trim().split('\n')[0]}`; } catch { /* no record */ }
    cached = { problem: why };
    return cached;
  }
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    cached = { binding: require(ADDON) as KvmBinding };
  } catch (e) {
    cached = { problem: `the kvm addon does not load: ${(e as Error).message}` };
  }
  return cached;
}
