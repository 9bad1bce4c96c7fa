import { CpuExit } from '../../cpu/cpu-exit';
import { GuestCpu, InjectedEvent } from '../../cpu/guest-cpu';
import { PhysicalCpu } from '../../cpu/physical-cpu';
import { DrSwitchMode } from '../../vmm-types';
import { U64, hex } from '../../u64';
import { VmBackend, GuestDrIndex } from '../backend';
import { DR6_BD, DR6_BS, DR6_B_MASK, DR7_RESERVED1, normalizeDr7 } from '../../x86/debug-regs';
import { DEBUGCTL_BTF, DEBUGCTL_WRITABLE } from '../../x86/msr';
import { TF as RFLAGS_TF } from '../../x86/rflags';
import { DrStep, DrSwitchRegs, enterSteps, leaveSteps } from '../dr-switch';
import { GenericExit } from '../exit';
import {
  EXIT_REASON, EXIT_REASON_ENTRY_FAIL, INTR_INFO_ERRCODE_VALID, INTR_INFO_VALID, INTR_T_EXTINT, INTR_T_HWEXCEPTION,
  INTR_T_NMI, INTR_T_PRIV_SWEXCEPTION, INTR_T_SWEXCEPTION, INTR_T_SWINTR, PINBASED_NMI_EXITING, PINBASED_VIRTUAL_NMIS,
  PROCBASED_HLT_EXITING, PROCBASED_MOV_DR_EXITING, PROCBASED_MTF, PROCBASED_NMI_WINDOW_EXITING, PROCBASED_UNCOND_IO_EXITING,
  VMCS, VM_ENTRY_LOAD_DEBUG_CONTROLS, VM_EXIT_SAVE_DEBUG_CONTROLS, Vmcs, vmcsSlot,
} from './vmcs';

/** Storage slots of the fields the entry/exit hot path touches on every transition. */
const S_EXIT_REASON = vmcsSlot(VMCS.EXIT_REASON);
const S_EXIT_QUALIFICATION = vmcsSlot(VMCS.EXIT_QUALIFICATION);
const S_EXIT_INTR_INFO = vmcsSlot(VMCS.EXIT_INTR_INFO);
const S_EXIT_INSTRUCTION_LENGTH = vmcsSlot(VMCS.EXIT_INSTRUCTION_LENGTH);
const S_EXIT_CTLS = vmcsSlot(VMCS.EXIT_CTLS);
const S_ENTRY_CTLS = vmcsSlot(VMCS.ENTRY_CTLS);
const S_GUEST_DR7 = vmcsSlot(VMCS.GUEST_DR7);
const S_GUEST_DEBUGCTL = vmcsSlot(VMCS.GUEST_IA32_DEBUGCTL);
const S_PENDING_DBG = vmcsSlot(VMCS.GUEST_PENDING_DBG_EXCEPTIONS);
const S_INTERRUPTIBILITY = vmcsSlot(VMCS.GUEST_INTERRUPTIBILITY);
const S_ACTIVITY = vmcsSlot(VMCS.GUEST_ACTIVITY);
const S_ENTRY_INTR_INFO = vmcsSlot(VMCS.ENTRY_INTR_INFO);
const S_PROCBASED = vmcsSlot(VMCS.PRI_PROC_BASED_CTLS);
const S_PINBASED = vmcsSlot(VMCS.PIN_BASED_CTLS);
const S_EXCEPTION_BITMAP = vmcsSlot(VMCS.EXCEPTION_BITMAP);

/** 'vmx:N' strings, made once. */
const BACKEND_REASON = Array.from({ length: 64 }, (_, i) => `vmx:${i}`);

/** Pending debug exceptions: bits that must be 0 (26.3.1.5): 11:4, 13, 15, 31:17 (63:32 checked apart). */
const PENDING_DBG_RESERVED = 0xfffeaff0;
const INTERRUPTIBILITY_STI = 1;
const INTERRUPTIBILITY_MOVSS = 2;
/** Blocking by NMI (Table 24-3): virtual-NMI blocking with the "virtual NMIs" control. */
const INTERRUPTIBILITY_NMI = 8;
/** VM-entry interruption information: valid, type NMI (the bits an NMI injection sets). */
const ENTRY_INFO_VALID_TYPE = INTR_INFO_VALID | (7 << 8);
const ENTRY_INFO_NMI = (INTR_INFO_VALID | (INTR_T_NMI << 8)) >>> 0;
const ACTIVITY_HLT = 1;

