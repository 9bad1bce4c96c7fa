/**
 * One local APIC (SDM vol. 3 ch. 11), in xAPIC (MMIO) and x2APIC (MSR) mode: ID, version,
 * TPR/PPR, EOI, ISR/IRR/TMR, the spurious-vector register, the LVT with the timer (one-shot,
 * periodic, TSC-deadline; divide configuration), ESR, and the ICR, whose IPIs go to the
 * `IpiSink` (vmm/devices/apic-system.ts routes them between the vCPUs' APICs).
 *
 * Time is the vCPU's TSC, passed in as `now` (instructions retired, so deterministic); the
 * timer counts at TSC rate / divisor. The run loop calls `update(now)` before it asks for
 * `highestPending()`, and `nextTimerEvent()` tells it how far a halted vCPU may skip ahead.
 *
 * Register offsets are the xAPIC ones; x2APIC MSR 0x800 + n is offset n << 4.
 */
import { DeviceEffect } from './device';

export const APIC_DEFAULT_BASE = 0xfee00000;
export const MSR_APIC_BASE = 0x1b;
export const MSR_TSC_DEADLINE = 0x6e0;
export const X2APIC_MSR_FIRST = 0x800;
export const X2APIC_MSR_LAST = 0x8ff;

/** IA32_APIC_BASE bits. */
export const APIC_BASE_BSP = 1 << 8;
export const APIC_BASE_EXTD = 1 << 10;
export const APIC_BASE_EN = 1 << 11;

/** Version register: version 0x14 (integrated APIC), max LVT entry 5 (6 entries, no CMCI). */
export const APIC_VERSION = 0x00050014;

export const REG = {
  ID: 0x20, VERSION: 0x30, TPR: 0x80, APR: 0x90, PPR: 0xa0, EOI: 0xb0, RRD: 0xc0, LDR: 0xd0,
  DFR: 0xe0, SVR: 0xf0, ISR: 0x100, TMR: 0x180, IRR: 0x200, ESR: 0x280, CMCI: 0x2f0,
  ICR_LO: 0x300, ICR_HI: 0x310, LVT_TIMER: 0x320, LVT_THERMAL: 0x330, LVT_PERF: 0x340,
  LVT_LINT0: 0x350, LVT_LINT1: 0x360, LVT_ERROR: 0x370, TIMER_INITIAL: 0x380,
  TIMER_CURRENT: 0x390, TIMER_DIVIDE: 0x3e0, SELF_IPI: 0x3f0,
} as const;

/** ICR / LVT fields. */
export const DELIVERY_FIXED = 0, DELIVERY_LOWEST = 1, DELIVERY_SMI = 2, DELIVERY_NMI = 4;
export const DELIVERY_INIT = 5, DELIVERY_STARTUP = 6, DELIVERY_EXTINT = 7;
export const ICR_LEVEL_ASSERT = 1 << 14;
export const ICR_TRIGGER_LEVEL = 1 << 15;
export const ICR_DEST_LOGICAL = 1 << 11;
export const LVT_MASKED = 1 << 16;
export const TIMER_PERIODIC = 1 << 17;
export const TIMER_TSC_DEADLINE = 2 << 17;
const TIMER_MODE_MASK = 3 << 17;
export const SVR_ENABLED = 1 << 8;

/** ESR bits. */
const ESR_SEND_ILLEGAL_VECTOR = 1 << 5;
const ESR_RECEIVED_ILLEGAL_VECTOR = 1 << 6;
const ESR_ILLEGAL_REGISTER = 1 << 7;

/** Destination shorthand of the ICR (bits 19:18). */
export type Shorthand = 'none' | 'self' | 'all' | 'all-but-self';

/** An IPI as the ICR describes it; the sink finds the targets. */
export interface Ipi {
  source: number;          // vCPU index of the sender
  vector: number;
  delivery: number;        // DELIVERY_*
  logical: boolean;
  level: boolean;          // level assert (bit 14)
  triggerLevel: boolean;   // trigger mode (bit 15)
  shorthand: Shorthand;
  destination: number;     // xAPIC: 8 bits; x2APIC: 32 bits
  x2apic: boolean;
}

