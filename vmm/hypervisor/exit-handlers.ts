/**
 * The exit handlers of one vCPU (vmx_exit_process / svm_vmexit): what the hypervisor does
 * with each generic exit. Ports go to the VM's device bus, RDMSR/WRMSR to the CPU's one MSR
 * implementation (IA32_DEBUGCTL to the debug views), MOV DR and #DB to the debug views.
 */
import { GprIndex, GuestCpu } from '../cpu/guest-cpu';
import { BreakpointSummary } from '../cpu/debug-match';
import { AccessSize, DeviceEffect } from '../devices/device';
import { VcpuTimer } from '../devices/guest-timer';
import { U64 } from '../u64';
import { Capability, VmStop } from '../vmm-types';
import { CR4_DE } from '../x86/control-regs';
import { DR6_BD, DR6_BS, DR6_B_MASK } from '../x86/debug-regs';
import { MSR_DEBUGCTL, MSR_TSC } from '../x86/msr';
import { DF as RFLAGS_DF, IF as RFLAGS_IF, RF as RFLAGS_RF } from '../x86/rflags';
import { GuestDrIndex, VmBackend } from './backend';
import { splitBreakpointStatus } from './debug-merge';
import { DebugViews } from './debug-views';
import { GenericExit } from './exit';
import { emulateCpuid, isNullPmuMsr } from './guest-abi';
import { VirtualNmi } from './nmi';
import { TfStepper } from './stepping';
import { VmShared } from './vm-shared';

const RAX: GprIndex = 0;
const RCX: GprIndex = 1;
const RDX: GprIndex = 2;
const RBX: GprIndex = 3;
const RSI: GprIndex = 6;
const RDI: GprIndex = 7;

export type VcpuRunState = 'running' | 'halted' | 'stopped';

/** What the exit handlers use of their vCPU (implemented by Vcpu). */
export interface VcpuContext {
  readonly index: number;
  readonly cpu: GuestCpu;
  readonly backend: VmBackend;
  readonly vm: VmShared;
  readonly views: DebugViews;
  readonly stepper: TfStepper;
  readonly nmi: VirtualNmi;
  readonly timer: VcpuTimer;
  readonly caps: ReadonlySet<Capability>;
  /** caps.has('mtf'), cached. */
  readonly capMtf: boolean;
  state: VcpuRunState;
  /** The VM stops for good with `stop`. */
  stopWith(stop: VmStop): VmStop;
  /** A host timer interrupt ended the slice: the next preemption point. */
  preempted(): void;
  /** The client's step is over: the stop to report. */
  finishStep(slotsHit: number, afterEvent?: boolean): VmStop;
  /** This vCPU's TSC (the platform's time). */
  tsc(): number;
  /** Set by a handler: the run loop ends this vCPU's turn after the exit (another vCPU woke). */
  yieldTurn: boolean;
}

export class ExitHandlers {
  /** An emulated instruction retired while the client steps with MTF: report the MTF stop now. */
  mtfAfterEmulation = false;
  private readonly cpuidOut = new Uint32Array(4);
  private readonly scratch: U64 = { lo: 0, hi: 0 };
  /** I/O breakpoint matching against the guest's effective DR0-3/DR7 (the one matcher of the CPU). */
  private readonly ioBreakpoints = new BreakpointSummary(0);
  private readonly ioBytes = [new Uint8Array(0), new Uint8Array(1), new Uint8Array(2), new Uint8Array(0), new Uint8Array(4)];

  // The vCPU's parts, held directly (the CPUID / I/O exits are the hot path).
  private readonly cpu: GuestCpu;
  private readonly backend: VmBackend;
  private readonly stepper: TfStepper;

  constructor(private readonly v: VcpuContext) {
    this.cpu = v.cpu;
    this.backend = v.backend;
    this.stepper = v.stepper;
  }