const EVENT_TYPE: Record<InjectedEvent['type'], number> = {
  extint: INTR_T_EXTINT, nmi: INTR_T_NMI, hw: INTR_T_HWEXCEPTION, sw: INTR_T_SWINTR, swexc: INTR_T_SWEXCEPTION, priv: INTR_T_PRIV_SWEXCEPTION,
};
const EXIT_EVENT_TYPE: Record<'hw' | 'sw' | 'swexc' | 'priv', number> = {
  hw: INTR_T_HWEXCEPTION, sw: INTR_T_SWINTR, swexc: INTR_T_SWEXCEPTION, priv: INTR_T_PRIV_SWEXCEPTION,
};

/**
 * Simulated VT-x. The VMCS holds guest DR7 and IA32_DEBUGCTL; guest RIP/RSP/RFLAGS are read
 * and written through to the guest CPU's register file (the processor's VMCS cache).
 */
export class VmxBackend implements VmBackend {
  readonly name = 'vmx' as const;
  readonly vmcs = new Vmcs();
  readonly drRegs = new DrSwitchRegs();
  readonly enterSteps: readonly DrStep[];
  readonly leaveSteps: readonly DrStep[];
  /** Triple-fault text has no VMCS field; kept beside the exit reason for the diagnosis. */
  private lastExitNote = '';

  constructor(readonly cpu: GuestCpu, readonly phys: PhysicalCpu, mode: DrSwitchMode) {
    this.enterSteps = enterSteps('vmx', mode);
    this.leaveSteps = leaveSteps('vmx', mode);
    // `none`: the pre-fix VMCS, without the debug-controls bits.
    const debugControls = mode === 'none' ? 0 : 1;
    this.vmcs.write32(VMCS.ENTRY_CTLS, debugControls * VM_ENTRY_LOAD_DEBUG_CONTROLS);
    this.vmcs.write32(VMCS.EXIT_CTLS, debugControls * VM_EXIT_SAVE_DEBUG_CONTROLS);
    this.vmcs.write32(VMCS.PRI_PROC_BASED_CTLS, PROCBASED_HLT_EXITING | PROCBASED_UNCOND_IO_EXITING);
    // As bhyve: host NMIs exit, the guest's NMIs are virtual (injected, blocking tracked by the VMCS).
    this.vmcs.write32(VMCS.PIN_BASED_CTLS, PINBASED_NMI_EXITING | PINBASED_VIRTUAL_NMIS);
    this.vmcs.write32(VMCS.EXCEPTION_BITMAP, 1 << 18); // #MC only, as bhyve
    this.vmcs.write32(VMCS.GUEST_DR7, DR7_RESERVED1);
  }

  // ---- hardware: VM entry (SDM 26) -------------------------------------------------------

  prepareEntry(): void { /* nothing: VT-x has no clean bits */ }

