/**
 * Architectural state of the guest CPU and the primitives every instruction uses:
 * registers as 32-bit halves, lazy arithmetic flags, guest-memory access with the
 * nested-page-fault, data-breakpoint and self-modifying-code checks.
 *
 * Faults are thrown as the preallocated sentinel FAULT (details in the fields) so that
 * nothing allocates per instruction.
 */
import { GuestMemory } from '../memory';
import type { DeviceEffect } from '../devices/device';
import { PhysicalCpu } from './physical-cpu';
import { CodeTracker, codeTrackerOf } from './code-cache';
import { BOOT_CR3, ensureBootPageTables } from './boot-page-tables';
import {
  TLB_MASK, ACC_READ, ACC_SYS, PagingMode, pagingModeOf, newTlb, tlbFlushAll, tlbFlushNonGlobal,
  tlbInvalidatePage, retag, linearRead, linearWrite, linearProbeWrite,
} from './mmu';
import { BreakpointSummary } from './debug-match';
import { CpuExit } from './cpu-exit';
import { CpuIntercepts } from './guest-cpu';
import { FpuState } from './fpu-state';
import type { Insn } from './insn';
import { LF, PARITY, ARITH_MASK } from './flags';
import { CF, PF, AF, ZF, SF, OF, AC } from '../x86/rflags';
import { CR0_AM } from '../x86/control-regs';
import { PdeCache } from './pde-cache';

/** Segment attribute bits (VMX access-rights layout, segments.ts): unusable, type bit 2 (expand-down data / conforming code). */
const SEG_UNUSABLE = 0x10000, SEG_TYPE_E = 4;

/** What was thrown: see CpuCore.faultKind. */
export const FAULT = { fault: true };
/** Returned by a handler instead of a RIP: the instruction caused an intercept exit. */
/** Not an integer, so never a RIP (RIP is signed: -1 is the canonical address 2^64-1). */
export const EXIT_RIP = -0.5;

export const enum FaultKind {
  /** A CPU exception: faultVector / faultError (-1 = none). */
  EXCEPTION = 0,
  /** Guest-physical access outside RAM: npfAddr, npfWrite, npfFetch. */
  NPF = 1,
  /** An instruction intercept or other VM exit prepared in `exitReason` (instruction not executed). */
  EXIT = 2,
  /** A software interrupt (INT n / INT3 / INT1) to deliver after the instruction. */
  SOFTINT = 3,
}

/** Sign bit of the low half by operand size (size 8: bit 31 of the high half). */
const SIGN = [0, 0x80, 0x8000, 0, 0x80000000, 0, 0, 0, 0x80000000];
/** Value masks by operand size, as int32 (4 and 8: -1). */
export const MASK = [0, 0xff, 0xffff, 0, -1, 0, 0, 0, -1];

export class CpuCore {
  /** GPRs in encoding order, bits 31:0 and 63:32. */
  readonly rl = new Uint32Array(16);
  readonly rh = new Uint32Array(16);
  rip = 0;
  /** RFLAGS; the arithmetic bits are valid only when lfOp === LF.NONE. */
  rflags = 2;
  // lazy flags
  lfOp = LF.NONE;
  lfSize = 4;
  lfCin = 0;
  /** Lazy-flag operands: destination, source and result halves (see LfIdx). A typed array,
   *  so that storing 32-bit values never allocates heap numbers. */
  readonly lf = new Uint32Array(6);

  /** Scratch: high half of the last 64-bit value returned by a read helper. */
  t = 0;
  eaLo = 0;
  eaHi = 0;

