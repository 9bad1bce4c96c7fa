/**
 * A 16550A UART (COM1 at 0x3F8, IRQ 4): transmit holding register with LSR.THRE/TEMT
 * (transmission is instant, so both are always set), the divisor latch (LCR.DLAB), IER,
 * IIR/FCR, LCR, MCR (with loopback, which Linux's probe uses), MSR, and the scratch
 * register. Transmitted bytes go to `output` (where the 0xE9 console goes). Received bytes
 * come from the host through `feed`: they wait on the line and move into the receive FIFO
 * (16 bytes with FCR.0, else the one holding register) as the guest makes room and while it
 * asserts RTS (MCR.1: hardware flow control, so bytes sent before the guest set the UART up
 * are not lost to its FIFO reset), so nothing overruns however fast the host sends.
 */
import { AccessSize, DeviceEffect, PortDevice } from './device';

export const COM1_BASE = 0x3f8;
export const COM1_IRQ = 4;

const LSR_DR = 0x01, LSR_THRE = 0x20, LSR_TEMT = 0x40;
const IER_RDA = 0x01, IER_THRE = 0x02;
const LCR_DLAB = 0x80;
const MCR_RTS = 0x02, MCR_OUT2 = 0x08, MCR_LOOP = 0x10;
const IIR_NONE = 0x01, IIR_THRE = 0x02, IIR_RDA = 0x04, IIR_TIMEOUT = 0x0c, IIR_FIFO = 0xc0;
const FCR_ENABLE = 0x01, FCR_CLEAR_RX = 0x02;
const FIFO_SIZE = 16;
/** FCR bits 7:6: the receive FIFO level that raises the data-available interrupt. */
const RX_TRIGGER = [1, 4, 8, 14];

export class Uart16550 implements PortDevice {
  readonly name = 'uart16550';
  private ier = 0;
  private lcr = 0;
  private mcr = 0;
  private fcr = 0;
  private scr = 0;
  private divisor = 12; // 9600 baud until the guest sets it
  /** The receive FIFO (or, with FIFOs off, the holding register: one byte). */
  private readonly rx: number[] = [];
  /** Host bytes not yet in the FIFO: chunks, and the read offset into the first. */
  private readonly line: Uint8Array[] = [];
  private lineOffset = 0;
  private lineBytes = 0;
  /** The THRE interrupt is pending until IIR is read or THR is written (16550 datasheet). */
  private thrEmptyPending = true;
  private irqLevel = false;

  /**
   * `output` gets each transmitted byte; `irq` (optional) follows the interrupt line
   * (IRQ 4, gated by MCR.OUT2 as on a PC).
   */
  constructor(private readonly output: (byte: number) => void, private readonly irq?: (level: boolean) => void, readonly base = COM1_BASE) {}

  /** Baud-rate divisor, for tests and `info`. */
  get divisorLatch(): number { return this.divisor; }

  portRead(port: number, _size: AccessSize, _vcpu: number): number {
    const dlab = (this.lcr & LCR_DLAB) !== 0;
    switch (port - this.base) {
      case 0: {
        if (dlab) return this.divisor & 0xff;
        const b = this.rx.length > 0 ? this.rx.shift() as number : 0;
        this.refill();
        this.updateIrq();
        return b;
      }
      case 1: return dlab ? this.divisor >>> 8 : this.ier;
      case 2: {
        const id = this.interruptId();
        if (id === IIR_THRE) { this.thrEmptyPending = false; this.updateIrq(); }
        return id | ((this.fcr & 1) !== 0 ? IIR_FIFO : 0);
      }
      case 3: return this.lcr;
      case 4: return this.mcr;
      case 5: return LSR_THRE | LSR_TEMT | (this.rx.length > 0 ? LSR_DR : 0);
      case 6: return this.modemStatus();
      case 7: return this.scr;
      default: return 0xff;
    }
  }