  hardwareEntry(): string | null {
    const v = this.vmcs;
    const lo = v.lo;
    const loadDebug = (lo[S_ENTRY_CTLS] & VM_ENTRY_LOAD_DEBUG_CONTROLS) !== 0;
    const why = this.checkGuestState(loadDebug);
    if (why !== null) {
      v.write32(VMCS.EXIT_REASON, EXIT_REASON_ENTRY_FAIL | EXIT_REASON.INVAL_VMCS);
      this.loadHostState();
      return why;
    }
    const p = this.phys;
    if (loadDebug) {
      // 26.3.2.1: DR7 loaded with bits 12, 15:14 forced 0 and bit 10 forced 1.
      p.drLo[7] = normalizeDr7(lo[S_GUEST_DR7]);
      p.drHi[7] = 0;
      p.debugctlLo = lo[S_GUEST_DEBUGCTL];
      p.debugctlHi = v.hi[S_GUEST_DEBUGCTL];
      p.generation++;
    }
    const c = this.cpu;
    c.pendingDebugExceptions = lo[S_PENDING_DBG];
    c.interruptibility = lo[S_INTERRUPTIBILITY] & (INTERRUPTIBILITY_STI | INTERRUPTIBILITY_MOVSS);
    // Virtual-NMI blocking lives in the VMCS: loaded here, saved at the exit.
    if ((lo[S_PINBASED] & PINBASED_VIRTUAL_NMIS) !== 0) c.nmiBlocked = (lo[S_INTERRUPTIBILITY] & INTERRUPTIBILITY_NMI) !== 0;
    c.halted = lo[S_ACTIVITY] === ACTIVITY_HLT;
    const procbased = lo[S_PROCBASED];
    const intercepts = c.intercepts;
    intercepts.exceptionBitmap = lo[S_EXCEPTION_BITMAP];
    intercepts.movDr = (procbased & PROCBASED_MOV_DR_EXITING) !== 0;
    intercepts.mtf = (procbased & PROCBASED_MTF) !== 0;
    intercepts.nmiWindow = (procbased & PROCBASED_NMI_WINDOW_EXITING) !== 0;
    intercepts.iret = false;
    intercepts.hypercall = 'vmcall'; // 25.1.2: VMCALL exits unconditionally
    const info = lo[S_ENTRY_INTR_INFO];
    if ((info & INTR_INFO_VALID) !== 0) {
      const type = (info >>> 8) & 7;
      const name = (Object.keys(EVENT_TYPE) as InjectedEvent['type'][]).find((k) => EVENT_TYPE[k] === type) ?? 'hw';
      c.inject({
        vector: info & 0xff, type: name,
        errorCode: (info & INTR_INFO_ERRCODE_VALID) !== 0 ? v.read32(VMCS.ENTRY_EXCEPTION_ERROR) : undefined,
        instructionLength: v.read32(VMCS.ENTRY_INST_LENGTH),
      });
    }
    return null;
  }

  /** The entry checks of 26.3.1 that concern debug state. */
  private checkGuestState(loadDebug: boolean): string | null {
    const v = this.vmcs;
    const nmiWhy = this.checkNmiState();
    if (nmiWhy !== null) return nmiWhy;
    // The common case, checked first: nothing that any rule below could reject.
    if ((!loadDebug || (v.hi[S_GUEST_DR7] === 0 && v.hi[S_GUEST_DEBUGCTL] === 0 && (v.lo[S_GUEST_DEBUGCTL] & ~DEBUGCTL_WRITABLE) === 0)) &&
        v.lo[S_PENDING_DBG] === 0 && v.hi[S_PENDING_DBG] === 0 && (v.lo[S_INTERRUPTIBILITY] & 3) === 0 && v.lo[S_ACTIVITY] !== ACTIVITY_HLT) {
      return null;
    }
    if (loadDebug) {
      if (v.readHi(VMCS.GUEST_DR7) !== 0) return 'VM entry failed: guest DR7[63:32] not zero';
      if (v.readHi(VMCS.GUEST_IA32_DEBUGCTL) !== 0 || (v.read32(VMCS.GUEST_IA32_DEBUGCTL) & ~DEBUGCTL_WRITABLE) !== 0) {
        return 'VM entry failed: guest IA32_DEBUGCTL reserved bits set';
      }
    }
    const pend = v.read32(VMCS.GUEST_PENDING_DBG_EXCEPTIONS);
    if (v.readHi(VMCS.GUEST_PENDING_DBG_EXCEPTIONS) !== 0 || (pend & PENDING_DBG_RESERVED) !== 0) {
      return 'VM entry failed: pending debug exceptions reserved bits set';
    }
    const blocking = (v.read32(VMCS.GUEST_INTERRUPTIBILITY) & (INTERRUPTIBILITY_STI | INTERRUPTIBILITY_MOVSS)) !== 0;
    if (blocking || v.read32(VMCS.GUEST_ACTIVITY) === ACTIVITY_HLT) {
      const tf = (this.cpu.getReg('rflags').lo & RFLAGS_TF) !== 0;
      const debugctl = loadDebug ? v.read32(VMCS.GUEST_IA32_DEBUGCTL) : this.phys.debugctlLo;
      const btf = (debugctl & DEBUGCTL_BTF) !== 0;
      const bs = (pend & DR6_BS) !== 0;
      if (tf && !btf && !bs) return 'VM entry failed: pending debug exceptions BS must be 1 (TF=1, BTF=0, blocking)';
      if ((!tf || btf) && bs) return 'VM entry failed: pending debug exceptions BS must be 0 (TF=0 or BTF=1, blocking)';
    }
    return null;
  }