  // system state
  cr0 = 0x80050033; // PG PE MP ET NE WP AM: long mode paging on (identity mapped)
  cr2Lo = 0; cr2Hi = 0;
  /** Reset: the boot ROM identity map (boot-page-tables.ts); the loader puts real tables in RAM. */
  cr3Lo = BOOT_CR3 % 4294967296; cr3Hi = Math.floor(BOOT_CR3 / 4294967296);
  cr4 = 0x20; // PAE (long mode); DE = 0
  cr8 = 0;
  efer = 0x500; // LME | LMA (SCE off)
  readonly sreg = new Uint16Array([0x10, 0x08, 0x10, 0x10, 0, 0]); // es cs ss ds fs gs
  /** Segment descriptor caches (es cs ss ds fs gs): base, limit, VMX access rights (segments.ts).
   *  FS and GS keep their bases in fsBase/gsBase (the effective-address hot path reads those). */
  readonly segBase = new Uint32Array(6);
  readonly segLimit = new Uint32Array([0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff]);
  readonly segAttr = new Uint32Array([0xc093, 0xa09b, 0xc093, 0xc093, 0x10000, 0x10000]);
  /** Task register and LDTR: selector and descriptor cache (base 64-bit as halves). */
  trSel = 0; trBaseLo = 0; trBaseHi = 0; trLimit = 0; trAttr = 0x10000;
  ldtrSel = 0; ldtrBaseLo = 0; ldtrBaseHi = 0; ldtrLimit = 0; ldtrAttr = 0x10000;
  /** SYSCALL/SYSRET MSRs: STAR, LSTAR, CSTAR (halves) and FMASK (low 32 bits). */
  starLo = 0; starHi = 0;
  lstarLo = 0; lstarHi = 0;
  cstarLo = 0; cstarHi = 0;
  fmask = 0;
  /** IA32_TSC_AUX (32 bits; the upper half is reserved). */
  tscAux = 0;
  fsBaseLo = 0; fsBaseHi = 0;
  gsBaseLo = 0; gsBaseHi = 0;
  kgsBaseLo = 0; kgsBaseHi = 0;
  idtrBaseLo = 0; idtrBaseHi = 0; idtrLimit = 0xffff;
  /** At reset: the built-in read-only boot GDT (segments.ts BOOT_GDT). */
  gdtrBaseLo = 0xffffd000; gdtrBaseHi = 0x7f; gdtrLimit = 23;
  tscOffset = 0;
  instret = 0;
  /** x87/SSE registers, MXCSR and XCR0 (fpu-state.ts). */
  readonly fpu = new FpuState();

  // memory
  readonly bytes: Uint8Array;
  readonly dv: DataView;
  /** 32-bit view of RAM for aligned accesses (faster than DataView); little-endian host. */
  readonly u32: Uint32Array;
  readonly memSize: number;
  /** Shared by all CPUs on this RAM: the lines of each physical page holding decoded code. */
  readonly code: CodeTracker;
  /** = code.pages: a store to a marked physical page checks the lines it overlaps. */
  readonly codePages: Uint8Array;
  /** = code.lines: one bit per 16-byte line holding decoded bytes (word p >>> 9, bit (p >>> 4) & 31). */
  readonly codeLines: Uint32Array;
  /** Index of this vCPU (passed to MMIO devices). */
  vcpuIndex = 0;
  /** The last non-null effect an MMIO write asked for (the hypervisor takes and clears it). */
  deviceEffect: DeviceEffect = null;

  // MMU (mmu.ts): the paging structure in force and the TLB
  pagingMode: PagingMode = PagingMode.LONG4;
  /** Bumped whenever translations or fetch permissions may have changed (block chaining checks it). */
  xlatEpoch = 0;
  /** Fast tags per TLB entry for reads, writes and fetches (the page's linear bits 31:12, else TAG_NONE). */
  readonly tlbR: Int32Array;
  readonly tlbW: Int32Array;
  readonly tlbX: Int32Array;
  /** Linear bits 63:32 of each entry (as int32). */
  readonly tlbHi: Int32Array;
  /** Physical page address of RAM entries (for the fast paths). */
  readonly tlbPhys: Int32Array;
  /** The entry's linear page (TAG_NONE = invalid), flags and physical page. */
  readonly tlbPage: Int32Array;
  readonly tlbFlags: Int32Array;
  readonly tlbPhysF: Float64Array;
  /** The paging-structure cache of 4-level walks (pde-cache.ts), emptied with the TLB. */
  readonly pdeCache = new PdeCache();
  private cplValue = 0;
  private codeModeValue = 0;
  /**
   * 1 while alignment checking is on (CR0.AM, RFLAGS.AC, CPL 3; SDM 6.15 #AC): the TLB then
   * gives no read/write fast tags, so every data access takes the MMU's slow path, which
   * checks the alignment. Off, it costs nothing on the fast paths.
   */
  acCheck = 0;

