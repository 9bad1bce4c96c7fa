/**
 * The identity-mapping page tables of the guest ABI, built by the loader in reserved guest
 * RAM just below the vCPU stacks: a PML4 whose entry 0 points to a PDPT of 512 1 GiB pages,
 * mapping linear [0, 512 GiB) to the same physical addresses (user, writable, accessed and
 * dirty preset). CR3 of every vCPU points at the PML4. Accesses beyond RAM inside that range
 * are nested-page faults (exit 131), as without paging; the guest may build and load its own.
 */
import { GuestMemory } from '../memory';
import { stackAreaBase } from './stacks';

export const PAGE_TABLES_SIZE = 0x2000;
// P RW US A; the 1 GiB leaves also D PS
const TABLE_FLAGS = 0x27;
const LEAF_FLAGS = 0xe7;

/** Physical address of the PML4 (the PDPT follows): 4 KiB aligned, below the stacks. */
export function pageTablesBase(memSize: number, vcpus: number): number {
  return Math.floor(stackAreaBase(memSize, vcpus) / 4096) * 4096 - PAGE_TABLES_SIZE;
}

/** Writes the tables at `base` (4 KiB aligned, PAGE_TABLES_SIZE bytes of RAM); returns the CR3 value. */
export function buildIdentityPageTables(mem: GuestMemory, base: number): number {
  if (base % 4096 !== 0 || !mem.contains(base, PAGE_TABLES_SIZE)) {
    throw new RangeError(`page tables at 0x${base.toString(16)} do not fit in guest RAM`);
  }
  const t = new Uint8Array(PAGE_TABLES_SIZE);
  const v = new DataView(t.buffer);
  const pdpt = base + 0x1000;
  v.setUint32(0, (pdpt + TABLE_FLAGS) >>> 0, true);
  v.setUint32(4, Math.floor(pdpt / 4294967296), true);
  for (let i = 0; i < 512; i++) {
    v.setUint32(0x1000 + i * 8, (((i & 3) << 30) | LEAF_FLAGS) >>> 0, true);
    v.setUint32(0x1000 + i * 8 + 4, i >>> 2, true);
  }
  mem.write(base, t);
  return base;
}
