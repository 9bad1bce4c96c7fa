/**
 * Loader for the guest ABI's images: static ELF64 x86-64 ET_EXEC files. Every check that
 * fails throws ElfError with a one-line diagnosis; nothing is loaded until the whole file
 * has been validated (the caller copies `segments` into RAM only on success).
 */
import { ElfError, LoadedImage, LoadSegment } from './elf-types';
import { pageTablesBase } from './page-tables';

const EHDR_SIZE = 64;
const PHDR_SIZE = 56;
const SHDR_SIZE = 64;
const SYM_SIZE = 24;

const ELFCLASS64 = 2;
const ELFDATA2LSB = 1;
const ET_EXEC = 2;
const EM_X86_64 = 62;
const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const PT_INTERP = 3;
const SHT_SYMTAB = 2;
const PF_X = 1;
const STT_SECTION = 3;
const STT_FILE = 4;

/** Little-endian reads with bounds checks that name what was being read. */
class Reader {
  constructor(private readonly b: Uint8Array, private readonly view: DataView) {}

  need(off: number, len: number, what: string): void {
    if (off < 0 || len < 0 || off + len > this.b.length) {
      throw new ElfError(`truncated ELF: ${what} at offset 0x${off.toString(16)} (+${len}) is past the end of the ${this.b.length}-byte file`);
    }
  }
  u8(off: number): number {
    return this.b[off];
  }
  u16(off: number): number {
    return this.view.getUint16(off, true);
  }
  u32(off: number): number {
    return this.view.getUint32(off, true);
  }
  /** A 64-bit field as a JS number; values >= 2^53 cannot be guest addresses or sizes here. */
  u64(off: number, what: string): number {
    const lo = this.view.getUint32(off, true);
    const hi = this.view.getUint32(off + 4, true);
    if (hi >= 0x200000) throw new ElfError(`bad ELF: ${what} 0x${hex64(hi, lo)} is out of range`);
    return hi * 0x100000000 + lo;
  }
  /**
   * A 64-bit address (a symbol value): canonical higher-half values (>= 0xffff800000000000)
   * as negative numbers (bits 63:32 as int32), exact like the CPU's RIP; others as u64().
   */
  address(off: number, what: string): number {
    const lo = this.view.getUint32(off, true);
    const hi = this.view.getUint32(off + 4, true);
    if (hi >= 0xffff8000) return (hi | 0) * 0x100000000 + lo;
    return this.u64(off, what);
  }
}

function hex64(hi: number, lo: number): string {
  return hi === 0 ? lo.toString(16) : hi.toString(16) + lo.toString(16).padStart(8, '0');
}

function hex(n: number): string {
  return '0x' + n.toString(16);
}

/**
 * Parses and validates `bytes` for a VM with `memorySize` bytes of RAM and `vcpus` vCPUs
 * (whose stacks occupy the top of RAM, see stacks.ts).
 */
