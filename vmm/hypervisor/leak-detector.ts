import { PhysicalCpu } from '../cpu/physical-cpu';
import { DebugLeak } from '../vmm-types';
import { DR_NAMES, normalizeDr7 } from '../x86/debug-regs';
import { hex } from '../u64';
import { DebugState } from './guest-debug-state';

const MAX_KEPT = 10000;
const CHECKED = [0, 1, 2, 3, 6, 7];

/** DRn differs between the physical CPU and `s` (DR7 compared as the CPU reads it back). */
function drDiffers(p: PhysicalCpu, s: DebugState, n: number): boolean {
  const el = n === 7 ? normalizeDr7(s.lo[n]) : s.lo[n];
  const al = n === 7 ? normalizeDr7(p.drLo[n]) : p.drLo[n];
  return el !== al || s.hi[n] !== p.drHi[n];
}

function debugctlDiffers(p: PhysicalCpu, s: DebugState): boolean {
  return s.debugctlLo !== p.debugctlLo || s.debugctlHi !== p.debugctlHi;
}

/** Some register compare() checks differs (straight-line: no leak is the hot path). */
function anyDiffers(p: PhysicalCpu, s: DebugState, tf: boolean | null): boolean {
  const pl = p.drLo, ph = p.drHi, sl = s.lo, sh = s.hi;
  return pl[0] !== sl[0] || pl[1] !== sl[1] || pl[2] !== sl[2] || pl[3] !== sl[3] || pl[6] !== sl[6] ||
    ph[0] !== sh[0] || ph[1] !== sh[1] || ph[2] !== sh[2] || ph[3] !== sh[3] || ph[6] !== sh[6] || ph[7] !== sh[7] ||
    (pl[7] !== sl[7] && normalizeDr7(pl[7]) !== normalizeDr7(sl[7])) ||
    p.debugctlLo !== s.debugctlLo || p.debugctlHi !== s.debugctlHi || (tf !== null && tf !== p.hostTF);
}

/**
 * After every transition, compare the physical debug state with what the context now
 * running owns: on guest entry the guest's effective state, on return to the host the
 * host's. Every difference is a leak: the other side's value (or the transition's) is
 * where this side's should be.
 */
export class LeakDetector {
  private readonly kept: DebugLeak[] = [];
  count = 0;
  onLeak: ((leak: DebugLeak) => void) | null = null;

  get leaks(): readonly DebugLeak[] {
    return this.kept;
  }

  checkEntry(phys: PhysicalCpu, guest: DebugState, transition: number, vcpu: number): void {
    this.compare(phys, guest, null, false, transition, vcpu, 'entry');
  }

  checkExit(phys: PhysicalCpu, host: DebugState, hostTF: boolean, transition: number, vcpu: number): void {
    this.compare(phys, host, hostTF, true, transition, vcpu, 'exit');
  }

  /**
   * The registers in which the physical state differs from `s` (and TF from `tf`), without
   * recording a leak: what a host NMI handler finds (HostContext.handleNmi).
   */
  foreignRegisters(p: PhysicalCpu, s: DebugState, tf: boolean): string[] {
    const out: string[] = [];
    for (const n of CHECKED) if (drDiffers(p, s, n)) out.push(DR_NAMES[n]);
    if (debugctlDiffers(p, s)) out.push('debugctl');
    if (tf !== p.hostTF) out.push('tf');
    return out;
  }

  private compare(p: PhysicalCpu, s: DebugState, tf: boolean | null, toHost: boolean, transition: number, vcpu: number, when: 'entry' | 'exit'): void {
    if (!anyDiffers(p, s, tf)) return; // the common case, twice per round trip
    for (let k = 0; k < CHECKED.length; k++) {
      const n = CHECKED[k];
      if (drDiffers(p, s, n)) {
        const el = n === 7 ? normalizeDr7(s.lo[n]) : s.lo[n], al = n === 7 ? normalizeDr7(p.drLo[n]) : p.drLo[n];
        this.record(transition, vcpu, DR_NAMES[n], hex(el, s.hi[n]), hex(al, p.drHi[n]), toHost, when);
      }
    }
    if (debugctlDiffers(p, s)) {
      this.record(transition, vcpu, 'debugctl', hex(s.debugctlLo, s.debugctlHi), hex(p.debugctlLo, p.debugctlHi), toHost, when);
    }
    if (tf !== null && tf !== p.hostTF) {
      this.record(transition, vcpu, 'tf', tf ? '0x1' : '0x0', p.hostTF ? '0x1' : '0x0', toHost, when);
    }
  }

  private record(transition: number, vcpu: number, register: string, expected: string, actual: string, toHost: boolean, when: 'entry' | 'exit'): void {
    // On return to the host the guest (or the transition on its behalf) leaked into the
    // host's registers; on entry, the host's state leaked into the guest's.
    const leak: DebugLeak = { transition, vcpu, register, expected, actual, side: toHost ? 'guest' : 'host', when };
    this.count++;
    if (this.kept.length < MAX_KEPT) this.kept.push(leak);
    if (this.onLeak !== null) this.onLeak(leak);
  }
}
