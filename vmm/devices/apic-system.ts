/**
 * The local APICs of a VM (one per vCPU, APIC ID = vCPU index, vCPU 0 the BSP) as the
 * devices the buses see: the xAPIC MMIO page (every vCPU at the same address, each reaching
 * its own APIC), the x2APIC MSRs 0x800-0x8FF and IA32_APIC_BASE / IA32_TSC_DEADLINE, the
 * IPI routing of the ICR (physical and logical destinations, shorthands; fixed,
 * lowest-priority, NMI, INIT, SIPI), and the interrupt interface the vCPU run loop polls:
 * `pendingVector` then `acknowledge` at delivery, the 8259's INTR reaching the BSP through
 * LINT0 in ExtINT mode (virtual wire).
 *
 * Time: each call takes `now`, the vCPU's TSC (see vmm/devices/tsc.ts).
 */
import { AccessSize, DeviceEffect, MmioDevice } from './device';
import {
  APIC_DEFAULT_BASE, DELIVERY_FIXED, DELIVERY_INIT, DELIVERY_LOWEST, DELIVERY_NMI, DELIVERY_STARTUP,
  Ipi, IpiSink, LocalApic, MSR_APIC_BASE, MSR_TSC_DEADLINE, MsrWriteResult, REG, X2APIC_MSR_FIRST, isX2apicMsr,
} from './local-apic';
import { DualPic } from './pic8259';

export const APIC_MMIO_SIZE = 0x1000;
const X2APIC_ICR_MSR = X2APIC_MSR_FIRST + (REG.ICR_LO >> 4);

/** What the run loop needs from the platform's interrupt controllers. */
export interface InterruptController {
  /** Advance the timers of `vcpu` to `now`. */
  update(vcpu: number, now: number): void;
  /** The vector a vCPU with IF=1 takes now, or -1. */
  pendingVector(vcpu: number): number;
  /** The vCPU takes `vector` (the one `pendingVector` returned): INTA. */
  acknowledge(vcpu: number, vector: number): void;
  /** Any reason to wake a halted vCPU (a maskable interrupt when `ifSet`, an NMI, INIT, SIPI)? */
  wakesFromHlt(vcpu: number, ifSet: boolean): boolean;
  /** The earliest TSC value at which something of `vcpu` fires by itself, or undefined. */
  nextEvent(vcpu: number): number | undefined;
}

export class ApicSystem implements IpiSink, MmioDevice, InterruptController {
  readonly name = 'local-apic';
  readonly apics: LocalApic[];
  /** Where an acknowledged vector came from, per vCPU ('apic' or 'pic'). */
  private readonly lastSource: Array<'apic' | 'pic' | null>;

  /**
   * `now(vcpu)` gives a vCPU's TSC; the MMIO path needs it for the timer registers (the
   * device contract passes no time).
   */
  constructor(vcpus: number, private readonly now: (vcpu: number) => number, private readonly pic?: DualPic) {
    this.apics = [];
    for (let i = 0; i < vcpus; i++) this.apics.push(new LocalApic(i, i === 0, this, i));
    this.lastSource = new Array(vcpus).fill(null);
  }

  apic(vcpu: number): LocalApic {
    const a = this.apics[vcpu];
    if (!a) throw new RangeError(`no local APIC for vCPU ${vcpu}`);
    return a;
  }

  /** The base of the xAPIC page, for the MMIO registry (the default; relocation is not modelled). */
  get mmioBase(): number { return APIC_DEFAULT_BASE; }

  // ---- MmioDevice: the xAPIC page ----

  mmioRead(offset: number, size: AccessSize, vcpu: number): number {
    const a = this.apic(vcpu);
    if (a.mmioBase < 0) return 0;
    // Registers are 32 bits at 16-byte strides; narrower reads see part of one.
    const reg = offset & 0xff0;
    if ((offset & 0xf) >= 4) return 0;
    const v = a.readRegister(reg, this.now(vcpu)) ?? 0;
    const shifted = v >>> ((offset & 3) * 8);
    return size === 4 ? shifted >>> 0 : shifted & (size === 2 ? 0xffff : 0xff);
  }

  mmioWrite(offset: number, size: AccessSize, value: number, vcpu: number): DeviceEffect {
    const a = this.apic(vcpu);
    if (a.mmioBase < 0 || (offset & 0xf) !== 0 || size !== 4) return null; // only aligned 32-bit writes count
    a.writeRegister(offset & 0xff0, value, this.now(vcpu));
    return this.effectAfterWrite(offset & 0xff0);
  }

  private effectAfterWrite(reg: number): DeviceEffect {
    // An IPI, a timer armed in the past, a TPR drop or an EOI can make something deliverable.
    return reg === REG.ICR_LO || reg === REG.SELF_IPI || reg === REG.TPR || reg === REG.EOI ||
      reg === REG.LVT_TIMER || reg === REG.TIMER_INITIAL || reg === REG.SVR ? { kind: 'wake' } : null;
  }

  // ---- MSRs ----

  /** Whether this device answers MSR `index` (the CPU asks before its own MSRs). */
  handlesMsr(index: number): boolean {
    return index === MSR_APIC_BASE || index === MSR_TSC_DEADLINE || isX2apicMsr(index);
  }

