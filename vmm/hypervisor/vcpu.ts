/**
 * One vCPU: its backend (VMCS or VMCB and the hypervisor's software around it) and the run
 * loop of vmx_run / svm_run: VM entry with the DR switch, the guest's slice, VM exit, and the
 * exit handlers (exit-handlers.ts). Its debug views (debug-views.ts) and the client's TF
 * stepping (stepping.ts) are parts of it; its ports and MMIO are on the VM's device bus.
 */
import { CpuExit } from '../cpu/cpu-exit';
import { GuestCpu } from '../cpu/guest-cpu';
import { VcpuTimer } from '../devices/guest-timer';
import { U64, u64ToNumber } from '../u64';
import { MSR_TSC } from '../x86/msr';
import { runRealMode, sipiState } from '../cpu/real-mode-trampoline';
import { canStartFlat32 } from '../loader/boot-plan';
import { Capability, DebuggerSlot, VmStop } from '../vmm-types';
import { IF as RFLAGS_IF } from '../x86/rflags';
import { GuestDrIndex, VmBackend } from './backend';
import { DebugViews } from './debug-views';
import { DrStep, StepObserver, StepProgram, runSteps } from './dr-switch';
import { ExitHandlers, VcpuContext, VcpuRunState } from './exit-handlers';
import { GenericExit, newGenericExit } from './exit';
import { VirtualNmi } from './nmi';
import { TfStepper } from './stepping';
import { VmShared } from './vm-shared';

export type { VcpuRunState } from './exit-handlers';
export type { VmShared } from './vm-shared';

const EXTINT_EXIT: CpuExit = { kind: 'extint' };
const HOST_NMI_EXIT: CpuExit = { kind: 'nmi' };

/**
 * The TSC ticks a VM exit the guest causes costs it: the round trip through the hypervisor
 * (about 1 us on hardware; 1000 ticks of the nominal 1 GHz TSC, vmm/devices/tsc.ts).
 */
export const EXIT_TSC_TICKS = 1000;

/**
 * The exits of instructions the hypervisor emulates for the guest take time. Not the
 * simulator's own slice ends and preemptions (their places depend on budgets, so the TSC
 * would not be deterministic), nor HLT (time passes there anyway), nor the exits only a
 * debugger causes (MOV DR, #DB, MTF).
 */
function exitTakesTime(kind: GenericExit['kind']): boolean {
  return kind === 'cpuid' || kind === 'io' || kind === 'rdmsr' || kind === 'wrmsr' || kind === 'hypercall';
}

export class Vcpu implements VcpuContext {
  readonly views: DebugViews;
  readonly stepper: TfStepper;
  /** The guest's NMIs: pending, injected, the window (nmi.ts). */
  readonly nmi: VirtualNmi;
  /** A host NMI arrives at the next instruction boundary the guest reaches (raiseHostNmi). */
  private hostNmiPending = false;
  /** The next periodic host NMI (--host-nmi-every), in this vCPU's instructions. */
  private nextHostNmi: number;
  readonly timer: VcpuTimer;
  readonly caps = new Set<Capability>();
  /** caps.has('rflags-tf') / 'mtf', cached for the run loop. */
  private capStepTF = false;
  capMtf = false;
  private readonly handlers: ExitHandlers;
  private readonly exit: GenericExit = newGenericExit();
  private readonly stepObserver: StepObserver | null;
  private readonly enterLoadsDr6: boolean;
  private readonly enterProgram: StepProgram;
  private readonly leaveProgram: StepProgram;
  private readonly leaveRestoresDr6: boolean;

  state: VcpuRunState = 'running';
  yieldTurn = false;
  finalStop: VmStop | null = null;
  private nextPreempt: number;

