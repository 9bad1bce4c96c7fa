import { PhysicalCpu } from '../cpu/physical-cpu';
import { U64 } from '../u64';
import { DR6_RESERVED1, DR7_RESERVED1 } from '../x86/debug-regs';

/**
 * A full set of debug state for one context: DR0-3, DR6, DR7 (index = DR number) and
 * IA32_DEBUGCTL, as 32-bit halves. Used for the guest's effective state that the leak
 * detector holds the physical CPU to, and for what the host owns.
 */
export class DebugState {
  readonly lo = new Uint32Array(8);
  readonly hi = new Uint32Array(8);
  debugctlLo = 0;
  debugctlHi = 0;

  constructor() {
    this.lo[6] = DR6_RESERVED1;
    this.lo[7] = DR7_RESERVED1;
  }

  get(n: number): U64 {
    return { lo: this.lo[n], hi: this.hi[n] };
  }

  set(n: number, v: U64): void {
    this.lo[n] = v.lo >>> 0;
    this.hi[n] = v.hi >>> 0;
  }

  /** Take every register from the physical CPU. */
  captureFrom(phys: PhysicalCpu): void {
    const lo = this.lo;
    const hi = this.hi;
    const plo = phys.drLo;
    const phi = phys.drHi;
    lo[0] = plo[0]; lo[1] = plo[1]; lo[2] = plo[2]; lo[3] = plo[3]; lo[6] = plo[6]; lo[7] = plo[7];
    hi[0] = phi[0]; hi[1] = phi[1]; hi[2] = phi[2]; hi[3] = phi[3]; hi[6] = phi[6]; hi[7] = phi[7];
    this.debugctlLo = phys.debugctlLo;
    this.debugctlHi = phys.debugctlHi;
  }

  copyFrom(o: DebugState): void {
    this.lo.set(o.lo);
    this.hi.set(o.hi);
    this.debugctlLo = o.debugctlLo;
    this.debugctlHi = o.debugctlHi;
  }
}