  // debug
  readonly bp: BreakpointSummary;
  /** Non-zero while an enabled data breakpoint exists (copy of bp.dataEnabled). */
  dataBpOn = 0;
  /** B bits of data breakpoints hit by the current instruction. */
  dataHits = 0;
  /** Set by the run loop when something needs the slow boundary path. */
  attention = 1;
  /**
   * Set by SYSCALL/SYSRET: their single-step trap follows TF as the instruction leaves it
   * (FMASK may clear it, SYSRET may set it), not TF at its start.
   */
  stepOnFinalTf = false;
  /** NMIs blocked: from an NMI's delivery to the next IRET. */
  nmiBlocked = false;

  // events
  /** Interrupt/debug blocking in force: bit 0 STI shadow, bit 1 MOV-SS shadow (VMCS layout). */
  shadow = 0;
  /** The shadow the current instruction starts (STI, MOV SS); takes effect when it completes. */
  shadowNext = 0;
  /** REP string instructions stop after each iteration (single-step or MTF in force). */
  repOne = false;
  /** The current instruction transferred control (for DEBUGCTL.BTF). */
  branchTaken = false;
  readonly intercepts: CpuIntercepts = { exceptionBitmap: 0, movDr: false, mtf: false, eventDelivered: false, hypercall: null, nmiWindow: false, iret: false };
  /** Exit prepared by an instruction intercept (faultKind EXIT). */
  exitReason: CpuExit | null = null;
  /** Software interrupt raised by INT n / INT3 / INT1 (faultKind SOFTINT). */
  softVector = 0;
  softType: 'sw' | 'swexc' | 'priv' = 'sw';
  /** DR6 bits of a fault-like #DB raised by an instruction (general detect: BD). */
  faultDr6 = 0;

  // compiled regions (jit/emit.ts): instructions completed in the last block a region ran,
  // and the instruction that faulted or exited
  jitN = 0;
  jitInsn: Insn | null = null;

  // fault details
  faultKind = FaultKind.EXCEPTION;
  faultVector = 0;
  faultError = -1;
  npfAddr = 0;
  npfWrite = false;
  npfFetch = false;

  constructor(readonly mem: GuestMemory, public phys: PhysicalCpu) {
    this.bytes = mem.bytes;
    this.dv = mem.view;
    this.u32 = new Uint32Array(mem.bytes.buffer, mem.bytes.byteOffset, mem.bytes.byteLength >>> 2);
    this.memSize = mem.size;
    this.code = codeTrackerOf(mem);
    this.codePages = this.code.pages;
    this.codeLines = this.code.lines;
    this.bp = new BreakpointSummary(mem.size);
    ensureBootPageTables(mem);
    const t = newTlb();
    this.tlbR = t.tlbR; this.tlbW = t.tlbW; this.tlbX = t.tlbX; this.tlbHi = t.tlbHi;
    this.tlbPhys = t.tlbPhys; this.tlbPage = t.tlbPage; this.tlbFlags = t.tlbFlags; this.tlbPhysF = t.tlbPhysF;
    this.pagingMode = pagingModeOf(this.cr0, this.cr4, this.efer);
  }

  /** Current privilege level (0-3), maintained from CS by the segment code. */
  get cpl(): number { return this.cplValue; }
  set cpl(v: number) {
    const n = v & 3;
    if (n === this.cplValue) return;
    const userChange = (n === 3) !== (this.cplValue === 3);
    this.cplValue = n;
    if (userChange) {
      this.acCheck = this.alignCheckWanted();
      retag(this); // U/S rights of the cached translations change
    }
  }

  private alignCheckWanted(): number {
    return (this.cr0 & CR0_AM) !== 0 && (this.rflags & AC) !== 0 && this.cplValue === 3 ? 1 : 0;
  }

  /** CR0.AM or RFLAGS.AC may have changed: alignment checking on or off re-derives the fast tags. */
  syncAlignCheck(): void {
    const on = this.alignCheckWanted();
    if (on !== this.acCheck) {
      this.acCheck = on;
      retag(this);
    }
  }

  /** Decoding mode, part of the code-cache key: 0 = 64-bit, 1 = 32-bit default operand size, 2 = 16-bit. */
  get codeMode(): number { return this.codeModeValue; }
  set codeMode(v: number) {
    if (v === this.codeModeValue) return;
    this.codeModeValue = v;
    this.xlatEpoch++;
    this.attention = 1;
  }