  constructor(readonly index: number, readonly cpu: GuestCpu, readonly backend: VmBackend, readonly vm: VmShared) {
    this.nextPreempt = vm.opts.preemptEvery > 0 ? vm.opts.preemptEvery : Infinity;
    this.nextHostNmi = (vm.opts.hostNmiEvery ?? 0) > 0 ? (vm.opts.hostNmiEvery ?? 0) : Infinity;
    this.views = new DebugViews(index, backend, vm);
    this.stepper = new TfStepper(cpu, backend, vm.memory);
    this.nmi = new VirtualNmi(cpu, backend, this.views, vm.memory, this.caps);
    this.timer = vm.timer.of(index);
    this.handlers = new ExitHandlers(this);
    const scenarioObserver = vm.scenario.stepObserver;
    this.stepObserver = scenarioObserver === null ? null : {
      afterStep: (step: DrStep): void => {
        if (step.dr6Holds !== undefined) vm.host.dr6HoldsGuest = step.dr6Holds === 'guest';
        scenarioObserver.afterStep(step);
      },
    };
    this.enterProgram = new StepProgram(backend.enterSteps);
    this.leaveProgram = new StepProgram(backend.leaveSteps);
    this.enterLoadsDr6 = backend.enterSteps.some((s) => s.dr6Holds === 'guest');
    this.leaveRestoresDr6 = backend.leaveSteps.some((s) => s.dr6Holds === 'host');
  }

  /** The guest's effective debug state (the leak detector's reference). */
  get arch(): DebugViews['arch'] {
    return this.views.arch;
  }

  // ---- the run loop ------------------------------------------------------------------------

  /** Run up to `budget` guest instructions; a VmStop for the client, or null when the budget is used. */
  runSlice(budget: number): VmStop | null {
    const stop = this.runGuest(budget);
    // The hypervisor's own TF never shows outside the run (gdb's registers, the next slice).
    if (this.nmi.step.armed) this.nmi.finishStep(false);
    return stop;
  }

  /** A host NMI while this vCPU runs its guest: an NMI exit after its next instruction. */
  raiseHostNmi(): void {
    this.hostNmiPending = true;
  }

  private runGuest(budget: number): VmStop | null {
    const cpu = this.cpu;
    const timer = this.timer;
    const views = this.views;
    const start = cpu.instret;
    for (;;) {
      if (this.finalStop !== null) return this.finalStop;
      if (this.state === 'halted') return null;
      if (this.yieldTurn) { this.yieldTurn = false; return null; }
      if (this.awaitingSipi && !this.startFromSipi()) return null;
      const now = cpu.instret;
      if (now - start >= budget) return null;
      const holdInterrupts = this.stepper.armed || this.capStepTF || this.capMtf;
      if (timer.period > 0 && now >= timer.next) this.timerTick(holdInterrupts);
      const apicTimer = this.pollApic(holdInterrupts);
      if (this.awaitingSipi) continue; // an INIT parked it
      let b = budget - (now - start);
      if (apicTimer < b) b = Math.max(1, apicTimer);
      if (this.nextPreempt - now < b) b = Math.max(1, this.nextPreempt - now);
      // The periodic host NMI arrives where this run's budget ends (transition).
      if (this.nextHostNmi - now < b) b = Math.max(1, this.nextHostNmi - now);
      if (timer.period > 0 && timer.next - now < b) b = Math.max(1, timer.next - now);
      if (this.capStepTF) {
        if (this.nmi.step.armed) this.nmi.finishStep(false); // one TF at a time: the client's
        if (!this.stepper.armed) this.stepper.arm();
        b = 1;
      }
      if (views.pendingGuestDb !== 0 && !this.stepper.armed) {
        views.reflectDb(views.pendingGuestDb);
        views.pendingGuestDb = 0;
      }
      this.nmi.beforeEntry(holdInterrupts);
      if (this.hostNmiPending) b = 1;
      const stop = this.transition(b);
      if (stop !== null) return stop;
    }
  }

  private timerTick(stepping: boolean): void {
    // One pending interrupt at most: a tick while one is pending is dropped. Held while the
    // client steps (bhyve's VM_CAP_MASK_HWINTR).
    const t = this.timer;
    if (!stepping && !this.cpu.interruptPending) this.cpu.requestInterrupt(t.vector);
    while (t.next <= this.cpu.instret) t.next += t.period;
  }

