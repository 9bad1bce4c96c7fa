import { MmioMap } from './mmio-map';

/**
 * Guest RAM: guest-physical memory starting at 0, plus the MMIO regions above it (`mmio`).
 * An access that hits neither is the caller's to turn into a nested-page-fault exit.
 * Writes through `write` (debugger, loader, hypervisor) notify listeners so the
 * interpreter can drop decoded instructions of that range. Addresses here are PHYSICAL.
 */
export class GuestMemory {
  readonly bytes: Uint8Array;
  /** Device regions outside RAM, shared by every vCPU. */
  readonly mmio = new MmioMap();
  readonly view: DataView;
  private writeListeners: Array<(addr: number, len: number) => void> = [];

  constructor(readonly size: number) {
    this.bytes = new Uint8Array(size);
    this.view = new DataView(this.bytes.buffer);
  }

  contains(addr: number, len: number): boolean {
    return Number.isInteger(addr) && addr >= 0 && len >= 0 && addr + len <= this.size;
  }

  /** A copy of [addr, addr+len), or undefined if any byte is outside RAM. */
  read(addr: number, len: number): Uint8Array | undefined {
    if (!this.contains(addr, len)) return undefined;
    return this.bytes.slice(addr, addr + len);
  }

  /** False (and nothing written) if any byte is outside RAM. */
  write(addr: number, data: Uint8Array): boolean {
    if (!this.contains(addr, data.length)) return false;
    this.bytes.set(data, addr);
    for (const l of this.writeListeners) l(addr, data.length);
    return true;
  }

  onExternalWrite(listener: (addr: number, len: number) => void): void {
    this.writeListeners.push(listener);
  }
}
