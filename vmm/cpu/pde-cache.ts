/**
 * A paging-structure cache (SDM vol. 3 4.10.3) for 4-level walks: for the 2 MiB region of a
 * linear address, the page table its PDE points to and the R/W, U/S and XD rights of the
 * PML4E, PDPTE and PDE above it. A TLB miss in a region seen before then reads only the PTE.
 *
 * Filled only by a walk that completed (so the three entries' accessed flags are already
 * set: the CPU need not set them again, SDM 4.10.3.1), never by a probe. Like the TLB it is
 * not kept coherent with stores to the paging structures: CR3 loads, INVLPG, INVPCID and
 * paging-mode changes empty it (mmu.ts flushes), as they do the TLB.
 */
export const PDE_CACHE_SIZE = 64;

/** Rights bits kept per entry (as in the walk: RW and US are the entries' bits 1 and 2). */
export const PDE_RW = 2, PDE_US = 4, PDE_XD = 8;

export class PdeCache {
  /** Linear address bits 31:21 and 63:32 of the region, and whether the slot holds one. */
  readonly lo = new Int32Array(PDE_CACHE_SIZE);
  readonly hi = new Int32Array(PDE_CACHE_SIZE);
  readonly used = new Uint8Array(PDE_CACHE_SIZE);
  /** Physical address of the page table, and the rights above it. */
  readonly table = new Float64Array(PDE_CACHE_SIZE);
  readonly rights = new Uint8Array(PDE_CACHE_SIZE);

  /** The slot of the 2 MiB region of linear (lo, hi). */
  static slot(lo: number, hi: number): number {
    return ((lo >>> 21) ^ hi) & (PDE_CACHE_SIZE - 1);
  }

  /** Whether slot k holds the region of (lo, hi). */
  holds(k: number, lo: number, hi: number): boolean {
    return this.used[k] !== 0 && this.lo[k] === (lo >>> 21) && this.hi[k] === (hi | 0);
  }

  put(lo: number, hi: number, table: number, rights: number): void {
    const k = PdeCache.slot(lo, hi);
    this.lo[k] = lo >>> 21;
    this.hi[k] = hi | 0;
    this.table[k] = table;
    this.rights[k] = rights;
    this.used[k] = 1;
  }

  clear(): void {
    this.used.fill(0);
  }
}