  /** An AP of a Multiboot/PVH VM before its SIPI (also after an INIT): it runs nothing. */
  awaitingSipi = false;
  /** The APIC vector handed to the CPU (acknowledged) at the last poll, or -1. */
  private apicHeld = -1;

  /** Park this vCPU in wait-for-SIPI (the APs of a Multiboot/PVH kernel at boot). */
  waitForSipi(): void {
    this.awaitingSipi = true;
    this.vm.platform.apics.apics[this.index].enterWaitForSipi();
  }

  /**
   * Waiting for a SIPI: once one came, run the real-mode trampoline at vector * 0x1000 up to
   * its far jump into protected mode and continue there in the core. False while none came.
   */
  private startFromSipi(): boolean {
    const apic = this.vm.platform.apics.apics[this.index];
    if (apic.hasInit) apic.takeInit(); // INIT again: still waiting (its registers reset)
    const vector = apic.takeSipi();
    if (vector < 0) return false;
    const mem = this.vm.memory;
    const s = sipiState(vector);
    const r = runRealMode(s, (a, n) => mem.read(a, Math.max(0, Math.min(n, mem.size - a))));
    if (r.kind !== 'protected' || !canStartFlat32(this.cpu)) {
      const why = r.kind === 'unsupported' ? `an instruction the real-mode trampoline runner does not know at 0x${r.address.toString(16)} (${r.bytes.map((b) => b.toString(16).padStart(2, '0')).join(' ')})`
        : r.kind === 'fault' ? r.reason : r.kind === 'protected' ? 'no 32-bit protected mode in this build' : `the trampoline ended with ${r.kind}`;
      this.stopWith({ kind: 'triple-fault', vcpu: this.index, reason: `AP start-up (SIPI vector 0x${vector.toString(16)}): ${why}` });
      return false;
    }
    this.cpu.startFlat32({ eip: r.eip, cs: r.cs, ds: 0, eax: 0, ebx: 0, esi: 0, gdtBase: s.gdtBase, gdtLimit: s.gdtLimit });
    this.awaitingSipi = false;
    return true;
  }

  /** The guest's TSC runs on while the hypervisor handles an exit (exitTakesTime). */
  private advanceTsc(ticks: number): void {
    if (this.cpu.advanceTsc !== undefined) { this.cpu.advanceTsc(ticks); return; }
    const t = this.tsc() + ticks;
    this.cpu.writeMsr(MSR_TSC, { lo: t % 0x100000000 >>> 0, hi: Math.floor(t / 0x100000000) >>> 0 });
  }

  /** This vCPU's TSC (instructions retired plus the guest's IA32_TSC offset): the platform's time. */
  tsc(): number {
    const t = this.cpu.readMsr(MSR_TSC);
    return t === undefined ? this.cpu.instret : u64ToNumber(t);
  }

  /**
   * The local APIC at an instruction boundary: fire its timer, hand an NMI and the highest
   * deliverable vector to the CPU (acknowledged then: IRR -> ISR), unless the client steps
   * (interrupts are held then, as the ABI timer's are). Returns the instructions until its
   * timer fires next (Infinity: never), so the slice ends in time.
   */
  private pollApic(holdInterrupts: boolean): number {
    const apics = this.vm.platform.apics;
    const apic = apics.apics[this.index];
    if (apic.hasInit) {
      // INIT: a CPU that can restart in protected mode waits for its SIPI; our ELF64 ABI's
      // CPU cannot (its APs start at the entry point), so the INIT only resets the APIC.
      apic.takeInit();
      this.nmi.reset();
      if (canStartFlat32(this.cpu)) { this.awaitingSipi = true; return Infinity; }
      apic.waitingForSipi = false;
    }
    if (apic.quiet && !(this.index === 0 && apic.lint0ExtInt())) return Infinity;
    const tsc = this.tsc();
    apics.update(this.index, tsc);
    // The hypervisor injects it when the guest can take it (nmi.ts).
    if (apic.takeNmi()) this.nmi.raise();
    if (!holdInterrupts) {
      if (this.apicHeld >= 0) {
        // Not taken yet (IF=0, a shadow): back to the IRR, so that the vector the CPU takes
        // is the highest one when it takes it (INTA), as with vectors 32 then 33.
        if (this.cpu.interruptPending) {
          const w = this.cpu.withdrawInterrupt();
          if (w === this.apicHeld) apics.retract(this.index, w); else if (w >= 0) this.cpu.requestInterrupt(w);
        }
        this.apicHeld = -1;
      }
      if (!this.cpu.interruptPending) {
        const v = apics.pendingVector(this.index);
        if (v >= 0) {
          const fromApic = apics.pendingFromApic(this.index);
          this.cpu.requestInterrupt(v);
          apics.acknowledge(this.index, v);
          if (fromApic) this.apicHeld = v;
        }
      }
    }
    const next = apics.nextEvent(this.index);
    return next === undefined ? Infinity : next - tsc;
  }