  /** CR0, CR4 or EFER changed (MOV CR, WRMSR, the debugger): re-select the paging structure, flush the TLB. */
  pagingChanged(): void {
    this.pagingMode = pagingModeOf(this.cr0, this.cr4, this.efer);
    tlbFlushAll(this);
    this.syncAlignCheck();
  }

  /** A CR3 load: flushes the non-global translations. */
  cr3Loaded(): void {
    tlbFlushNonGlobal(this);
  }

  /** INVLPG of linear (lo,hi). */
  invlpg(lo: number, hi: number): void {
    tlbInvalidatePage(this, lo, hi);
  }

  /** Records an MMIO device's request for the hypervisor (exit, wake). */
  noteDeviceEffect(e: DeviceEffect): void {
    if (e === null) return;
    this.deviceEffect = e;
    this.attention = 1;
  }

  /** The effect noted since the last call (null: none), cleared: the hypervisor applies it after the exit. */
  takeDeviceEffect(): DeviceEffect {
    const e = this.deviceEffect;
    this.deviceEffect = null;
    return e;
  }

  // ---- faults ------------------------------------------------------------------------

  exception(vector: number, error = -1): never {
    this.faultKind = FaultKind.EXCEPTION;
    this.faultVector = vector;
    this.faultError = error;
    throw FAULT;
  }

  /** An instruction intercept: the instruction has not executed. */
  exitInsn(e: CpuExit): never {
    this.faultKind = FaultKind.EXIT;
    this.exitReason = e;
    throw FAULT;
  }

  /**
   * An instruction intercept from a handler that can return: the handler returns EXIT_RIP
   * (cheaper than throwing on the frequent I/O and CPUID exits).
   */
  exitReturn(e: CpuExit): number {
    this.faultKind = FaultKind.EXIT;
    this.exitReason = e;
    return EXIT_RIP;
  }

  softInt(vector: number, type: 'sw' | 'swexc' | 'priv'): never {
    this.faultKind = FaultKind.SOFTINT;
    this.softVector = vector;
    this.softType = type;
    throw FAULT;
  }

  /** Rebuilds the breakpoint summary after DR7/DR0-3/DEBUGCTL/CR4.DE changed. */
  refreshBreakpoints(): void {
    const layout = this.bp.dataLayout;
    this.bp.refresh(this.phys, (this.cr4 & 8) !== 0);
    this.dataBpOn = this.bp.dataEnabled;
    // The entries' data-breakpoint flags: stale only if the enabled data ranges changed.
    if (this.tlbPage !== undefined && this.bp.dataLayout !== layout) tlbFlushAll(this);
    this.attention = 1;
  }

  ud(): never {
    return this.exception(6);
  }

  gp0(): never {
    return this.exception(13, 0);
  }

  /** Raises the fault an access of n bytes at linear (lo,hi) gets (#GP, #PF or NPF). */
  badAccess(lo: number, hi: number, n: number, write: boolean): never {
    if (write) linearProbeWrite(this, lo, hi, n, ACC_READ);
    else linearRead(this, lo, hi, n, ACC_READ);
    // reachable only if the access is in fact fine (the caller's state was stale)
    return this.gp0();
  }

  // ---- memory: LINEAR-address accessors at the current CPL (mmu.ts) ------------------------
  // Fast path: a TLB fast tag for the page (RAM, allowed, no data breakpoint on the page)
  // and the access inside the page; everything else goes through the MMU's slow path.

  /** A store to a page holding decoded code: drop it only if the bytes overlap decoded lines. */
  private storeNearCode(p: number, n: number): void {
    const l = this.codeLines, e = p + n - 1;
    if (((l[p >>> 9] >>> ((p >>> 4) & 31)) | (l[e >>> 9] >>> ((e >>> 4) & 31))) & 1) this.code.written(p, n);
  }

  /** Drops every decoded instruction of every vCPU on this RAM. */
  invalidateCode(): void {
    this.code.dropAll();
  }