export interface IpiSink {
  sendIpi(ipi: Ipi): void;
}

/** What an x2APIC MSR write asks of the CPU: 'gp' = raise #GP(0), else a device effect. */
export type MsrWriteResult = 'gp' | DeviceEffect;

const LVT_COUNT = 6; // timer, thermal, perf, LINT0, LINT1, error
const LVT_OFFSETS = [REG.LVT_TIMER, REG.LVT_THERMAL, REG.LVT_PERF, REG.LVT_LINT0, REG.LVT_LINT1, REG.LVT_ERROR];
/** Writable bits per LVT entry (SDM figure 11-8). */
const LVT_WRITABLE = [
  0xff | LVT_MASKED | TIMER_MODE_MASK,              // timer: vector, mask, mode
  0xff | (7 << 8) | LVT_MASKED,                     // thermal
  0xff | (7 << 8) | LVT_MASKED,                     // perf
  0xff | (7 << 8) | (1 << 13) | (1 << 15) | LVT_MASKED, // LINT0
  0xff | (7 << 8) | (1 << 13) | (1 << 15) | LVT_MASKED, // LINT1
  0xff | LVT_MASKED,                                // error
];
const LVT_TIMER = 0, LVT_LINT0 = 3, LVT_ERROR = 5;

function bitSet(a: Uint32Array, v: number): void { a[v >>> 5] |= 1 << (v & 31); }
function bitClear(a: Uint32Array, v: number): void { a[v >>> 5] &= ~(1 << (v & 31)); }
function bitTest(a: Uint32Array, v: number): boolean { return (a[v >>> 5] & (1 << (v & 31))) !== 0; }
/** Highest set bit of a 256-bit vector set, or -1. */
function highest(a: Uint32Array): number {
  for (let i = 7; i >= 0; i--) if (a[i] !== 0) return i * 32 + 31 - Math.clz32(a[i]);
  return -1;
}

/** The divide configuration register's value -> divisor (SDM figure 11-10). */
export function timerDivisor(tdcr: number): number {
  const code = ((tdcr >> 1) & 4) | (tdcr & 3);
  return code === 7 ? 1 : 2 << code;
}

export class LocalApic {
  /** IA32_APIC_BASE, low half (base < 4 GiB here). */
  apicBase: number;
  private tpr = 0;
  private ldr = 0;
  private dfr = 0xffffffff;
  private svr = 0xff;
  private esr = 0;
  private pendingEsr = 0;
  private icrLo = 0;
  private icrHi = 0;
  private readonly lvt = new Uint32Array(LVT_COUNT);
  private tdcr = 0;
  readonly isr = new Uint32Array(8);
  readonly irr = new Uint32Array(8);
  readonly tmr = new Uint32Array(8);

  // Timer: counting from `timerStartCount` at time `timerStart` (TSC), at TSC / divisor.
  private timerInitial = 0;
  private timerStart = 0;
  private timerStartCount = 0;
  private timerArmed = false;
  private tscDeadline = 0;

  // Events for the vCPU that are not vectors in the IRR.
  private nmiPending = false;
  private initPending = false;
  private sipiVector = -1;
  /** After INIT the vCPU waits for a SIPI (the run loop keeps it stopped meanwhile). */
  waitingForSipi = false;

  constructor(readonly id: number, readonly bsp: boolean, private readonly sink: IpiSink, private readonly vcpu: number = id) {
    this.apicBase = APIC_DEFAULT_BASE | APIC_BASE_EN | (bsp ? APIC_BASE_BSP : 0);
    this.resetRegisters();
  }

