/**
 * The device bus of one VM: which device answers an I/O port or a guest-physical MMIO
 * address. Devices register once, when the VM is built (vmm/api/machine-devices.ts).
 * Ports: one array index per lookup (the I/O-exit handler's hot path). MMIO: the regions go
 * into the guest memory's MmioMap (vmm/mmio-map.ts), the one registry the MMU consults for
 * an access outside RAM.
 */
import { MmioMap, MmioRegion } from '../mmio-map';
import { AccessSize, DeviceEffect, MmioDevice, PortDevice } from './device';

const PORT_COUNT = 0x10000;
/** What a read of a port or an address nothing answers returns, by size. */
const ALL_ONES = [0, 0xff, 0xffff, 0, 0xffffffff];

export class DeviceBus {
  private readonly ports: Array<PortDevice | null> = new Array<PortDevice | null>(PORT_COUNT).fill(null);
  /** Accesses to ports no device claims (reads return all ones, writes are dropped). */
  unclaimedPortAccesses = 0;

  /** `mmio`: the guest memory's map (GuestMemory.mmio), so that the MMU sees what is registered here. */
  constructor(private readonly mmio: MmioMap = new MmioMap()) {}

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

  /** Claims guest-physical [base, base + size) for `dev`; throws on a bad range or an overlap (nothing registered). */
  registerMmio(base: number, size: number, dev: MmioDevice): void {
    this.mmio.register(base, size, dev);
  }

  /** The device on `port`, or null. */
  portDevice(port: number): PortDevice | null {
    return this.ports[port & 0xffff];
  }

  /** The MMIO region that holds guest-physical `address`, or null. */
  mmioRegion(address: number): MmioRegion | null {
    return this.mmio.lookup(address) ?? null;
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