  rd8(lo: number, hi: number): number {
    const e = (lo >>> 12) & TLB_MASK;
    if (this.tlbR[e] === (lo & ~0xfff) && this.tlbHi[e] === (hi | 0)) return this.bytes[this.tlbPhys[e] + (lo & 0xfff)];
    return linearRead(this, lo, hi, 1, ACC_READ);
  }
  rd16(lo: number, hi: number): number {
    const e = (lo >>> 12) & TLB_MASK;
    if (this.tlbR[e] === (lo & ~0xfff) && this.tlbHi[e] === (hi | 0) && (lo & 0xfff) <= 0xffe) {
      return this.dv.getUint16(this.tlbPhys[e] + (lo & 0xfff), true);
    }
    return linearRead(this, lo, hi, 2, ACC_READ);
  }
  rd32(lo: number, hi: number): number {
    const e = (lo >>> 12) & TLB_MASK;
    if (this.tlbR[e] === (lo & ~0xfff) && this.tlbHi[e] === (hi | 0) && (lo & 0xfff) <= 0xffc) {
      const p = this.tlbPhys[e] + (lo & 0xfff);
      return (p & 3) === 0 ? this.u32[p >>> 2] : this.dv.getUint32(p, true);
    }
    return linearRead(this, lo, hi, 4, ACC_READ);
  }
  /** Returns bits 31:0; bits 63:32 in this.t. */
  rd64(lo: number, hi: number): number {
    const e = (lo >>> 12) & TLB_MASK;
    if (this.tlbR[e] === (lo & ~0xfff) && this.tlbHi[e] === (hi | 0) && (lo & 0xfff) <= 0xff8) {
      const p = this.tlbPhys[e] + (lo & 0xfff);
      if ((p & 3) === 0) {
        const w = p >>> 2;
        this.t = this.u32[w + 1];
        return this.u32[w];
      }
      this.t = this.dv.getUint32(p + 4, true);
      return this.dv.getUint32(p, true);
    }
    return linearRead(this, lo, hi, 8, ACC_READ);
  }
  wr8(lo: number, hi: number, v: number): void {
    const e = (lo >>> 12) & TLB_MASK;
    if (this.tlbW[e] === (lo & ~0xfff) && this.tlbHi[e] === (hi | 0)) {
      const p = this.tlbPhys[e] + (lo & 0xfff);
      this.bytes[p] = v;
      if (this.codePages[p >>> 12] !== 0) this.storeNearCode(p, 1);
      return;
    }
    linearWrite(this, lo, hi, 1, v, 0, ACC_READ);
  }
  wr16(lo: number, hi: number, v: number): void {
    const e = (lo >>> 12) & TLB_MASK;
    if (this.tlbW[e] === (lo & ~0xfff) && this.tlbHi[e] === (hi | 0) && (lo & 0xfff) <= 0xffe) {
      const p = this.tlbPhys[e] + (lo & 0xfff);
      this.dv.setUint16(p, v, true);
      if (this.codePages[p >>> 12] !== 0) this.storeNearCode(p, 2);
      return;
    }
    linearWrite(this, lo, hi, 2, v, 0, ACC_READ);
  }
  wr32(lo: number, hi: number, v: number): void {
    const e = (lo >>> 12) & TLB_MASK;
    if (this.tlbW[e] === (lo & ~0xfff) && this.tlbHi[e] === (hi | 0) && (lo & 0xfff) <= 0xffc) {
      const p = this.tlbPhys[e] + (lo & 0xfff);
      if ((p & 3) === 0) this.u32[p >>> 2] = v; else this.dv.setUint32(p, v, true);
      if (this.codePages[p >>> 12] !== 0) this.storeNearCode(p, 4);
      return;
    }
    linearWrite(this, lo, hi, 4, v, 0, ACC_READ);
  }
  wr64(lo: number, hi: number, vLo: number, vHi: number): void {
    const e = (lo >>> 12) & TLB_MASK;
    if (this.tlbW[e] === (lo & ~0xfff) && this.tlbHi[e] === (hi | 0) && (lo & 0xfff) <= 0xff8) {
      const p = this.tlbPhys[e] + (lo & 0xfff);
      if ((p & 3) === 0) {
        const w = p >>> 2;
        this.u32[w] = vLo;
        this.u32[w + 1] = vHi;
      } else {
        this.dv.setUint32(p, vLo, true);
        this.dv.setUint32(p + 4, vHi, true);
      }
      if (this.codePages[p >>> 12] !== 0) this.storeNearCode(p, 8);
      return;
    }
    linearWrite(this, lo, hi, 8, vLo, vHi, ACC_READ);
  }
  /** Checks that a write of n bytes at (lo,hi) would succeed, without writing (RMW, push). */
  probeWrite(lo: number, hi: number, n: number): void {
    const e = (lo >>> 12) & TLB_MASK;
    if (this.tlbW[e] === (lo & ~0xfff) && this.tlbHi[e] === (hi | 0) && (lo & 0xfff) <= 4096 - n) return;
    linearProbeWrite(this, lo, hi, n, ACC_READ);
  }

