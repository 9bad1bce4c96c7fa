/**
 * A reader for the ELF files boot protocols load (Multiboot and PVH kernels): ELF32 (i386)
 * or ELF64 (x86-64), little-endian, ET_EXEC. It returns the PT_LOAD segments at their
 * physical addresses (p_paddr), the notes of the PT_NOTE segments, and the symbol table.
 * Checks that fail throw ElfError with a one-line diagnosis. (Our own ELF64 ABI keeps its
 * stricter loader, vmm/loader/elf.ts.)
 */
import { ElfError, LoadSegment } from './elf-types';

export const EM_386 = 3;
export const EM_X86_64 = 62;
const PT_LOAD = 1;
const PT_NOTE = 4;
const SHT_SYMTAB = 2;

export interface ElfNote {
  name: string;
  type: number;
  desc: Uint8Array;
}

/** A loadable segment with its link-time virtual address too (higher-half kernels differ). */
export interface ElfSegment extends LoadSegment {
  /** p_vaddr (ELF64: its low 48 bits). */
  virtualAddress: number;
}

export interface AnyElf {
  elfClass: 32 | 64;
  machine: number;
  /** e_entry (an ELF64 virtual address as its low 48 bits). */
  entry: number;
  segments: ElfSegment[];
  notes: ElfNote[];
  symbols: Map<string, number>;
}

/** Whether `bytes` starts like an ELF file at all. */
export function isElf(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x7f && bytes[1] === 0x45 && bytes[2] === 0x4c && bytes[3] === 0x46;
}

export function parseAnyElf(bytes: Uint8Array): AnyElf {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const need = (off: number, len: number, what: string) => {
    if (off < 0 || len < 0 || off + len > bytes.length) {
      throw new ElfError(`truncated ELF: ${what} at offset 0x${off.toString(16)} (+${len}) is past the end of the ${bytes.length}-byte file`);
    }
  };
  need(0, 16, 'ELF identification');
  if (!isElf(bytes)) throw new ElfError('not an ELF file (bad magic)');
  const cls = bytes[4];
  if (cls !== 1 && cls !== 2) throw new ElfError(`wrong ELF class ${cls}: need ELFCLASS32 or ELFCLASS64`);
  if (bytes[5] !== 1) throw new ElfError(`wrong ELF data encoding ${bytes[5]}: need little-endian (ELFDATA2LSB)`);
  const is64 = cls === 2;
  const u16 = (o: number) => view.getUint16(o, true);
  const u32 = (o: number) => view.getUint32(o, true);
  const word = (o: number, what: string): number => {
    if (!is64) return u32(o);
    const lo = u32(o), hi = u32(o + 4);
    if (hi >= 0x200000) throw new ElfError(`bad ELF: ${what} is out of range`);
    return hi * 0x100000000 + lo;
  };
  /** A virtual address: 64-bit ones are canonical, so the low 48 bits identify them (higher-half kernels). */
  const vaddr48 = (o: number): number => (is64 ? (u32(o + 4) & 0xffff) * 0x100000000 + u32(o) : u32(o));
  need(0, is64 ? 64 : 52, 'ELF header');
  if (u16(16) !== 2) throw new ElfError(`wrong ELF type ${u16(16)}: need ET_EXEC`);
  const machine = u16(18);
  if (machine !== (is64 ? EM_X86_64 : EM_386)) {
    throw new ElfError(`wrong ELF machine ${machine}: need ${is64 ? 'EM_X86_64 (62)' : 'EM_386 (3)'}`);
  }
  const entry = vaddr48(24);
  const phoff = word(is64 ? 32 : 28, 'e_phoff');
  const shoff = word(is64 ? 40 : 32, 'e_shoff');
  const phentsize = u16(is64 ? 54 : 42), phnum = u16(is64 ? 56 : 44);
  const shentsize = u16(is64 ? 58 : 46), shnum = u16(is64 ? 60 : 48);
  if (phnum === 0) throw new ElfError('ELF has no program headers');
  if (phentsize < (is64 ? 56 : 32)) throw new ElfError(`bad ELF: e_phentsize ${phentsize}`);
  need(phoff, phentsize * phnum, 'program headers');

  const segments: ElfSegment[] = [];
  const notes: ElfNote[] = [];
  for (let i = 0; i < phnum; i++) {
    const p = phoff + i * phentsize;
    const type = u32(p);
    const offset = word(p + (is64 ? 8 : 4), 'p_offset');
    const vaddr = vaddr48(p + (is64 ? 16 : 8));
    const paddr = word(p + (is64 ? 24 : 12), 'p_paddr');
    const filesz = word(p + (is64 ? 32 : 16), 'p_filesz');
    const memsz = word(p + (is64 ? 40 : 20), 'p_memsz');
    const flags = u32(p + (is64 ? 4 : 24));
    if (type === PT_LOAD) {
      if (memsz === 0) continue;
      if (filesz > memsz) throw new ElfError(`bad ELF: segment ${i} has p_filesz > p_memsz`);
      need(offset, filesz, `segment ${i}`);
      segments.push({ address: paddr, virtualAddress: vaddr, data: bytes.subarray(offset, offset + filesz), memSize: memsz, flags });
    } else if (type === PT_NOTE) {
      need(offset, filesz, `note segment ${i}`);
      notes.push(...parseNotes(bytes.subarray(offset, offset + filesz)));
    }
  }
  if (segments.length === 0) throw new ElfError('ELF has no PT_LOAD segment');
  segments.sort((a, b) => a.address - b.address);
  for (let i = 1; i < segments.length; i++) {
    const prev = segments[i - 1];
    if (prev.address + prev.memSize > segments[i].address) {
      throw new ElfError(`overlapping segments at 0x${prev.address.toString(16)} and 0x${segments[i].address.toString(16)}`);
    }
  }
  return { elfClass: is64 ? 64 : 32, machine, entry, segments, notes, symbols: readSymbols(bytes, view, is64, shoff, shentsize, shnum) };
}

