/**
 * The PC devices of a VM booted with Multiboot or PVH, built together and listed for the
 * device bus: the local APICs (MMIO page and MSRs), the 8259 pair, COM1 (16550), fw_cfg
 * and the ACPI PM timer. The console (0xE9) and exit (0xF4) ports of the guest ABI are the
 * bus's own devices and stay as they are; the UART writes where the console writes.
 */
import { ApicSystem, APIC_MMIO_SIZE } from './apic-system';
import { MmioDevice, PortDevice } from './device';
import { FwCfg, FW_CFG_PORT_SELECTOR } from './fw-cfg';
import { PIC_ELCR, PIC_MASTER_CMD, PIC_SLAVE_CMD, DualPic } from './pic8259';
import { PmTimer, PM_TIMER_PORT } from './pm-timer';
import { COM1_BASE, COM1_IRQ, Uart16550 } from './uart16550';

export interface PcPlatformOptions {
  vcpus: number;
  memorySize: number;
  /** Where COM1's bytes go (the console's sink). */
  serialOutput: (byte: number) => void;
  /** The TSC of a vCPU (vmm/devices/tsc.ts). */
  now: (vcpu: number) => number;
}

export interface PortRange { base: number; count: number; device: PortDevice }
export interface MmioRange { base: number; size: number; device: MmioDevice }

export class PcPlatform {
  readonly pic = new DualPic();
  readonly apics: ApicSystem;
  readonly uart: Uart16550;
  readonly fwCfg: FwCfg;
  readonly pmTimer: PmTimer;

  constructor(opts: PcPlatformOptions) {
    this.apics = new ApicSystem(opts.vcpus, opts.now, this.pic);
    this.uart = new Uart16550(opts.serialOutput, (level) => this.pic.setIrq(COM1_IRQ, level));
    this.fwCfg = new FwCfg({ ramSize: opts.memorySize, cpus: opts.vcpus });
    this.pmTimer = new PmTimer(opts.now);
  }

  /** The port ranges to register on the bus. */
  portRanges(): PortRange[] {
    return [
      { base: PIC_MASTER_CMD, count: 2, device: this.pic },
      { base: PIC_SLAVE_CMD, count: 2, device: this.pic },
      { base: PIC_ELCR, count: 2, device: this.pic },
      { base: COM1_BASE, count: 8, device: this.uart },
      { base: FW_CFG_PORT_SELECTOR, count: 2, device: this.fwCfg },
      { base: PM_TIMER_PORT, count: 4, device: this.pmTimer },
    ];
  }

  /** The MMIO regions to register on the bus (and map in the MMU). */
  mmioRanges(): MmioRange[] {
    return [{ base: this.apics.mmioBase, size: APIC_MMIO_SIZE, device: this.apics }];
  }
}