  // Implicit supervisor accesses (GDT, IDT, LDT, TSS): supervisor rules even at CPL 3.
  sysRd8(lo: number, hi: number): number { return linearRead(this, lo, hi, 1, ACC_SYS); }
  sysRd16(lo: number, hi: number): number { return linearRead(this, lo, hi, 2, ACC_SYS); }
  sysRd32(lo: number, hi: number): number { return linearRead(this, lo, hi, 4, ACC_SYS); }
  /** Returns bits 31:0; bits 63:32 in this.t. */
  sysRd64(lo: number, hi: number): number { return linearRead(this, lo, hi, 8, ACC_SYS); }
  sysWr8(lo: number, hi: number, v: number): void { linearWrite(this, lo, hi, 1, v, 0, ACC_SYS); }
  sysWr16(lo: number, hi: number, v: number): void { linearWrite(this, lo, hi, 2, v, 0, ACC_SYS); }
  sysWr32(lo: number, hi: number, v: number): void { linearWrite(this, lo, hi, 4, v, 0, ACC_SYS); }
  sysWr64(lo: number, hi: number, vLo: number, vHi: number): void { linearWrite(this, lo, hi, 8, vLo, vHi, ACC_SYS); }
  sysProbeWrite(lo: number, hi: number, n: number): void { linearProbeWrite(this, lo, hi, n, ACC_SYS); }

  readMem(size: number, lo: number, hi: number): number {
    switch (size) {
      case 1: return this.rd8(lo, hi);
      case 2: return this.rd16(lo, hi);
      case 4: return this.rd32(lo, hi);
      default: return this.rd64(lo, hi);
    }
  }
  writeMem(size: number, lo: number, hi: number, vLo: number, vHi: number): void {
    switch (size) {
      case 1: this.wr8(lo, hi, vLo & 0xff); return;
      case 2: this.wr16(lo, hi, vLo & 0xffff); return;
      case 4: this.wr32(lo, hi, vLo >>> 0); return;
      default: this.wr64(lo, hi, vLo >>> 0, vHi >>> 0);
    }
  }

  // ---- registers -----------------------------------------------------------------------

  /** Register r at operand size (r 16-19 = AH CH DH BH for size 1). Size 8: high in this.t. */
  getR(size: number, r: number): number {
    switch (size) {
      case 1: return r < 16 ? this.rl[r] & 0xff : (this.rl[r - 16] >>> 8) & 0xff;
      case 2: return this.rl[r] & 0xffff;
      case 4: return this.rl[r];
      default: this.t = this.rh[r]; return this.rl[r];
    }
  }

  /** Writes a register at operand size: 32-bit writes zero bits 63:32, 8/16-bit merge. */
  setR(size: number, r: number, lo: number, hi: number): void {
    switch (size) {
      case 1:
        if (r < 16) this.rl[r] = (this.rl[r] & 0xffffff00) | (lo & 0xff);
        else this.rl[r - 16] = (this.rl[r - 16] & 0xffff00ff) | ((lo & 0xff) << 8);
        return;
      case 2: this.rl[r] = (this.rl[r] & 0xffff0000) | (lo & 0xffff); return;
      case 4: this.rl[r] = lo; this.rh[r] = 0; return;
      default: this.rl[r] = lo; this.rh[r] = hi;
    }
  }

  // ---- flags -------------------------------------------------------------------------------

  setLazy(op: LF, size: number, dLo: number, dHi: number, sLo: number, sHi: number, rLo: number, rHi: number, cin: number): void {
    this.lfOp = op;
    this.lfSize = size;
    const lf = this.lf;
    lf[0] = dLo; lf[1] = dHi; lf[2] = sLo; lf[3] = sHi; lf[4] = rLo; lf[5] = rHi;
    this.lfCin = cin;
  }

  /** Sets the six arithmetic flags at once (materialized). */
  setArith(bits: number): void {
    this.rflags = (this.rflags & ~ARITH_MASK) | bits;
    this.lfOp = LF.NONE;
  }

