/**
 * The reset paging structures of a bare vCPU: a read-only ROM outside RAM holding an
 * identity map of the first 512 GiB (a PML4 and one PDPT of 1 GiB pages, accessed and
 * dirty preset, user and writable), so that a CPU created without a loader starts in long
 * mode with linear = physical. The loader replaces it with real tables in guest RAM
 * (vmm/loader/page-tables.ts); guests may load their own CR3 at any time.
 */
import type { MmioDevice, AccessSize, DeviceEffect } from '../devices/device';
import type { GuestMemory } from '../memory';

/** Guest-physical address of the ROM PML4 (the PDPT follows at +0x1000): just below 512 GiB. */
export const BOOT_CR3 = 0x7f_ffff_e000;
const ROM_SIZE = 0x2000;
// P RW US A (+ D PS for the 1 GiB leaves)
const TABLE_FLAGS = 0x27;
const LEAF_FLAGS = 0xe7;

class BootPageTableRom implements MmioDevice {
  readonly name = 'boot-page-tables';

  /** The 64-bit entry at byte offset `off` of the ROM, as [lo, hi]. */
  private entry(off: number): [number, number] {
    const idx = (off & 0xfff) >>> 3;
    if (off < 0x1000) return idx === 0 ? [(BOOT_CR3 + 0x1000 + TABLE_FLAGS) % 4294967296, Math.floor((BOOT_CR3 + 0x1000) / 4294967296)] : [0, 0];
    return [(((idx & 3) << 30) | LEAF_FLAGS) >>> 0, idx >>> 2];
  }

  mmioRead(offset: number, size: AccessSize): number {
    const [lo, hi] = this.entry(offset);
    const sh = (offset & 7) * 8;
    const v = sh < 32 ? (lo >>> sh) | (sh === 0 ? 0 : hi << (32 - sh)) : hi >>> (sh - 32);
    return size === 4 ? v >>> 0 : v & (size === 2 ? 0xffff : 0xff);
  }

  mmioWrite(): DeviceEffect {
    return null; // ROM: writes are dropped
  }
}

/** Registers the ROM in `mem`'s MMIO map once (every bare vCPU on it starts with CR3 = BOOT_CR3). */
export function ensureBootPageTables(mem: GuestMemory): void {
  const r = mem.mmio.lookup(BOOT_CR3);
  if (r === undefined) mem.mmio.register(BOOT_CR3, ROM_SIZE, new BootPageTableRom());
}