  handle(g: GenericExit): VmStop | null {
    const v = this.v;
    switch (g.kind) {
      case 'slice':
        return v.stepper.done() ? v.finishStep(0) : null;
      case 'extint':
        v.preempted();
        return v.stepper.done() ? v.finishStep(0) : null;
      case 'nmi':
        // The host's (its handler ran on the exit path); the guest goes on as it was.
        return v.stepper.done() ? v.finishStep(0) : null;
      case 'nmi-window':
        v.nmi.windowExit();
        return null;
      case 'iret':
        v.nmi.iretExit();
        return null;
      case 'hlt': return this.hlt(g);
      case 'cpuid': return this.cpuid(g);
      case 'hypercall': return this.hypercall(g);
      case 'rdmsr': return this.rdmsr(g);
      case 'wrmsr': return this.wrmsr(g);
      case 'io': return this.io(g);
      case 'mov-dr': return this.movDr(g);
      case 'exception': return this.exception(g);
      case 'mtf':
        if (v.stepper.viaMtf) return v.finishStep(0);
        if (v.capMtf) return { kind: 'mtf', vcpu: v.index };
        return null;
      case 'step-event':
        if (v.nmi.step.armed) { v.nmi.finishStep(true); return null; }
        return v.stepper.armed ? v.finishStep(0, true) : null;
      case 'npf':
        return v.stopWith({ kind: 'npf', vcpu: v.index, address: g.address, write: g.write });
      case 'triple-fault':
        return v.stopWith({ kind: 'triple-fault', vcpu: v.index, reason: g.reason || 'triple fault' });
      case 'entry-failed':
        return v.stopWith({ kind: 'entry-failed', vcpu: v.index, reason: g.reason });
    }
  }

  /** The intercepted instruction was emulated: retire it in the CPU and tell the backend. */
  private complete(length: number): void {
    this.cpu.completeEmulatedInstruction(length);
    this.backend.afterEmulation();
    // An emulated instruction gets no MTF exit from the hardware: a VMM injects a pending
    // MTF (type 7); here the client's MTF stop is reported right away.
    if (this.v.capMtf || this.stepper.viaMtf) this.mtfAfterEmulation = true;
  }

  /**
   * An access to guest linear memory for an emulated instruction. Returns undefined when
   * done; a guest exception (#PF, #GP) is injected (the instruction does not complete: null);
   * a nested-page fault stops the VM.
   */
  private guestAccess(addr: U64, data: Uint8Array, write: boolean): VmStop | null | undefined {
    const v = this.v;
    const c = v.cpu;
    if (c.emulatedAccess === undefined) {
      const mem = v.vm.memory;
      const a = addr.hi === 0 ? addr.lo : -1;
      let ok: boolean;
      if (write) ok = mem.write(a, data);
      else { const b = mem.read(a, data.length); if (b) data.set(b); ok = b !== undefined; }
      return ok ? undefined : v.stopWith({ kind: 'npf', vcpu: v.index, address: addr.hi * 4294967296 + addr.lo, write });
    }
    const f = c.emulatedAccess(addr, data, write);
    if (f === null) return undefined;
    if (f.kind === 'npf') return v.stopWith({ kind: 'npf', vcpu: v.index, address: f.address, write: f.write });
    v.backend.injectEvent({ vector: f.vector, type: 'hw', errorCode: f.errorCode });
    return null;
  }

  private injectGP(): void {
    this.v.backend.injectEvent({ vector: 13, type: 'hw', errorCode: 0 });
  }

  private hlt(g: GenericExit): VmStop | null {
    const c = this.v.cpu;
    const t = this.v.timer;
    this.complete(g.length);
    const ifSet = (c.getReg('rflags').lo & RFLAGS_IF) !== 0;
    if (ifSet && c.interruptPending) return null;
    if (this.v.nmi.wakesFromHlt()) return null;
    if (this.apicWakes(ifSet)) return null;
    if (ifSet && t.period > 0) {
      // (Also while the client steps: a step over HLT ends when the timer wakes it.)
      // Nothing runs while halted: the virtual timer's next tick comes at once.
      c.requestInterrupt(t.vector);
      t.next = c.instret + t.period;
      return null;
    }
    this.v.state = 'halted';
    return null;
  }

