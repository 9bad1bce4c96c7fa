/**
 * QEMU's firmware configuration device, the I/O-port interface (selector at 0x510, 16-bit
 * write; data at 0x511, one byte per read from the selected item, zero past its end).
 * Items: the signature "QEMU", FW_CFG_ID (traditional interface only, no DMA), RAM_SIZE,
 * NB_CPUS, MAX_CPUS, and an empty file directory; every other key reads as zero. These are
 * what kvm-unit-tests' lib/x86/fwcfg.c asks for (it also reads FW_CFG_MAX_RAM, its own key:
 * zero means no limit).
 */
import { AccessSize, DeviceEffect, PortDevice } from './device';

export const FW_CFG_PORT_SELECTOR = 0x510;
export const FW_CFG_PORT_DATA = 0x511;

export const FW_CFG_SIGNATURE = 0x00;
export const FW_CFG_ID = 0x01;
export const FW_CFG_RAM_SIZE = 0x03;
export const FW_CFG_NOGRAPHIC = 0x04;
export const FW_CFG_NB_CPUS = 0x05;
export const FW_CFG_MAX_CPUS = 0x0f;
export const FW_CFG_FILE_DIR = 0x19;

export interface FwCfgConfig {
  ramSize: number;   // bytes
  cpus: number;
  maxCpus?: number;  // default: cpus
}

function le(value: number, bytes: number): Uint8Array {
  const out = new Uint8Array(bytes);
  let v = value;
  for (let i = 0; i < bytes; i++) { out[i] = v % 256; v = Math.floor(v / 256); }
  return out;
}

export class FwCfg implements PortDevice {
  readonly name = 'fw-cfg';
  private readonly items = new Map<number, Uint8Array>();
  private selected: Uint8Array = new Uint8Array(0);
  private offset = 0;

  constructor(config: FwCfgConfig) {
    this.items.set(FW_CFG_SIGNATURE, new TextEncoder().encode('QEMU'));
    this.items.set(FW_CFG_ID, le(1, 4));
    this.items.set(FW_CFG_RAM_SIZE, le(config.ramSize, 8));
    this.items.set(FW_CFG_NOGRAPHIC, le(1, 2));
    this.items.set(FW_CFG_NB_CPUS, le(config.cpus, 2));
    this.items.set(FW_CFG_MAX_CPUS, le(config.maxCpus ?? config.cpus, 2));
    this.items.set(FW_CFG_FILE_DIR, le(0, 4)); // big-endian count 0 reads the same
  }

  /** Adds or replaces an item (e.g. a file's bytes), for the loader. */
  setItem(key: number, data: Uint8Array): void {
    this.items.set(key & 0xffff, data.slice());
  }

  portRead(port: number, size: AccessSize, _vcpu: number): number {
    if (port !== FW_CFG_PORT_DATA) return 0;
    // A wider read at the data port returns that many consecutive bytes (as QEMU does).
    let v = 0;
    for (let i = 0; i < size; i++) v |= this.nextByte() << (8 * i);
    return v >>> 0;
  }

  private nextByte(): number {
    const b = this.offset < this.selected.length ? this.selected[this.offset] : 0;
    this.offset++;
    return b;
  }

  portWrite(port: number, _size: AccessSize, value: number, _vcpu: number): DeviceEffect {
    if (port === FW_CFG_PORT_SELECTOR) {
      this.selected = this.items.get(value & 0xffff) ?? new Uint8Array(0); // unknown keys read as zero
      this.offset = 0;
    }
    // Writes to the data port (the legacy write channel) are ignored, as in QEMU since 2.4.
    return null;
  }
}