  /** The checks of 26.2.1.1 and 26.3.1.5 that concern NMIs (NMI-window exiting, NMI injection). */
  private checkNmiState(): string | null {
    const lo = this.vmcs.lo;
    const pin = lo[S_PINBASED];
    if ((lo[S_PROCBASED] & PROCBASED_NMI_WINDOW_EXITING) !== 0 && (pin & PINBASED_VIRTUAL_NMIS) === 0) {
      return 'VM entry failed: NMI-window exiting without virtual NMIs';
    }
    if ((pin & PINBASED_VIRTUAL_NMIS) !== 0 && (pin & PINBASED_NMI_EXITING) === 0) return 'VM entry failed: virtual NMIs without NMI exiting';
    if ((lo[S_ENTRY_INTR_INFO] & ENTRY_INFO_VALID_TYPE) >>> 0 === ENTRY_INFO_NMI) {
      const blocking = lo[S_INTERRUPTIBILITY];
      if ((blocking & INTERRUPTIBILITY_MOVSS) !== 0) return 'VM entry failed: NMI injection with blocking by MOV SS';
      if ((blocking & INTERRUPTIBILITY_NMI) !== 0 && (pin & PINBASED_VIRTUAL_NMIS) !== 0) return 'VM entry failed: NMI injection with blocking by NMI';
    }
    return null;
  }

  // ---- hardware: VM exit (SDM 27) --------------------------------------------------------