  /** Power-up / INIT state of the registers (SDM 11.4.7.1); IA32_APIC_BASE is kept. */
  private resetRegisters(): void {
    this.tpr = 0; this.cr8Link?.set(0); this.ldr = 0; this.dfr = 0xffffffff; this.svr = 0xff;
    this.esr = 0; this.pendingEsr = 0; this.icrLo = 0; this.icrHi = 0; this.tdcr = 0;
    this.lvt.fill(LVT_MASKED);
    this.isr.fill(0); this.irr.fill(0); this.tmr.fill(0);
    this.timerInitial = 0; this.timerArmed = false; this.tscDeadline = 0;
    this.nmiPending = false;
  }

  get hardwareEnabled(): boolean { return (this.apicBase & APIC_BASE_EN) !== 0; }
  get x2apic(): boolean { return (this.apicBase & (APIC_BASE_EN | APIC_BASE_EXTD)) === (APIC_BASE_EN | APIC_BASE_EXTD); }
  get softwareEnabled(): boolean { return this.hardwareEnabled && (this.svr & SVR_ENABLED) !== 0; }
  /** The MMIO base the xAPIC answers at, or -1 when it does not (disabled or x2APIC). */
  get mmioBase(): number { return this.hardwareEnabled && !this.x2apic ? (this.apicBase & 0xfffff000) >>> 0 : -1; }

  // ---- IA32_APIC_BASE ----

  /** WRMSR IA32_APIC_BASE; false = #GP (reserved bits, or an illegal mode transition). */
  writeApicBase(lo: number, hi: number): boolean {
    lo >>>= 0;
    if (hi !== 0 || (lo & 0x2ff) !== 0) return false;
    const en = (lo & APIC_BASE_EN) !== 0, extd = (lo & APIC_BASE_EXTD) !== 0;
    if (extd && !en) return false;                              // invalid state
    if (this.x2apic && en && !extd) return false;               // x2APIC -> xAPIC needs disable first
    if (!this.hardwareEnabled && en && extd) return false;      // disabled -> x2APIC needs xAPIC first
    const wasEnabled = this.hardwareEnabled;
    this.apicBase = ((lo & ~APIC_BASE_BSP) | (this.bsp ? APIC_BASE_BSP : 0)) >>> 0;
    if (wasEnabled && !en) this.resetRegisters();
    return true;
  }

  // ---- CR8 / TPR ----

  get cr8(): number { this.syncTpr(); return this.tpr >>> 4; }
  set cr8(v: number) { this.tpr = (v & 0xf) << 4; this.cr8Link?.set(v & 0xf); }

  /**
   * The CPU's CR8 is TPR[7:4] (SDM 10.8.6.1): with a link, a MOV to CR8 shows in TPR and PPR
   * and a TPR write shows in MOV from CR8 (TPR[3:0] survive only while CR8 does not change).
   */
  private cr8Link: { get(): number; set(v: number): void } | undefined;
  linkCr8(get: () => number, set: (v: number) => void): void {
    this.cr8Link = { get, set };
  }
  private syncTpr(): void {
    const l = this.cr8Link;
    if (l === undefined) return;
    const v = l.get() & 0xf;
    if (v !== this.tpr >>> 4) this.tpr = v << 4;
  }

  /** Processor priority (SDM 11.8.3.1). */
  ppr(): number {
    this.syncTpr();
    const isrv = highest(this.isr);
    const isrClass = isrv < 0 ? 0 : isrv & 0xf0;
    return (this.tpr & 0xf0) >= isrClass ? this.tpr & 0xff : isrClass;
  }

  // ---- interrupts in, interrupts out ----

  /** A fixed interrupt arrives (IPI, LVT, ...). Vectors 0-15 are illegal. Returns whether it was accepted. */
  acceptFixed(vector: number, levelTriggered = false): boolean {
    if (!this.hardwareEnabled) return false;
    if (vector < 16) { this.raiseError(ESR_RECEIVED_ILLEGAL_VECTOR); return false; }
    if (!this.softwareEnabled) return false;
    bitSet(this.irr, vector);
    if (levelTriggered) bitSet(this.tmr, vector); else bitClear(this.tmr, vector);
    return true;
  }

