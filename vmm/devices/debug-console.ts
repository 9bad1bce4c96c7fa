/** Port 0xE9: the debug console of the guest ABI (a byte written is a character). Write-only. */
import { AccessSize, DeviceEffect, PortDevice } from './device';
import { allOnes } from './bus';

export const PORT_CONSOLE = 0xe9;

export class DebugConsole implements PortDevice {
  readonly name = 'debug-console';
  private text = '';

  portRead(_port: number, size: AccessSize): number {
    return allOnes(size);
  }

  portWrite(_port: number, _size: AccessSize, value: number): DeviceEffect {
    this.write(value);
    return null;
  }

  /** Appends one byte (also the sink for other character devices, e.g. the UART's output). */
  write(byte: number): void {
    this.text += String.fromCharCode(byte & 0xff);
  }

  /** The output so far, drained. */
  take(): string {
    const s = this.text;
    this.text = '';
    return s;
  }
}
