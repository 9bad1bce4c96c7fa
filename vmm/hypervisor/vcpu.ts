import { Capability, DebuggerSlot, VmStop } from '../api/vm-api';
import { VmOptions } from '../api/vm-options';
import { TraceEvent } from '../api/trace';
import { CpuExit } from '../cpu/cpu-exit';
import { GprIndex, GuestCpu } from '../cpu/guest-cpu';
import { PhysicalCpu } from '../cpu/physical-cpu';
import { GuestMemory } from '../memory';
import { U64 } from '../u64';
import { GuestDrIndex, VmBackend } from './backend';
import {
  DEBUGCTL_VALID, DR6_BD, DR6_BS, DR6_B_MASK, DR6_RESERVED1, DR7_GD, RFLAGS_TF, dr7SlotEnabled, hex, matchIoBreakpoints, normalizeDr7,
} from './debug-bits';
import { SlotOwner, mergeDebugState, splitBreakpointStatus } from './debug-merge';
import { DrStep, StepObserver, StepProgram, runProgram, runSteps } from './dr-switch';
import { GenericExit, newGenericExit } from './exit';
import {
  MSR_DEBUGCTL, MSR_EFER, MSR_FS_BASE, MSR_GS_BASE, MSR_KERNEL_GS_BASE, MSR_TSC, PORT_CONSOLE, PORT_EXIT, PORT_TIMER,
  emulateCpuid,
} from './guest-abi';
import { DebugState } from './guest-debug-state';
import { HostContext, HostScenarioRunner } from './host';
import { LeakDetector } from './leak-detector';

/** What all vCPUs of a VM share: the one physical CPU, the host, the leak detector. */
export interface VmShared {
  readonly opts: VmOptions;
  readonly memory: GuestMemory;
  readonly phys: PhysicalCpu;
  readonly host: HostContext;
  readonly scenario: HostScenarioRunner;
  readonly leaks: LeakDetector;
  readonly exits: Record<string, number>;
  transitions: number;
  console: string;
  otherPortAccesses: number;
  /** Null when nobody listens (the hot path then builds no events). */
  trace: ((ev: TraceEvent) => void) | null;
  now(): number;
}

const EXTINT_EXIT: CpuExit = { kind: 'extint' };
const RAX: GprIndex = 0;
const RCX: GprIndex = 1;
const RDX: GprIndex = 2;
const RBX: GprIndex = 3;
const RSP: GprIndex = 4;
const RSI: GprIndex = 6;
const RDI: GprIndex = 7;
const RFLAGS_DF = 1 << 10;
const RFLAGS_IF = 1 << 9;
const RFLAGS_RF = 1 << 16;
const EFER_VALID = (1 << 0) | (1 << 8) | (1 << 10) | (1 << 11);
const CR4_DE = 1 << 3;

export type VcpuRunState = 'running' | 'halted' | 'stopped';

/**
 * One vCPU: its backend (VMCS or VMCB and the hypervisor's software around it), its debug
 * views, and the run loop of vmx_run / svm_run with the exit handlers of vmx_exit_process.
 */
export class Vcpu {
  /** The guest's effective debug state: what the leak detector holds the physical CPU to at entry. */
  readonly arch = new DebugState();
  /** The guest view while the debugger is merged in (MOV DR intercepted); else the backend is the view. */
  readonly view = new DebugState();
  private merged = false;
  private owners: SlotOwner[] = [null, null, null, null];
  private suspended: number[] = [];
  private readonly slots: Array<DebuggerSlot | null> = [null, null, null, null];
  private readonly caps = new Set<Capability>();
  /** caps.has('rflags-tf') / 'mtf', cached for the run loop. */
  private capStepTF = false;
  private capMtf = false;
  private mtfAfterEmulation = false;
  private readonly exit: GenericExit = newGenericExit();
  private readonly cpuidOut = new Uint32Array(4);
  private readonly scratch: U64 = { lo: 0, hi: 0 };
  private readonly stepObserver: StepObserver | null;
  private readonly enterLoadsDr6: boolean;
  private readonly enterProgram: StepProgram;
  private readonly leaveProgram: StepProgram;
  private readonly leaveRestoresDr6: boolean;