  acceptNmi(): void { if (this.hardwareEnabled) this.nmiPending = true; }

  /**
   * INIT: the registers reset at once and the vCPU waits for a SIPI (a SIPI right behind the
   * INIT is latched even before the run loop has seen the INIT); the run loop resets the CPU.
   */
  acceptInit(): void {
    if (!this.hardwareEnabled) return;
    this.resetRegisters();
    this.initPending = true;
    this.waitingForSipi = true;
    this.sipiVector = -1;
  }

  acceptStartup(vector: number): void {
    if (this.hardwareEnabled && this.waitingForSipi && this.sipiVector < 0) this.sipiVector = vector & 0xff;
  }

  /** The highest IRR vector whose priority class beats the PPR, or -1 (run loop: with IF=1). */
  highestPending(): number {
    const v = highest(this.irr);
    if (v < 0 || (v & 0xf0) <= (this.ppr() & 0xf0)) return -1;
    return v;
  }

  /** The CPU takes `vector` (INTA): IRR -> ISR. */
  acknowledge(vector: number): void {
    bitClear(this.irr, vector);
    bitSet(this.isr, vector);
  }

  /** An acknowledged vector the CPU did not take after all goes back: ISR -> IRR. */
  unacknowledge(vector: number): void {
    bitClear(this.isr, vector);
    bitSet(this.irr, vector);
  }

  /** Nothing to fire or deliver (the run loop's fast path: no time needed). */
  get quiet(): boolean {
    if (this.nmiPending || this.initPending || this.sipiVector >= 0 || this.timerArmed || this.tscDeadline !== 0) return false;
    const irr = this.irr;
    return (irr[0] | irr[1] | irr[2] | irr[3] | irr[4] | irr[5] | irr[6] | irr[7]) === 0;
  }

  get hasNmi(): boolean { return this.nmiPending; }
  get hasInit(): boolean { return this.initPending; }
  get hasSipi(): boolean { return this.sipiVector >= 0; }

  takeNmi(): boolean { const p = this.nmiPending; this.nmiPending = false; return p; }

  /** True once per INIT: the run loop resets the vCPU (it is in wait-for-SIPI already). */
  takeInit(): boolean {
    if (!this.initPending) return false;
    this.initPending = false;
    return true;
  }

  /** Boot state of an application processor: waiting for a SIPI (no INIT needed first). */
  enterWaitForSipi(): void {
    this.waitingForSipi = true;
    this.sipiVector = -1;
  }

  /** The SIPI vector once the vCPU waits for one (it then starts at CS=vector<<8, IP=0), else -1. */
  takeSipi(): number {
    const v = this.sipiVector;
    if (v < 0) return -1;
    this.sipiVector = -1;
    this.waitingForSipi = false;
    return v;
  }

  /** LINT0 routes the 8259's INTR (virtual wire) when unmasked in ExtINT mode, or the APIC is off. */
  lint0ExtInt(): boolean {
    if (!this.hardwareEnabled) return true;
    const l = this.lvt[LVT_LINT0];
    return (l & LVT_MASKED) === 0 && ((l >> 8) & 7) === DELIVERY_EXTINT;
  }

  private raiseError(bits: number): void {
    this.pendingEsr |= bits;
    const l = this.lvt[LVT_ERROR];
    if ((l & LVT_MASKED) === 0) this.acceptFixed(l & 0xff);
  }

  // ---- timer ----

  private timerMode(): number { return this.lvt[LVT_TIMER] & TIMER_MODE_MASK; }

  private timerCount(now: number): number {
    if (!this.timerArmed) return 0;
    const elapsed = Math.floor((now - this.timerStart) / timerDivisor(this.tdcr));
    if (this.timerMode() === TIMER_PERIODIC) {
      const left = this.timerStartCount - elapsed;
      if (left > 0) return left;
      return this.timerInitial - ((-left) % this.timerInitial) || this.timerInitial;
    }
    return Math.max(0, this.timerStartCount - elapsed);
  }

