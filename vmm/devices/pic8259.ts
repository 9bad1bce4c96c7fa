/**
 * The PC's two cascaded 8259A interrupt controllers (master at 0x20/0x21, slave at
 * 0xA0/0xA1 on the master's IRQ2): the ICW1-ICW4 initialization sequence (vector base,
 * cascade, auto-EOI), OCW1 masks, OCW2 EOIs (non-specific and specific), OCW3 IRR/ISR read
 * and poll, edge-triggered IRQ lines, and INTA. Enough for kernels that remap and mask it.
 * Priority is fixed (IRQ0 highest): the rotation commands are accepted and ignored. There
 * is no I/O APIC: a kernel that wants one finds none in its MP/ACPI tables (there are none).
 */
import { AccessSize, DeviceEffect, PortDevice } from './device';

export const PIC_MASTER_CMD = 0x20, PIC_MASTER_DATA = 0x21;
export const PIC_SLAVE_CMD = 0xa0, PIC_SLAVE_DATA = 0xa1;
export const PIC_ELCR = 0x4d0; // edge/level control, 0x4d0-0x4d1

/** One 8259A. */
class Pic8259 {
  irr = 0;
  isr = 0;
  imr = 0xff;
  vectorBase: number;
  private initStep = 0;     // 0 = operating; 2, 3, 4 = expecting ICW2, ICW3, ICW4
  private needIcw4 = false;
  private single = false;
  private autoEoi = false;
  private readIsr = false;
  private pollNext = false;
  private lines = 0;        // current input levels (edge detection)

  constructor(vectorBase: number, private readonly slaveLine: number) {
    this.vectorBase = vectorBase;
  }

  /** Input `irq` goes to `level`; a rising edge sets its IRR bit. */
  setLine(irq: number, level: boolean): void {
    const bit = 1 << irq;
    if (level && (this.lines & bit) === 0) this.irr |= bit;
    this.lines = level ? this.lines | bit : this.lines & ~bit;
  }

  /** The highest-priority unmasked request not blocked by an in-service one, or -1. */
  pendingIrq(): number {
    const req = this.irr & ~this.imr & 0xff;
    for (let irq = 0; irq < 8; irq++) {
      const bit = 1 << irq;
      // An in-service IRQ of equal or higher priority blocks; the cascade line of a master
      // in special fully nested mode would not, but kernels do not use that mode.
      if (this.isr & bit) return -1;
      if (req & bit) return irq;
    }
    return -1;
  }

  /** INTA for `irq`: IRR -> ISR (or nothing with auto-EOI). */
  acknowledge(irq: number): void {
    const bit = 1 << irq;
    this.irr &= ~bit;
    if (!this.autoEoi) this.isr |= bit;
  }

  writeCommand(v: number): void {
    if (v & 0x10) {                 // ICW1
      this.initStep = 2;
      this.needIcw4 = (v & 1) !== 0;
      this.single = (v & 2) !== 0;
      this.imr = 0; this.isr = 0; this.irr = 0; this.autoEoi = false; this.readIsr = false;
      return;
    }
    if ((v & 0x18) === 0x08) {      // OCW3
      if (v & 0x04) this.pollNext = true;
      if (v & 0x02) this.readIsr = (v & 0x01) !== 0;
      return;
    }
    // OCW2
    const op = v >> 5;
    if (op === 1 || op === 5) {     // non-specific EOI (optionally rotate: priority stays fixed)
      for (let irq = 0; irq < 8; irq++) if (this.isr & (1 << irq)) { this.isr &= ~(1 << irq); break; }
    } else if (op === 3 || op === 7) { // specific EOI
      this.isr &= ~(1 << (v & 7));
    }
  }

  writeData(v: number): void {
    switch (this.initStep) {
      case 2:
        this.vectorBase = v & 0xf8;
        this.initStep = this.single ? (this.needIcw4 ? 4 : 0) : 3;
        return;
      case 3:
        this.initStep = this.needIcw4 ? 4 : 0; // cascade wiring is fixed (slave on IRQ2)
        return;
      case 4:
        this.autoEoi = (v & 2) !== 0;
        this.initStep = 0;
        return;
      default:
        this.imr = v & 0xff;
    }
  }