  /** One VM entry, guest run, VM exit and its handling: an iteration of vmx_run. */
  private transition(budget: number): VmStop | null {
    const vm = this.vm;
    const host = vm.host;
    const phys = vm.phys;
    const backend = this.backend;
    const scenario = vm.scenario;

    scenario.beforeEnterPath();
    backend.prepareEntry();
    if (this.stepObserver === null) this.enterProgram.run(phys, backend.drRegs);
    else runSteps(backend.enterSteps, phys, backend.drRegs, this.stepObserver);
    if (this.enterLoadsDr6) host.dr6HoldsGuest = true;
    scenario.beforeHardwareEntry();
    const failed = backend.hardwareEntry();
    vm.transitions++;
    if (failed !== null) {
      runSteps(backend.leaveSteps, phys, backend.drRegs, this.stepObserver);
      return this.stopWith({ kind: 'entry-failed', vcpu: this.index, reason: failed });
    }
    host.dr6HoldsGuest = true;
    vm.leaks.checkEntry(phys, this.views.arch, vm.transitions, this.index);
    if (vm.trace !== null) vm.trace({ type: 'phase', ts: vm.now(), vcpu: this.index, phase: 'guest' });

    // The client's TF step ends after an event's delivery, at the handler's first instruction
    // (as an MTF step would); an MTF step gets that from the MTF exit itself.
    this.cpu.intercepts.eventDelivered = (this.stepper.armed && !this.stepper.viaMtf) || this.nmi.step.armed;
    let ce = this.cpu.run(budget);
    // A host NMI is held by a MOV-SS shadow, as every NMI is (SDM 6.8.3): the next boundary.
    if (ce.kind === 'budget' && (this.hostNmiPending || this.cpu.instret >= this.nextHostNmi) && (this.cpu.interruptibility & 2) === 0) {
      this.hostNmiPending = false;
      if (this.cpu.instret >= this.nextHostNmi) this.nextHostNmi = this.cpu.instret + (this.vm.opts.hostNmiEvery ?? 0);
      ce = HOST_NMI_EXIT;
    } else if (ce.kind === 'budget' && this.cpu.instret >= this.nextPreempt) ce = EXTINT_EXIT;
    const g = this.exit;
    backend.saveGuestState(ce, g);
    this.views.arch.captureFrom(phys);
    backend.loadHostState();
    vm.transitions++;
    scenario.afterHardwareExit();
    if (this.stepObserver === null) this.leaveProgram.run(phys, backend.drRegs);
    else runSteps(backend.leaveSteps, phys, backend.drRegs, this.stepObserver);
    if (this.leaveRestoresDr6) host.dr6HoldsGuest = false;
    vm.leaks.checkExit(phys, host.owned, host.ownedTF, vm.transitions, this.index);
    // bhyve's vmx_exit_handle_nmi: the host's NMI handler runs here, after the DR restore.
    if (g.kind === 'nmi') host.handleNmi(vm.leaks.foreignRegisters(phys, host.owned, host.ownedTF));
    vm.exits.count(g.kind);
    if (vm.trace !== null) {
      const ts = vm.now();
      vm.trace({ type: 'phase', ts, vcpu: this.index, phase: 'host' });
      vm.trace({ type: 'exit', ts, vcpu: this.index, reason: g.kind, backendReason: g.backendReason });
    }
    scenario.exitHandling(this.index, g.kind);
    const handlers = this.handlers;
    // An MMIO write during the run (an xAPIC ICR write: an IPI) may have woken another vCPU.
    const mmioEffect = this.cpu.takeDeviceEffect?.() ?? null;
    if (mmioEffect !== null) {
      const stop = handlers.effect(mmioEffect);
      if (stop !== null) { scenario.endOfIteration(); return stop; }
    }
    handlers.mtfAfterEmulation = false;
    let stop = handlers.handle(g);
    if (exitTakesTime(g.kind)) this.advanceTsc(EXIT_TSC_TICKS);
    if (stop === null && handlers.mtfAfterEmulation) stop = this.stepper.viaMtf ? this.finishStep(0) : { kind: 'mtf', vcpu: this.index };
    scenario.endOfIteration();
    return stop;
  }

