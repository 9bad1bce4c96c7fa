/**
 * PVH boot (Xen's x86/HVM direct boot ABI, also what QEMU and Firecracker use for
 * vmlinux): an ELF kernel with the note "Xen", type XEN_ELFNOTE_PHYS32_ENTRY (18), whose
 * descriptor is the 32-bit physical entry point. Entry: 32-bit protected mode, paging off,
 * EBX = the physical address of struct hvm_start_info (version 1: modules, command line,
 * RSDP, memory map), flat CS/DS.
 */
import { buildAcpiTables } from './acpi-tables';
import { BootOptions, BootPlan } from './boot-plan';
import { AnyElf, parseAnyElf } from './elf-any';
import { ElfError, LoadSegment } from './elf-types';
import { ACPI_BASE, BOOT_CS, BOOT_DS, InfoArea, bootGdt, checkKernelPlacement, modulesBase, pageAlign, pcMemoryMap } from './pc-layout';

export const XEN_ELFNOTE_PHYS32_ENTRY = 18;
export const HVM_START_MAGIC = 0x336ec578;
const START_INFO_SIZE = 56;

/** The PHYS32_ENTRY of an ELF, or undefined when it has no such note. */
export function pvhEntry(elf: AnyElf): number | undefined {
  for (const n of elf.notes) {
    if (n.name !== 'Xen' || n.type !== XEN_ELFNOTE_PHYS32_ENTRY) continue;
    const v = new DataView(n.desc.buffer, n.desc.byteOffset, n.desc.byteLength);
    if (n.desc.length === 4) return v.getUint32(0, true);
    if (n.desc.length === 8) {
      if (v.getUint32(4, true) !== 0) throw new ElfError('PVH entry point is above 4 GiB');
      return v.getUint32(0, true);
    }
    throw new ElfError(`PVH note has a ${n.desc.length}-byte entry point (need 4 or 8)`);
  }
  return undefined;
}

export function loadPvh(bytes: Uint8Array, opts: BootOptions): BootPlan {
  const elf = parseAnyElf(bytes);
  const entry = pvhEntry(elf);
  if (entry === undefined) throw new ElfError('no PVH entry (ELF note "Xen" type 18, XEN_ELFNOTE_PHYS32_ENTRY)');
  checkKernelPlacement(elf.segments, opts.memorySize);
  if (!elf.segments.some((s) => entry >= s.address && entry < s.address + s.memSize)) {
    throw new ElfError(`PVH entry point 0x${entry.toString(16)} is outside every loadable segment`);
  }

  const blobs: LoadSegment[] = [...elf.segments];
  const info = new InfoArea();
  const start = info.alloc(START_INFO_SIZE, 8, 'hvm_start_info');
  info.u32(start, HVM_START_MAGIC);
  info.u32(start + 4, 1);                                  // version 1 (has the memory map)
  if (opts.cmdline) info.u64(start + 24, info.string(opts.cmdline, 'the command line'));
  info.u64(start + 32, ACPI_BASE);                          // rsdp_paddr

  const map = pcMemoryMap(opts.memorySize);
  const mmap = info.alloc(24 * map.length, 8, 'the memory map');
  map.forEach((r, i) => {
    const e = mmap + 24 * i;
    info.u64(e, r.base); info.u64(e + 8, r.length); info.u32(e + 16, r.type);
  });
  info.u64(start + 40, mmap);
  info.u32(start + 48, map.length);

  if (opts.modules.length > 0) {
    const list = info.alloc(32 * opts.modules.length, 8, 'the module list');
    let at = modulesBase(elf.segments);
    opts.modules.forEach((m, i) => {
      if (at + m.data.length > opts.memorySize) throw new ElfError(`module ${m.name} (${m.data.length} bytes) does not fit in guest RAM after the kernel`);
      blobs.push({ address: at, data: m.data, memSize: m.data.length, flags: 4 });
      const e = list + 32 * i;
      info.u64(e, at); info.u64(e + 8, m.data.length); info.u64(e + 16, info.string(m.name, 'a module name'));
      at = pageAlign(at + m.data.length);
    });
    info.u32(start + 12, opts.modules.length);
    info.u64(start + 16, list);
  }

  const gdt = bootGdt();
  blobs.push(gdt.blob, info.blob(), buildAcpiTables(ACPI_BASE, opts.vcpus));
  blobs.sort((a, b) => a.address - b.address);
  return {
    protocol: 'pvh',
    blobs,
    bsp: { eip: entry, eax: 0, ebx: start, esi: 0, cs: BOOT_CS, ds: BOOT_DS, gdtBase: gdt.blob.address, gdtLimit: gdt.limit },
    apsWaitForSipi: true,
    memoryMap: map,
    symbols: elf.symbols,
  };
}