  getCF(): number {
    const lf = this.lf;
    const s = this.lfSize;
    switch (this.lfOp) {
      case LF.NONE: return this.rflags & 1;
      case LF.ADD:
        if (s === 8) {
          const lt = lf[5] < lf[1] || (lf[5] === lf[1] && lf[4] < lf[0]);
          const eq = lf[5] === lf[1] && lf[4] === lf[0];
          return lt || (this.lfCin !== 0 && eq) ? 1 : 0;
        }
        return lf[4] < lf[0] || (this.lfCin !== 0 && lf[4] === lf[0]) ? 1 : 0;
      case LF.SUB:
        if (s === 8) {
          const lt = lf[1] < lf[3] || (lf[1] === lf[3] && lf[0] < lf[2]);
          const eq = lf[1] === lf[3] && lf[0] === lf[2];
          return lt || (this.lfCin !== 0 && eq) ? 1 : 0;
        }
        return lf[0] < lf[2] || (this.lfCin !== 0 && lf[0] === lf[2]) ? 1 : 0;
      case LF.LOGIC: return 0;
      default: return this.lfCin; // INC/DEC keep CF
    }
  }

  getZF(): number {
    const lf = this.lf;
    if (this.lfOp === LF.NONE) return (this.rflags >>> 6) & 1;
    return (lf[4] | lf[5]) === 0 ? 1 : 0;
  }

  getSF(): number {
    const lf = this.lf;
    if (this.lfOp === LF.NONE) return (this.rflags >>> 7) & 1;
    return this.lfSize === 8 ? lf[5] >>> 31 : (lf[4] & SIGN[this.lfSize]) !== 0 ? 1 : 0;
  }

  getOF(): number {
    const lf = this.lf;
    const op = this.lfOp;
    if (op === LF.NONE) return (this.rflags >>> 11) & 1;
    if (op === LF.LOGIC) return 0;
    let d: number, s: number, r: number, sign: number;
    if (this.lfSize === 8) { d = lf[1]; s = lf[3]; r = lf[5]; sign = 0x80000000; }
    else { d = lf[0]; s = lf[2]; r = lf[4]; sign = SIGN[this.lfSize]; }
    if (op === LF.ADD || op === LF.INC) return ((d ^ r) & (s ^ r) & sign) !== 0 ? 1 : 0;
    return ((d ^ s) & (d ^ r) & sign) !== 0 ? 1 : 0;
  }

  getAF(): number {
    const lf = this.lf;
    if (this.lfOp === LF.NONE) return (this.rflags >>> 4) & 1;
    if (this.lfOp === LF.LOGIC) return 0;
    return ((lf[0] ^ lf[2] ^ lf[4]) >>> 4) & 1;
  }

  getPF(): number {
    const lf = this.lf;
    if (this.lfOp === LF.NONE) return (this.rflags >>> 2) & 1;
    return PARITY[lf[4] & 0xff];
  }

  /** Full RFLAGS. */
  getFlags(): number {
    if (this.lfOp === LF.NONE) return this.rflags >>> 0;
    return ((this.rflags & ~ARITH_MASK) | this.getCF() * CF | this.getPF() * PF | this.getAF() * AF |
      this.getZF() * ZF | this.getSF() * SF | this.getOF() * OF) >>> 0;
  }

  /** Writes all of RFLAGS (arithmetic flags materialized). Bit 1 stays set. */
  putFlags(v: number): void {
    this.rflags = ((v & 0x3f7fd5) | 2) >>> 0;
    this.lfOp = LF.NONE;
    this.attention = 1;
    this.syncAlignCheck();
  }

  /** Condition code cc (0-15) as in Jcc/SETcc/CMOVcc. */
  cond(cc: number): boolean {
    let r: number;
    switch (cc >> 1) {
      case 0: r = this.getOF(); break;
      case 1: r = this.getCF(); break;
      case 2: r = this.getZF(); break;
      case 3: r = this.getCF() | this.getZF(); break;
      case 4: r = this.getSF(); break;
      case 5: r = this.getPF(); break;
      case 6: r = this.getSF() ^ this.getOF(); break;
      default: r = this.getZF() | (this.getSF() ^ this.getOF()); break;
    }
    return (r ^ (cc & 1)) !== 0;
  }

