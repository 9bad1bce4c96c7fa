/**
 * Multiboot v1 (the 0.6.96 specification), as GRUB legacy and QEMU's -kernel load it.
 *
 * The header (magic 0x1BADB002, flags, checksum) sits 4-byte aligned in the first 8 KiB.
 * The kernel is an ELF32 or ELF64 file loaded by its program headers, or, when flags bit
 * 16 is set, any image placed by the header's address fields (the "a.out kludge"; it takes
 * precedence over the ELF headers, as in QEMU). Entry: 32-bit protected mode, paging off,
 * EAX=0x2BADB002, EBX = the Multiboot information (memory sizes, e820 memory map, command
 * line, modules, boot loader name), flat CS/DS.
 *
 * The command line is "<kernel path> <--cmdline>", as QEMU builds it from -kernel and
 * -append (kvm-unit-tests takes argv[0] from it); a module's string is its file name.
 */
import { buildAcpiTables } from './acpi-tables';
import { BootOptions, BootPlan } from './boot-plan';
import { ElfSegment, isElf, parseAnyElf } from './elf-any';
import { ElfError, LoadSegment } from './elf-types';
import {
  ACPI_BASE, BOOT_CS, BOOT_DS, HIGH_MEMORY, InfoArea, bootGdt, checkKernelPlacement, modulesBase, pageAlign, pcMemoryMap,
} from './pc-layout';

export const MULTIBOOT_HEADER_MAGIC = 0x1badb002;
export const MULTIBOOT_BOOTLOADER_MAGIC = 0x2badb002;
const SEARCH_LIMIT = 8192;

/** Header flags: 0 page-align modules, 1 memory info, 2 video mode, 16 address fields valid. */
const FLAG_PAGE_ALIGN = 1 << 0;
const FLAG_MEMORY_INFO = 1 << 1;
const FLAG_VIDEO_MODE = 1 << 2;
const FLAG_AOUT_KLUDGE = 1 << 16;
const SUPPORTED_REQUIRED = FLAG_PAGE_ALIGN | FLAG_MEMORY_INFO | FLAG_VIDEO_MODE;

/** Info flags. */
const INFO_MEMORY = 1 << 0, INFO_CMDLINE = 1 << 2, INFO_MODS = 1 << 3, INFO_MMAP = 1 << 6, INFO_LOADER_NAME = 1 << 9;
const INFO_SIZE = 88;

export interface MultibootHeader {
  offset: number;   // file offset of the magic
  flags: number;
  headerAddr: number;
  loadAddr: number;
  loadEndAddr: number;
  bssEndAddr: number;
  entryAddr: number;
}

/** The Multiboot header of `bytes`, or undefined when there is none (bad checksums are skipped). */
export function findMultibootHeader(bytes: Uint8Array): MultibootHeader | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const limit = Math.min(SEARCH_LIMIT, bytes.length) - 12;
  for (let o = 0; o <= limit; o += 4) {
    if (view.getUint32(o, true) !== MULTIBOOT_HEADER_MAGIC) continue;
    const flags = view.getUint32(o + 4, true);
    const checksum = view.getUint32(o + 8, true);
    if (((MULTIBOOT_HEADER_MAGIC + flags + checksum) >>> 0) !== 0) continue;
    const field = (i: number) => (o + 12 + 4 * i + 4 <= bytes.length ? view.getUint32(o + 12 + 4 * i, true) : 0);
    return { offset: o, flags, headerAddr: field(0), loadAddr: field(1), loadEndAddr: field(2), bssEndAddr: field(3), entryAddr: field(4) };
  }
  return undefined;
}

/** The a.out kludge: the image from the header's address fields. */
function kludgeImage(bytes: Uint8Array, h: MultibootHeader): { segments: LoadSegment[]; entry: number } {
  if (h.offset + 32 > bytes.length) throw new ElfError('Multiboot header with flag 16 is truncated (needs the address fields)');
  if (h.loadAddr > h.headerAddr) throw new ElfError('Multiboot header: load_addr is above header_addr');
  const fileStart = h.offset - (h.headerAddr - h.loadAddr);
  if (fileStart < 0) throw new ElfError('Multiboot header: header_addr - load_addr points before the start of the file');
  const loadEnd = h.loadEndAddr === 0 ? h.loadAddr + (bytes.length - fileStart) : h.loadEndAddr;
  if (loadEnd < h.loadAddr) throw new ElfError('Multiboot header: load_end_addr is below load_addr');
  const fileLen = loadEnd - h.loadAddr;
  if (fileStart + fileLen > bytes.length) throw new ElfError('Multiboot header: load_end_addr is past the end of the file');
  const bssEnd = h.bssEndAddr === 0 ? loadEnd : h.bssEndAddr;
  if (bssEnd < loadEnd) throw new ElfError('Multiboot header: bss_end_addr is below load_end_addr');
  const seg: LoadSegment = { address: h.loadAddr, data: bytes.subarray(fileStart, fileStart + fileLen), memSize: bssEnd - h.loadAddr, flags: 7 };
  if (h.entryAddr < h.loadAddr || h.entryAddr >= loadEnd) throw new ElfError(`Multiboot header: entry_addr 0x${h.entryAddr.toString(16)} is outside the loaded image`);
  return { segments: [seg], entry: h.entryAddr };
}

