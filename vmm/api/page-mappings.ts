/**
 * The virtual -> physical mappings of a vCPU's current paging structures, for the stub's
 * `monitor info mem` / `info tlb` (as QEMU's monitor). Pure: reads guest-physical memory
 * through the given reader and touches no accessed/dirty bit. 32-bit (4 KiB and, with
 * CR4.PSE, 4 MiB pages), PAE and 4-level long mode (2 MiB and 1 GiB pages); 5-level (LA57)
 * is reported as unsupported.
 */
export interface PageMapping {
  /** Virtual address (canonical in long mode) and physical address of the page. */
  virt: bigint;
  phys: bigint;
  size: number;
  user: boolean;
  writable: boolean;
  /** Not execute-disable (always true without EFER.NXE). */
  executable: boolean;
  global: boolean;
  accessed: boolean;
  dirty: boolean;
}

export interface PagingRegisters { cr0: bigint; cr3: bigint; cr4: bigint; efer: bigint }

export type PhysicalReader = (address: number, length: number) => Uint8Array | undefined;

export type PagingMode = 'none' | '32-bit' | 'pae' | '4-level' | '5-level';

export function pagingMode(r: PagingRegisters): PagingMode {
  if ((r.cr0 & 0x80000000n) === 0n) return 'none';
  if ((r.cr4 & 0x20n) === 0n) return '32-bit';
  if ((r.efer & 0x400n) === 0n) return 'pae';
  return (r.cr4 & 0x1000n) !== 0n ? '5-level' : '4-level';
}

const P = 1n, RW = 2n, US = 4n, A = 0x20n, D = 0x40n, PS = 0x80n, G = 0x100n, NX = 1n << 63n;

/** Rights along the walk: user and writable only if every level allows it, NX if any forbids. */
interface Rights { user: boolean; writable: boolean; executable: boolean }

/** All present leaf mappings, in virtual order; at most `limit` (the rest is cut, `truncated`). */
export function listMappings(read: PhysicalReader, r: PagingRegisters, limit = 1 << 20): { mode: PagingMode; mappings: PageMapping[]; truncated: boolean } {
  const mode = pagingMode(r);
  const out: PageMapping[] = [];
  let truncated = false;
  const nxe = (r.efer & 0x800n) !== 0n;
  const entryAt = (table: bigint, index: number, wide: boolean): bigint | undefined => {
    const size = wide ? 8 : 4;
    const b = read(Number(table) + index * size, size);
    if (!b) return undefined;
    let v = 0n;
    for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
    return v;
  };
  const leaf = (virt: bigint, phys: bigint, size: number, e: bigint, rights: Rights) => {
    if (out.length >= limit) { truncated = true; return; }
    out.push({
      virt, phys, size, user: rights.user && (e & US) !== 0n, writable: rights.writable && (e & RW) !== 0n,
      executable: rights.executable && !(nxe && (e & NX) !== 0n), global: (e & G) !== 0n, accessed: (e & A) !== 0n, dirty: (e & D) !== 0n,
    });
  };
  const addrMask = (1n << 52n) - 1n;
  const sext = (v: bigint) => ((v & (1n << 47n)) !== 0n ? v | ~((1n << 48n) - 1n) & ((1n << 64n) - 1n) : v);

  if (mode === 'none' || mode === '5-level') return { mode, mappings: out, truncated };
  if (mode === '32-bit') {
    const pse = (r.cr4 & 0x10n) !== 0n;
    const dir = r.cr3 & 0xfffff000n;
    for (let i = 0; i < 1024 && !truncated; i++) {
      const pde = entryAt(dir, i, false);
      if (pde === undefined || (pde & P) === 0n) continue;
      const rights = { user: (pde & US) !== 0n, writable: (pde & RW) !== 0n, executable: true };
      const virt = BigInt(i) << 22n;
      if (pse && (pde & PS) !== 0n) {
        const phys = (pde & 0xffc00000n) | (((pde >> 13n) & 0xffn) << 32n);
        leaf(virt, phys, 1 << 22, pde, rights);
        continue;
      }
      const table = pde & 0xfffff000n;
      for (let j = 0; j < 1024 && !truncated; j++) {
        const pte = entryAt(table, j, false);
        if (pte === undefined || (pte & P) === 0n) continue;
        leaf(virt | (BigInt(j) << 12n), pte & 0xfffff000n, 4096, pte, rights);
      }
    }
    return { mode, mappings: out, truncated };
  }
  // PAE (4 PDPTEs at CR3[31:5], no rights in them) and 4-level long mode
  const walk = (table: bigint, level: number, virtBase: bigint, rights: Rights) => {
    const shift = 12n + 9n * BigInt(level - 1);
    const count = mode === 'pae' && level === 3 ? 4 : 512;
    for (let i = 0; i < count && !truncated; i++) {
      const e = entryAt(table, i, true);
      if (e === undefined || (e & P) === 0n) continue;
      const virt = virtBase | (BigInt(i) << shift);
      const paePdpte = mode === 'pae' && level === 3;
      const here: Rights = paePdpte ? rights : {
        user: rights.user && (e & US) !== 0n, writable: rights.writable && (e & RW) !== 0n,
        executable: rights.executable && !(nxe && (e & NX) !== 0n),
      };
      const next = e & addrMask & ~0xfffn;
      if (level === 1 || (!paePdpte && level <= 3 && (e & PS) !== 0n)) {
        const size = 1n << shift;
        leaf(mode === '4-level' ? sext(virt) : virt, next & ~(size - 1n), Number(size), e, here);
        continue;
      }
      walk(next, level - 1, virt, here);
    }
  };
  if (mode === 'pae') walk(r.cr3 & 0xffffffe0n, 3, 0n, { user: true, writable: true, executable: true });
  else walk(r.cr3 & addrMask & ~0xfffn, 4, 0n, { user: true, writable: true, executable: true });
  return { mode, mappings: out, truncated };
}
