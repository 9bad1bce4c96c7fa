import { CpuExit } from '../../cpu/cpu-exit';
import { GuestCpu, InjectedEvent } from '../../cpu/guest-cpu';
import { PhysicalCpu } from '../../cpu/physical-cpu';
import { DrSwitchMode } from '../../vmm-types';
import { U64, hex } from '../../u64';
import { VmBackend, GuestDrIndex } from '../backend';
import { DR6_BD, DR6_BS, DR6_B_MASK, DR6_RESERVED1, DR7_GD } from '../../x86/debug-regs';
import { DEBUGCTL_WRITABLE } from '../../x86/msr';
import { DrStep, DrSwitchRegs, enterSteps, leaveSteps } from '../dr-switch';
import { GenericExit } from '../exit';
import {
  EVENTINJ_EV, EVENTINJ_TYPE_EXCEPTION, EVENTINJ_TYPE_INTR, EVENTINJ_TYPE_NMI, EVENTINJ_TYPE_SOFT, EVENTINJ_VALID,
  VMCB_CLEAN_ASID, VMCB_CLEAN_CR, VMCB_CLEAN_CR2, VMCB_CLEAN_DR, VMCB_CLEAN_DT, VMCB_CLEAN_I, VMCB_CLEAN_IOPM,
  VMCB_CLEAN_LBR, VMCB_CLEAN_NP, VMCB_CLEAN_SEG, VMCB_CLEAN_TPR, VMEXIT, Vmcb,
} from './vmcb';

/** What the simulated processor keeps of a VMCB between runs (the state clean bits cover). */
interface VmcbCache {
  phys: PhysicalCpu;
  dr6Lo: number; dr6Hi: number; dr7Lo: number; dr7Hi: number;
  dbgctlLo: number; dbgctlHi: number;
}

/** 'svm:0xNN' strings, made once. */
const BACKEND_REASON = Array.from({ length: 0x401 }, (_, i) => `svm:0x${i.toString(16)}`);

/** #DF, #TS, #NP, #SS, #GP, #PF, #AC push an error code (EXITINFO1 holds it). */
const EXCEPTIONS_WITH_ERROR_CODE = (1 << 8) | (1 << 10) | (1 << 11) | (1 << 12) | (1 << 13) | (1 << 14) | (1 << 17);

/** bhyve's VMCB_CACHE_DEFAULT (svm.c), plus LBR since we enable LBR virtualization. */
const CLEAN_DEFAULT = VMCB_CLEAN_ASID | VMCB_CLEAN_IOPM | VMCB_CLEAN_I | VMCB_CLEAN_TPR | VMCB_CLEAN_CR2 | VMCB_CLEAN_CR |
  VMCB_CLEAN_DR | VMCB_CLEAN_DT | VMCB_CLEAN_SEG | VMCB_CLEAN_NP | VMCB_CLEAN_LBR;

/**
 * Simulated AMD SVM. The VMCB state-save area holds guest DR6, DR7 and DBGCTL; VMRUN loads
 * them (from the processor's cache when clean bit 6 / 10 says so) and #VMEXIT saves them.
 */
export class SvmBackend implements VmBackend {
  readonly name = 'svm' as const;
  readonly vmcb = new Vmcb();
  readonly drRegs = new DrSwitchRegs();
  readonly enterSteps: readonly DrStep[];
  readonly leaveSteps: readonly DrStep[];
  /** Software: bits of vmcb_clean the hypervisor may set (sysctl hw.vmm.svm.vmcb_clean). */
  private readonly cleanPolicy: number;
  /** Software: whether a guest DR6/DR7 write marks VMCB_CACHE_DR dirty (svm_set_dirty). */
  private readonly markDrDirty: boolean;
  /** Software: state changed since the last VMRUN (svm_softc vcpu->dirty); all at first. */
  private dirty = 0xffffffff;
  /** Hardware: the processor's VMCB cache and host-save area. */
  private cache: VmcbCache | null = null;
  private hostSaveTF = false;
  private hostSaveDebugctlLo = 0;
  private hostSaveDebugctlHi = 0;
  private lastExitNote = '';