export function parseElf(bytes: Uint8Array, memorySize: number, vcpus = 1): LoadedImage {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const r = new Reader(bytes, view);

  r.need(0, 16, 'ELF identification');
  if (bytes[0] !== 0x7f || bytes[1] !== 0x45 || bytes[2] !== 0x4c || bytes[3] !== 0x46) {
    throw new ElfError('not an ELF file (bad magic)');
  }
  if (r.u8(4) !== ELFCLASS64) throw new ElfError(`wrong ELF class ${r.u8(4)}: need ELFCLASS64 (a 64-bit image)`);
  if (r.u8(5) !== ELFDATA2LSB) throw new ElfError(`wrong ELF data encoding ${r.u8(5)}: need little-endian (ELFDATA2LSB)`);
  if (r.u8(6) !== 1) throw new ElfError(`unsupported ELF version ${r.u8(6)}`);
  r.need(0, EHDR_SIZE, 'ELF header');
  const type = r.u16(16);
  if (type !== ET_EXEC) {
    const hint = type === 3 ? ' (ET_DYN: link with -static -no-pie)' : type === 1 ? ' (ET_REL: an object file, not linked)' : '';
    throw new ElfError(`wrong ELF type ${type}${hint}: need ET_EXEC`);
  }
  const machine = r.u16(18);
  if (machine !== EM_X86_64) throw new ElfError(`wrong ELF machine ${machine}: need EM_X86_64 (62)`);
  const entry = r.u64(24, 'e_entry');
  const phoff = r.u64(32, 'e_phoff');
  const shoff = r.u64(40, 'e_shoff');
  const phentsize = r.u16(54);
  const phnum = r.u16(56);
  const shentsize = r.u16(58);
  const shnum = r.u16(60);

  if (phnum === 0) throw new ElfError('ELF has no program headers (nothing to load)');
  if (phentsize < PHDR_SIZE) throw new ElfError(`bad ELF: e_phentsize ${phentsize} < ${PHDR_SIZE}`);
  r.need(phoff, phentsize * phnum, 'program header table');

  const ramTop = pageTablesBase(memorySize, vcpus); // page tables, then the stacks
  const segments: LoadSegment[] = [];
  for (let i = 0; i < phnum; i++) {
    const p = phoff + i * phentsize;
    const ptype = r.u32(p);
    if (ptype === PT_INTERP || ptype === PT_DYNAMIC) {
      throw new ElfError('ELF is dynamically linked (PT_INTERP/PT_DYNAMIC): need a static executable');
    }
    if (ptype !== PT_LOAD) continue;
    const flags = r.u32(p + 4);
    const offset = r.u64(p + 8, `segment ${i} p_offset`);
    const paddr = r.u64(p + 24, `segment ${i} p_paddr`);
    const filesz = r.u64(p + 32, `segment ${i} p_filesz`);
    const memsz = r.u64(p + 40, `segment ${i} p_memsz`);
    if (filesz > memsz) throw new ElfError(`bad ELF: segment ${i} has p_filesz ${hex(filesz)} > p_memsz ${hex(memsz)}`);
    if (memsz === 0) continue;
    r.need(offset, filesz, `segment ${i} contents`);
    const end = paddr + memsz;
    if (end > memorySize) {
      throw new ElfError(`segment ${i} [${hex(paddr)}, ${hex(end)}) is outside guest RAM (${hex(memorySize)} bytes)`);
    }
    if (end > ramTop) {
      throw new ElfError(`segment ${i} [${hex(paddr)}, ${hex(end)}) overlaps the vCPU stacks and page tables reserved at [${hex(ramTop)}, ${hex(memorySize)})`);
    }
    segments.push({ address: paddr, data: bytes.slice(offset, offset + filesz), memSize: memsz, flags });
  }
  if (segments.length === 0) throw new ElfError('ELF has no PT_LOAD segment with contents');

  const sorted = [...segments].sort((a, b) => a.address - b.address);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1];
    const cur = sorted[i];
    if (prev.address + prev.memSize > cur.address) {
      throw new ElfError(`overlapping segments: [${hex(prev.address)}, ${hex(prev.address + prev.memSize)}) and [${hex(cur.address)}, ${hex(cur.address + cur.memSize)})`);
    }
  }

  const inExec = segments.some((s) => (s.flags & PF_X) !== 0 && entry >= s.address && entry < s.address + s.memSize);
  if (!inExec) throw new ElfError(`entry point ${hex(entry)} is not inside any executable segment`);

  const symbols = shnum > 0 && shoff !== 0 ? readSymbols(r, bytes, shoff, shentsize, shnum) : new Map<string, number>();
  return { entry, segments, symbols };
}

/** Named symbols (functions, objects, labels) from every SHT_SYMTAB section. */
function readSymbols(r: Reader, bytes: Uint8Array, shoff: number, shentsize: number, shnum: number): Map<string, number> {
  if (shentsize < SHDR_SIZE) throw new ElfError(`bad ELF: e_shentsize ${shentsize} < ${SHDR_SIZE}`);
  r.need(shoff, shentsize * shnum, 'section header table');
  const symbols = new Map<string, number>();
  const decoder = new TextDecoder('utf-8');
  for (let i = 0; i < shnum; i++) {
    const sh = shoff + i * shentsize;
    if (r.u32(sh + 4) !== SHT_SYMTAB) continue;
    const symOff = r.u64(sh + 24, 'symtab sh_offset');
    const symSize = r.u64(sh + 32, 'symtab sh_size');
    const link = r.u32(sh + 40);
    r.need(symOff, symSize, 'symbol table');
    if (link >= shnum) throw new ElfError(`bad ELF: symbol table links to missing string table section ${link}`);
    const strSh = shoff + link * shentsize;
    const strOff = r.u64(strSh + 24, 'strtab sh_offset');
    const strSize = r.u64(strSh + 32, 'strtab sh_size');
    r.need(strOff, strSize, 'string table');
    for (let s = symOff; s + SYM_SIZE <= symOff + symSize; s += SYM_SIZE) {
      const nameOff = r.u32(s);
      const symType = r.u8(s + 4) & 0xf;
      const shndx = r.u16(s + 6);
      if (nameOff === 0 || shndx === 0 || symType === STT_SECTION || symType === STT_FILE) continue;
      if (nameOff >= strSize) throw new ElfError(`bad ELF: symbol name offset ${nameOff} outside the string table`);
      let e = strOff + nameOff;
      while (e < strOff + strSize && bytes[e] !== 0) e++;
      const name = decoder.decode(bytes.subarray(strOff + nameOff, e));
      symbols.set(name, r.address(s + 8, `symbol ${name} value`));
    }
  }
  return symbols;
}