  /**
   * HLT and the local APIC: an interrupt it holds (or an NMI/INIT/SIPI) wakes at once; with
   * IF=1 and its timer armed, time passes while halted: the vCPU's TSC jumps to the expiry,
   * which fires it. The run loop then delivers.
   */
  private apicWakes(ifSet: boolean): boolean {
    const v = this.v;
    const apics = v.vm.platform.apics;
    if (apics.wakesFromHlt(v.index, ifSet)) return true;
    if (!ifSet) return false;
    const next = apics.nextEvent(v.index);
    if (next === undefined) return false;
    const now = v.tsc();
    if (next > now) v.cpu.writeMsr(MSR_TSC, { lo: next % 0x100000000 >>> 0, hi: Math.floor(next / 0x100000000) >>> 0 });
    apics.update(v.index, next);
    return apics.wakesFromHlt(v.index, ifSet);
  }

  private cpuid(g: GenericExit): VmStop | null {
    const c = this.cpu;
    const out = this.cpuidOut;
    emulateCpuid(this.backend.name, c.getGpr(RAX).lo, c.getGpr(RCX).lo, this.v.index, this.v.vm.opts.vcpus, out, c.getReg('cr4').lo);
    // GuestCpu.setGpr copies the value: one scratch record serves the four writes.
    const s = this.scratch;
    s.hi = 0;
    s.lo = out[0]; c.setGpr(RAX, s);
    s.lo = out[1]; c.setGpr(RBX, s);
    s.lo = out[2]; c.setGpr(RCX, s);
    s.lo = out[3]; c.setGpr(RDX, s);
    this.complete(g.length);
    return null;
  }

  /**
   * VMCALL / VMMCALL: this hypervisor offers no hypercalls. It answers as KVM answers an
   * unknown one: RAX = -KVM_ENOSYS (-1000), or -KVM_EPERM (-1) from CPL > 0; the guest goes on.
   */
  private hypercall(g: GenericExit): VmStop | null {
    const c = this.cpu;
    const cpl = c.getReg('cs').lo & 3;
    const err = cpl === 0 ? 1000 : 1;
    c.setGpr(RAX, { lo: (-err) >>> 0, hi: 0xffffffff });
    this.complete(g.length);
    return null;
  }

  private rdmsr(g: GenericExit): VmStop | null {
    const c = this.v.cpu;
    const index = c.getGpr(RCX).lo >>> 0;
    // IA32_DEBUGCTL is the hypervisor's (VMCS / VMCB / the view); the rest is the CPU's.
    const apics = this.v.vm.platform.apics;
    if (apics.handlesMsr(index)) {
      const pair = apics.readMsr(index, this.v.index);
      if (pair === undefined) { this.injectGP(); return null; }
      c.setGpr(RAX, { lo: pair[0], hi: 0 });
      c.setGpr(RDX, { lo: pair[1], hi: 0 });
      this.complete(g.length);
      return null;
    }
    if (isNullPmuMsr(this.backend.name, index)) {
      c.setGpr(RAX, { lo: 0, hi: 0 });
      c.setGpr(RDX, { lo: 0, hi: 0 });
      this.complete(g.length);
      return null;
    }
    const val = index === MSR_DEBUGCTL ? this.v.views.getGuestDebugctl() : c.readMsr(index);
    if (val === undefined) { this.injectGP(); return null; }
    c.setGpr(RAX, { lo: val.lo, hi: 0 });
    c.setGpr(RDX, { lo: val.hi, hi: 0 });
    this.complete(g.length);
    return null;
  }