  /** The TSC value at which the timer next fires, or undefined when it will not. */
  nextTimerEvent(): number | undefined {
    if (this.timerMode() === TIMER_TSC_DEADLINE) return this.tscDeadline !== 0 ? this.tscDeadline : undefined;
    if (!this.timerArmed) return undefined;
    return this.timerStart + this.timerStartCount * timerDivisor(this.tdcr);
  }

  /** Advance the timer to `now`: fires the LVT timer interrupt when it expires. */
  update(now: number): void {
    const at = this.nextTimerEvent();
    if (at === undefined || now < at) return;
    if (this.timerMode() === TIMER_TSC_DEADLINE) {
      this.tscDeadline = 0;
    } else if (this.timerMode() === TIMER_PERIODIC) {
      // Re-arm from the last expiry: missed periods collapse into this one interrupt.
      const period = this.timerInitial * timerDivisor(this.tdcr);
      const periods = Math.floor((now - at) / period) + 1;
      this.timerStart = at + (periods - 1) * period;
      this.timerStartCount = this.timerInitial;
    } else {
      this.timerArmed = false;
    }
    const l = this.lvt[LVT_TIMER];
    if ((l & LVT_MASKED) === 0) this.acceptFixed(l & 0xff);
  }

  readTscDeadline(): number { return this.timerMode() === TIMER_TSC_DEADLINE ? this.tscDeadline : 0; }
  /** WRMSR IA32_TSC_DEADLINE (ignored unless the timer is in TSC-deadline mode); 0 disarms. */
  writeTscDeadline(value: number, now: number): void {
    if (this.timerMode() !== TIMER_TSC_DEADLINE) return;
    this.tscDeadline = value;
    this.update(now);
  }

  // ---- register access ----

  /** A 32-bit register read; undefined for a register that does not exist (or is write-only). */
  readRegister(offset: number, now: number): number | undefined {
    if (offset >= REG.ISR && offset < REG.ISR + 0x80) return this.isr[(offset - REG.ISR) >> 4];
    if (offset >= REG.TMR && offset < REG.TMR + 0x80) return this.tmr[(offset - REG.TMR) >> 4];
    if (offset >= REG.IRR && offset < REG.IRR + 0x80) return this.irr[(offset - REG.IRR) >> 4];
    const lvtIndex = LVT_OFFSETS.indexOf(offset as typeof LVT_OFFSETS[number]);
    if (lvtIndex >= 0) return this.lvt[lvtIndex];
    switch (offset) {
      case REG.ID: return this.x2apic ? this.id : (this.id << 24) >>> 0;
      case REG.VERSION: return APIC_VERSION;
      case REG.TPR: this.syncTpr(); return this.tpr;
      case REG.APR: return 0;
      case REG.PPR: return this.ppr();
      case REG.LDR: return this.x2apic ? this.x2apicLdr() : this.ldr;
      case REG.DFR: return this.x2apic ? undefined : this.dfr;
      case REG.SVR: return this.svr;
      case REG.ESR: return this.esr;
      case REG.ICR_LO: return this.icrLo; // delivery status (bit 12) is always idle: IPIs are instant
      case REG.ICR_HI: return this.x2apic ? undefined : this.icrHi;
      case REG.TIMER_INITIAL: return this.timerInitial;
      case REG.TIMER_CURRENT: this.update(now); return this.timerMode() === TIMER_TSC_DEADLINE ? 0 : this.timerCount(now);
      case REG.TIMER_DIVIDE: return this.tdcr;
      case REG.EOI: case REG.SELF_IPI: return this.x2apic ? undefined : 0;
      default: return this.x2apic ? undefined : 0;
    }
  }

