import { U64 } from '../u64';
import { DR6_RESERVED1 } from '../x86/debug-regs';

/**
 * The one set of debug state a physical CPU has: DR0-3, DR6, DR7, IA32_DEBUGCTL and the
 * RFLAGS.TF of whoever runs on it. Host and guest take turns on it; nothing else may keep a
 * private copy that hides a leak. The guest CPU's breakpoint matching and MOV DR read these
 * registers while a guest runs; the hypervisor's DR switch and the host scenarios write them.
 *
 * Values are 64-bit, kept as 32-bit halves. `generation` changes on every write so that the
 * interpreter can cache a precomputed breakpoint-match summary and rebuild it only when needed.
 */
export class PhysicalCpu {
  /** Index = DR number (0-7; 4 and 5 unused: they alias 6 and 7 architecturally). */
  readonly drLo = new Uint32Array(8);
  readonly drHi = new Uint32Array(8);
  debugctlLo = 0;
  debugctlHi = 0;
  /** RFLAGS.TF of the context currently running on this CPU when that is the host. */
  hostTF = false;
  generation = 0;

  constructor(readonly index = 0) {
    this.reset();
  }

  /** Power-on values (SDM 17.2): DR6 = FFFF0FF0H, DR7 = 400H, DEBUGCTL = 0. */
  reset(): void {
    this.drLo.fill(0);
    this.drHi.fill(0);
    this.drLo[6] = DR6_RESERVED1;
    this.drLo[7] = 0x400;
    this.debugctlLo = 0;
    this.debugctlHi = 0;
    this.hostTF = false;
    this.generation++;
  }

  getDr(n: number): U64 {
    return { lo: this.drLo[n], hi: this.drHi[n] };
  }

  setDr(n: number, v: U64): void {
    this.drLo[n] = v.lo >>> 0;
    this.drHi[n] = v.hi >>> 0;
    this.generation++;
  }

  getDebugctl(): U64 {
    return { lo: this.debugctlLo, hi: this.debugctlHi };
  }

  setDebugctl(v: U64): void {
    this.debugctlLo = v.lo >>> 0;
    this.debugctlHi = v.hi >>> 0;
    this.generation++;
  }
}
