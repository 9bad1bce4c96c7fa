/**
 * The devices of a VM, built from its options, and where they sit on its bus. New devices
 * (UART, fw_cfg, PIC, local APIC, ...) are added to `buildDevices`: one entry each.
 */
import { DeviceBus } from '../devices/bus';
import { DebugConsole, PORT_CONSOLE } from '../devices/debug-console';
import { MmioDevice, PortDevice } from '../devices/device';
import { ExitPort, PORT_EXIT } from '../devices/exit-port';
import { GuestTimer, PORT_TIMER, VcpuClock } from '../devices/guest-timer';
import { PcPlatform } from '../devices/pc-platform';
import { MmioMap } from '../mmio-map';
import { VmOptions } from '../vmm-types';

export interface PortAttachment { readonly base: number; readonly count: number; readonly device: PortDevice }
export interface MmioAttachment { readonly base: number; readonly size: number; readonly device: MmioDevice }

/** What a VM is built with; the named devices are the ones the VM itself talks to. */
export interface MachineDevices {
  readonly ports: readonly PortAttachment[];
  readonly mmio: readonly MmioAttachment[];
  readonly console: DebugConsole;
  readonly timer: GuestTimer;
  readonly platform: PcPlatform;
}

/**
 * The guest ABI's devices (console 0xE9, exit 0xF4, timer 0xF8), as CONTRACT "Guest ABI" says,
 * and the PC platform's (local APICs, 8259s, COM1, fw_cfg, PM timer). COM1 writes where the
 * console writes. `tsc` gives a vCPU's TSC (the platform's time).
 */
export function buildDevices(opts: VmOptions, clock: VcpuClock, tsc: VcpuClock = clock): MachineDevices {
  const console = new DebugConsole();
  const timer = new GuestTimer(opts.vcpus, clock);
  const platform = new PcPlatform({
    vcpus: opts.vcpus, memorySize: opts.memMiB * 1024 * 1024, now: tsc,
    serialOutput: (byte) => { console.portWrite(PORT_CONSOLE, 1, byte); },
  });
  return {
    ports: [
      { base: PORT_CONSOLE, count: 1, device: console },
      { base: PORT_EXIT, count: 1, device: new ExitPort() },
      { base: PORT_TIMER, count: 1, device: timer },
      ...platform.portRanges(),
    ],
    mmio: platform.mmioRanges(),
    console,
    timer,
    platform,
  };
}

/** A bus with every device of `devices` registered; MMIO regions go into `mmio` (the guest memory's map, which the MMU consults). */
export function attachDevices(devices: MachineDevices, mmio?: MmioMap): DeviceBus {
  const bus = new DeviceBus(mmio);
  for (const p of devices.ports) bus.registerPorts(p.base, p.count, p.device);
  for (const m of devices.mmio) bus.registerMmio(m.base, m.size, m.device);
  return bus;
}