  // ---- effective addresses --------------------------------------------------------------

  /**
   * Computes the effective (linear) address of a memory operand into eaLo/eaHi. `size` = the
   * bytes the instruction accesses from there (outside 64-bit mode: the segment-limit check).
   */
  calcEA(base: number, index: number, scale: number, dispLo: number, dispHi: number, asize: number, seg: number, size: number): void {
    let lo = dispLo, hi = dispHi;
    if (base >= 0) {
      lo += this.rl[base];
      hi += this.rh[base];
    }
    if (index >= 0) {
      const m = 1 << scale;
      lo += this.rl[index] * m;
      hi += this.rh[index] * m;
    }
    if (seg !== 0) {
      if (seg >= 3) { this.legacyEA(lo, asize, seg - 3, size); return; }
      if (seg === 1) { lo += this.fsBaseLo; hi += this.fsBaseHi; } else { lo += this.gsBaseLo; hi += this.gsBaseHi; }
    }
    if (asize === 4 && seg === 0) {
      this.eaLo = lo >>> 0;
      this.eaHi = 0;
      return;
    }
    this.eaLo = lo >>> 0;
    this.eaHi = (hi + Math.floor(lo / 4294967296)) >>> 0;
  }

  /**
   * Outside 64-bit mode: the offset wraps at the address size, is checked against the
   * segment (segmentCheck, only for segments that are not flat 4 GiB expand-up), the segment
   * base is added, the linear address wraps at 32 bits.
   */
  private legacyEA(off: number, asize: number, sreg: number, size: number): void {
    const o = asize === 2 ? off & 0xffff : off >>> 0;
    if (this.segLimit[sreg] !== 0xffffffff || (this.segAttr[sreg] & (SEG_UNUSABLE | SEG_TYPE_E)) !== 0) this.segmentCheck(sreg, o, size);
    const base = sreg === 4 ? this.fsBaseLo : sreg === 5 ? this.gsBaseLo : this.segBase[sreg];
    this.eaLo = (o + base) >>> 0;
    this.eaHi = 0;
  }

  /**
   * The segment checks of a data access of `size` bytes at offset o (SDM Vol. 3 5.3): an
   * unusable (null) segment, beyond the limit of an expand-up segment, or outside (limit,
   * 0xFFFF or 0xFFFFFFFF by the B flag] of an expand-down one: #SS(0) for SS, else #GP(0).
   * Type checks (writes to read-only or code segments) are not modelled.
   */
  segmentCheck(sreg: number, o: number, size: number): void {
    const ar = this.segAttr[sreg], lim = this.segLimit[sreg];
    const last = o + (size > 0 ? size : 1) - 1;
    let bad: boolean;
    if (ar & SEG_UNUSABLE) bad = true;
    else if ((ar & (0x10 | 8 | SEG_TYPE_E)) === (0x10 | SEG_TYPE_E)) bad = o <= lim || last > (ar & 0x4000 ? 0xffffffff : 0xffff); // expand-down data
    else bad = last > lim;
    if (bad) this.exception(sreg === 2 ? 12 : 13, 0);
  }

  // ---- stack ----------------------------------------------------------------------------

  push64(lo: number, hi: number): void {
    let spLo = this.rl[4] - 8, spHi = this.rh[4];
    if (spLo < 0) { spLo += 4294967296; spHi = (spHi - 1) >>> 0; }
    this.wr64(spLo, spHi, lo, hi);
    this.rl[4] = spLo;
    this.rh[4] = spHi;
  }

  /** Pops 8 bytes: returns the low half, high half in this.t. */
  pop64(): number {
    const spLo = this.rl[4], spHi = this.rh[4];
    const lo = this.rd64(spLo, spHi);
    const t = this.t;
    const n = spLo + 8;
    this.rl[4] = n >>> 0;
    this.rh[4] = n > 0xffffffff ? (spHi + 1) >>> 0 : spHi;
    this.t = t;
    return lo;
  }

  /** RSP + delta (signed, small) as a new RSP. */
  addRsp(delta: number): void {
    const n = this.rl[4] + delta;
    this.rl[4] = n >>> 0;
    if (n > 0xffffffff) this.rh[4] = (this.rh[4] + 1) >>> 0;
    else if (n < 0) this.rh[4] = (this.rh[4] - 1) >>> 0;
  }
}
