/**
 * Which boot protocol a kernel file uses, as QEMU's -kernel decides: a PVH note first,
 * then a Multiboot header, else our own ELF64 guest ABI. `--boot` may force one.
 */
import { BootProtocol } from './boot-plan';
import { isElf, parseAnyElf } from './elf-any';
import { findMultibootHeader } from './multiboot';
import { pvhEntry } from './pvh';

export function detectBootProtocol(bytes: Uint8Array): BootProtocol {
  if (isElf(bytes)) {
    try {
      if (pvhEntry(parseAnyElf(bytes)) !== undefined) return 'pvh';
    } catch {
      // Not an ELF the PVH/Multiboot reader accepts: the checks below (or the ELF64 loader) diagnose it.
    }
  }
  if (findMultibootHeader(bytes)) return 'multiboot';
  return 'elf64';
}

/** Parses a `--boot` value; undefined for an unknown one. */
export function parseBootProtocol(text: string): BootProtocol | undefined {
  return text === 'elf64' || text === 'multiboot' || text === 'pvh' ? text : undefined;
}
