/**
 * The contract between the machine's buses and its devices (console, exit, timer, UART,
 * fw_cfg, PIC, local APIC, ...). A leaf module: devices, the MMU and the hypervisor all
 * import it, it imports nothing.
 *
 * Accesses are at most 4 bytes wide: the MMU splits an 8-byte MMIO access into two 4-byte
 * accesses (low address first), as a 32-bit bus would.
 */
export type AccessSize = 1 | 2 | 4;

/** What the hypervisor must do after a device access (most accesses: nothing). */
export type DeviceEffect =
  | null
  | { kind: 'exit'; status: number }   // the VM ends with this status (port 0xF4)
  | { kind: 'wake' };                  // an interrupt may now be pending: re-check HLT

/** A device on the I/O-port bus, registered for ports [base, base + count). */
export interface PortDevice {
  readonly name: string;
  /** The value read, zero-extended to `size` bytes. */
  portRead(port: number, size: AccessSize, vcpu: number): number;
  portWrite(port: number, size: AccessSize, value: number, vcpu: number): DeviceEffect;
}

/**
 * A device in guest-physical address space, registered for [base, base + size). `offset` is
 * relative to the region's base. `vcpu` is the accessing vCPU (the local APIC is per vCPU
 * at one address).
 */
export interface MmioDevice {
  readonly name: string;
  mmioRead(offset: number, size: AccessSize, vcpu: number): number;
  mmioWrite(offset: number, size: AccessSize, value: number, vcpu: number): DeviceEffect;
}