  private wrmsr(g: GenericExit): VmStop | null {
    const c = this.v.cpu;
    const index = c.getGpr(RCX).lo >>> 0;
    const val: U64 = { lo: c.getGpr(RAX).lo, hi: c.getGpr(RDX).lo };
    const apics = this.v.vm.platform.apics;
    if (apics.handlesMsr(index)) {
      const r = apics.writeMsr(index, val.lo, val.hi, this.v.index);
      if (r === 'gp') { this.injectGP(); return null; }
      this.complete(g.length);
      return this.effect(r);
    }
    const ok = isNullPmuMsr(this.backend.name, index) ||
      (index === MSR_DEBUGCTL ? this.v.views.setGuestDebugctl(val, 'guest') : c.writeMsr(index, val));
    if (!ok) { this.injectGP(); return null; }
    this.complete(g.length);
    return null;
  }

  private io(g: GenericExit): VmStop | null {
    const v = this.v;
    const c = v.cpu;
    const bus = v.vm.bus;
    const size = g.size as AccessSize;
    if (g.string) {
      const count = g.rep ? c.getGpr(RCX).lo : 1;
      const delta = (c.getReg('rflags').lo & RFLAGS_DF) !== 0 ? -size : size;
      const ptrReg = g.isIn ? RDI : RSI;
      const bytes = this.ioBytes[size];
      let ptr = c.getGpr(ptrReg).lo;
      const ptrHi = c.getGpr(ptrReg).hi;
      for (let k = 0; k < count; k++) {
        // the memory operand is a guest LINEAR address: through the vCPU's MMU. A fault
        // leaves RSI/RDI and RCX at the completed iterations.
        if (g.isIn) {
          let value = bus.portRead(g.port, size, v.index);
          for (let i = 0; i < size; i++, value >>>= 8) bytes[i] = value & 0xff;
        }
        const fault = this.guestAccess({ lo: ptr, hi: ptrHi }, bytes, g.isIn);
        if (fault !== undefined) {
          c.setGpr(ptrReg, { lo: ptr, hi: ptrHi });
          if (g.rep) c.setGpr(RCX, { lo: (count - k) >>> 0, hi: c.getGpr(RCX).hi });
          return fault;
        }
        if (!g.isIn) {
          let value = 0;
          for (let i = size - 1; i >= 0; i--) value = value * 256 + bytes[i];
          const stop = this.effect(bus.portWrite(g.port, size, value >>> 0, v.index));
          if (stop !== null) return stop;
        }
        ptr = (ptr + delta) >>> 0;
      }
      c.setGpr(ptrReg, { lo: ptr, hi: c.getGpr(ptrReg).hi });
      if (g.rep) c.setGpr(RCX, { lo: 0, hi: c.getGpr(RCX).hi });
    } else if (g.isIn) {
      const value = bus.portRead(g.port, size, v.index);
      const rax = c.getGpr(RAX);
      if (size === 4) c.setGpr(RAX, { lo: value >>> 0, hi: 0 });
      else {
        const mask = size === 1 ? 0xff : 0xffff;
        c.setGpr(RAX, { lo: ((rax.lo & ~mask) | (value & mask)) >>> 0, hi: rax.hi });
      }
    } else {
      const mask = size === 4 ? 0xffffffff : size === 2 ? 0xffff : 0xff;
      const stop = this.effect(bus.portWrite(g.port, size, (c.getGpr(RAX).lo & mask) >>> 0, v.index));
      if (stop !== null) return stop;
    }
    this.complete(g.length);
    // I/O breakpoints (CR4.DE=1, R/W=10) match the guest's effective registers, not the
    // host's now in the physical CPU: pend the trap for the next entry (SDM 32.2.1).
    if ((c.getReg('cr4').lo & CR4_DE) !== 0) {
      const arch = v.views.arch;
      this.ioBreakpoints.load(arch.lo, arch.hi, true);
      const bits = this.ioBreakpoints.matchIo(g.port & 0xffff, size);
      if (bits !== 0) v.backend.addPendingDebugTraps(bits);
    }
    return null;
  }

