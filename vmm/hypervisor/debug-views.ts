/**
 * The debug-register views of one vCPU (CONTRACT "Debug-register views"): the guest view
 * (what the guest wrote and reads back), the debugger's slots, and the effective state that
 * the hardware runs with: the guest's own registers, or both merged while a debugger slot or
 * the client's TF step is in use (MOV DR and #DB are then intercepted and DR6 virtualized).
 */
import { U64, hex } from '../u64';
import { Capability, DebuggerSlot, TraceEvent } from '../vmm-types';
import { DR6_BD, DR6_B_MASK, DR6_RESERVED1, DR7_GD, dr7SlotEnabled, normalizeDr7 } from '../x86/debug-regs';
import { DEBUGCTL_WRITABLE } from '../x86/msr';
import { GuestDrIndex, VmBackend } from './backend';
import { SlotOwner, mergeDebugState } from './debug-merge';
import { DebugState } from './guest-debug-state';

export type DrWriter = 'client' | 'guest' | 'hypervisor' | 'host';

/** What the views need of their vCPU: the trace (null when nobody listens) and its clock. */
export interface ViewsTrace {
  trace: ((ev: TraceEvent) => void) | null;
  now(): number;
}

export class DebugViews {
  /** The guest's effective debug state: what the leak detector holds the physical CPU to at entry. */
  readonly arch = new DebugState();
  /** The guest view while the debugger is merged in (MOV DR intercepted); else the backend is the view. */
  readonly view = new DebugState();
  private mergedIn = false;
  private owners: SlotOwner[] = [null, null, null, null];
  private suspended: number[] = [];
  readonly slots: Array<DebuggerSlot | null> = [null, null, null, null];
  /** Guest #DB status kept for reflection after the debugger's stop (B bits in guest numbering, BS, BD). */
  pendingGuestDb = 0;
  /** The hypervisor steps with TF for itself (nmi.ts): its #DB must exit. */
  private stepIntercept = false;

  constructor(private readonly index: number, private readonly backend: VmBackend, private readonly vm: ViewsTrace) {}

  /** True while the debugger is merged in. */
  get merged(): boolean {
    return this.mergedIn;
  }

  /** A hypervisor write of the guest's effective debug state: backend storage and the leak detector's copy. */
  writeGuestDr(n: GuestDrIndex, lo: number, hi: number): void {
    this.backend.setGuestDr(n, { lo, hi });
    this.arch.lo[n] = lo >>> 0;
    this.arch.hi[n] = hi >>> 0;
  }

  private applyEffective(): void {
    const v = this.view;
    const m = mergeDebugState(v.lo, v.hi, v.lo[7], this.slots, this.owners);
    this.owners = m.owners;
    this.suspended = m.suspended;
    for (let p = 0; p < 4; p++) this.writeGuestDr(p as GuestDrIndex, m.drLo[p], m.drHi[p]);
    // DR6 is virtualized while merged (MOV DR and #DB intercepted): the hardware runs with a
    // clean DR6 so that after a #DB it holds only that exception's bits (SVM writes it before
    // the intercept; sticky guest bits would be taken for new ones), as KVM does.
    this.writeGuestDr(6, DR6_RESERVED1, 0);
    this.writeGuestDr(7, m.dr7, 0);
  }

  /** Merge in or out: MOV DR and #DB intercepted while any debugger slot or TF step is in use. */
  updateDebugMode(caps: ReadonlySet<Capability>): void {
    const needMerge = this.slots.some((s) => s !== null) || caps.has('rflags-tf');
    if (needMerge && !this.mergedIn) {
      for (const n of [0, 1, 2, 3, 6, 7] as GuestDrIndex[]) this.view.set(n, this.backend.getGuestDr(n));
      const dc = this.backend.getGuestDebugctl();
      this.view.debugctlLo = dc.lo;
      this.view.debugctlHi = dc.hi;
      this.mergedIn = true;
    }
    if (needMerge) {
      this.applyEffective();
    } else if (this.mergedIn) {
      this.mergedIn = false;
      for (const n of [0, 1, 2, 3, 6, 7] as GuestDrIndex[]) this.writeGuestDr(n, this.view.lo[n], this.view.hi[n]);
      this.owners = [null, null, null, null];
      this.suspended = [];
    }
    this.backend.setDrIntercept(this.mergedIn);
    this.backend.setExceptionIntercept(1, this.mergedIn || caps.has('intercept-db') || this.stepIntercept);
    this.backend.setExceptionIntercept(3, caps.has('intercept-bp'));
  }

