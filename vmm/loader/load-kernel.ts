/**
 * A guest file to what the VM builder needs: our ELF64 ABI's image, or a Multiboot / PVH
 * boot plan. The protocol is detected (boot-format.ts) unless `protocol` forces one.
 */
import { BootModule, BootPlan, BootProtocol } from './boot-plan';
import { detectBootProtocol } from './boot-format';
import { parseElf } from './elf';
import { LoadedImage } from './elf-types';
import { loadMultiboot } from './multiboot';
import { loadPvh } from './pvh';

export interface KernelOptions {
  memorySize: number;
  vcpus: number;
  /** Forces a protocol (`--boot`); undefined = detect. */
  protocol?: BootProtocol;
  /** The kernel's path as given (the Multiboot command line starts with it). */
  kernelName: string;
  cmdline?: string;
  modules?: BootModule[];
}

export type LoadedKernel =
  | { protocol: 'elf64'; image: LoadedImage }
  | { protocol: 'multiboot' | 'pvh'; plan: BootPlan };

/** Throws ElfError with a diagnosis for a file the protocol cannot load. */
export function loadKernel(bytes: Uint8Array, o: KernelOptions): LoadedKernel {
  const protocol = o.protocol ?? detectBootProtocol(bytes);
  if (protocol === 'elf64') {
    if (o.modules && o.modules.length > 0) throw new BootOptionError('--module needs a Multiboot or PVH kernel (this one uses the ELF64 guest ABI)');
    return { protocol, image: parseElf(bytes, o.memorySize, o.vcpus) };
  }
  const opts = { memorySize: o.memorySize, vcpus: o.vcpus, kernelName: o.kernelName, cmdline: o.cmdline ?? '', modules: o.modules ?? [] };
  return protocol === 'multiboot' ? { protocol, plan: loadMultiboot(bytes, opts) } : { protocol, plan: loadPvh(bytes, opts) };
}

/** A boot option that does not fit the kernel (a usage problem, not a bad file). */
export class BootOptionError extends Error {}
