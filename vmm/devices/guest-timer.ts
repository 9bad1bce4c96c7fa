/**
 * Port 0xF8: the guest ABI's per-vCPU periodic timer. A 4-byte write of (period << 8) |
 * vector raises `vector` every `period` instructions of the writing vCPU (period 0: off);
 * other sizes are ignored. Write-only. The vCPU's run loop reads its VcpuTimer directly
 * (the hot path) and raises the interrupt itself.
 */
import { AccessSize, DeviceEffect, PortDevice } from './device';
import { allOnes } from './bus';

export const PORT_TIMER = 0xf8;

/** One vCPU's timer: interrupt `vector` every `period` instructions, next at instruction `next`. */
export class VcpuTimer {
  vector = 0;
  period = 0;
  next = 0;
}

/** The instructions a vCPU has retired (the timer's clock). */
export type VcpuClock = (vcpu: number) => number;

export class GuestTimer implements PortDevice {
  readonly name = 'guest-timer';
  private readonly timers: VcpuTimer[];

  constructor(vcpus: number, private readonly clock: VcpuClock) {
    this.timers = Array.from({ length: vcpus }, () => new VcpuTimer());
  }

  /** The timer of vCPU `vcpu`. */
  of(vcpu: number): VcpuTimer {
    return this.timers[vcpu];
  }

  portRead(_port: number, size: AccessSize): number {
    return allOnes(size);
  }

  portWrite(_port: number, size: AccessSize, value: number, vcpu: number): DeviceEffect {
    if (size !== 4) return null;
    const t = this.timers[vcpu];
    t.vector = value & 0xff;
    t.period = value >>> 8;
    t.next = this.clock(vcpu) + t.period;
    return null;
  }
}