  constructor(readonly cpu: GuestCpu, readonly phys: PhysicalCpu, mode: DrSwitchMode) {
    this.enterSteps = enterSteps('svm', mode);
    this.leaveSteps = leaveSteps('svm', mode);
    // `none`: the DR clean bit is never used and DebugCtl not virtualized (pre-fix bhyve).
    this.cleanPolicy = mode === 'none' ? CLEAN_DEFAULT & ~(VMCB_CLEAN_DR | VMCB_CLEAN_LBR) : CLEAN_DEFAULT;
    this.markDrDirty = mode !== 'no-svm-dirty';
    this.vmcb.control.lbrVirtualizationEnable = mode !== 'none';
    this.vmcb.control.exceptionIntercepts = 1 << 18; // #MC
  }

  // ---- software: before VMRUN (svm_vmrun) ------------------------------------------------

  prepareEntry(): void {
    this.vmcb.control.vmcbClean = this.cleanPolicy & ~this.dirty;
    this.dirty = 0;
  }

  // ---- hardware: VMRUN (APM 15.5.1) ------------------------------------------------------

  hardwareEntry(): string | null {
    const s = this.vmcb.save;
    const ctl = this.vmcb.control;
    if (s.dr6Hi !== 0 || s.dr7Hi !== 0) {
      ctl.exitCode = VMEXIT.INVALID;
      return 'VMEXIT_INVALID: guest DR6/DR7 bits 63:32 not zero';
    }
    const p = this.phys;
    this.hostSaveTF = p.hostTF;
    const cacheUsable = this.cache !== null && this.cache.phys === p;
    if ((ctl.vmcbClean & VMCB_CLEAN_DR) !== 0 && cacheUsable && this.cache !== null) {
      // Clean: the processor may (and here does) use its cached copy, stale or not.
      p.drLo[6] = this.cache.dr6Lo; p.drHi[6] = this.cache.dr6Hi;
      p.drLo[7] = this.cache.dr7Lo; p.drHi[7] = this.cache.dr7Hi;
    } else {
      p.drLo[6] = s.dr6Lo; p.drHi[6] = s.dr6Hi;
      p.drLo[7] = s.dr7Lo; p.drHi[7] = s.dr7Hi;
    }
    if (ctl.lbrVirtualizationEnable) {
      this.hostSaveDebugctlLo = p.debugctlLo;
      this.hostSaveDebugctlHi = p.debugctlHi;
      if ((ctl.vmcbClean & VMCB_CLEAN_LBR) !== 0 && cacheUsable && this.cache !== null) {
        p.debugctlLo = this.cache.dbgctlLo; p.debugctlHi = this.cache.dbgctlHi;
      } else {
        p.debugctlLo = s.dbgctlLo; p.debugctlHi = s.dbgctlHi;
      }
    }
    p.generation++;
    this.fillCache();
    const c = this.cpu;
    c.intercepts.exceptionBitmap = ctl.exceptionIntercepts;
    c.intercepts.movDr = (ctl.drReadIntercepts | ctl.drWriteIntercepts) !== 0;
    c.intercepts.mtf = false;
    c.intercepts.nmiWindow = false;
    c.intercepts.iret = ctl.iretIntercept;
    c.intercepts.hypercall = 'vmmcall'; // the VMMCALL intercept is always on (as KVM's)
    c.interruptibility = ctl.interruptShadow;
    if ((ctl.eventInjLo & EVENTINJ_VALID) !== 0) {
      const type = (ctl.eventInjLo >>> 8) & 7;
      const vector = ctl.eventInjLo & 0xff;
      c.inject({
        vector,
        type: type === EVENTINJ_TYPE_INTR ? 'extint' : type === EVENTINJ_TYPE_NMI ? 'nmi' : type === EVENTINJ_TYPE_SOFT ? 'sw' : 'hw',
        errorCode: (ctl.eventInjLo & EVENTINJ_EV) !== 0 ? ctl.eventInjErr : undefined,
        instructionLength: 0,
      });
      ctl.eventInjLo &= ~EVENTINJ_VALID;
    }
    return null;
  }

  /** The processor's copy of the state it just loaded or saved for this VMCB. */
  private fillCache(): void {
    const p = this.phys;
    const c = this.cache ?? (this.cache = { phys: p, dr6Lo: 0, dr6Hi: 0, dr7Lo: 0, dr7Hi: 0, dbgctlLo: 0, dbgctlHi: 0 });
    const lbr = this.vmcb.control.lbrVirtualizationEnable;
    c.phys = p;
    c.dr6Lo = p.drLo[6]; c.dr6Hi = p.drHi[6];
    c.dr7Lo = p.drLo[7]; c.dr7Hi = p.drHi[7];
    c.dbgctlLo = lbr ? p.debugctlLo : this.vmcb.save.dbgctlLo;
    c.dbgctlHi = lbr ? p.debugctlHi : this.vmcb.save.dbgctlHi;
  }