  readCommand(): number {
    if (this.pollNext) {
      this.pollNext = false;
      const irq = this.pendingIrq();
      if (irq < 0) return 0;
      this.acknowledge(irq);
      return 0x80 | irq;
    }
    return this.readIsr ? this.isr : this.irr;
  }

  readData(): number {
    return this.imr;
  }

  isCascadeLine(irq: number): boolean {
    return irq === this.slaveLine;
  }
}

/** The master/slave pair as one port device and one interrupt source for the BSP. */
export class DualPic implements PortDevice {
  readonly name = 'pic8259';
  private readonly master = new Pic8259(0x08, 2);
  private readonly slave = new Pic8259(0x70, -1);
  private elcr = 0;

  /** ISA IRQ 0-15 goes to `level` (edge-triggered: a rising edge requests). */
  setIrq(irq: number, level: boolean): void {
    if (irq < 8) this.master.setLine(irq, level);
    else {
      this.slave.setLine(irq - 8, level);
      this.master.setLine(2, this.slave.pendingIrq() >= 0);
    }
  }

  /** Whether INTR is asserted (something the CPU would take). */
  hasInterrupt(): boolean {
    return this.master.pendingIrq() >= 0;
  }

  /** The vector `acknowledge` would return now (nothing changes). */
  peekVector(): number {
    const irq = this.master.pendingIrq();
    if (irq < 0) return this.master.vectorBase + 7;
    if (!this.master.isCascadeLine(irq)) return this.master.vectorBase + irq;
    const sirq = this.slave.pendingIrq();
    return this.slave.vectorBase + (sirq < 0 ? 7 : sirq);
  }

  /** INTA: the vector of the highest-priority request (IRQ7/IRQ15 spurious vectors if none). */
  acknowledge(): number {
    const irq = this.master.pendingIrq();
    if (irq < 0) return this.master.vectorBase + 7;
    this.master.acknowledge(irq);
    if (!this.master.isCascadeLine(irq)) return this.master.vectorBase + irq;
    const sirq = this.slave.pendingIrq();
    this.master.setLine(2, false);
    if (sirq < 0) return this.slave.vectorBase + 7;
    this.slave.acknowledge(sirq);
    this.master.setLine(2, this.slave.pendingIrq() >= 0);
    return this.slave.vectorBase + sirq;
  }

  /** Masks and vector bases, for tests and `info pic`. */
  get state(): { masterImr: number; slaveImr: number; masterBase: number; slaveBase: number; masterIsr: number; slaveIsr: number } {
    return { masterImr: this.master.imr, slaveImr: this.slave.imr, masterBase: this.master.vectorBase,
      slaveBase: this.slave.vectorBase, masterIsr: this.master.isr, slaveIsr: this.slave.isr };
  }

  portRead(port: number, _size: AccessSize, _vcpu: number): number {
    switch (port) {
      case PIC_MASTER_CMD: return this.master.readCommand();
      case PIC_MASTER_DATA: return this.master.readData();
      case PIC_SLAVE_CMD: return this.slave.readCommand();
      case PIC_SLAVE_DATA: return this.slave.readData();
      case PIC_ELCR: return this.elcr & 0xff;
      case PIC_ELCR + 1: return this.elcr >>> 8;
      default: return 0xff;
    }
  }

  portWrite(port: number, _size: AccessSize, value: number, _vcpu: number): DeviceEffect {
    const v = value & 0xff;
    switch (port) {
      case PIC_MASTER_CMD: this.master.writeCommand(v); break;
      case PIC_MASTER_DATA: this.master.writeData(v); break;
      case PIC_SLAVE_CMD: this.slave.writeCommand(v); break;
      case PIC_SLAVE_DATA: this.slave.writeData(v); break;
      case PIC_ELCR: this.elcr = (this.elcr & 0xff00) | (v & 0xf8); break;   // IRQ0-2 are always edge
      case PIC_ELCR + 1: this.elcr = (this.elcr & 0xff) | ((v & 0xde) << 8); break; // IRQ8, IRQ13 edge
      default: return null;
    }
    // The slave's output follows its state (a mask change can assert or drop it).
    this.master.setLine(2, this.slave.pendingIrq() >= 0);
    return this.hasInterrupt() ? { kind: 'wake' } : null;
  }
}
