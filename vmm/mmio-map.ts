/**
 * The guest-physical MMIO registry: device regions outside RAM. The MMU sends an access
 * that misses RAM here; an address no region covers is a nested-page fault (exit 131).
 * The device-bus owner registers the devices (local APIC, ...); one map per guest memory,
 * shared by every vCPU.
 */
import type { MmioDevice } from './devices/device';

export interface MmioRegion {
  readonly base: number;
  readonly size: number;
  readonly device: MmioDevice;
}

export class MmioMap {
  private readonly regions: MmioRegion[] = [];

  /** Adds [base, base+size). Throws on overlap or a bad range (nothing is registered). */
  register(base: number, size: number, device: MmioDevice): void {
    if (!Number.isSafeInteger(base) || !Number.isSafeInteger(size) || base < 0 || size <= 0) {
      throw new RangeError(`bad MMIO region ${base}+${size} for ${device.name}`);
    }
    for (const r of this.regions) {
      if (base < r.base + r.size && r.base < base + size) {
        throw new RangeError(`MMIO region 0x${base.toString(16)}+0x${size.toString(16)} (${device.name}) overlaps ${r.device.name}`);
      }
    }
    this.regions.push({ base, size, device });
  }

  /** The region holding guest-physical address `addr`, if any. */
  lookup(addr: number): MmioRegion | undefined {
    for (const r of this.regions) if (addr >= r.base && addr < r.base + r.size) return r;
    return undefined;
  }

  get size(): number {
    return this.regions.length;
  }
}