/** A higher-half ELF's e_entry may be virtual: translate it through the segment holding it. */
function physicalEntry(entry: number, segments: ElfSegment[]): number {
  for (const s of segments) if (entry >= s.address && entry < s.address + s.memSize) return entry;
  for (const s of segments) {
    if (entry >= s.virtualAddress && entry < s.virtualAddress + s.memSize) return entry - s.virtualAddress + s.address;
  }
  throw new ElfError(`entry point 0x${entry.toString(16)} is outside every loadable segment`);
}

/** Builds the boot plan of a Multiboot kernel (ElfError with a diagnosis when it cannot). */
export function loadMultiboot(bytes: Uint8Array, opts: BootOptions): BootPlan {
  const h = findMultibootHeader(bytes);
  if (!h) throw new ElfError('no Multiboot header (magic 0x1BADB002 with a valid checksum) in the first 8 KiB');
  const unsupported = h.flags & 0xffff & ~SUPPORTED_REQUIRED;
  if (unsupported !== 0) throw new ElfError(`Multiboot header requires features this loader does not know (flags 0x${unsupported.toString(16)})`);

  let segments: LoadSegment[];
  let entry: number;
  let symbols = new Map<string, number>();
  if (h.flags & FLAG_AOUT_KLUDGE) {
    ({ segments, entry } = kludgeImage(bytes, h));
  } else {
    if (!isElf(bytes)) throw new ElfError('Multiboot kernel is not an ELF file and its header has no address fields (flag 16)');
    const elf = parseAnyElf(bytes);
    segments = elf.segments;
    entry = physicalEntry(elf.entry, elf.segments);
    symbols = elf.symbols;
  }
  checkKernelPlacement(segments, opts.memorySize);
  if (entry >= 0x100000000) throw new ElfError(`entry point 0x${entry.toString(16)} is not reachable in 32-bit mode`);

  const blobs: LoadSegment[] = [...segments];
  const info = new InfoArea();
  const mbi = info.alloc(INFO_SIZE, 8, 'the Multiboot information');
  let flags = INFO_MEMORY | INFO_CMDLINE | INFO_MMAP | INFO_LOADER_NAME;
  info.u32(mbi + 4, 639);                                           // mem_lower: KiB below 640K (EBDA excluded)
  info.u32(mbi + 8, Math.floor((opts.memorySize - HIGH_MEMORY) / 1024)); // mem_upper: KiB from 1 MiB
  const cmdline = opts.cmdline ? `${opts.kernelName} ${opts.cmdline}` : opts.kernelName;
  info.u32(mbi + 16, info.string(cmdline, 'the command line'));
  info.u32(mbi + 64, info.string('vmm-gdbstub', 'the boot loader name'));

  const map = pcMemoryMap(opts.memorySize);
  const mmap = info.alloc(24 * map.length, 8, 'the memory map');
  map.forEach((r, i) => {
    const e = mmap + 24 * i;
    info.u32(e, 20); info.u64(e + 4, r.base); info.u64(e + 12, r.length); info.u32(e + 20, r.type);
  });
  info.u32(mbi + 44, 24 * map.length);
  info.u32(mbi + 48, mmap);

  if (opts.modules.length > 0) {
    flags |= INFO_MODS;
    const list = info.alloc(16 * opts.modules.length, 8, 'the module list');
    let at = modulesBase(segments);
    opts.modules.forEach((m, i) => {
      if (at + m.data.length > opts.memorySize) throw new ElfError(`module ${m.name} (${m.data.length} bytes) does not fit in guest RAM after the kernel`);
      blobs.push({ address: at, data: m.data, memSize: m.data.length, flags: 4 });
      const e = list + 16 * i;
      info.u32(e, at); info.u32(e + 4, at + m.data.length); info.u32(e + 8, info.string(m.name, 'a module name'));
      at = pageAlign(at + m.data.length); // modules are page-aligned whether or not flag 0 asks
    });
    info.u32(mbi + 20, opts.modules.length);
    info.u32(mbi + 24, list);
  }
  info.u32(mbi, flags);

  const gdt = bootGdt();
  blobs.push(gdt.blob, info.blob(), buildAcpiTables(ACPI_BASE, opts.vcpus));
  blobs.sort((a, b) => a.address - b.address);
  return {
    protocol: 'multiboot',
    blobs,
    bsp: { eip: entry, eax: MULTIBOOT_BOOTLOADER_MAGIC, ebx: mbi, esi: 0, cs: BOOT_CS, ds: BOOT_DS, gdtBase: gdt.blob.address, gdtLimit: gdt.limit },
    apsWaitForSipi: true,
    memoryMap: map,
    symbols,
  };
}