  // ---- hardware: #VMEXIT (APM 15.6) ------------------------------------------------------

  saveGuestState(e: CpuExit, out: GenericExit): void {
    const ctl = this.vmcb.control;
    const p = this.phys;
    let code: number;
    let info1 = 0;
    let info2 = 0;
    let length = 0;
    this.lastExitNote = '';
    switch (e.kind) {
      case 'exception':
        code = VMEXIT.EXCP_BASE + e.vector;
        info1 = e.errorCode ?? 0;
        length = e.type === 'hw' ? 0 : e.instructionLength;
        if (e.vector === 1) {
          // 15.12.2: a #DB intercept writes DR6 and DR7 as a #DB handler would see them.
          p.drLo[6] = ((p.drLo[6] | DR6_RESERVED1) & ~DR6_B_MASK) | (e.dr6 & (DR6_B_MASK | DR6_BD | DR6_BS | (1 << 15)));
          p.drLo[7] &= ~DR7_GD;
          p.generation++;
        }
        break;
      case 'triple-fault': code = VMEXIT.SHUTDOWN; this.lastExitNote = e.reason; break;
      case 'hlt': code = VMEXIT.HLT; length = e.length; break;
      case 'cpuid': code = VMEXIT.CPUID; length = e.length; break;
      case 'hypercall': code = VMEXIT.VMMCALL; length = e.length; break;
      case 'rdmsr': code = VMEXIT.MSR; info1 = 0; length = e.length; break;
      case 'wrmsr': code = VMEXIT.MSR; info1 = 1; length = e.length; break;
      case 'io':
        // 15.10.2: TYPE 0 (1 = IN), STR 2, REP 3, SZ8/16/32 4-6, port 31:16.
        code = VMEXIT.IOIO; length = e.length;
        info1 = (e.isIn ? 1 : 0) | (e.string ? 4 : 0) | (e.rep ? 8 : 0) | ((e.size === 1 ? 1 : e.size === 2 ? 2 : 4) << 4) | (e.port << 16);
        break;
      case 'mov-dr': code = (e.toDr ? VMEXIT.DR_WRITE : VMEXIT.DR_READ) + e.dr; info1 = e.gpr; length = e.length; break;
      case 'npf': code = VMEXIT.NPF; info1 = (e.write ? 2 : 0) | (e.fetch ? 16 : 0); info2 = e.address; break;
      case 'extint': code = VMEXIT.INTR; break;
      case 'budget': code = VMEXIT.INTR; this.lastExitNote = 'slice'; break;
      case 'mtf': code = VMEXIT.INVALID; this.lastExitNote = 'MTF exit on SVM'; break;
      // The hypervisor's step after an event delivery: the VMM's own stop at a boundary.
      case 'event-delivered': code = VMEXIT.INTR; this.lastExitNote = 'step-event'; break;
      // A host NMI with the NMI intercept on (VMEXIT_NMI); the IRET intercept (RIP at the IRET).
      case 'nmi': code = VMEXIT.NMI; break;
      case 'iret': code = VMEXIT.IRET; length = e.length; break;
      case 'nmi-window': code = VMEXIT.INVALID; this.lastExitNote = 'NMI-window exit on SVM'; break;
    }
    // No debug trap is pending across a #VMEXIT, except at this simulator's slice ends (the
    // trap of the last instruction would have come first on real hardware).
    if (e.kind !== 'budget' && e.kind !== 'extint' && e.kind !== 'event-delivered' && e.kind !== 'nmi') this.cpu.pendingDebugExceptions = 0;
    ctl.exitCode = code;
    ctl.exitInfo1Lo = info1 >>> 0;
    ctl.exitInfo1Hi = 0;
    ctl.exitInfo2Lo = info2 % 0x100000000;
    ctl.exitInfo2Hi = Math.floor(info2 / 0x100000000);
    // nRIP: the next sequential instruction of an intercepted instruction (15.7.1).
    ctl.nextRipLo = length !== 0 ? (this.cpu.getReg('rip').lo + length) >>> 0 : 0;
    ctl.interruptShadow = this.cpu.interruptibility & 3;
    const s = this.vmcb.save;
    s.dr6Lo = p.drLo[6]; s.dr6Hi = p.drHi[6];
    s.dr7Lo = p.drLo[7]; s.dr7Hi = p.drHi[7];
    if (ctl.lbrVirtualizationEnable) { s.dbgctlLo = p.debugctlLo; s.dbgctlHi = p.debugctlHi; }
    this.fillCache();
    this.decodeExit(out, length);
  }