  // ---- VcpuContext: what the exit handlers call back ---------------------------------------

  stopWith(stop: VmStop): VmStop {
    this.finalStop = stop;
    this.state = 'stopped';
    return stop;
  }

  preempted(): void {
    if (this.cpu.instret >= this.nextPreempt) this.nextPreempt = this.cpu.instret + this.vm.opts.preemptEvery;
  }

  finishStep(slotsHit: number, afterEvent = false): VmStop {
    this.stepper.finish(this.capMtf, afterEvent);
    return { kind: 'debug', vcpu: this.index, slotsHit, step: true };
  }

  // ---- the register interface (vm_get_register / vm_set_register) -------------------------

  getGuestDr(n: GuestDrIndex): U64 {
    return this.views.getGuestDr(n);
  }

  /** Throws a plain Error with the reason for a bad value (the API wraps it). */
  setGuestDr(n: GuestDrIndex, v: U64): void {
    this.views.setGuestDr(n, v);
  }

  getGuestDebugctl(): U64 {
    return this.views.getGuestDebugctl();
  }

  setGuestDebugctl(v: U64, by: 'client' | 'guest'): boolean {
    return this.views.setGuestDebugctl(v, by);
  }

  setDebuggerSlots(slots: ReadonlyArray<DebuggerSlot | null>): void {
    this.views.setDebuggerSlots(slots, this.caps);
  }

  setCapability(cap: Capability, on: boolean): void {
    if (cap === 'mtf') {
      if (!this.backend.setMtf(on)) throw new Error(`capability mtf needs the vmx backend`);
    }
    if (on) this.caps.add(cap); else this.caps.delete(cap);
    this.capStepTF = this.caps.has('rflags-tf');
    this.capMtf = this.caps.has('mtf');
    if (cap === 'rflags-tf' && !on && this.stepper.armed) this.stepper.finish(this.capMtf);
    this.views.updateDebugMode(this.caps);
  }

  getCapability(cap: Capability): boolean {
    return this.caps.has(cap);
  }

  /**
   * Wake a vCPU halted for good if the client or a device (an IPI) changed something that
   * could wake it. True when it woke.
   */
  reconsiderHalt(): boolean {
    if (this.state !== 'halted') return false;
    const ifSet = (this.cpu.getReg('rflags').lo & RFLAGS_IF) !== 0;
    if (ifSet && (this.timer.period > 0 || this.cpu.interruptPending)) this.state = 'running';
    else if (this.nmi.wakesFromHlt()) this.state = 'running';
    else if (this.vm.platform.apics.wakesFromHlt(this.index, ifSet)) this.state = 'running';
    return this.state === 'running';
  }

  describeDebugState(): string {
    return `${this.views.describe(this.vm.phys)}\n${this.nmi.describe()}`;
  }

  /** A virtual NMI for the guest (KVM_NMI): injected when it can take one. */
  injectNmi(): void {
    this.nmi.raise();
    this.reconsiderHalt();
  }
}