  /** What a device asked for after an access (a port, an MSR, or MMIO during the guest's run). */
  effect(e: DeviceEffect): VmStop | null {
    if (e === null) return null;
    if (e.kind === 'exit') return this.v.stopWith({ kind: 'exit', vcpu: this.v.index, status: e.status });
    // An IPI woke another vCPU: end this one's turn, so that the target runs now, as it would
    // in parallel on hardware (the sender usually spins until the target has answered).
    if (this.v.vm.wake()) this.v.yieldTurn = true;
    return null;
  }

  private movDr(g: GenericExit): VmStop | null {
    const v = this.v;
    const c = v.cpu;
    let dr = g.dr;
    if (dr === 4 || dr === 5) {
      if ((c.getReg('cr4').lo & CR4_DE) !== 0) { v.backend.injectEvent({ vector: 6, type: 'hw' }); return null; }
      dr += 2;
    }
    // Intercepts are only on while merged; a stray exit (race with a cap change) re-runs.
    if (!v.views.merged) return null;
    if (v.views.generalDetect()) return null;
    if (g.toDr) {
      if (!v.views.guestWriteDr(dr as GuestDrIndex, c.getGpr(g.gpr as GprIndex))) { this.injectGP(); return null; }
    } else {
      c.setGpr(g.gpr as GprIndex, v.views.guestReadDr(dr as GuestDrIndex));
    }
    this.complete(g.length);
    return null;
  }

  private exception(g: GenericExit): VmStop | null {
    const v = this.v;
    if (g.vector === 1 && g.eventType === 'hw') return this.debugException(g);
    if (g.vector === 3 && v.caps.has('intercept-bp')) {
      return { kind: 'breakpoint', vcpu: v.index, rip: v.cpu.getReg('rip') };
    }
    // An intercepted exception that is not ours: reflect it as it was.
    v.backend.injectEvent({ vector: g.vector, type: g.eventType, errorCode: g.errorCode, instructionLength: g.length });
    return null;
  }

  /** #DB: the debugger's (its slots, its step), the guest's (reflected), or both. */
  private debugException(g: GenericExit): VmStop | null {
    const v = this.v;
    const views = v.views;
    const stepper = v.stepper;
    const status = g.dbStatus;
    const split = splitBreakpointStatus(status & DR6_B_MASK, views.currentOwners());
    const bs = (status & DR6_BS) !== 0;
    const step = bs && stepper.armed;
    // The hypervisor's own NMI-window step: its trap is consumed, the guest's own TF kept.
    const nmiBs = v.nmi.debugExit(status);
    const guestBs = bs && (stepper.armed ? stepper.guestTF : nmiBs !== 0);
    const guestStatus = split.guest | (guestBs ? DR6_BS : 0) | (status & DR6_BD);
    views.cleanDr6AfterDb();
    const mine = step || split.debugger !== 0;
    if (v.vm.trace !== null) {
      v.vm.trace({ type: 'db', ts: v.vm.now(), vcpu: v.index, dr6: status,
        owner: mine && guestStatus !== 0 ? 'both' : mine ? 'debugger' : 'guest' });
    }
    if (!mine) {
      if (guestStatus !== 0) views.reflectDb(guestStatus);
      return null;
    }
    views.pendingGuestDb |= guestStatus;
    if (views.hitsExecSlot(split.debugger)) {
      // An instruction breakpoint is a fault: RF=1 lets the instruction run when resumed.
      const rf = v.cpu.getReg('rflags');
      v.cpu.setReg('rflags', { lo: (rf.lo | RFLAGS_RF) >>> 0, hi: rf.hi });
    }
    if (step) return v.finishStep(split.debugger);
    return { kind: 'debug', vcpu: v.index, slotsHit: split.debugger, step: false };
  }
}
