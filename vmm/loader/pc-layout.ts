/**
 * Where the PC boot loaders put things in low memory, and the memory map they report.
 *
 *   0x0000_0000  free RAM (kvm-unit-tests copies its AP trampoline to 0)
 *   0x0000_7000  the boot GDT (flat code 0x10, flat data 0x18, as QEMU's Multiboot ROM)
 *   0x0000_9000  boot information: Multiboot info or hvm_start_info, memory map, strings
 *   0x0009_FC00  EBDA (reserved)
 *   0x000E_0000  BIOS area (reserved): ACPI RSDP at 0xF0000 and the tables after it
 *   0x0010_0000  the kernel (where its ELF says), then the modules, page-aligned
 */
import { ElfError, LoadSegment } from './elf-types';
import { MemoryRange } from './boot-plan';

export const BOOT_GDT_BASE = 0x7000;
export const BOOT_CS = 0x10;
export const BOOT_DS = 0x18;
export const INFO_BASE = 0x9000;
export const INFO_END = 0x9fc00;
export const BIOS_AREA_BASE = 0xe0000;
export const ACPI_BASE = 0xf0000;
export const HIGH_MEMORY = 0x100000;

/** The boot GDT: null, null, flat 32-bit code (0x10), flat data (0x18). */
export function bootGdt(): { blob: LoadSegment; limit: number } {
  const b = new Uint8Array(32);
  const v = new DataView(b.buffer);
  v.setUint32(16, 0x0000ffff, true); v.setUint32(20, 0x00cf9b00, true); // code: base 0, limit 4 GiB, 32-bit, DPL 0
  v.setUint32(24, 0x0000ffff, true); v.setUint32(28, 0x00cf9300, true); // data
  return { blob: { address: BOOT_GDT_BASE, data: b, memSize: b.length, flags: 4 }, limit: b.length - 1 };
}

/** The e820 map: low RAM, EBDA and BIOS area reserved, RAM from 1 MiB to the end. */
export function pcMemoryMap(memorySize: number): MemoryRange[] {
  return [
    { base: 0, length: INFO_END, type: 1 },
    { base: INFO_END, length: 0xa0000 - INFO_END, type: 2 },
    { base: BIOS_AREA_BASE, length: HIGH_MEMORY - BIOS_AREA_BASE, type: 2 },
    { base: HIGH_MEMORY, length: memorySize - HIGH_MEMORY, type: 1 },
  ];
}

/** Memory the kernel's segments must stay out of (the loader's own structures). */
const RESERVED: Array<[number, number, string]> = [
  [BOOT_GDT_BASE, BOOT_GDT_BASE + 0x1000, 'the boot GDT'],
  [INFO_BASE, HIGH_MEMORY, 'the boot information, EBDA and BIOS area (0x9000-0xFFFFF)'],
];

/** Checks a kernel's segments against RAM and the loader's areas (ElfError otherwise). */
export function checkKernelPlacement(segments: LoadSegment[], memorySize: number): void {
  if (memorySize < 2 * HIGH_MEMORY) throw new ElfError(`guest memory too small for a PC boot: need at least 2 MiB`);
  for (const s of segments) {
    const end = s.address + s.memSize;
    if (s.address < 0 || end > memorySize) {
      throw new ElfError(`segment at 0x${s.address.toString(16)}-0x${end.toString(16)} is outside guest RAM (0x${memorySize.toString(16)} bytes)`);
    }
    for (const [lo, hi, what] of RESERVED) {
      if (s.address < hi && end > lo) throw new ElfError(`segment at 0x${s.address.toString(16)}-0x${end.toString(16)} overlaps ${what}`);
    }
  }
}

/** The end of the kernel, page-aligned: where the modules go. */
export function modulesBase(segments: LoadSegment[]): number {
  const end = Math.max(HIGH_MEMORY, ...segments.map((s) => s.address + s.memSize));
  return pageAlign(end);
}

export function pageAlign(n: number): number {
  return Math.ceil(n / 0x1000) * 0x1000;
}

/** A bump allocator over the boot-information area (strings and structures, in order). */
export class InfoArea {
  private readonly bytes = new Uint8Array(INFO_END - INFO_BASE);
  readonly view = new DataView(this.bytes.buffer);
  private next = 0;

  /** Reserves `size` bytes aligned to `align`; returns the guest-physical address. */
  alloc(size: number, align = 8, what = 'boot information'): number {
    const off = Math.ceil(this.next / align) * align;
    if (off + size > this.bytes.length) throw new ElfError(`${what} does not fit in the boot information area (${this.bytes.length} bytes)`);
    this.next = off + size;
    return INFO_BASE + off;
  }

  /** A NUL-terminated string; returns its address. */
  string(s: string, what = 'a string'): number {
    const enc = new TextEncoder().encode(s);
    const addr = this.alloc(enc.length + 1, 1, what);
    this.bytes.set(enc, addr - INFO_BASE);
    return addr;
  }

  u32(addr: number, v: number): void { this.view.setUint32(addr - INFO_BASE, v >>> 0, true); }
  u64(addr: number, v: number): void {
    this.view.setUint32(addr - INFO_BASE, v % 0x100000000 >>> 0, true);
    this.view.setUint32(addr - INFO_BASE + 4, Math.floor(v / 0x100000000) >>> 0, true);
  }

  blob(): LoadSegment {
    const data = this.bytes.slice(0, this.next);
    return { address: INFO_BASE, data, memSize: data.length, flags: 4 };
  }
}