  /** The hypervisor's own TF step (SVM NMI window) begins or ends: #DB intercepted meanwhile. */
  setStepIntercept(on: boolean, caps: ReadonlySet<Capability>): void {
    this.stepIntercept = on;
    this.backend.setExceptionIntercept(1, this.mergedIn || caps.has('intercept-db') || on);
  }

  traceDrWrite(register: string, lo: number, hi: number, by: DrWriter): void {
    if (this.vm.trace !== null) this.vm.trace({ type: 'dr-write', ts: this.vm.now(), vcpu: this.index, register, value: hex(lo, hi), by });
  }

  // ---- the guest's emulated MOV DR (only while merged) -------------------------------------

  /** DR7.GD in the guest view: the MOV DR faults with DR6.BD set and GD cleared, as the hardware would. */
  generalDetect(): boolean {
    if ((this.view.lo[7] & DR7_GD) === 0) return false;
    this.view.lo[7] &= ~DR7_GD;
    this.reflectDb(DR6_BD);
    return true;
  }

  /** MOV to DRn (n already 0-3, 6 or 7); false for #GP (bits 63:32 of DR6/DR7). */
  guestWriteDr(dr: GuestDrIndex, v: U64): boolean {
    if ((dr === 6 || dr === 7) && v.hi !== 0) return false;
    if (dr === 6) this.view.lo[6] = (v.lo | DR6_RESERVED1) >>> 0;
    else if (dr === 7) this.view.lo[7] = normalizeDr7(v.lo);
    else this.view.set(dr, v);
    this.traceDrWrite(`dr${dr}`, this.view.lo[dr], this.view.hi[dr], 'guest');
    this.applyEffective();
    return true;
  }

  /** MOV from DRn: the guest view. */
  guestReadDr(dr: GuestDrIndex): U64 {
    return { lo: this.view.lo[dr], hi: dr >= 6 ? 0 : this.view.hi[dr] };
  }

  // ---- #DB routing -------------------------------------------------------------------------

  /** Whose physical slots are whose: the merge while merged, else the guest's own enabled slots. */
  currentOwners(): readonly SlotOwner[] {
    if (this.mergedIn) return this.owners;
    const dr7 = this.backend.getGuestDr(7).lo;
    return [0, 1, 2, 3].map((i) => (dr7SlotEnabled(dr7, i) ? { owner: 'guest' as const, slot: i } : null));
  }

  /** True if one of the debugger slots in `slotsHit` is an instruction breakpoint. */
  hitsExecSlot(slotsHit: number): boolean {
    for (let j = 0; j < 4; j++) if ((slotsHit & (1 << j)) !== 0 && this.slots[j]?.type === 'exec') return true;
    return false;
  }

  /** After a #DB: the guest never reads the debugger's DR6 bits (SVM wrote them into the VMCB): back to clean. */
  cleanDr6AfterDb(): void {
    if (this.mergedIn) this.writeGuestDr(6, DR6_RESERVED1, 0);
  }

  /** Deliver a #DB to the guest: DR6 as its handler must see it, then inject vector 1. */
  reflectDb(status: number): void {
    const cur = this.mergedIn ? this.view.lo[6] : this.backend.getGuestDr(6).lo;
    const dr6 = (((cur | DR6_RESERVED1) & ~DR6_B_MASK) | status) >>> 0;
    if (this.mergedIn) {
      this.view.lo[6] = dr6;
      this.applyEffective();
    } else {
      this.writeGuestDr(6, dr6, 0);
      if ((status & DR6_BD) !== 0) this.writeGuestDr(7, this.backend.getGuestDr(7).lo & ~DR7_GD, 0);
    }
    this.backend.injectEvent({ vector: 1, type: 'hw' });
  }

  // ---- the register interface (vm_get_register / vm_set_register) -------------------------

  getGuestDr(n: GuestDrIndex): U64 {
    return this.mergedIn ? this.view.get(n) : this.backend.getGuestDr(n);
  }

