/**
 * What a boot protocol loader produces: the bytes to put in guest RAM (kernel, boot
 * information, modules, ACPI tables, the boot GDT) and the state the BSP starts in. The
 * VM builder (vmm/api/create-vm.ts) copies the blobs and sets the registers.
 */
import { LoadSegment } from './elf-types';

export type BootProtocol = 'elf64' | 'multiboot' | 'pvh';
export const BOOT_PROTOCOLS: readonly BootProtocol[] = ['elf64', 'multiboot', 'pvh'];

/**
 * 32-bit protected mode, paging off, interrupts off: CS a flat 32-bit read/execute code
 * segment, DS/ES/FS/GS/SS a flat read/write data segment, both described by the boot GDT
 * at `gdtBase` (so a reload of the selectors before the kernel's own LGDT still works).
 */
export interface Flat32Entry {
  eip: number;
  eax: number;
  ebx: number;
  esi: number;
  cs: number;
  ds: number;
  gdtBase: number;
  gdtLimit: number;
}

export interface BootPlan {
  protocol: 'multiboot' | 'pvh';
  /** Everything to copy into RAM, in address order, none overlapping. */
  blobs: LoadSegment[];
  bsp: Flat32Entry;
  /** Application processors wait for INIT-SIPI-SIPI (as on hardware). */
  apsWaitForSipi: true;
  /** The physical memory map handed to the kernel (e820 types: 1 RAM, 2 reserved). */
  memoryMap: MemoryRange[];
  symbols: Map<string, number>;
}

export interface MemoryRange {
  base: number;
  length: number;
  type: 1 | 2;
}

/** A boot module (`--module FILE`): its bytes and the string the kernel sees for it. */
export interface BootModule {
  name: string;
  data: Uint8Array;
}

export interface BootOptions {
  memorySize: number;
  vcpus: number;
  /** The kernel's path as given (Multiboot: the command line starts with it, as QEMU's). */
  kernelName: string;
  cmdline: string;
  modules: BootModule[];
}

/**
 * What a CPU must offer to start a Multiboot/PVH kernel, or an AP after its SIPI trampoline:
 * enter 32-bit protected mode with paging off at `entry.eip`, CS loaded from the GDT at
 * entry.gdtBase (selector entry.cs), DS/ES/FS/GS/SS from selector entry.ds (0: null, as
 * after a trampoline that reloads them itself), EAX/EBX/ESI as given, RFLAGS = 2, CR0 = PE|ET,
 * CR4 = 0, EFER = 0. The core implements it once it has 32-bit protected mode
 * (vmm/cpu, the modes work); until then such kernels are refused with a clear error.
 */
export interface Flat32Cpu {
  startFlat32(entry: Flat32Entry): void;
}

export function canStartFlat32<T extends object>(cpu: T): cpu is T & Flat32Cpu {
  return typeof (cpu as Partial<Flat32Cpu>).startFlat32 === 'function';
}