  saveGuestState(e: CpuExit, out: GenericExit): void {
    const v = this.vmcs;
    let reason: number;
    let qual = 0;
    let intrInfo = 0;
    let length = 0;
    this.lastExitNote = '';
    switch (e.kind) {
      case 'exception':
        reason = EXIT_REASON.EXCEPTION_NMI;
        intrInfo = INTR_INFO_VALID | (EXIT_EVENT_TYPE[e.type] << 8) | e.vector |
          (e.errorCode !== undefined ? INTR_INFO_ERRCODE_VALID : 0);
        v.write32(VMCS.EXIT_INTR_ERRCODE, e.errorCode ?? 0);
        // 27.1: a #DB exit does not update DR6; B0-B3, BD, BS go to the qualification.
        if (e.vector === 1) qual = e.dr6 & (DR6_B_MASK | DR6_BD | DR6_BS);
        length = e.type === 'hw' ? 0 : e.instructionLength;
        break;
      case 'triple-fault': reason = EXIT_REASON.TRIPLE_FAULT; this.lastExitNote = e.reason; break;
      case 'hlt': reason = EXIT_REASON.HLT; length = e.length; break;
      case 'cpuid': reason = EXIT_REASON.CPUID; length = e.length; break;
      case 'hypercall': reason = EXIT_REASON.VMCALL; length = e.length; break;
      case 'rdmsr': reason = EXIT_REASON.RDMSR; length = e.length; break;
      case 'wrmsr': reason = EXIT_REASON.WRMSR; length = e.length; break;
      case 'io':
        // Table 27-5: size-1 in 2:0, direction 3 (1 = IN), string 4, REP 5, port 31:16.
        reason = EXIT_REASON.INOUT; length = e.length;
        qual = (e.size - 1) | (e.isIn ? 8 : 0) | (e.string ? 16 : 0) | (e.rep ? 32 : 0) | (e.port << 16);
        break;
      case 'mov-dr':
        // Table 27-4: DR number 2:0, direction 4 (1 = MOV from DR), GPR 11:8.
        reason = EXIT_REASON.DR_ACCESS; length = e.length;
        qual = e.dr | (e.toDr ? 0 : 16) | (e.gpr << 8);
        break;
      case 'mtf': reason = EXIT_REASON.MTF; break;
      case 'npf':
        reason = EXIT_REASON.EPT_VIOLATION;
        qual = (e.fetch ? 4 : e.write ? 2 : 1);
        v.write32(VMCS.GUEST_PHYSICAL_ADDRESS, e.address % 0x100000000, Math.floor(e.address / 0x100000000));
        break;
      case 'extint': reason = EXIT_REASON.EXT_INTR; break;
      case 'budget': reason = EXIT_REASON.EXT_INTR; this.lastExitNote = 'slice'; break;
      // The hypervisor's step after an event delivery: the VMM's own stop at a boundary.
      case 'event-delivered': reason = EXIT_REASON.EXT_INTR; this.lastExitNote = 'step-event'; break;
      case 'nmi-window': reason = EXIT_REASON.NMI_WINDOW; break;
      // A host NMI with "NMI exiting": exit reason 0, interruption type NMI, vector 2 (27.2.2).
      case 'nmi': reason = EXIT_REASON.EXCEPTION_NMI; intrInfo = INTR_INFO_VALID | (INTR_T_NMI << 8) | 2; break;
      // VT-x has no IRET intercept: the CPU never makes this exit here.
      case 'iret': reason = 0xffff; this.lastExitNote = 'IRET exit on VT-x'; break;
    }
    const lo = v.lo;
    const hi = v.hi;
    lo[S_EXIT_REASON] = reason;
    lo[S_EXIT_QUALIFICATION] = qual;
    hi[S_EXIT_QUALIFICATION] = 0;
    lo[S_EXIT_INTR_INFO] = intrInfo;
    lo[S_EXIT_INSTRUCTION_LENGTH] = length;

    const p = this.phys;
    if ((lo[S_EXIT_CTLS] & VM_EXIT_SAVE_DEBUG_CONTROLS) !== 0) {
      lo[S_GUEST_DR7] = p.drLo[7];
      hi[S_GUEST_DR7] = p.drHi[7];
      lo[S_GUEST_DEBUGCTL] = p.debugctlLo;
      hi[S_GUEST_DEBUGCTL] = p.debugctlHi;
    }
    const c = this.cpu;
    // 27.3.4: pending debug exceptions saved for MTF exits and for exits (not #DB) under
    // MOV-SS blocking; 0 otherwise.
    const movss = (c.interruptibility & INTERRUPTIBILITY_MOVSS) !== 0;
    // External-interrupt exits here come at this simulator's slice ends (host timer): a real
    // CPU delivers the traps of the last instruction before the interrupt (SDM 6.9), so they
    // stay pending and are delivered right after the next entry (26.6.3).
    // A host NMI arrives between two instructions as well: the guest's pending traps survive it.
    const atBoundary = e.kind === 'budget' || e.kind === 'extint' || e.kind === 'event-delivered' || e.kind === 'nmi' || e.kind === 'nmi-window';
    const keepPending = reason === EXIT_REASON.MTF || atBoundary || (movss && !(e.kind === 'exception' && e.vector === 1));
    lo[S_PENDING_DBG] = keepPending ? c.pendingDebugExceptions : 0;
    hi[S_PENDING_DBG] = 0;
    lo[S_INTERRUPTIBILITY] = c.interruptibility |
      ((lo[S_PINBASED] & PINBASED_VIRTUAL_NMIS) !== 0 && c.nmiBlocked ? INTERRUPTIBILITY_NMI : 0);
    lo[S_ACTIVITY] = c.halted ? ACTIVITY_HLT : 0;
    lo[S_ENTRY_INTR_INFO] = (lo[S_ENTRY_INTR_INFO] & ~INTR_INFO_VALID) >>> 0;
    this.decodeExit(out);
  }

  loadHostState(): void {
    // 27.5.1 / 27.5.3: DR7 = 400H, IA32_DEBUGCTL = 0, RFLAGS = 2 (host TF = 0).
    const p = this.phys;
    p.drLo[7] = DR7_RESERVED1;
    p.drHi[7] = 0;
    p.debugctlLo = 0;
    p.debugctlHi = 0;
    p.hostTF = false;
    p.generation++;
  }

