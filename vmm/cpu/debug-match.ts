/**
 * Breakpoint matching against the PHYSICAL debug registers (SDM 17.2.4-17.2.5).
 *
 * A summary of DR0-3/DR7 is precomputed and rebuilt only when PhysicalCpu.generation (or
 * CR4.DE) changes and the registers differ from those it was built from, so that the
 * interpreter pays nothing when DR7 enables nothing: the hot path tests one number
 * (`dataEnabled`, `execEnabled`) and a per-page filter.
 *
 * Matching rules:
 *  - R/W: 00 instruction, 01 data write, 10 I/O (only with CR4.DE=1), 11 data read/write.
 *  - LEN: 00 1 byte, 01 2, 10 8 (SDM 17.2.6), 11 4; the LEN mask {0,1,7,3} clears the low
 *    address bits of DRn (17.2.5: "it uses LENn field bits to mask the lower address bits").
 *  - An access hits when ANY of its bytes overlaps the range.
 *  - Addresses are LINEAR: data breakpoints match before translation (SDM 17.2.4).
 *  - As Bochs: if at least one ENABLED breakpoint matched, the B bits of ALL matching
 *    breakpoints of that kind are reported, enabled or not (17.2.3: "may or may not be set").
 */
import { PhysicalCpu } from './physical-cpu';
import { DR7_RW_ACCESS, DR7_RW_EXEC, DR7_RW_WRITE, dr7SlotAddressMask, dr7SlotEnabled, dr7SlotRw } from '../x86/debug-regs';

export class BreakpointSummary {
  generation = -1;
  cr4de = false;
  /** Slot masks of ENABLED (Ln or Gn) breakpoints by kind. */
  execEnabled = 0;
  dataEnabled = 0;
  ioEnabled = 0;
  /** Slot masks of all breakpoints of a kind, enabled or not (for the Bochs B-bit rule). */
  execAny = 0;
  readAny = 0; // R/W = 11
  writeAny = 0; // R/W = 01 or 11
  ioAny = 0;
  /**
   * Inclusive LINEAR ranges, as signed numbers (bits 63:32 taken as int32), exact for every
   * canonical address: a higher-half DRn matches too.
   */
  readonly start = new Float64Array(4);
  readonly end = new Float64Array(4);
  /**
   * Bumped only when the ranges of the ENABLED data breakpoints change: what the TLB's
   * has-data-breakpoint flags depend on. The DR switch rewrites the physical registers at
   * every VM entry and exit, mostly with the same breakpoints (or none).
   */
  dataLayout = 0;
  private readonly dataStart = new Float64Array(4);
  private readonly dataEnd = new Float64Array(4);
  private dataMask = 0;
  /** The inputs of the last load: DR0-3 at 0-3 (and their high halves), DR7 bits 31:0 at inLo[4]. */
  private readonly inLo = new Uint32Array(5);
  private readonly inHi = new Uint32Array(4);
  private loaded = false;

  constructor(_memSize?: number) { /* ranges are linear: nothing sized by RAM */ }

  /** True if the summary is stale. */
  stale(phys: PhysicalCpu, cr4de: boolean): boolean {
    return phys.generation !== this.generation || cr4de !== this.cr4de;
  }

  refresh(phys: PhysicalCpu, cr4de: boolean): void {
    this.generation = phys.generation;
    // The DR switch bumps the generation at every VM entry and exit, mostly putting back the
    // same DR0-3/DR7: rebuilding from the same inputs would give the same summary.
    if (this.loadedFrom(phys.drLo, phys.drHi, cr4de)) return;
    this.load(phys.drLo, phys.drHi, cr4de);
  }

  /** The summary was last built from exactly these inputs (DR0-3, DR7 bits 31:0, CR4.DE). */
  private loadedFrom(drLo: Uint32Array, drHi: Uint32Array, cr4de: boolean): boolean {
    const lo = this.inLo, hi = this.inHi;
    return this.loaded && cr4de === this.cr4de && drLo[7] === lo[4] &&
      drLo[0] === lo[0] && drLo[1] === lo[1] && drLo[2] === lo[2] && drLo[3] === lo[3] &&
      drHi[0] === hi[0] && drHi[1] === hi[1] && drHi[2] === hi[2] && drHi[3] === hi[3];
  }

