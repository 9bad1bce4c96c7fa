/** Port 0xF4: a write ends the VM with exit status value & 0x7F (guest ABI). Write-only. */
import { AccessSize, DeviceEffect, PortDevice } from './device';
import { allOnes } from './bus';

export const PORT_EXIT = 0xf4;

export class ExitPort implements PortDevice {
  readonly name = 'exit-port';

  portRead(_port: number, size: AccessSize): number {
    return allOnes(size);
  }

  portWrite(_port: number, _size: AccessSize, value: number): DeviceEffect {
    return { kind: 'exit', status: value & 0x7f };
  }
}