  /** vmx_exit_process's view: the exit reason and qualification, as a generic record. */
  private decodeExit(g: GenericExit): void {
    const v = this.vmcs;
    const reason = v.lo[S_EXIT_REASON] & 0xffff;
    const qual = v.lo[S_EXIT_QUALIFICATION];
    g.backendReason = reason < BACKEND_REASON.length ? BACKEND_REASON[reason] : `vmx:${reason}`;
    g.length = v.lo[S_EXIT_INSTRUCTION_LENGTH];
    switch (reason) {
      case EXIT_REASON.EXCEPTION_NMI: {
        const info = v.read32(VMCS.EXIT_INTR_INFO);
        const type = (info >>> 8) & 7;
        if (type === INTR_T_NMI) { g.kind = 'nmi'; g.vector = 2; break; }
        g.kind = 'exception';
        g.vector = info & 0xff;
        g.errorCode = (info & INTR_INFO_ERRCODE_VALID) !== 0 ? v.read32(VMCS.EXIT_INTR_ERRCODE) : undefined;
        g.eventType = type === INTR_T_SWINTR ? 'sw' : type === INTR_T_SWEXCEPTION ? 'swexc' : type === INTR_T_PRIV_SWEXCEPTION ? 'priv' : 'hw';
        g.dbStatus = g.vector === 1 ? qual & (DR6_B_MASK | DR6_BD | DR6_BS) : 0;
        break;
      }
      case EXIT_REASON.EXT_INTR: g.kind = this.lastExitNote === 'slice' ? 'slice' : this.lastExitNote === 'step-event' ? 'step-event' : 'extint'; break;
      case EXIT_REASON.TRIPLE_FAULT: g.kind = 'triple-fault'; g.reason = this.lastExitNote; break;
      case EXIT_REASON.HLT: g.kind = 'hlt'; break;
      case EXIT_REASON.CPUID: g.kind = 'cpuid'; break;
      case EXIT_REASON.VMCALL: g.kind = 'hypercall'; break;
      case EXIT_REASON.RDMSR: g.kind = 'rdmsr'; break;
      case EXIT_REASON.WRMSR: g.kind = 'wrmsr'; break;
      case EXIT_REASON.INOUT:
        g.kind = 'io';
        g.size = ((qual & 7) + 1) as 1 | 2 | 4;
        g.isIn = (qual & 8) !== 0;
        g.string = (qual & 16) !== 0;
        g.rep = (qual & 32) !== 0;
        g.port = qual >>> 16;
        break;
      case EXIT_REASON.DR_ACCESS:
        g.kind = 'mov-dr';
        g.dr = qual & 7;
        g.toDr = (qual & 16) === 0;
        g.gpr = (qual >>> 8) & 15;
        break;
      case EXIT_REASON.MTF: g.kind = 'mtf'; break;
      case EXIT_REASON.NMI_WINDOW: g.kind = 'nmi-window'; break;
      case EXIT_REASON.EPT_VIOLATION:
        g.kind = 'npf';
        g.address = v.read32(VMCS.GUEST_PHYSICAL_ADDRESS) + v.readHi(VMCS.GUEST_PHYSICAL_ADDRESS) * 0x100000000;
        g.write = (qual & 2) !== 0;
        break;
      default: g.kind = 'entry-failed'; g.reason = this.lastExitNote || `unexpected exit reason ${reason}`;
    }
  }

  // ---- software: vmx_getreg / vmx_setreg / vmx_setcap ------------------------------------

  getGuestDr(n: GuestDrIndex): U64 {
    if (n === 7) return this.vmcs.read(VMCS.GUEST_DR7);
    return { lo: this.drRegs.guestLo[n], hi: this.drRegs.guestHi[n] };
  }

  setGuestDr(n: GuestDrIndex, val: U64): void {
    if (n === 7) { this.vmcs.write(VMCS.GUEST_DR7, val); return; }
    this.drRegs.guestLo[n] = val.lo >>> 0;
    this.drRegs.guestHi[n] = val.hi >>> 0;
  }

  getGuestDebugctl(): U64 { return this.vmcs.read(VMCS.GUEST_IA32_DEBUGCTL); }

  setGuestDebugctl(val: U64): boolean {
    if (val.hi !== 0 || (val.lo & ~DEBUGCTL_WRITABLE) !== 0) return false;
    this.vmcs.write(VMCS.GUEST_IA32_DEBUGCTL, val);
    return true;
  }

  setExceptionIntercept(vector: number, on: boolean): void {
    const b = this.vmcs.read32(VMCS.EXCEPTION_BITMAP);
    this.vmcs.write32(VMCS.EXCEPTION_BITMAP, on ? b | (1 << vector) : b & ~(1 << vector));
  }

  guestInterruptibility(): number { return this.vmcs.lo[S_INTERRUPTIBILITY] & 3; }

  setDrIntercept(on: boolean): void { this.setProcbased(PROCBASED_MOV_DR_EXITING, on); }

  setMtf(on: boolean): boolean { this.setProcbased(PROCBASED_MTF, on); return true; }