  /** Throws a plain Error with the reason for a bad value (the API wraps it). */
  setGuestDr(n: GuestDrIndex, v: U64): void {
    if ((n === 6 || n === 7) && v.hi !== 0) throw new Error(`dr${n} bits 63:32 must be 0`);
    const lo = n === 7 ? normalizeDr7(v.lo) : n === 6 ? (v.lo | DR6_RESERVED1) >>> 0 : v.lo >>> 0;
    const hi = n >= 6 ? 0 : v.hi >>> 0;
    this.traceDrWrite(`dr${n}`, lo, hi, 'client');
    if (this.mergedIn) {
      this.view.lo[n] = lo;
      this.view.hi[n] = hi;
      this.applyEffective();
    } else {
      this.writeGuestDr(n, lo, hi);
    }
  }

  getGuestDebugctl(): U64 {
    return this.mergedIn ? { lo: this.view.debugctlLo, hi: this.view.debugctlHi } : this.backend.getGuestDebugctl();
  }

  /** False when the value sets reserved bits (#GP for the guest's WRMSR). */
  setGuestDebugctl(v: U64, by: 'client' | 'guest'): boolean {
    if (v.hi !== 0 || (v.lo & ~DEBUGCTL_WRITABLE) !== 0) return false;
    if (!this.backend.setGuestDebugctl(v)) return false;
    this.arch.debugctlLo = v.lo >>> 0;
    this.arch.debugctlHi = 0;
    if (this.mergedIn) { this.view.debugctlLo = v.lo >>> 0; this.view.debugctlHi = 0; }
    this.traceDrWrite('debugctl', v.lo, 0, by);
    return true;
  }

  setDebuggerSlots(slots: ReadonlyArray<DebuggerSlot | null>, caps: ReadonlySet<Capability>): void {
    for (let j = 0; j < 4; j++) this.slots[j] = slots[j] ?? null;
    this.updateDebugMode(caps);
  }

  /** The report of `monitor dr` / vmmctl: guest view, effective, physical, slots. */
  describe(phys: { drLo: ArrayLike<number>; drHi: ArrayLike<number> }): string {
    const dr = (s: DebugState, n: number): string => hex(s.lo[n], s.hi[n]);
    const lines: string[] = [];
    const view = new DebugState();
    for (const n of [0, 1, 2, 3, 6, 7] as GuestDrIndex[]) view.set(n, this.getGuestDr(n));
    lines.push(`vCPU ${this.index} (${this.backend.name}, ${this.mergedIn ? 'debugger merged' : 'guest only'})`);
    lines.push(`guest view:  dr0=${dr(view, 0)} dr1=${dr(view, 1)} dr2=${dr(view, 2)} dr3=${dr(view, 3)} dr6=${dr(view, 6)} dr7=${dr(view, 7)}`);
    lines.push(`effective:   dr0=${dr(this.arch, 0)} dr1=${dr(this.arch, 1)} dr2=${dr(this.arch, 2)} dr3=${dr(this.arch, 3)} dr6=${dr(this.arch, 6)} dr7=${dr(this.arch, 7)}`);
    const p = phys;
    lines.push(`physical:    dr0=${hex(p.drLo[0], p.drHi[0])} dr1=${hex(p.drLo[1], p.drHi[1])} dr2=${hex(p.drLo[2], p.drHi[2])} dr3=${hex(p.drLo[3], p.drHi[3])} dr6=${hex(p.drLo[6], p.drHi[6])} dr7=${hex(p.drLo[7], p.drHi[7])} (host running)`);
    const owners = this.currentOwners();
    lines.push('slots:       ' + owners.map((o, i) => `${i}=${o === null ? 'free' : `${o.owner}${o.slot}`}`).join(' '));
    for (let j = 0; j < 4; j++) {
      const s = this.slots[j];
      if (s !== null) lines.push(`debugger slot ${j}: ${s.type} len ${s.len} at ${hex(s.address.lo, s.address.hi)}`);
    }
    for (const i of this.suspended) lines.push(`guest breakpoint ${i} suspended: all four slots in use (debugger wins)`);
    lines.push(`hardware:    ${this.backend.describe()}`);
    return lines.join('\n');
  }
}
