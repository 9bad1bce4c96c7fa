/**
 * The ACPI power-management timer: a free-running 24-bit counter at 3.579545 MHz, read
 * with IN (usually 32-bit) at the port the FADT's PM_TMR_BLK names. It is derived from
 * the reading vCPU's TSC (vmm/devices/tsc.ts), so it is deterministic.
 */
import { AccessSize, DeviceEffect, PortDevice } from './device';
import { PM_TIMER_HZ, ticksAt } from './tsc';

/** The port QEMU's q35 machine uses; any free port would do, the FADT tells the guest. */
export const PM_TIMER_PORT = 0x608;

export class PmTimer implements PortDevice {
  readonly name = 'acpi-pm-timer';
  constructor(private readonly now: (vcpu: number) => number, readonly port = PM_TIMER_PORT) {}

  portRead(port: number, size: AccessSize, vcpu: number): number {
    const count = ticksAt(this.now(vcpu), PM_TIMER_HZ) % 0x1000000;
    const v = count >>> ((port - this.port) * 8);
    return size === 4 ? v >>> 0 : v & (size === 2 ? 0xffff : 0xff);
  }

  portWrite(_port: number, _size: AccessSize, _value: number, _vcpu: number): DeviceEffect {
    return null; // read-only
  }
}