  /**
   * Rebuilds the summary from a DR0-3/DR7 set (index = DR number): the physical registers,
   * or the guest's effective registers when the hypervisor emulates an I/O instruction.
   */
  load(drLo: ArrayLike<number>, drHi: ArrayLike<number>, cr4de: boolean): void {
    this.cr4de = cr4de;
    const dr7 = drLo[7];
    this.loaded = true;
    for (let n = 0; n < 4; n++) { this.inLo[n] = drLo[n]; this.inHi[n] = drHi[n]; }
    this.inLo[4] = dr7;
    this.execEnabled = this.dataEnabled = this.ioEnabled = 0;
    this.execAny = this.readAny = this.writeAny = this.ioAny = 0;
    for (let n = 0; n < 4; n++) {
      const rw = dr7SlotRw(dr7, n);
      const enabled = dr7SlotEnabled(dr7, n);
      const mask = dr7SlotAddressMask(dr7, n);
      const bit = 1 << n;
      this.start[n] = (drHi[n] | 0) * 4294967296 + ((drLo[n] & ~mask) >>> 0);
      this.end[n] = this.start[n] + mask;
      switch (rw) {
        case DR7_RW_EXEC: this.execAny |= bit; if (enabled) this.execEnabled |= bit; break;
        case DR7_RW_WRITE: this.writeAny |= bit; if (enabled) this.dataEnabled |= bit; break;
        case DR7_RW_ACCESS: this.writeAny |= bit; this.readAny |= bit; if (enabled) this.dataEnabled |= bit; break;
        default:
          if (cr4de) { this.ioAny |= bit; if (enabled) this.ioEnabled |= bit; }
      }
    }
    let changed = this.dataEnabled !== this.dataMask;
    for (let n = 0; n < 4; n++) {
      if (((this.dataEnabled >>> n) & 1) === 0) continue;
      if (this.start[n] !== this.dataStart[n] || this.end[n] !== this.dataEnd[n]) changed = true;
      this.dataStart[n] = this.start[n];
      this.dataEnd[n] = this.end[n];
    }
    if (changed) {
      this.dataMask = this.dataEnabled;
      this.dataLayout++;
    }
  }

  /** An enabled data breakpoint covers part of the 4 KiB linear page at (pageLo, hi). */
  pageHasData(pageLo: number, hi: number): boolean {
    if (this.dataEnabled === 0) return false;
    const s = (hi | 0) * 4294967296 + (pageLo >>> 0), e = s + 4095;
    for (let n = 0; n < 4; n++) {
      if ((this.dataEnabled >>> n) & 1 && s <= this.end[n] && e >= this.start[n]) return true;
    }
    return false;
  }

  private match(any: number, enabled: number, lo: number, hi: number): number {
    let bits = 0, hitEnabled = false;
    for (let n = 0; n < 4; n++) {
      const bit = 1 << n;
      if (!(any & bit)) continue;
      if (lo <= this.end[n] && hi >= this.start[n]) {
        bits |= bit;
        if (enabled & bit) hitEnabled = true;
      }
    }
    return hitEnabled ? bits : 0;
  }

  /** B bits for a data access of `len` bytes at linear `addr` (signed form, see start/end). */
  matchData(addr: number, len: number, write: boolean): number {
    return this.match(write ? this.writeAny : this.readAny, this.dataEnabled, addr, addr + len - 1);
  }

  /** B bits for an instruction fetch at `rip` (R/W=00; only LEN=00 is defined). */
  matchExec(rip: number): number {
    const a = rip >= 9223372036854775808 ? rip - 18446744073709551616 : rip;
    return this.match(this.execAny, this.execEnabled, a, a);
  }

  /** B bits for an I/O access (R/W=10, CR4.DE=1). */
  matchIo(port: number, size: number): number {
    if (!this.ioEnabled) return 0;
    return this.match(this.ioAny, this.ioEnabled, port, port + size - 1);
  }
}
