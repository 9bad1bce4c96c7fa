/**
 * The guest's NMIs as the hypervisor delivers them (bhyve's vm_inject_nmi / vmx_inject_nmi,
 * KVM's NMI paths): one pending virtual NMI per vCPU (from the local APIC: an NMI IPI, an
 * LVT entry with NMI delivery; or VmApi.injectNmi), injected at a VM entry through the
 * VM-entry interruption information / EVENTINJ when the guest can take it. When it cannot:
 * - VT-x (virtual NMIs): NMI-window exiting; exit 8 comes when virtual-NMI blocking (and
 *   STI / MOV-SS blocking) ends, or right after another event's delivery, and the next entry
 *   injects.
 * - SVM: no hardware state says the guest is in its NMI handler, so the hypervisor keeps
 *   that itself (set at injection) and intercepts IRET (exit 0x74). The intercept comes
 *   before the IRET runs, and blocking ends only once it has completed: the hypervisor steps
 *   over it with a TF of its own (KVM's nmi_singlestep), as it steps over an interrupt
 *   shadow, another injected event or a pending debug trap. That TF is the client's step
 *   machinery (stepping.ts: hidden from the guest, also in what the step pushed); its #DB
 *   is the hypervisor's, and reaches the guest only as far as the guest itself was stepping.
 * Like every other interrupt, NMIs are held while the client steps (bhyve's MASK_HWINTR).
 */
import { GuestCpu } from '../cpu/guest-cpu';
import { GuestMemory } from '../memory';
import { Capability } from '../vmm-types';
import { DR6_BS } from '../x86/debug-regs';
import { VmBackend } from './backend';
import { DebugViews } from './debug-views';
import { TfStepper } from './stepping';

const NMI_VECTOR = 2;

export class VirtualNmi {
  /** An NMI waiting for its injection. One at most, as the NMI pin latches one. */
  pending = false;
  /** SVM: the guest is in its NMI handler (the hypervisor's own record, set at injection). */
  masked = false;
  /** NMIs injected so far. */
  injected = 0;
  /** SVM: the hypervisor's TF step over whatever holds the NMI back. */
  readonly step: TfStepper;
  /** SVM: the instruction count at the IRET intercept (-1: none): blocking ends once that IRET retired. */
  private iretAt = -1;
  /** VT-x: NMI-window exiting is on (the control, cached). */
  private windowOn = false;
  /** The guest's DR6 / DR7 when the step began: an SVM #DB intercept writes both. */
  private dr6Lo = 0;
  private dr7Lo = 0;

  constructor(
    private readonly cpu: GuestCpu, private readonly backend: VmBackend, private readonly views: DebugViews,
    memory: GuestMemory, private readonly caps: ReadonlySet<Capability>,
  ) {
    this.step = new TfStepper(cpu, backend, memory);
  }

  /** An NMI for the guest (an NMI already waiting absorbs it, as on the pin). */
  raise(): void {
    this.pending = true;
  }

  /** Whether the guest is blocked for NMIs now: in its NMI handler, before its IRET completed. */
  get blocked(): boolean {
    if (this.backend.name === 'vmx') return this.backend.guestNmiBlocked();
    this.updateMask();
    return this.masked;
  }

  /** A pending NMI that the guest can take ends HLT. */
  wakesFromHlt(): boolean {
    return this.pending && !this.blocked;
  }

  /**
   * Before a VM entry: inject the pending NMI, or arrange to be told when it can be. `hold`:
   * the client steps; nothing is injected then.
   */
  beforeEntry(hold: boolean): void {
    const b = this.backend;
    if (b.name === 'vmx') {
      if (!this.pending && !this.windowOn) return; // the common case: nothing to do
      if (this.pending && !hold && b.nmiInjectable()) this.inject();
      const window = this.pending && !hold;
      if (window !== this.windowOn) {
        this.windowOn = window;
        b.setNmiWindowExiting(window);
      }
      return;
    }
    this.updateMask();
    if (!this.pending || hold || this.step.armed) return;
    if (!this.masked && b.nmiInjectable()) { this.inject(); return; }
    // In its handler, the IRET not seen yet: the IRET intercept will tell.
    if (this.masked && this.iretAt < 0) return;
    this.armStep();
  }

  private inject(): void {
    this.backend.injectEvent({ vector: NMI_VECTOR, type: 'nmi' });
    this.pending = false;
    this.injected++;
    if (this.backend.name === 'svm') {
      this.masked = true;
      this.iretAt = -1;
      this.backend.setIretIntercept(true);
    }
  }

  /** VT-x exit 8: the window is open; the next entry injects. */
  windowExit(): void {
    this.windowOn = false;
    this.backend.setNmiWindowExiting(false);
  }

  /** SVM exit 0x74: the guest's NMI handler returns; blocking ends when this IRET has run. */
  iretExit(): void {
    this.backend.setIretIntercept(false);
    this.iretAt = this.cpu.instret;
  }

  private updateMask(): void {
    if (this.iretAt >= 0 && this.cpu.instret > this.iretAt) {
      this.masked = false;
      this.iretAt = -1;
    }
  }

  private armStep(): void {
    this.dr6Lo = this.backend.getGuestDr(6).lo;
    this.dr7Lo = this.backend.getGuestDr(7).lo;
    this.step.arm();
    this.views.setStepIntercept(true, this.caps);
  }

  /** The step is over (a trap, an event's delivery, or the run ends): the guest gets its own TF back. */
  finishStep(afterEvent: boolean): void {
    if (!this.step.armed) return;
    this.step.finish(false, afterEvent);
    this.views.setStepIntercept(false, this.caps);
    this.updateMask();
  }

  /**
   * A #DB exit while the step is armed: undo what the SVM intercept wrote into the guest's
   * DR6 / DR7, and end the step if this trap is its own. Returns the BS bit the guest gets
   * of the exit's `status`: the guest's own single step only.
   */
  debugExit(status: number): number {
    if (!this.step.armed) return status & DR6_BS;
    this.views.writeGuestDr(6, this.dr6Lo, 0);
    this.views.writeGuestDr(7, this.dr7Lo, 0);
    if ((status & DR6_BS) === 0 || !this.step.done()) return status & DR6_BS;
    const guestTF = this.step.guestTF;
    this.finishStep(false);
    return guestTF ? DR6_BS : 0;
  }

  /** INIT: no NMI pending or in service any more (KVM's vCPU reset), no window, no IRET intercept. */
  reset(): void {
    this.finishStep(false);
    this.pending = false;
    this.masked = false;
    this.iretAt = -1;
    this.windowOn = false;
    this.backend.setNmiWindowExiting(false);
    this.backend.setIretIntercept(false);
    this.backend.clearNmiBlocking();
    this.cpu.nmiBlocked = false;
  }

  describe(): string {
    const b = this.backend;
    const state = b.name === 'vmx' ? `virtual-NMI blocking ${b.guestNmiBlocked() ? 1 : 0}`
      : `masked ${this.masked ? 1 : 0}${this.iretAt >= 0 ? ' (IRET seen)' : ''}${this.step.armed ? ', stepping over it' : ''}`;
    return `NMI: pending ${this.pending ? 1 : 0}, ${state}, injected ${this.injected}`;
  }
}