  nmiInjectable(): boolean {
    // vmx_inject_nmi's conditions: no STI / MOV-SS / NMI blocking, nothing else injected, and
    // no pending debug exception (an NMI injection would discard it; the trap ranks above).
    const lo = this.vmcs.lo;
    return (lo[S_INTERRUPTIBILITY] & (INTERRUPTIBILITY_STI | INTERRUPTIBILITY_MOVSS | INTERRUPTIBILITY_NMI)) === 0 &&
      (lo[S_ENTRY_INTR_INFO] & INTR_INFO_VALID) === 0 && lo[S_PENDING_DBG] === 0;
  }

  guestNmiBlocked(): boolean { return (this.vmcs.lo[S_INTERRUPTIBILITY] & INTERRUPTIBILITY_NMI) !== 0; }

  setNmiWindowExiting(on: boolean): boolean { this.setProcbased(PROCBASED_NMI_WINDOW_EXITING, on); return true; }

  setIretIntercept(_on: boolean): boolean { return false; }

  clearNmiBlocking(): void { this.vmcs.lo[S_INTERRUPTIBILITY] &= ~INTERRUPTIBILITY_NMI; }

  private setProcbased(bit: number, on: boolean): void {
    const c = this.vmcs.read32(VMCS.PRI_PROC_BASED_CTLS);
    this.vmcs.write32(VMCS.PRI_PROC_BASED_CTLS, on ? c | bit : c & ~bit);
  }

  afterEmulation(): void {
    // By slot (every emulated exit): as write32 of each field, whose high half becomes 0.
    const lo = this.vmcs.lo;
    const hi = this.vmcs.hi;
    lo[S_INTERRUPTIBILITY] = (lo[S_INTERRUPTIBILITY] & ~(INTERRUPTIBILITY_STI | INTERRUPTIBILITY_MOVSS)) >>> 0;
    hi[S_INTERRUPTIBILITY] = 0;
    lo[S_PENDING_DBG] = (lo[S_PENDING_DBG] | this.cpu.pendingDebugExceptions) >>> 0;
    hi[S_PENDING_DBG] = 0;
  }

  addPendingDebugTraps(bits: number): void {
    // Table 24-4: B0-B3, bit 12 when an enabled breakpoint is among them, BS.
    const v = this.vmcs;
    const add = (bits & 0x400f) | ((bits & 0xf) !== 0 ? 0x1000 : 0);
    v.write32(VMCS.GUEST_PENDING_DBG_EXCEPTIONS, v.read32(VMCS.GUEST_PENDING_DBG_EXCEPTIONS) | add);
  }

  clearPendingSingleStep(): void {
    const v = this.vmcs;
    let pend = v.read32(VMCS.GUEST_PENDING_DBG_EXCEPTIONS) & ~DR6_BS;
    if ((pend & 0xf) === 0) pend &= ~0x1000;
    v.write32(VMCS.GUEST_PENDING_DBG_EXCEPTIONS, pend);
  }

  injectEvent(ev: InjectedEvent): void {
    const v = this.vmcs;
    v.write32(VMCS.ENTRY_INTR_INFO, INTR_INFO_VALID | (EVENT_TYPE[ev.type] << 8) | (ev.vector & 0xff) |
      (ev.errorCode !== undefined ? INTR_INFO_ERRCODE_VALID : 0));
    v.write32(VMCS.ENTRY_EXCEPTION_ERROR, ev.errorCode ?? 0);
    v.write32(VMCS.ENTRY_INST_LENGTH, ev.instructionLength ?? 0);
  }

  describe(): string {
    const v = this.vmcs;
    const f = (name: string, enc: number): string => `${name}(${enc.toString(16)}H)=${hex(v.read32(enc), v.readHi(enc))}`;
    return [f('GUEST_DR7', VMCS.GUEST_DR7), f('GUEST_IA32_DEBUGCTL', VMCS.GUEST_IA32_DEBUGCTL),
      f('PENDING_DBG', VMCS.GUEST_PENDING_DBG_EXCEPTIONS), f('EXCEPTION_BITMAP', VMCS.EXCEPTION_BITMAP),
      f('PROCBASED', VMCS.PRI_PROC_BASED_CTLS), f('PINBASED', VMCS.PIN_BASED_CTLS), f('INTERRUPTIBILITY', VMCS.GUEST_INTERRUPTIBILITY), f('ENTRY_CTLS', VMCS.ENTRY_CTLS), f('EXIT_CTLS', VMCS.EXIT_CTLS)].join(' ');
  }
}