  /** x2APIC logical ID: cluster (id[19:4]) in bits 31:16, one bit of id[3:0]. */
  private x2apicLdr(): number {
    return (((this.id >>> 4) << 16) | (1 << (this.id & 0xf))) >>> 0;
  }

  /**
   * A 32-bit register write. `icrHigh` is the destination for an x2APIC ICR write (one
   * 64-bit MSR). False = the register is read-only / absent or the value is illegal (x2APIC: #GP).
   */
  writeRegister(offset: number, value: number, now: number, icrHigh = 0): boolean {
    value >>>= 0;
    const lvtIndex = LVT_OFFSETS.indexOf(offset as typeof LVT_OFFSETS[number]);
    if (lvtIndex >= 0) { this.writeLvt(lvtIndex, value, now); return true; }
    switch (offset) {
      case REG.ID:
        if (this.x2apic) return false;
        return true; // the ID is fixed here (a write is ignored, as on CPUs where it is read-only)
      case REG.TPR: this.tpr = value & 0xff; this.cr8Link?.set(this.tpr >>> 4); return true;
      case REG.EOI:
        if (this.x2apic && value !== 0) return false;
        this.eoi();
        return true;
      case REG.LDR: if (this.x2apic) return false; this.ldr = value & 0xff000000; return true;
      case REG.DFR: if (this.x2apic) return false; this.dfr = (value | 0x0fffffff) >>> 0; return true;
      case REG.SVR: {
        this.svr = value & 0x13ff;
        if ((this.svr & SVR_ENABLED) === 0) for (let i = 0; i < LVT_COUNT; i++) this.lvt[i] |= LVT_MASKED;
        return true;
      }
      case REG.ESR:
        if (this.x2apic && value !== 0) return false;
        this.esr = this.pendingEsr; this.pendingEsr = 0;
        return true;
      case REG.ICR_LO:
        this.icrLo = value & 0x000cdfff;
        if (this.x2apic) this.icrHi = icrHigh >>> 0;
        this.sendIcr();
        return true;
      case REG.ICR_HI: if (this.x2apic) return false; this.icrHi = value & 0xff000000; return true;
      case REG.TIMER_INITIAL:
        if (this.timerMode() === TIMER_TSC_DEADLINE) return true; // ignored in TSC-deadline mode
        this.timerInitial = value;
        this.timerArmed = value !== 0;
        this.timerStart = now;
        this.timerStartCount = value;
        return true;
      case REG.TIMER_DIVIDE: {
        const count = this.timerCount(now);
        this.tdcr = value & 0xb;
        if (this.timerArmed) { this.timerStart = now; this.timerStartCount = count; }
        return true;
      }
      case REG.SELF_IPI:
        if (!this.x2apic) return true;
        if ((value & ~0xff) !== 0) return false;
        this.selfIpi(value & 0xff);
        return true;
      case REG.VERSION: case REG.PPR: case REG.APR: case REG.RRD: case REG.TIMER_CURRENT:
        return !this.x2apic;
      default:
        if (offset >= REG.ISR && offset < REG.IRR + 0x80) return !this.x2apic;
        if (this.x2apic) return false;
        this.raiseError(ESR_ILLEGAL_REGISTER);
        return true;
    }
  }

  private writeLvt(index: number, value: number, now: number): void {
    let v = value & LVT_WRITABLE[index];
    if (!this.softwareEnabled) v |= LVT_MASKED;
    if (index === LVT_TIMER) {
      const oldMode = this.lvt[LVT_TIMER] & TIMER_MODE_MASK;
      if ((v & TIMER_MODE_MASK) === TIMER_MODE_MASK) v &= ~TIMER_MODE_MASK; // reserved mode -> one-shot
      if ((v & TIMER_MODE_MASK) !== oldMode) {
        // A mode switch disarms the timer (SDM 11.5.4.1).
        this.timerArmed = false; this.timerInitial = 0; this.tscDeadline = 0;
      }
      this.lvt[index] = v;
      this.update(now);
      return;
    }
    this.lvt[index] = v;
  }

