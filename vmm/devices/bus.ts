/**
 * The device bus of one VM: which device answers an I/O port or a guest-physical MMIO
 * address. Devices register once, when the VM is built (vmm/api/machine-devices.ts);
 * lookups are on the hot path of I/O exits, so a port is one array index and MMIO regions
 * are a short sorted list.
 */
import { AccessSize, DeviceEffect, MmioDevice, PortDevice } from './device';

const PORT_COUNT = 0x10000;
/** What a read of a port or an address nothing answers returns, by size. */
const ALL_ONES = [0, 0xff, 0xffff, 0, 0xffffffff];

/** A registered MMIO region [base, base + size). */
export interface MmioRegion {
  readonly base: number;
  readonly size: number;
  readonly device: MmioDevice;
}

export class DeviceBus {
  private readonly ports: Array<PortDevice | null> = new Array<PortDevice | null>(PORT_COUNT).fill(null);
  private readonly regions: MmioRegion[] = [];
  /** Accesses to ports no device claims (reads return all ones, writes are dropped). */
  unclaimedPortAccesses = 0;

  /** Claims ports [base, base + count) for `dev`; throws if any of them is taken or out of range. */
  registerPorts(base: number, count: number, dev: PortDevice): void {
    if (!Number.isInteger(base) || !Number.isInteger(count) || count < 1 || base < 0 || base + count > PORT_COUNT) {
      throw new Error(`${dev.name}: bad port range ${base}+${count}`);
    }
    for (let p = base; p < base + count; p++) {
      const owner = this.ports[p];
      if (owner !== null) throw new Error(`${dev.name}: port 0x${p.toString(16)} already belongs to ${owner.name}`);
    }
    for (let p = base; p < base + count; p++) this.ports[p] = dev;
  }

  /** Claims guest-physical [base, base + size) for `dev`; throws on overlap with another region. */
  registerMmio(base: number, size: number, dev: MmioDevice): void {
    if (!Number.isSafeInteger(base) || !Number.isSafeInteger(size) || base < 0 || size < 1) {
      throw new Error(`${dev.name}: bad MMIO region ${base}+${size}`);
    }
    for (const r of this.regions) {
      if (base < r.base + r.size && r.base < base + size) {
        throw new Error(`${dev.name}: MMIO region 0x${base.toString(16)}+0x${size.toString(16)} overlaps ${r.device.name}`);
      }
    }
    this.regions.push({ base, size, device: dev });
    this.regions.sort((a, b) => a.base - b.base);
  }

  /** The device on `port`, or null. */
  portDevice(port: number): PortDevice | null {
    return this.ports[port & 0xffff];
  }

  /** The MMIO region that holds guest-physical `address`, or null. */
  mmioRegion(address: number): MmioRegion | null {
    for (const r of this.regions) {
      if (address < r.base) return null;
      if (address < r.base + r.size) return r;
    }
    return null;
  }

  /** Every registered MMIO region, by base address (for the MMU's map). */
  mmioRegions(): readonly MmioRegion[] {
    return this.regions;
  }

  /** IN: the device's value, or all ones when no device claims the port. */
  portRead(port: number, size: AccessSize, vcpu: number): number {
    const dev = this.ports[port & 0xffff];
    if (dev === null) {
      this.unclaimedPortAccesses++;
      return ALL_ONES[size];
    }
    return dev.portRead(port & 0xffff, size, vcpu);
  }

  /** OUT: what the device asks of the hypervisor; dropped (null) when no device claims the port. */
  portWrite(port: number, size: AccessSize, value: number, vcpu: number): DeviceEffect {
    const dev = this.ports[port & 0xffff];
    if (dev === null) {
      this.unclaimedPortAccesses++;
      return null;
    }
    return dev.portWrite(port & 0xffff, size, value, vcpu);
  }
}

/** The value a read of a write-only register returns: all ones. */
export function allOnes(size: AccessSize): number {
  return ALL_ONES[size];
}