  loadHostState(): void {
    const p = this.phys;
    // "Disables all breakpoints in the host DR7": L0-3/G0-3 cleared; DR6 keeps the guest value.
    p.drLo[7] &= ~0xff;
    if (this.vmcb.control.lbrVirtualizationEnable) {
      p.debugctlLo = this.hostSaveDebugctlLo;
      p.debugctlHi = this.hostSaveDebugctlHi;
    }
    p.hostTF = this.hostSaveTF;
    p.generation++;
  }

  /** svm_vmexit's view: EXITCODE / EXITINFO as a generic record. */
  private decodeExit(g: GenericExit, length: number): void {
    const ctl = this.vmcb.control;
    const code = ctl.exitCode;
    const i1 = ctl.exitInfo1Lo;
    g.backendReason = code >= 0 && code < BACKEND_REASON.length ? BACKEND_REASON[code] : `svm:0x${(code >>> 0).toString(16)}`;
    g.length = length;
    if (code >= VMEXIT.EXCP_BASE && code < VMEXIT.EXCP_BASE + 32) {
      g.kind = 'exception';
      g.vector = code - VMEXIT.EXCP_BASE;
      g.errorCode = ((1 << g.vector) & EXCEPTIONS_WITH_ERROR_CODE) !== 0 ? i1 : undefined;
      g.eventType = length === 0 ? 'hw' : g.vector === 3 || g.vector === 4 ? 'swexc' : 'sw';
      g.dbStatus = g.vector === 1 ? this.vmcb.save.dr6Lo & (DR6_B_MASK | DR6_BD | DR6_BS) : 0;
      return;
    }
    if (code >= VMEXIT.DR_READ && code < VMEXIT.DR_WRITE + 16) {
      g.kind = 'mov-dr';
      g.toDr = code >= VMEXIT.DR_WRITE;
      g.dr = (code - (g.toDr ? VMEXIT.DR_WRITE : VMEXIT.DR_READ)) & 7;
      g.gpr = i1 & 15;
      return;
    }
    switch (code) {
      case VMEXIT.INTR: g.kind = this.lastExitNote === 'slice' ? 'slice' : this.lastExitNote === 'step-event' ? 'step-event' : 'extint'; return;
      case VMEXIT.HLT: g.kind = 'hlt'; return;
      case VMEXIT.NMI: g.kind = 'nmi'; g.vector = 2; return;
      case VMEXIT.IRET: g.kind = 'iret'; return;
      case VMEXIT.CPUID: g.kind = 'cpuid'; return;
      case VMEXIT.VMMCALL: g.kind = 'hypercall'; return;
      case VMEXIT.MSR: g.kind = i1 === 1 ? 'wrmsr' : 'rdmsr'; return;
      case VMEXIT.IOIO:
        g.kind = 'io';
        g.isIn = (i1 & 1) !== 0;
        g.string = (i1 & 4) !== 0;
        g.rep = (i1 & 8) !== 0;
        g.size = (i1 & 0x10) !== 0 ? 1 : (i1 & 0x20) !== 0 ? 2 : 4;
        g.port = i1 >>> 16;
        return;
      case VMEXIT.SHUTDOWN: g.kind = 'triple-fault'; g.reason = this.lastExitNote; return;
      case VMEXIT.NPF:
        g.kind = 'npf';
        g.address = ctl.exitInfo2Lo + ctl.exitInfo2Hi * 0x100000000;
        g.write = (i1 & 2) !== 0;
        return;
      default: g.kind = 'entry-failed'; g.reason = this.lastExitNote || `unexpected exit code ${code}`;
    }
  }

  // ---- software: svm_getreg / svm_setreg / svm_setcap ------------------------------------

  getGuestDr(n: GuestDrIndex): U64 {
    const s = this.vmcb.save;
    if (n === 6) return { lo: s.dr6Lo, hi: s.dr6Hi };
    if (n === 7) return { lo: s.dr7Lo, hi: s.dr7Hi };
    return { lo: this.drRegs.guestLo[n], hi: this.drRegs.guestHi[n] };
  }