/** Notes: namesz, descsz, type, then the name and the descriptor, each padded to 4 bytes. */
export function parseNotes(b: Uint8Array): ElfNote[] {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out: ElfNote[] = [];
  let o = 0;
  const pad = (n: number) => (n + 3) & ~3;
  while (o + 12 <= b.length) {
    const namesz = view.getUint32(o, true), descsz = view.getUint32(o + 4, true), type = view.getUint32(o + 8, true);
    const nameEnd = o + 12 + pad(namesz);
    const descEnd = nameEnd + pad(descsz);
    if (nameEnd > b.length || nameEnd + descsz > b.length) throw new ElfError('bad ELF: truncated note');
    const name = new TextDecoder().decode(b.subarray(o + 12, o + 12 + namesz)).replace(/\0+$/, '');
    out.push({ name, type, desc: b.subarray(nameEnd, nameEnd + descsz) });
    o = descEnd;
  }
  return out;
}

/** .symtab symbols (best effort: a missing or odd table gives an empty map). */
function readSymbols(bytes: Uint8Array, view: DataView, is64: boolean, shoff: number, shentsize: number, shnum: number): Map<string, number> {
  const symbols = new Map<string, number>();
  if (shoff === 0 || shnum === 0 || shoff + shentsize * shnum > bytes.length) return symbols;
  const u32 = (o: number) => view.getUint32(o, true);
  const field = (o: number) => (is64 ? u32(o) + u32(o + 4) * 0x100000000 : u32(o));
  for (let i = 0; i < shnum; i++) {
    const s = shoff + i * shentsize;
    if (u32(s + 4) !== SHT_SYMTAB) continue;
    const off = field(s + (is64 ? 24 : 16)), size = field(s + (is64 ? 32 : 20));
    const link = u32(s + (is64 ? 40 : 24));
    const entsize = field(s + (is64 ? 56 : 36)) || (is64 ? 24 : 16);
    if (link >= shnum) return symbols;
    const ls = shoff + link * shentsize;
    const stroff = field(ls + (is64 ? 24 : 16)), strsize = field(ls + (is64 ? 32 : 20));
    if (off + size > bytes.length || stroff + strsize > bytes.length) return symbols;
    for (let e = off; e + entsize <= off + size; e += entsize) {
      const nameOff = u32(e);
      const value = is64 ? field(e + 8) : u32(e + 4);
      const info = is64 ? bytes[e + 4] : bytes[e + 12];
      if (nameOff === 0 || (info & 0xf) === 3 || (info & 0xf) === 4) continue; // section, file
      let end = stroff + nameOff;
      while (end < stroff + strsize && bytes[end] !== 0) end++;
      const name = new TextDecoder().decode(bytes.subarray(stroff + nameOff, end));
      if (name && !symbols.has(name)) symbols.set(name, value);
    }
    break;
  }
  return symbols;
}