  /** RDMSR: [lo, hi], or undefined for #GP. */
  readMsr(index: number, vcpu: number): [number, number] | undefined {
    const a = this.apic(vcpu);
    if (index === MSR_APIC_BASE) return [a.apicBase >>> 0, 0];
    if (index === MSR_TSC_DEADLINE) {
      const d = a.readTscDeadline();
      return [d % 0x100000000 >>> 0, Math.floor(d / 0x100000000) >>> 0];
    }
    if (!isX2apicMsr(index) || !a.x2apic) return undefined;
    const reg = (index - X2APIC_MSR_FIRST) << 4;
    if (index === X2APIC_ICR_MSR) return [a.readRegister(REG.ICR_LO, this.now(vcpu)) ?? 0, a.icrHigh];
    const v = a.readRegister(reg, this.now(vcpu));
    return v === undefined ? undefined : [v >>> 0, 0];
  }

  /** WRMSR. */
  writeMsr(index: number, lo: number, hi: number, vcpu: number): MsrWriteResult {
    const a = this.apic(vcpu);
    const now = this.now(vcpu);
    if (index === MSR_APIC_BASE) return a.writeApicBase(lo, hi) ? null : 'gp';
    if (index === MSR_TSC_DEADLINE) {
      a.writeTscDeadline((hi >>> 0) * 0x100000000 + (lo >>> 0), now);
      return { kind: 'wake' };
    }
    if (!isX2apicMsr(index) || !a.x2apic) return 'gp';
    const reg = (index - X2APIC_MSR_FIRST) << 4;
    if (index !== X2APIC_ICR_MSR && hi !== 0) return 'gp';
    if (!a.writeRegister(reg, lo, now, hi)) return 'gp';
    return this.effectAfterWrite(reg);
  }

  // ---- IPI routing ----

  sendIpi(ipi: Ipi): void {
    for (const target of this.targets(ipi)) this.deliver(target, ipi);
  }

  private targets(ipi: Ipi): LocalApic[] {
    switch (ipi.shorthand) {
      case 'self': return [this.apics[ipi.source]];
      case 'all': return this.apics.slice();
      case 'all-but-self': return this.apics.filter((a) => a.id !== ipi.source);
      default: break;
    }
    const broadcast = ipi.x2apic ? 0xffffffff : 0xff;
    let found: LocalApic[];
    if (ipi.logical) found = this.apics.filter((a) => a.matchesLogical(ipi.destination, ipi.x2apic));
    else if (ipi.destination >>> 0 === broadcast) found = this.apics.slice();
    else found = this.apics.filter((a) => a.id === ipi.destination >>> 0);
    // Lowest priority: one of them (the lowest-numbered; arbitration is not modelled).
    if (ipi.delivery === DELIVERY_LOWEST && found.length > 1) found = [found[0]];
    return found;
  }

  private deliver(target: LocalApic, ipi: Ipi): void {
    switch (ipi.delivery) {
      case DELIVERY_FIXED:
      case DELIVERY_LOWEST:
        target.acceptFixed(ipi.vector, ipi.triggerLevel);
        return;
      case DELIVERY_NMI:
        target.acceptNmi();
        return;
      case DELIVERY_INIT:
        // INIT level de-assert (level=0, trigger=level) only synchronizes arbitration IDs.
        if (!ipi.level && ipi.triggerLevel) return;
        target.acceptInit();
        return;
      case DELIVERY_STARTUP:
        target.acceptStartup(ipi.vector);
        return;
      default:
        return; // SMI and reserved modes: nothing modelled
    }
  }

  // ---- InterruptController ----

  update(vcpu: number, now: number): void {
    this.apic(vcpu).update(now);
  }

  pendingVector(vcpu: number): number {
    const a = this.apic(vcpu);
    if (this.pic && vcpu === 0 && a.lint0ExtInt() && this.pic.hasInterrupt()) {
      this.lastSource[vcpu] = 'pic';
      return this.pic.peekVector(); // ExtINT: the 8259 names the vector, the PPR does not apply
    }
    const v = a.highestPending();
    this.lastSource[vcpu] = v >= 0 ? 'apic' : null;
    return v;
  }

  acknowledge(vcpu: number, vector: number): void {
    if (this.lastSource[vcpu] === 'pic' && this.pic) this.pic.acknowledge();
    else this.apic(vcpu).acknowledge(vector);
    this.lastSource[vcpu] = null;
  }

  /** The vector `pendingVector` just named is the local APIC's (not the 8259's). */
  pendingFromApic(vcpu: number): boolean {
    return this.lastSource[vcpu] === 'apic';
  }

  /** The local APIC's `vector`, handed to the CPU but not delivered, goes back to its IRR. */
  retract(vcpu: number, vector: number): void {
    this.apic(vcpu).unacknowledge(vector);
  }

  wakesFromHlt(vcpu: number, ifSet: boolean): boolean {
    const a = this.apic(vcpu);
    if (a.hasNmi || a.hasInit || a.hasSipi) return true;
    if (!ifSet) return false;
    return a.highestPending() >= 0 || (vcpu === 0 && !!this.pic && a.lint0ExtInt() && this.pic.hasInterrupt());
  }

  nextEvent(vcpu: number): number | undefined {
    return this.apic(vcpu).nextTimerEvent();
  }
}