  portWrite(port: number, _size: AccessSize, value: number, _vcpu: number): DeviceEffect {
    const v = value & 0xff;
    const dlab = (this.lcr & LCR_DLAB) !== 0;
    switch (port - this.base) {
      case 0:
        if (dlab) { this.divisor = (this.divisor & 0xff00) | v; break; }
        if (this.mcr & MCR_LOOP) { if (this.receiveRoom > 0) this.rx.push(v); } // the IRQ: below
        else this.output(v);
        this.thrEmptyPending = true; // the byte left at once: THR is empty again
        break;
      case 1:
        if (dlab) { this.divisor = (this.divisor & 0xff) | (v << 8); break; }
        // Enabling the THRE interrupt while THR is empty raises it at once.
        if ((v & IER_THRE) !== 0 && (this.ier & IER_THRE) === 0) this.thrEmptyPending = true;
        this.ier = v & 0x0f;
        break;
      case 2:
        // Turning the FIFOs on or off, or FCR.1, empties the receive FIFO (16550 datasheet).
        if ((v & FCR_CLEAR_RX) !== 0 || ((v ^ this.fcr) & FCR_ENABLE) !== 0) this.rx.length = 0;
        this.fcr = v & 0xc9;
        this.refill();
        break;
      case 3: this.lcr = v; break;
      case 4: this.mcr = v & 0x1f; this.refill(); break;
      case 7: this.scr = v; break;
      default: return null; // LSR and MSR are read-only
    }
    return this.updateIrq() ? { kind: 'wake' } : null;
  }

  /** Room in the receive FIFO (the holding register alone when FIFOs are off). */
  get receiveRoom(): number {
    return ((this.fcr & FCR_ENABLE) !== 0 ? FIFO_SIZE : 1) - this.rx.length;
  }

  /** Host bytes waiting on the line for room in the FIFO (for the host's flow control). */
  get pendingInput(): number { return this.lineBytes; }

  /**
   * Bytes from the host's side of the line (the guest's input). Returns true when the IRQ
   * line went up, i.e. a vCPU may have to wake.
   */
  feed(bytes: Uint8Array): boolean {
    if (bytes.length === 0) return false;
    this.line.push(bytes.slice());
    this.lineBytes += bytes.length;
    const was = this.irqLevel;
    this.refill();
    return this.updateIrq() && !was;
  }

  /** Moves waiting host bytes into the FIFO while it has room and RTS is on (not in loopback: the line is cut). */
  private refill(): void {
    if ((this.mcr & (MCR_RTS | MCR_LOOP)) !== MCR_RTS) return;
    while (this.lineBytes > 0 && this.receiveRoom > 0) {
      const chunk = this.line[0];
      this.rx.push(chunk[this.lineOffset++]);
      this.lineBytes--;
      if (this.lineOffset === chunk.length) { this.line.shift(); this.lineOffset = 0; }
    }
  }

  private interruptId(): number {
    if ((this.ier & IER_RDA) && this.rx.length > 0) {
      // Below the trigger level the FIFO reports a character timeout (at once here: the
      // four character times of the real chip are not modelled).
      if ((this.fcr & FCR_ENABLE) === 0 || this.rx.length >= RX_TRIGGER[this.fcr >>> 6]) return IIR_RDA;
      return IIR_TIMEOUT;
    }
    if ((this.ier & IER_THRE) && this.thrEmptyPending) return IIR_THRE;
    return IIR_NONE;
  }

  private modemStatus(): number {
    if (this.mcr & MCR_LOOP) {
      // Loopback: DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD.
      const m = this.mcr;
      return ((m & 1) << 5) | ((m & 2) << 3) | ((m & 4) << 4) | ((m & 8) << 4);
    }
    return 0xb0; // DCD, DSR, CTS: a terminal is always there
  }

  /** Recomputes the IRQ line; true when it is asserted. */
  private updateIrq(): boolean {
    const level = this.interruptId() !== IIR_NONE && (this.mcr & MCR_OUT2) !== 0 && (this.mcr & MCR_LOOP) === 0;
    if (level !== this.irqLevel) { this.irqLevel = level; this.irq?.(level); }
    return level;
  }
}