  setGuestDr(n: GuestDrIndex, v: U64): void {
    const s = this.vmcb.save;
    if (n === 6 || n === 7) {
      if (n === 6) { s.dr6Lo = v.lo >>> 0; s.dr6Hi = v.hi >>> 0; } else { s.dr7Lo = v.lo >>> 0; s.dr7Hi = v.hi >>> 0; }
      if (this.markDrDirty) this.dirty |= VMCB_CLEAN_DR;
      return;
    }
    this.drRegs.guestLo[n] = v.lo >>> 0;
    this.drRegs.guestHi[n] = v.hi >>> 0;
  }

  getGuestDebugctl(): U64 { return { lo: this.vmcb.save.dbgctlLo, hi: this.vmcb.save.dbgctlHi }; }

  setGuestDebugctl(v: U64): boolean {
    if (v.hi !== 0 || (v.lo & ~DEBUGCTL_WRITABLE) !== 0) return false;
    this.vmcb.save.dbgctlLo = v.lo >>> 0;
    this.vmcb.save.dbgctlHi = 0;
    this.dirty |= VMCB_CLEAN_LBR;
    return true;
  }

  setExceptionIntercept(vector: number, on: boolean): void {
    const c = this.vmcb.control;
    c.exceptionIntercepts = on ? c.exceptionIntercepts | (1 << vector) : c.exceptionIntercepts & ~(1 << vector);
    this.dirty |= VMCB_CLEAN_I;
  }

  guestInterruptibility(): number { return this.vmcb.control.interruptShadow & 3; }

  setDrIntercept(on: boolean): void {
    // DR0-3, DR6, DR7 (bits 4 and 5 alias 6 and 7 with CR4.DE=0).
    const bits = on ? 0xff : 0;
    this.vmcb.control.drReadIntercepts = bits;
    this.vmcb.control.drWriteIntercepts = bits;
    this.dirty |= VMCB_CLEAN_I;
  }

  setMtf(_on: boolean): boolean { return false; }

  nmiInjectable(): boolean {
    // KVM's svm_nmi_blocked without the NMI mask (the hypervisor tracks that itself): no
    // interrupt shadow, nothing else in EVENTINJ, no debug trap pending (it ranks above).
    const ctl = this.vmcb.control;
    return (ctl.interruptShadow & 3) === 0 && (ctl.eventInjLo & EVENTINJ_VALID) === 0 && this.cpu.pendingDebugExceptions === 0;
  }

  guestNmiBlocked(): boolean { return false; }

  setNmiWindowExiting(_on: boolean): boolean { return false; }

  clearNmiBlocking(): void { /* the hypervisor's own record (nmi.ts) */ }

  setIretIntercept(on: boolean): boolean {
    this.vmcb.control.iretIntercept = on;
    this.dirty |= VMCB_CLEAN_I;
    return true;
  }

  afterEmulation(): void {
    // No pending-debug field on SVM: traps the emulated instruction raised stay pending in the CPU.
    this.vmcb.control.interruptShadow = 0;
  }

  addPendingDebugTraps(bits: number): void {
    this.cpu.pendingDebugExceptions = this.cpu.pendingDebugExceptions | (bits & 0x400f);
  }

  clearPendingSingleStep(): void {
    this.cpu.pendingDebugExceptions = this.cpu.pendingDebugExceptions & ~DR6_BS;
  }

  injectEvent(ev: InjectedEvent): void {
    const type = ev.type === 'extint' ? EVENTINJ_TYPE_INTR : ev.type === 'nmi' ? EVENTINJ_TYPE_NMI
      : ev.type === 'sw' ? EVENTINJ_TYPE_SOFT : EVENTINJ_TYPE_EXCEPTION;
    this.vmcb.control.eventInjLo = EVENTINJ_VALID | (type << 8) | (ev.vector & 0xff) | (ev.errorCode !== undefined ? EVENTINJ_EV : 0);
    this.vmcb.control.eventInjErr = ev.errorCode ?? 0;
  }

  describe(): string {
    const s = this.vmcb.save;
    const c = this.vmcb.control;
    return `DR6=${hex(s.dr6Lo, s.dr6Hi)} DR7=${hex(s.dr7Lo, s.dr7Hi)} DBGCTL=${hex(s.dbgctlLo, s.dbgctlHi)} ` +
      `exception-intercepts=${hex(c.exceptionIntercepts)} dr-read=${hex(c.drReadIntercepts)} dr-write=${hex(c.drWriteIntercepts)} ` +
      `clean=${hex(c.vmcbClean)} lbr-virt=${c.lbrVirtualizationEnable ? 1 : 0} iret-intercept=${c.iretIntercept ? 1 : 0}`;
  }
}