  state: VcpuRunState = 'running';
  finalStop: VmStop | null = null;
  private timerVector = 0;
  private timerPeriod = 0;
  private timerNext = 0;
  private nextPreempt: number;
  /** Guest #DB status kept for reflection after the debugger's stop (B bits in guest numbering, BS, BD). */
  private pendingGuestDb = 0;
  // rflags-tf stepping
  private stepArmed = false;
  private stepGuestTF = false;
  private stepRsp = 0;
  private stepOpcode = 0;
  private stepInstret = 0;
  private stepViaMtf = false;

  constructor(readonly index: number, readonly cpu: GuestCpu, readonly backend: VmBackend, private readonly vm: VmShared) {
    this.nextPreempt = vm.opts.preemptEvery > 0 ? vm.opts.preemptEvery : Infinity;
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

  // ---- the run loop ------------------------------------------------------------------------

  /** Run up to `budget` guest instructions; a VmStop for the client, or null when the budget is used. */
  runSlice(budget: number): VmStop | null {
    const cpu = this.cpu;
    const start = cpu.instret;
    for (;;) {
      if (this.finalStop !== null) return this.finalStop;
      if (this.state === 'halted') return null;
      const now = cpu.instret;
      if (now - start >= budget) return null;
      if (this.timerPeriod > 0 && now >= this.timerNext) this.timerTick(this.stepArmed || this.capStepTF || this.capMtf);
      let b = budget - (now - start);
      if (this.nextPreempt - now < b) b = Math.max(1, this.nextPreempt - now);
      if (this.timerPeriod > 0 && this.timerNext - now < b) b = Math.max(1, this.timerNext - now);
      if (this.capStepTF) {
        if (!this.stepArmed) this.armStep();
        b = 1;
      }
      if (this.pendingGuestDb !== 0 && !this.stepArmed) {
        this.reflectDb(this.pendingGuestDb);
        this.pendingGuestDb = 0;
      }
      const stop = this.transition(b);
      if (stop !== null) return stop;
    }
  }

  private timerTick(stepping: boolean): void {
    // One pending interrupt at most: a tick while one is pending is dropped. Held while the
    // client steps (bhyve's VM_CAP_MASK_HWINTR).
    if (!stepping && !this.cpu.interruptPending) this.cpu.requestInterrupt(this.timerVector);
    while (this.timerNext <= this.cpu.instret) this.timerNext += this.timerPeriod;
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
    if (this.stepObserver === null) runProgram(this.enterProgram, phys, backend.drRegs);
    else runSteps(backend.enterSteps, phys, backend.drRegs, this.stepObserver);
    if (this.enterLoadsDr6) host.dr6HoldsGuest = true;
    scenario.beforeHardwareEntry();
    const failed = backend.hardwareEntry();
    vm.transitions++;
    if (failed !== null) {
      runSteps(backend.leaveSteps, phys, backend.drRegs, this.stepObserver);
      this.finalStop = { kind: 'entry-failed', vcpu: this.index, reason: failed };
      this.state = 'stopped';
      return this.finalStop;
    }
    host.dr6HoldsGuest = true;
    vm.leaks.checkEntry(phys, this.arch, vm.transitions, this.index);
    if (vm.trace !== null) vm.trace({ type: 'phase', ts: vm.now(), vcpu: this.index, phase: 'guest' });

    let ce = this.cpu.run(budget);
    if (ce.kind === 'budget' && this.cpu.instret >= this.nextPreempt) ce = EXTINT_EXIT;
    const g = this.exit;
    backend.saveGuestState(ce, g);
    this.arch.captureFrom(phys);
    backend.loadHostState();
    vm.transitions++;
    scenario.afterHardwareExit();
    if (this.stepObserver === null) runProgram(this.leaveProgram, phys, backend.drRegs);
    else runSteps(backend.leaveSteps, phys, backend.drRegs, this.stepObserver);
    if (this.leaveRestoresDr6) host.dr6HoldsGuest = false;
    vm.leaks.checkExit(phys, host.owned, host.ownedTF, vm.transitions, this.index);
    vm.exits[g.kind] = (vm.exits[g.kind] ?? 0) + 1;
    if (vm.trace !== null) {
      const ts = vm.now();
      vm.trace({ type: 'phase', ts, vcpu: this.index, phase: 'host' });
      vm.trace({ type: 'exit', ts, vcpu: this.index, reason: g.kind, backendReason: g.backendReason });
    }
    scenario.exitHandling(this.index, g.kind);
    this.mtfAfterEmulation = false;
    let stop = this.handleExit(g);
    if (stop === null && this.mtfAfterEmulation) stop = this.stepViaMtf ? this.finishStep(0, true) : { kind: 'mtf', vcpu: this.index };
    scenario.endOfIteration();
    return stop;
  }

  // ---- exit handlers (vmx_exit_process) ---------------------------------------------------

  private handleExit(g: GenericExit): VmStop | null {
    switch (g.kind) {
      case 'slice':
        if (this.stepArmed && this.cpu.instret > this.stepInstret) return this.finishStep(0, true);
        return null;
      case 'extint':
        if (this.cpu.instret >= this.nextPreempt) this.nextPreempt = this.cpu.instret + this.vm.opts.preemptEvery;
        if (this.stepArmed && this.cpu.instret > this.stepInstret) return this.finishStep(0, true);
        return null;
      case 'hlt': return this.handleHlt(g);
      case 'cpuid': return this.handleCpuid(g);
      case 'rdmsr': return this.handleRdmsr(g);
      case 'wrmsr': return this.handleWrmsr(g);
      case 'io': return this.handleIo(g);
      case 'mov-dr': return this.handleMovDr(g);
      case 'exception': return this.handleException(g);
      case 'mtf':
        if (this.stepViaMtf) return this.finishStep(0, true);
        if (this.caps.has('mtf')) return { kind: 'mtf', vcpu: this.index };
        return null;
      case 'npf':
        return this.stopWith({ kind: 'npf', vcpu: this.index, address: g.address, write: g.write });
      case 'triple-fault':
        return this.stopWith({ kind: 'triple-fault', vcpu: this.index, reason: g.reason || 'triple fault' });
      case 'entry-failed':
        return this.stopWith({ kind: 'entry-failed', vcpu: this.index, reason: g.reason });
    }
  }

  /** The intercepted instruction was emulated: retire it in the CPU and tell the backend. */
  private complete(length: number): void {
    this.cpu.completeEmulatedInstruction(length);
    this.backend.afterEmulation();
    // An emulated instruction gets no MTF exit from the hardware: a VMM injects a pending
    // MTF (type 7); here the client's MTF stop is reported right away.
    if (this.capMtf || this.stepViaMtf) this.mtfAfterEmulation = true;
  }

  private stopWith(stop: VmStop): VmStop {
    this.finalStop = stop;
    this.state = 'stopped';
    return stop;
  }

  private handleHlt(g: GenericExit): VmStop | null {
    this.complete(g.length);
    const ifSet = (this.cpu.getReg('rflags').lo & RFLAGS_IF) !== 0;
    if (ifSet && this.cpu.interruptPending) return null;
    if (ifSet && this.timerPeriod > 0) {
      // (Also while the client steps: a step over HLT ends when the timer wakes it.)
      // Nothing runs while halted: the virtual timer's next tick comes at once.
      this.cpu.requestInterrupt(this.timerVector);
      this.timerNext = this.cpu.instret + this.timerPeriod;
      return null;
    }
    this.state = 'halted';
    return null;
  }

  private handleCpuid(g: GenericExit): VmStop | null {
    const c = this.cpu;
    const out = this.cpuidOut;
    emulateCpuid(this.backend.name, c.getGpr(RAX).lo, c.getGpr(RCX).lo, this.index, this.vm.opts.vcpus, out, c.getReg('cr4').lo);
    // GuestCpu.setGpr copies the value: one scratch record serves the four writes.
    const v = this.scratch;
    v.hi = 0;
    v.lo = out[0]; c.setGpr(RAX, v);
    v.lo = out[1]; c.setGpr(RBX, v);
    v.lo = out[2]; c.setGpr(RCX, v);
    v.lo = out[3]; c.setGpr(RDX, v);
    this.complete(g.length);
    return null;
  }

  private injectGP(): void {
    this.backend.injectEvent({ vector: 13, type: 'hw', errorCode: 0 });
  }

  private handleRdmsr(g: GenericExit): VmStop | null {
    const c = this.cpu;
    let v: U64;
    switch (c.getGpr(RCX).lo >>> 0) {
      case MSR_EFER: v = c.getReg('efer'); break;
      case MSR_FS_BASE: v = c.getReg('fs_base'); break;
      case MSR_GS_BASE: v = c.getReg('gs_base'); break;
      case MSR_KERNEL_GS_BASE: v = c.getReg('kernel_gs_base'); break;
      case MSR_TSC: v = c.getReg('tsc'); break;
      case MSR_DEBUGCTL: v = this.getGuestDebugctl(); break;
      default: this.injectGP(); return null;
    }
    c.setGpr(RAX, { lo: v.lo, hi: 0 });
    c.setGpr(RDX, { lo: v.hi, hi: 0 });
    this.complete(g.length);
    return null;
  }

  private handleWrmsr(g: GenericExit): VmStop | null {
    const c = this.cpu;
    const v: U64 = { lo: c.getGpr(RAX).lo, hi: c.getGpr(RDX).lo };
    switch (c.getGpr(RCX).lo >>> 0) {
      case MSR_EFER:
        if (v.hi !== 0 || (v.lo & ~EFER_VALID) !== 0) { this.injectGP(); return null; }
        c.setReg('efer', v);
        break;
      case MSR_FS_BASE: c.setReg('fs_base', v); break;
      case MSR_GS_BASE: c.setReg('gs_base', v); break;
      case MSR_KERNEL_GS_BASE: c.setReg('kernel_gs_base', v); break;
      case MSR_TSC: c.setReg('tsc', v); break;
      case MSR_DEBUGCTL:
        if (!this.setGuestDebugctl(v, 'guest')) { this.injectGP(); return null; }
        break;
      default: this.injectGP(); return null;
    }
    this.complete(g.length);
    return null;
  }

  private handleIo(g: GenericExit): VmStop | null {
    const c = this.cpu;
    const mem = this.vm.memory;
    if (g.string) {
      const count = g.rep ? c.getGpr(RCX).lo : 1;
      const delta = (c.getReg('rflags').lo & RFLAGS_DF) !== 0 ? -g.size : g.size;
      const ptrReg = g.isIn ? RDI : RSI;
      let ptr = c.getGpr(ptrReg).lo;
      for (let k = 0; k < count; k++) {
        if (g.isIn) {
          if (!mem.write(ptr, new Uint8Array(g.size).fill(0xff))) {
            return this.stopWith({ kind: 'npf', vcpu: this.index, address: ptr, write: true });
          }
          this.vm.otherPortAccesses++;
        } else {
          const bytes = mem.read(ptr, g.size);
          if (bytes === undefined) return this.stopWith({ kind: 'npf', vcpu: this.index, address: ptr, write: false });
          let value = 0;
          for (let i = g.size - 1; i >= 0; i--) value = value * 256 + bytes[i];
          const stop = this.portWrite(g.port, g.size, value >>> 0);
          if (stop !== null) return stop;
        }
        ptr = (ptr + delta) >>> 0;
      }
      c.setGpr(ptrReg, { lo: ptr, hi: c.getGpr(ptrReg).hi });
      if (g.rep) c.setGpr(RCX, { lo: 0, hi: c.getGpr(RCX).hi });
    } else if (g.isIn) {
      // Nothing is attached to any port: reads return all ones.
      this.vm.otherPortAccesses++;
      const rax = c.getGpr(RAX);
      if (g.size === 4) c.setGpr(RAX, { lo: 0xffffffff, hi: 0 });
      else c.setGpr(RAX, { lo: (rax.lo | (g.size === 1 ? 0xff : 0xffff)) >>> 0, hi: rax.hi });
    } else {
      const mask = g.size === 4 ? 0xffffffff : g.size === 2 ? 0xffff : 0xff;
      const stop = this.portWrite(g.port, g.size, (c.getGpr(RAX).lo & mask) >>> 0);
      if (stop !== null) return stop;
    }
    this.complete(g.length);
    // I/O breakpoints (CR4.DE=1, R/W=10) match the guest's effective registers, not the
    // host's now in the physical CPU: pend the trap for the next entry (SDM 32.2.1).
    if ((c.getReg('cr4').lo & CR4_DE) !== 0) {
      const bits = matchIoBreakpoints(this.arch.lo, this.arch.hi, g.port, g.size);
      if (bits !== 0) this.backend.addPendingDebugTraps(bits);
    }
    return null;
  }

  private portWrite(port: number, size: number, value: number): VmStop | null {
    switch (port) {
      case PORT_CONSOLE:
        this.vm.console += String.fromCharCode(value & 0xff);
        return null;
      case PORT_EXIT:
        return this.stopWith({ kind: 'exit', vcpu: this.index, status: value & 0x7f });
      case PORT_TIMER:
        if (size !== 4) { this.vm.otherPortAccesses++; return null; }
        this.timerVector = value & 0xff;
        this.timerPeriod = value >>> 8;
        this.timerNext = this.cpu.instret + this.timerPeriod;
        return null;
      default:
        this.vm.otherPortAccesses++;
        return null;
    }
  }

  // ---- debug registers: MOV DR emulation, #DB routing --------------------------------------

  private handleMovDr(g: GenericExit): VmStop | null {
    const c = this.cpu;
    let dr = g.dr;
    if (dr === 4 || dr === 5) {
      if ((c.getReg('cr4').lo & CR4_DE) !== 0) { this.backend.injectEvent({ vector: 6, type: 'hw' }); return null; }
      dr += 2;
    }
    if (!this.merged) {
      // Intercepts are only on while merged; a stray exit (race with a cap change) re-runs.
      return null;
    }
    if ((this.view.lo[7] & DR7_GD) !== 0) {
      // DR7.GD: the MOV DR faults with DR6.BD set and GD cleared, as the hardware would.
      this.view.lo[7] &= ~DR7_GD;
      this.reflectDb(DR6_BD);
      return null;
    }
    if (g.toDr) {
      const v = c.getGpr(g.gpr as GprIndex);
      if ((dr === 6 || dr === 7) && v.hi !== 0) { this.injectGP(); return null; }
      if (dr === 6) this.view.lo[6] = (v.lo | DR6_RESERVED1) >>> 0;
      else if (dr === 7) this.view.lo[7] = normalizeDr7(v.lo);
      else this.view.set(dr, v);
      this.traceDrWrite(`dr${dr}`, this.view.lo[dr], this.view.hi[dr], 'guest');
      this.applyEffective();
    } else {
      c.setGpr(g.gpr as GprIndex, { lo: this.view.lo[dr], hi: dr >= 6 ? 0 : this.view.hi[dr] });
    }
    this.complete(g.length);
    return null;
  }

  private handleException(g: GenericExit): VmStop | null {
    if (g.vector === 1 && g.eventType === 'hw') return this.handleDb(g);
    if (g.vector === 3 && this.caps.has('intercept-bp')) {
      return { kind: 'breakpoint', vcpu: this.index, rip: this.cpu.getReg('rip') };
    }
    // An intercepted exception that is not ours: reflect it as it was.
    this.backend.injectEvent({ vector: g.vector, type: g.eventType, errorCode: g.errorCode, instructionLength: g.length });
    return null;
  }

  /** Whose physical slots are whose: the merge while merged, else the guest's own enabled slots. */
  private currentOwners(): readonly SlotOwner[] {
    if (this.merged) return this.owners;
    const dr7 = this.backend.getGuestDr(7).lo;
    return [0, 1, 2, 3].map((i) => (dr7SlotEnabled(dr7, i) ? { owner: 'guest' as const, slot: i } : null));
  }

  private handleDb(g: GenericExit): VmStop | null {
    const status = g.dbStatus;
    const split = splitBreakpointStatus(status & DR6_B_MASK, this.currentOwners());
    const bs = (status & DR6_BS) !== 0;
    const step = bs && this.stepArmed;
    const guestBs = bs && (this.stepArmed ? this.stepGuestTF : true);
    const guestStatus = split.guest | (guestBs ? DR6_BS : 0) | (status & DR6_BD);
    // The guest never reads the debugger's DR6 bits (SVM wrote them into the VMCB): back to clean.
    if (this.merged) this.writeGuestDr(6, DR6_RESERVED1, 0);
    const mine = step || split.debugger !== 0;
    if (this.vm.trace !== null) {
      this.vm.trace({ type: 'db', ts: this.vm.now(), vcpu: this.index, dr6: status,
        owner: mine && guestStatus !== 0 ? 'both' : mine ? 'debugger' : 'guest' });
    }
    if (!mine) {
      if (guestStatus !== 0) this.reflectDb(guestStatus);
      return null;
    }
    this.pendingGuestDb |= guestStatus;
    if (this.hitsExecSlot(split.debugger)) {
      // An instruction breakpoint is a fault: RF=1 lets the instruction run when resumed.
      const rf = this.cpu.getReg('rflags');
      this.cpu.setReg('rflags', { lo: (rf.lo | RFLAGS_RF) >>> 0, hi: rf.hi });
    }
    if (step) return this.finishStep(split.debugger, true);
    return { kind: 'debug', vcpu: this.index, slotsHit: split.debugger, step: false };
  }

  private hitsExecSlot(slotsHit: number): boolean {
    for (let j = 0; j < 4; j++) if ((slotsHit & (1 << j)) !== 0 && this.slots[j]?.type === 'exec') return true;
    return false;
  }

  /** Deliver a #DB to the guest: DR6 as its handler must see it, then inject vector 1. */
  private reflectDb(status: number): void {
    const cur = this.merged ? this.view.lo[6] : this.backend.getGuestDr(6).lo;
    const dr6 = (((cur | DR6_RESERVED1) & ~DR6_B_MASK) | status) >>> 0;
    if (this.merged) {
      this.view.lo[6] = dr6;
      this.applyEffective();
    } else {
      this.writeGuestDr(6, dr6, 0);
      if ((status & DR6_BD) !== 0) this.writeGuestDr(7, this.backend.getGuestDr(7).lo & ~DR7_GD, 0);
    }
    this.backend.injectEvent({ vector: 1, type: 'hw' });
  }

  // ---- rflags-tf stepping: TF set for the step, hidden from the guest ----------------------

  private armStep(): void {
    const c = this.cpu;
    const rf = c.getReg('rflags');
    this.stepGuestTF = (rf.lo & RFLAGS_TF) !== 0;
    this.stepRsp = c.getGpr(RSP).lo;
    this.stepOpcode = this.opcodeAt(c.getReg('rip').lo);
    this.stepInstret = c.instret;
    this.stepArmed = true;
    if (this.backend.name === 'vmx' && this.backend.guestInterruptibility() !== 0 && !this.stepGuestTF) {
      // In an STI / MOV-SS shadow VM entry requires pending-debug BS = TF (26.3.1.5), which
      // would re-raise the trap already reported: this one step is taken with MTF instead.
      this.stepViaMtf = true;
      this.backend.setMtf(true);
      return;
    }
    c.setReg('rflags', { lo: (rf.lo | RFLAGS_TF) >>> 0, hi: rf.hi });
  }

  /** The first opcode byte after legacy and REX prefixes. */
  private opcodeAt(rip: number): number {
    const bytes = this.vm.memory.read(rip, 15);
    if (bytes === undefined) return 0;
    for (const b of bytes) {
      const prefix = b === 0x66 || b === 0x67 || b === 0xf2 || b === 0xf3 || b === 0xf0 || b === 0x2e || b === 0x36 ||
        b === 0x3e || b === 0x26 || b === 0x64 || b === 0x65 || (b >= 0x40 && b <= 0x4f);
      if (!prefix) return b;
    }
    return 0;
  }

  /** End of a step: give the guest its own TF back, also in what the step pushed. */
  private finishStep(slotsHit: number, step: boolean): VmStop {
    const c = this.cpu;
    const mem = this.vm.memory;
    const rf = c.getReg('rflags');
    const rsp = c.getGpr(RSP).lo;
    let guestTF = this.stepGuestTF;
    if (this.stepOpcode === 0x9d || this.stepOpcode === 0xcf) {
      guestTF = (rf.lo & RFLAGS_TF) !== 0; // POPF / IRET loaded the guest's own image
    } else if (this.stepOpcode === 0x9c) {
      this.fixPushedTF(rsp); // PUSHF
    }
    // An event delivered during the step pushed RFLAGS with our TF: a frame [rip, cs, rflags,
    // rsp, ss], maybe below an error code and what the handler's first instruction pushed;
    // recognised by the saved RSP and CS.
    const cs = c.getReg('cs').lo;
    for (let skip = 0; skip <= 64 && rsp + skip + 40 <= this.stepRsp + 16; skip += 8) {
      const frame = mem.read(rsp + skip, 40);
      if (frame === undefined) break;
      const f = new DataView(frame.buffer);
      if (f.getUint32(24, true) === this.stepRsp && f.getUint32(8, true) === cs && (f.getUint32(16, true) & RFLAGS_TF) !== 0) {
        this.fixPushedTF(rsp + skip + 16);
        break;
      }
    }
    c.setReg('rflags', { lo: guestTF ? (rf.lo | RFLAGS_TF) >>> 0 : (rf.lo & ~RFLAGS_TF) >>> 0, hi: rf.hi });
    // A step that ended on a slice boundary left its BS trap pending: it was this step's.
    if (!this.stepGuestTF) this.backend.clearPendingSingleStep();
    if (this.stepViaMtf) {
      this.stepViaMtf = false;
      this.backend.setMtf(this.capMtf);
    }
    this.stepArmed = false;
    return { kind: 'debug', vcpu: this.index, slotsHit, step };
  }

  private fixPushedTF(addr: number): void {
    const b = this.vm.memory.read(addr, 8);
    if (b === undefined) return;
    const v = new DataView(b.buffer);
    const lo = v.getUint32(0, true);
    v.setUint32(0, this.stepGuestTF ? (lo | RFLAGS_TF) >>> 0 : (lo & ~RFLAGS_TF) >>> 0, true);
    this.vm.memory.write(addr, b);
  }

  // ---- the views and the effective state --------------------------------------------------

  /** A hypervisor write of the guest's effective debug state: backend storage and the leak detector's copy. */
  private writeGuestDr(n: GuestDrIndex, lo: number, hi: number): void {
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
  private updateDebugMode(): void {
    const needMerge = this.slots.some((s) => s !== null) || this.caps.has('rflags-tf');
    if (needMerge && !this.merged) {
      for (const n of [0, 1, 2, 3, 6, 7] as GuestDrIndex[]) this.view.set(n, this.backend.getGuestDr(n));
      const dc = this.backend.getGuestDebugctl();
      this.view.debugctlLo = dc.lo;
      this.view.debugctlHi = dc.hi;
      this.merged = true;
    }
    if (needMerge) {
      this.applyEffective();
    } else if (this.merged) {
      this.merged = false;
      for (const n of [0, 1, 2, 3, 6, 7] as GuestDrIndex[]) this.writeGuestDr(n, this.view.lo[n], this.view.hi[n]);
      this.owners = [null, null, null, null];
      this.suspended = [];
    }
    this.backend.setDrIntercept(this.merged);
    this.backend.setExceptionIntercept(1, this.merged || this.caps.has('intercept-db'));
    this.backend.setExceptionIntercept(3, this.caps.has('intercept-bp'));
  }

  private traceDrWrite(register: string, lo: number, hi: number, by: 'client' | 'guest' | 'hypervisor' | 'host'): void {
    if (this.vm.trace !== null) this.vm.trace({ type: 'dr-write', ts: this.vm.now(), vcpu: this.index, register, value: hex(lo, hi), by });
  }

  // ---- the register interface (vm_get_register / vm_set_register) -------------------------

  getGuestDr(n: GuestDrIndex): U64 {
    return this.merged ? this.view.get(n) : this.backend.getGuestDr(n);
  }

  /** Throws a plain Error with the reason for a bad value (the API wraps it). */
  setGuestDr(n: GuestDrIndex, v: U64): void {
    if ((n === 6 || n === 7) && v.hi !== 0) throw new Error(`dr${n} bits 63:32 must be 0`);
    const lo = n === 7 ? normalizeDr7(v.lo) : n === 6 ? (v.lo | DR6_RESERVED1) >>> 0 : v.lo >>> 0;
    const hi = n >= 6 ? 0 : v.hi >>> 0;
    this.traceDrWrite(`dr${n}`, lo, hi, 'client');
    if (this.merged) {
      this.view.lo[n] = lo;
      this.view.hi[n] = hi;
      this.applyEffective();
    } else {
      this.writeGuestDr(n, lo, hi);
    }
  }

  getGuestDebugctl(): U64 {
    return this.merged ? { lo: this.view.debugctlLo, hi: this.view.debugctlHi } : this.backend.getGuestDebugctl();
  }

  setGuestDebugctl(v: U64, by: 'client' | 'guest'): boolean {
    if (v.hi !== 0 || (v.lo & ~DEBUGCTL_VALID) !== 0) return false;
    if (!this.backend.setGuestDebugctl(v)) return false;
    this.arch.debugctlLo = v.lo >>> 0;
    this.arch.debugctlHi = 0;
    if (this.merged) { this.view.debugctlLo = v.lo >>> 0; this.view.debugctlHi = 0; }
    this.traceDrWrite('debugctl', v.lo, 0, by);
    return true;
  }

  setDebuggerSlots(slots: ReadonlyArray<DebuggerSlot | null>): void {
    for (let j = 0; j < 4; j++) this.slots[j] = slots[j] ?? null;
    this.updateDebugMode();
  }

  setCapability(cap: Capability, on: boolean): void {
    if (cap === 'mtf') {
      if (!this.backend.setMtf(on)) throw new Error(`capability mtf needs the vmx backend`);
    }
    if (on) this.caps.add(cap); else this.caps.delete(cap);
    this.capStepTF = this.caps.has('rflags-tf');
    this.capMtf = this.caps.has('mtf');
    if (cap === 'rflags-tf' && !on && this.stepArmed) this.finishStep(0, false);
    this.updateDebugMode();
  }

  getCapability(cap: Capability): boolean {
    return this.caps.has(cap);
  }

  /** Wake a vCPU halted for good if the client changed something that could wake it. */
  reconsiderHalt(): void {
    if (this.state !== 'halted') return;
    const ifSet = (this.cpu.getReg('rflags').lo & RFLAGS_IF) !== 0;
    if (ifSet && (this.timerPeriod > 0 || this.cpu.interruptPending)) this.state = 'running';
  }

  describeDebugState(): string {
    const dr = (s: DebugState, n: number): string => hex(s.lo[n], s.hi[n]);
    const lines: string[] = [];
    const view = new DebugState();
    for (const n of [0, 1, 2, 3, 6, 7] as GuestDrIndex[]) view.set(n, this.getGuestDr(n));
    lines.push(`vCPU ${this.index} (${this.backend.name}, ${this.merged ? 'debugger merged' : 'guest only'})`);
    lines.push(`guest view:  dr0=${dr(view, 0)} dr1=${dr(view, 1)} dr2=${dr(view, 2)} dr3=${dr(view, 3)} dr6=${dr(view, 6)} dr7=${dr(view, 7)}`);
    lines.push(`effective:   dr0=${dr(this.arch, 0)} dr1=${dr(this.arch, 1)} dr2=${dr(this.arch, 2)} dr3=${dr(this.arch, 3)} dr6=${dr(this.arch, 6)} dr7=${dr(this.arch, 7)}`);
    const p = this.vm.phys;
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
