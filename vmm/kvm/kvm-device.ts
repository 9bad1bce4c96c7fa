/**
 * /dev/kvm itself: opened once per process, checked for what the backend needs (API 12,
 * guest debug, debug registers, immediate_exit), with the supported CPUID table.
 */
import { KvmBinding, loadKvmBinding } from './binding';

export const KVM_DEVICE = '/dev/kvm';

export interface KvmDevice {
  readonly binding: KvmBinding;
  readonly fd: number;
  readonly vcpuMmapSize: number;
  /** KVM_GET_SUPPORTED_CPUID: nent entries of struct kvm_cpuid_entry2, with the header. */
  readonly supportedCpuid: Uint8Array;
  readonly gigabytePages: boolean;
}

export class KvmUnavailable extends Error {}

let device: KvmDevice | undefined;

/** The open device, or a KvmUnavailable saying why not (no addon, no device, no rights, ...). */
export function openKvmDevice(): KvmDevice {
  if (device) return device;
  const { binding, problem } = loadKvmBinding();
  if (!binding) throw new KvmUnavailable(problem ?? 'the kvm addon is missing');
  const c = binding.constants;
  let fd: number;
  try {
    fd = binding.open(KVM_DEVICE);
  } catch (e) {
    throw new KvmUnavailable(`cannot open ${KVM_DEVICE}: ${(e as Error).message.replace(/^\/dev\/kvm: /, '')}`);
  }
  const version = binding.ioctl(fd, c.KVM_GET_API_VERSION, 0);
  const need: Array<[string, number]> = [
    ['KVM_CAP_SET_GUEST_DEBUG', c.KVM_CAP_SET_GUEST_DEBUG],
    ['KVM_CAP_DEBUGREGS', c.KVM_CAP_DEBUGREGS],
    ['KVM_CAP_IMMEDIATE_EXIT', c.KVM_CAP_IMMEDIATE_EXIT],
  ];
  const fail = (why: string): never => {
    binding.close(fd);
    throw new KvmUnavailable(why);
  };
  if (version !== 12) fail(`${KVM_DEVICE}: KVM API version ${version}, not 12`);
  for (const [name, cap] of need) {
    if (binding.ioctl(fd, c.KVM_CHECK_EXTENSION, cap) <= 0) fail(`${KVM_DEVICE}: the kernel lacks ${name}`);
  }
  const vcpuMmapSize = binding.ioctl(fd, c.KVM_GET_VCPU_MMAP_SIZE, 0);
  if (vcpuMmapSize <= 0) fail(`${KVM_DEVICE}: KVM_GET_VCPU_MMAP_SIZE failed (${vcpuMmapSize})`);
  const supportedCpuid = supportedCpuidTable(binding, fd);
  if (!supportedCpuid) fail(`${KVM_DEVICE}: KVM_GET_SUPPORTED_CPUID failed`);
  device = { binding, fd, vcpuMmapSize, supportedCpuid: supportedCpuid as Uint8Array, gigabytePages: hasGigabytePages(supportedCpuid as Uint8Array, binding) };
  return device;
}

/** Why the kvm backend cannot run here, or undefined when it can. */
export function kvmProblem(): string | undefined {
  try {
    openKvmDevice();
    return undefined;
  } catch (e) {
    return e instanceof KvmUnavailable ? e.message : `kvm: ${(e as Error).message}`;
  }
}

function supportedCpuidTable(binding: KvmBinding, fd: number): Uint8Array | undefined {
  const c = binding.constants;
  for (let nent = 64; nent <= 1024; nent *= 2) {
    const buf = new Uint8Array(8 + nent * c.sizeof_kvm_cpuid_entry2);
    new DataView(buf.buffer).setUint32(0, nent, true);
    const r = binding.ioctl(fd, c.KVM_GET_SUPPORTED_CPUID, buf);
    if (r === -c.E2BIG) continue;
    if (r < 0) return undefined;
    const n = new DataView(buf.buffer).getUint32(0, true);
    return buf.slice(0, 8 + n * c.sizeof_kvm_cpuid_entry2);
  }
  return undefined;
}

/** CPUID 8000_0001H EDX bit 26 (Page1GB) in KVM's supported table. */
function hasGigabytePages(table: Uint8Array, binding: KvmBinding): boolean {
  const entry = findCpuidEntry(table, binding, 0x80000001, 0);
  return entry !== undefined && (entry.edx & (1 << 26)) !== 0;
}

export interface CpuidEntryRef { offset: number; eax: number; ebx: number; ecx: number; edx: number }

/** struct kvm_cpuid_entry2: function, index, flags, eax, ebx, ecx, edx, padding[3]. */
export function findCpuidEntry(table: Uint8Array, binding: KvmBinding, fn: number, index: number): CpuidEntryRef | undefined {
  const dv = new DataView(table.buffer, table.byteOffset, table.byteLength);
  const size = binding.constants.sizeof_kvm_cpuid_entry2;
  const n = dv.getUint32(0, true);
  for (let i = 0; i < n; i++) {
    const o = 8 + i * size;
    if (dv.getUint32(o, true) !== fn >>> 0) continue;
    const significant = (dv.getUint32(o + 8, true) & 1) !== 0; // KVM_CPUID_FLAG_SIGNIFCANT_INDEX
    if (significant && dv.getUint32(o + 4, true) !== index) continue;
    return { offset: o, eax: dv.getUint32(o + 12, true), ebx: dv.getUint32(o + 16, true), ecx: dv.getUint32(o + 20, true), edx: dv.getUint32(o + 24, true) };
  }
  return undefined;
}