  private eoi(): void {
    const v = highest(this.isr);
    if (v < 0) return;
    bitClear(this.isr, v); // a level-triggered one would also go to the I/O APIC: there is none
  }

  private selfIpi(vector: number): void {
    this.sink.sendIpi({ source: this.vcpu, vector, delivery: DELIVERY_FIXED, logical: false, level: true,
      triggerLevel: false, shorthand: 'self', destination: 0, x2apic: this.x2apic });
  }

  private sendIcr(): void {
    const lo = this.icrLo;
    const delivery = (lo >> 8) & 7;
    const vector = lo & 0xff;
    if (delivery === DELIVERY_FIXED || delivery === DELIVERY_LOWEST) {
      if (vector < 16) { this.raiseError(ESR_SEND_ILLEGAL_VECTOR); return; }
    }
    const shorthands: Shorthand[] = ['none', 'self', 'all', 'all-but-self'];
    this.sink.sendIpi({
      source: this.vcpu, vector, delivery, logical: (lo & ICR_DEST_LOGICAL) !== 0,
      level: (lo & ICR_LEVEL_ASSERT) !== 0, triggerLevel: (lo & ICR_TRIGGER_LEVEL) !== 0,
      shorthand: shorthands[(lo >> 18) & 3],
      destination: this.x2apic ? this.icrHi : this.icrHi >>> 24, x2apic: this.x2apic,
    });
  }

  /** ICR bits 63:32 (x2APIC: the 32-bit destination; xAPIC: destination in 31:24). */
  get icrHigh(): number { return this.icrHi; }

  /** Does this APIC match a logical destination (flat or cluster model; x2APIC: cluster)? */
  matchesLogical(destination: number, x2apic: boolean): boolean {
    if (x2apic) {
      const ldr = this.x2apicLdr();
      return (destination >>> 16) === (ldr >>> 16) && (destination & ldr & 0xffff) !== 0;
    }
    const logicalId = this.ldr >>> 24;
    if ((this.dfr >>> 28) === 0xf) return (destination & logicalId) !== 0; // flat
    return (destination >>> 4) === (logicalId >>> 4) && (destination & logicalId & 0xf) !== 0; // cluster
  }

  /** `info lapic`-style one-screen summary. */
  describe(now: number): string {
    const hex = (n: number) => '0x' + (n >>> 0).toString(16);
    const set = (a: Uint32Array) => {
      const out: number[] = [];
      for (let v = 0; v < 256; v++) if (bitTest(a, v)) out.push(v);
      return out.length ? out.map(hex).join(' ') : '(none)';
    };
    return [
      `apic ${this.id}: base ${hex(this.apicBase)} mode ${this.x2apic ? 'x2apic' : this.hardwareEnabled ? 'xapic' : 'disabled'}${this.waitingForSipi ? ' wait-for-sipi' : ''}`,
      `  tpr ${hex(this.tpr)} ppr ${hex(this.ppr())} svr ${hex(this.svr)} esr ${hex(this.esr)} ldr ${hex(this.ldr)} dfr ${hex(this.dfr)}`,
      `  lvt timer ${hex(this.lvt[0])} thermal ${hex(this.lvt[1])} perf ${hex(this.lvt[2])} lint0 ${hex(this.lvt[3])} lint1 ${hex(this.lvt[4])} error ${hex(this.lvt[5])}`,
      `  timer initial ${this.timerInitial} current ${this.timerCount(now)} divide ${timerDivisor(this.tdcr)} deadline ${this.tscDeadline}`,
      `  irr ${set(this.irr)}`, `  isr ${set(this.isr)}`, `  tmr ${set(this.tmr)}`,
    ].join('\n');
  }
}

/** Whether `index` is an x2APIC register MSR. */
export function isX2apicMsr(index: number): boolean {
  return index >= X2APIC_MSR_FIRST && index <= X2APIC_MSR_LAST;
}
