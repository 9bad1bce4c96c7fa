/**
 * The one translation and access layer every guest access goes through (instruction fetch,
 * the generic and inlined handlers, event delivery, the hypervisor's string I/O and the
 * debugger's reads): linear -> physical through the TLB or the page walker, then RAM, an
 * MMIO device, or a nested-page fault.
 *
 * The TLB (per vCPU, direct mapped, TLB_SIZE entries of 4 KiB linear pages) holds the
 * translation (physical page, flags) and three "fast tags" that the inline accessors of
 * core.ts/fast.ts compare against: the tag equals the page's linear address only when an
 * access of that kind at the current CPL needs nothing but the RAM access (RAM page, access
 * allowed, dirty for writes, no data breakpoint on the linear page). Everything else takes
 * the slow path here. Whatever changes those conditions (CR0/CR3/CR4/EFER, CPL, DR7, INVLPG)
 * flushes or re-tags the TLB.
 *
 * Paging structures (SDM vol. 3 ch. 4): 32-bit (4 MiB pages with CR4.PSE), PAE, 4-level
 * (2 MiB and 1 GiB pages), A/D bits, U/S, R/W with CR0.WP, NX with EFER.NXE, global pages
 * (CR4.PGE), SMEP/SMAP. PAE PDPTEs are read at walk time (not cached at the CR3 load).
 * PCID: pcid.ts (the TLB is flushed, not tagged). Reserved-bit checks: NX without NXE, PS in a
 * PML4E; physical-address bits above MAXPHYADDR are not checked (such an address is outside
 * RAM and ends in a nested-page fault).
 */
import type { CpuCore } from './core';
import { FaultKind, FAULT } from './core';
import { CR0_PG, CR0_WP, CR4_PAE, CR4_PGE, CR4_PSE, CR4_SMAP, CR4_SMEP } from '../x86/control-regs';
import { EFER_LMA, EFER_NXE } from '../x86/msr';
import { AC as RFLAGS_AC } from '../x86/rflags';
import { PdeCache, PDE_RW, PDE_US, PDE_XD } from './pde-cache';

export const TLB_SIZE = 256;
export const TLB_MASK = TLB_SIZE - 1;
/** A tag no page address equals (page addresses have bits 11:0 clear). */
export const TAG_NONE = 1;

// access kinds
export const ACC_READ = 0;
export const ACC_WRITE = 1;
export const ACC_FETCH = 2;
/** Implicit supervisor access (GDT, IDT, TSS, LDT): supervisor rules even at CPL 3. */
export const ACC_SYS = 4;
/** A data access exempt from alignment checking (16-byte SSE operands: #AC covers 2/4/8-byte data only). */
export const ACC_NOAC = 16;
/** Debugger access: no faults raised, no A/D bits, no data breakpoints; CPL 0 rules (fetch probes: the CPL's). */
export const ACC_PROBE = 8;

// TLB entry flags
const F_USER = 1;
const F_WRITE = 2;
const F_NX = 4;
const F_DIRTY = 8;
const F_GLOBAL = 16;
const F_LARGE = 32;
const F_RAM = 64;
const F_DATABP = 128;
/** Paging off: every access is allowed. */
const F_NOPAGING = 256;

// paging-structure entry bits
const P = 1, RW = 2, US = 4, A = 0x20, D = 0x40, PS = 0x80, G = 0x100;

// #PF error code bits
const PF_P = 1, PF_W = 2, PF_U = 4, PF_RSVD = 8, PF_I = 16;

export const enum PagingMode { OFF = 0, BITS32 = 1, PAE = 2, LONG4 = 3 }

/** The paging structure CR0.PG / CR4.PAE / EFER.LMA select. */
export function pagingModeOf(cr0: number, cr4: number, efer: number): PagingMode {
  if (!(cr0 & CR0_PG)) return PagingMode.OFF;
  if (efer & EFER_LMA) return PagingMode.LONG4;
  return cr4 & CR4_PAE ? PagingMode.PAE : PagingMode.BITS32;
}

/** Per-vCPU TLB storage (fields live on CpuCore for the inline fast paths). */
export interface TlbArrays {
  readonly tlbR: Int32Array;
  readonly tlbW: Int32Array;
  readonly tlbX: Int32Array;
  readonly tlbHi: Int32Array;
  readonly tlbPhys: Int32Array;
  readonly tlbPage: Int32Array;
  readonly tlbFlags: Int32Array;
  readonly tlbPhysF: Float64Array;
}

export function newTlb(): TlbArrays {
  return {
    tlbR: new Int32Array(TLB_SIZE).fill(TAG_NONE),
    tlbW: new Int32Array(TLB_SIZE).fill(TAG_NONE),
    tlbX: new Int32Array(TLB_SIZE).fill(TAG_NONE),
    tlbHi: new Int32Array(TLB_SIZE),
    tlbPhys: new Int32Array(TLB_SIZE),
    tlbPage: new Int32Array(TLB_SIZE).fill(TAG_NONE),
    tlbFlags: new Int32Array(TLB_SIZE),
    tlbPhysF: new Float64Array(TLB_SIZE),
  };
}

// ---- flushes -----------------------------------------------------------------------------

/** Drops every entry (CR0/CR4/EFER paging changes, a CR3 load with CR4.PGE=0 ...). */
export function tlbFlushAll(c: CpuCore): void {
  c.tlbPage.fill(TAG_NONE);
  c.pdeCache.clear();
  retag(c);
}

/** A CR3 load: drops every entry but the global ones (CR4.PGE=1). */
export function tlbFlushNonGlobal(c: CpuCore): void {
  if (!(c.cr4 & CR4_PGE)) { tlbFlushAll(c); return; }
  const fl = c.tlbFlags, pg = c.tlbPage;
  for (let e = 0; e < TLB_SIZE; e++) if (!(fl[e] & F_GLOBAL)) pg[e] = TAG_NONE;
  c.pdeCache.clear();
  retag(c);
}

/** INVLPG: the entry of that page, global or not, and every entry from a large page. */
export function tlbInvalidatePage(c: CpuCore, lo: number, hi: number): void {
  const e = (lo >>> 12) & TLB_MASK;
  if (c.tlbPage[e] === (lo & ~0xfff) && c.tlbHi[e] === (hi | 0)) c.tlbPage[e] = TAG_NONE;
  const fl = c.tlbFlags, pg = c.tlbPage;
  for (let k = 0; k < TLB_SIZE; k++) if (fl[k] & F_LARGE) pg[k] = TAG_NONE;
  c.pdeCache.clear(); // INVLPG empties the paging-structure caches (SDM 4.10.4.1)
  retag(c);
}

/**
 * Clears the fast tags (CPL, CR0.WP, CR4.SMEP/SMAP or the data breakpoints changed): the
 * next access of each page re-derives them in the slow path. Also ends decoded-block
 * chaining, whose links were checked against the old fetch permissions.
 */
export function retag(c: CpuCore): void {
  c.tlbR.fill(TAG_NONE);
  c.tlbW.fill(TAG_NONE);
  c.tlbX.fill(TAG_NONE);
  c.xlatEpoch++;
  c.attention = 1;
}

// ---- translation -------------------------------------------------------------------------

function canonical(hi: number): boolean {
  const top = hi >>> 15;
  return top === 0 || top === 0x1ffff;
}

/** Whether an access of kind `acc` is allowed on an entry with flags `f` right now. */
function allowed(c: CpuCore, f: number, acc: number): boolean {
  if (f & F_NOPAGING) return true;
  if (acc & ACC_FETCH) {
    // a fetch probe (the decoder's look-ahead) follows the CPL like the fetch itself
    const user = c.cpl === 3;
    if (f & F_NX) return false;
    if (user) return (f & F_USER) !== 0;
    return !((f & F_USER) && (c.cr4 & CR4_SMEP));
  }
  const user = c.cpl === 3 && !(acc & (ACC_SYS | ACC_PROBE));
  if (user) return (f & F_USER) !== 0 && (!(acc & ACC_WRITE) || (f & F_WRITE) !== 0);
  if ((f & F_USER) && (c.cr4 & CR4_SMAP) && !(acc & ACC_PROBE) && ((acc & ACC_SYS) || !(c.rflags & RFLAGS_AC))) return false;
  if ((acc & ACC_WRITE) && !(f & F_WRITE) && (c.cr0 & CR0_WP)) return false;
  return true;
}

/** Sets the fast tags of entry e from its flags and the current CPL/CR0/CR4. */
function setFastTags(c: CpuCore, e: number): void {
  const f = c.tlbFlags[e];
  const page = c.tlbPage[e];
  if (!(f & F_RAM)) return;
  c.tlbX[e] = allowed(c, f, ACC_FETCH) ? page : TAG_NONE;
  // supervisor data to a user page with SMAP depends on RFLAGS.AC: always the slow path
  const smap = (f & F_USER) && (c.cr4 & CR4_SMAP) && c.cpl !== 3 && !(f & F_NOPAGING);
  // alignment checking on: every data access goes through the slow path's check
  if (f & F_DATABP || smap || c.acCheck !== 0) return;
  c.tlbR[e] = allowed(c, f, ACC_READ) ? page : TAG_NONE;
  c.tlbW[e] = f & F_DIRTY && allowed(c, f, ACC_WRITE) ? page : TAG_NONE;
}

/**
 * The physical address of linear (lo,hi) for an access of kind `acc`, filling the TLB.
 * Faults (#GP for a non-canonical address, #PF with CR2 and the error code, a nested-page
 * fault while reading paging structures) are raised; with ACC_PROBE the result is -1
 * instead and nothing changes.
 */
export function translate(c: CpuCore, lo: number, hi: number, acc: number): number {
  const e = (lo >>> 12) & TLB_MASK;
  const page = lo & ~0xfff;
  if (c.tlbPage[e] === page && c.tlbHi[e] === (hi | 0)) {
    const f = c.tlbFlags[e];
    if (allowed(c, f, acc) && (!(acc & ACC_WRITE) || (f & F_DIRTY) || (acc & ACC_PROBE))) {
      if (!(acc & ACC_PROBE)) setFastTags(c, e);
      return c.tlbPhysF[e] + (lo & 0xfff);
    }
    // a protection failure or a first write: the entry may be stale, walk again
  }
  const p = walk(c, lo, hi, acc);
  if (p < 0) return -1;
  if (!(acc & ACC_PROBE)) setFastTags(c, e);
  return p;
}

// walk results written here (no allocation)
let wFlags = 0;
/** A probe walk found every A bit set: filling the TLB changes nothing a real walk would not. */
let wProbeFill = false;

/** Walks the paging structures; fills TLB entry of (lo,hi). Returns the physical address or -1 (probe). */
function walk(c: CpuCore, lo: number, hi: number, acc: number): number {
  const mode = c.pagingMode;
  const probe = (acc & ACC_PROBE) !== 0;
  let phys: number;
  if (mode === PagingMode.OFF) {
    // linear = physical (32-bit linear addresses outside long mode)
    phys = hi * 4294967296 + lo;
    wFlags = F_NOPAGING | F_WRITE | F_DIRTY | F_USER;
    wProbeFill = true;
  } else {
    if (mode === PagingMode.LONG4 && !canonical(hi)) {
      if (probe) return -1;
      return c.gp0();
    }
    phys = mode === PagingMode.LONG4 || mode === PagingMode.PAE ? walk64(c, lo, hi, acc) : walk32(c, lo, acc);
    if (phys < 0) return -1;
  }
  const e = (lo >>> 12) & TLB_MASK;
  const physPage = phys - (lo & 0xfff);
  let f = wFlags;
  if (physPage + 4096 <= c.memSize) f |= F_RAM;
  if (c.dataBpOn !== 0 && c.bp.pageHasData(lo & ~0xfff, hi)) f |= F_DATABP;
  if (!probe || wProbeFill) {
    c.tlbPage[e] = lo & ~0xfff;
    c.tlbHi[e] = hi | 0;
    c.tlbFlags[e] = f;
    c.tlbPhysF[e] = physPage;
    c.tlbPhys[e] = physPage < 0x80000000 ? physPage : 0;
    if (physPage >= 0x80000000) c.tlbFlags[e] = f & ~F_RAM; // beyond the int32 fast path
    c.tlbR[e] = TAG_NONE; c.tlbW[e] = TAG_NONE; c.tlbX[e] = TAG_NONE;
  }
  return phys;
}

/** Raises #PF for (lo,hi) (or returns -1 for a probe). */
function pageFault(c: CpuCore, lo: number, hi: number, acc: number, bits: number): number {
  if (acc & ACC_PROBE) return -1;
  let err = bits;
  if (acc & ACC_WRITE) err |= PF_W;
  if (c.cpl === 3 && !(acc & ACC_SYS)) err |= PF_U;
  if ((acc & ACC_FETCH) && ((c.efer & EFER_NXE && c.pagingMode !== PagingMode.BITS32) || (c.cr4 & CR4_SMEP))) err |= PF_I;
  c.cr2Lo = lo >>> 0;
  c.cr2Hi = hi >>> 0;
  return c.exception(14, err);
}

// entry read scratch
let eLo = 0, eHi = 0;

/** Reads the 8-byte (or 4-byte) paging-structure entry at physical `p` into eLo/eHi. */
function readEntry(c: CpuCore, p: number, size: number, probe: boolean): boolean {
  if (p + size <= c.memSize) {
    eLo = c.dv.getUint32(p, true);
    eHi = size === 8 ? c.dv.getUint32(p + 4, true) : 0;
    return true;
  }
  const r = c.mem.mmio.lookup(p);
  if (r !== undefined) {
    eLo = r.device.mmioRead(p - r.base, 4, c.vcpuIndex) >>> 0;
    eHi = size === 8 ? r.device.mmioRead(p + 4 - r.base, 4, c.vcpuIndex) >>> 0 : 0;
    return true;
  }
  if (probe) return false;
  c.faultKind = FaultKind.NPF;
  c.npfAddr = p;
  c.npfWrite = false;
  c.npfFetch = false;
  throw FAULT;
}

/** Sets bits in the low dword of the entry at p (A/D), if it is RAM. */
function setEntryBits(c: CpuCore, p: number, bits: number, cur: number): void {
  if ((cur & bits) === bits || p + 4 > c.memSize) return;
  c.dv.setUint32(p, (cur | bits) >>> 0, true);
  if (c.codePages[p >>> 12] !== 0) c.code.written(p, 4);
}

// up to 4 levels of entry addresses and low dwords, for the A/D updates after a good walk
const entAddr = new Float64Array(4);
const entLo = new Uint32Array(4);

/** PAE and 4-level walks (8-byte entries). */
function walk64(c: CpuCore, lo: number, hi: number, acc: number): number {
  const probe = (acc & ACC_PROBE) !== 0;
  const nxe = (c.efer & EFER_NXE) !== 0;
  const long = c.pagingMode === PagingMode.LONG4;
  let table: number;
  let level: number; // 4 = PML4, 3 = PDPT, 2 = PD, 1 = PT
  if (long) {
    table = (c.cr3Hi & 0xfffff) * 4294967296 + ((c.cr3Lo & 0xfffff000) >>> 0);
    level = 4;
  } else {
    table = (c.cr3Lo & 0xffffffe0) >>> 0;
    level = 3;
  }
  let rw = RW, us = US, nx = 0, n = 0;
  // the region's page table from the paging-structure cache: only the PTE is read
  const psc = c.pdeCache;
  let fill = false, pdeTable = 0, pdeRights = 0;
  if (long) {
    const k = PdeCache.slot(lo, hi);
    if (psc.holds(k, lo, hi)) {
      const r = psc.rights[k];
      table = psc.table[k];
      level = 1;
      rw = r & PDE_RW; us = r & PDE_US; nx = r & PDE_XD ? 1 : 0;
    } else fill = !probe;
  }
  for (;;) {
    let idx: number;
    switch (level) {
      case 4: idx = (hi >>> 7) & 0x1ff; break;
      case 3: idx = long ? ((hi & 0x7f) << 2) | (lo >>> 30) : lo >>> 30; break;
      case 2: idx = (lo >>> 21) & 0x1ff; break;
      default: idx = (lo >>> 12) & 0x1ff;
    }
    const ea = table + idx * 8;
    if (!readEntry(c, ea, 8, probe)) return -1;
    const lo0 = eLo, hi0 = eHi;
    if (!(lo0 & P)) return pageFault(c, lo, hi, acc, 0);
    if ((hi0 & 0x80000000) && !nxe) return pageFault(c, lo, hi, acc, PF_P | PF_RSVD);
    if (level === 4 && (lo0 & PS)) return pageFault(c, lo, hi, acc, PF_P | PF_RSVD);
    entAddr[n] = ea; entLo[n] = lo0; n++;
    if (long || level !== 3) { // PAE PDPTEs carry no R/W, U/S, NX
      rw &= lo0; us &= lo0;
      if (hi0 & 0x80000000) nx = 1;
    }
    const base = (hi0 & 0xfffff) * 4294967296 + ((lo0 & 0xfffff000) >>> 0);
    const leaf = level === 1 || ((level === 2 || (level === 3 && long)) && (lo0 & PS));
    if (leaf) {
      let phys: number;
      if (level === 1) phys = base + (lo & 0xfff);
      else if (level === 2) phys = (base - (base % 0x200000)) + (lo & 0x1fffff);
      else phys = (base - (base % 0x40000000)) + (lo & 0x3fffffff);
      const r = finishWalk(c, lo, hi, acc, phys, rw !== 0, us !== 0, nx !== 0, (lo0 & G) !== 0 && (c.cr4 & CR4_PGE) !== 0, level > 1, n, (lo0 & D) !== 0);
      // a completed walk through a page table: its PML4E, PDPTE and PDE have their A bits set now
      if (fill && level === 1) psc.put(lo, hi, pdeTable, pdeRights);
      return r;
    }
    if (level === 2) { pdeTable = base; pdeRights = (rw & PDE_RW) | (us & PDE_US) | (nx !== 0 ? PDE_XD : 0); }
    table = base;
    level--;
  }
}

/** 32-bit paging (4-byte entries; 4 MiB pages with CR4.PSE). */
function walk32(c: CpuCore, lo: number, acc: number): number {
  const probe = (acc & ACC_PROBE) !== 0;
  const pdAddr = ((c.cr3Lo & 0xfffff000) >>> 0) + (lo >>> 22) * 4;
  if (!readEntry(c, pdAddr, 4, probe)) return -1;
  const pde = eLo;
  if (!(pde & P)) return pageFault(c, lo, 0, acc, 0);
  entAddr[0] = pdAddr; entLo[0] = pde;
  if ((pde & PS) && (c.cr4 & CR4_PSE)) {
    const phys = ((pde & 0xffc00000) >>> 0) + ((pde >>> 13) & 0xff) * 4294967296 + (lo & 0x3fffff);
    return finishWalk(c, lo, 0, acc, phys, (pde & RW) !== 0, (pde & US) !== 0, false, (pde & G) !== 0 && (c.cr4 & CR4_PGE) !== 0, true, 1, (pde & D) !== 0);
  }
  const ptAddr = ((pde & 0xfffff000) >>> 0) + ((lo >>> 12) & 0x3ff) * 4;
  if (!readEntry(c, ptAddr, 4, probe)) return -1;
  const pte = eLo;
  if (!(pte & P)) return pageFault(c, lo, 0, acc, 0);
  entAddr[1] = ptAddr; entLo[1] = pte;
  const phys = ((pte & 0xfffff000) >>> 0) + (lo & 0xfff);
  return finishWalk(c, lo, 0, acc, phys, (pde & pte & RW) !== 0, (pde & pte & US) !== 0, false, (pte & G) !== 0 && (c.cr4 & CR4_PGE) !== 0, false, 2, (pte & D) !== 0);
}

/** Permission check, A/D updates and the flags of a completed walk (n entries in entAddr). */
function finishWalk(c: CpuCore, lo: number, hi: number, acc: number, phys: number, rw: boolean, us: boolean, nx: boolean,
  global: boolean, large: boolean, n: number, dirty: boolean): number {
  let f = 0;
  if (us) f |= F_USER;
  if (rw) f |= F_WRITE;
  if (nx) f |= F_NX;
  if (global) f |= F_GLOBAL;
  if (large) f |= F_LARGE;
  if (!allowed(c, f, acc)) return pageFault(c, lo, hi, acc, PF_P);
  wProbeFill = true;
  if (acc & ACC_PROBE) for (let k = 0; k < n; k++) if (!(entLo[k] & A)) wProbeFill = false;
  if (!(acc & ACC_PROBE)) {
    for (let k = 0; k < n; k++) setEntryBits(c, entAddr[k], A, entLo[k]);
    if (acc & ACC_WRITE) { setEntryBits(c, entAddr[n - 1], A | D, entLo[n - 1] | A); dirty = true; }
  }
  if (dirty) f |= F_DIRTY;
  wFlags = f;
  return phys;
}

// ---- physical accesses -------------------------------------------------------------------

/** A nested-page fault at physical p. */
export function npf(c: CpuCore, p: number, write: boolean, fetch: boolean): never {
  c.faultKind = FaultKind.NPF;
  c.npfAddr = p;
  c.npfWrite = write;
  c.npfFetch = fetch;
  throw FAULT;
}

/** Reads n (1, 2, 4, 8) bytes at physical p: RAM, else MMIO (8 = two 4-byte accesses), else NPF. High half in c.t. */
export function physRead(c: CpuCore, p: number, n: number): number {
  if (p + n <= c.memSize) {
    const dv = c.dv;
    switch (n) {
      case 1: return c.bytes[p];
      case 2: return dv.getUint16(p, true);
      case 4: return dv.getUint32(p, true);
      default: c.t = dv.getUint32(p + 4, true); return dv.getUint32(p, true);
    }
  }
  const r = c.mem.mmio.lookup(p);
  if (r === undefined || p + n > r.base + r.size) return npf(c, p < c.memSize ? c.memSize : p, false, false);
  const dev = r.device;
  if (n === 8) {
    const lo = dev.mmioRead(p - r.base, 4, c.vcpuIndex) >>> 0;
    c.t = dev.mmioRead(p + 4 - r.base, 4, c.vcpuIndex) >>> 0;
    return lo;
  }
  return dev.mmioRead(p - r.base, n as 1 | 2 | 4, c.vcpuIndex) >>> 0;
}

/** Writes n bytes at physical p (code in RAM is invalidated where the bytes overlap it). */
export function physWrite(c: CpuCore, p: number, n: number, vLo: number, vHi: number): void {
  if (p + n <= c.memSize) {
    const dv = c.dv;
    switch (n) {
      case 1: c.bytes[p] = vLo; break;
      case 2: dv.setUint16(p, vLo, true); break;
      case 4: dv.setUint32(p, vLo >>> 0, true); break;
      default: dv.setUint32(p, vLo >>> 0, true); dv.setUint32(p + 4, vHi >>> 0, true);
    }
    const cp = c.codePages;
    if ((cp[p >>> 12] | cp[(p + n - 1) >>> 12]) !== 0) c.code.written(p, n);
    return;
  }
  const r = c.mem.mmio.lookup(p);
  if (r === undefined || p + n > r.base + r.size) return npf(c, p < c.memSize ? c.memSize : p, true, false);
  const dev = r.device;
  let eff;
  if (n === 8) {
    eff = dev.mmioWrite(p - r.base, 4, vLo >>> 0, c.vcpuIndex);
    c.noteDeviceEffect(eff);
    eff = dev.mmioWrite(p + 4 - r.base, 4, vHi >>> 0, c.vcpuIndex);
  } else eff = dev.mmioWrite(p - r.base, n as 1 | 2 | 4, vLo >>> 0, c.vcpuIndex);
  c.noteDeviceEffect(eff);
}

// ---- linear accesses (the slow paths of core.ts) ----------------------------------------

/** Data-breakpoint check of a linear access (before translation, SDM 17.2.4). */
function dataBp(c: CpuCore, lo: number, hi: number, n: number, write: boolean): void {
  const bits = c.bp.matchData((hi | 0) * 4294967296 + lo, n, write);
  if (bits) { c.dataHits |= bits; c.attention = 1; }
}

/**
 * #AC(0) for a misaligned 2-, 4- or 8-byte data access while alignment checking is on (the
 * caller tests c.acCheck: CR0.AM, RFLAGS.AC, CPL 3). Implicit supervisor accesses (GDT, IDT,
 * TSS) and debugger accesses are not checked; neither are 16-byte SSE operands (ACC_NOAC).
 * Checked before translation, with the other linear-address checks.
 */
function alignmentCheck(c: CpuCore, lo: number, n: number, acc: number): void {
  if ((lo & (n - 1) & 7) !== 0 && !(acc & (ACC_SYS | ACC_PROBE | ACC_NOAC))) c.exception(17, 0);
}

/** Reads n bytes at linear (lo,hi) with access kind acc (ACC_READ or ACC_SYS). High half of 8 in c.t. */
export function linearRead(c: CpuCore, lo: number, hi: number, n: number, acc: number): number {
  if (c.acCheck !== 0) alignmentCheck(c, lo, n, acc);
  const off = lo & 0xfff;
  let v: number;
  if (off + n <= 4096) {
    v = physRead(c, translate(c, lo, hi, acc), n);
  } else {
    // crosses a page: translate both pages first, then byte by byte
    const n1 = 4096 - off;
    const p1 = translate(c, lo, hi, acc);
    const lo2 = (lo + n1) >>> 0, hi2 = lo2 === 0 ? (hi + 1) >>> 0 : hi;
    const p2 = translate(c, lo2, hi2, acc);
    let vLo = 0, vHi = 0;
    for (let k = n - 1; k >= 0; k--) {
      const b = physRead(c, k < n1 ? p1 + k : p2 + (k - n1), 1);
      if (k >= 4) vHi = ((vHi << 8) | b) >>> 0; else vLo = ((vLo << 8) | b) >>> 0;
    }
    c.t = vHi;
    v = vLo;
  }
  if (c.dataBpOn !== 0 && !(acc & ACC_PROBE)) {
    const t = c.t;
    dataBp(c, lo, hi, n, false);
    c.t = t;
  }
  return v;
}

/** Writes n bytes at linear (lo,hi); every page is checked before any byte is written. */
export function linearWrite(c: CpuCore, lo: number, hi: number, n: number, vLo: number, vHi: number, acc: number): void {
  if (c.acCheck !== 0) alignmentCheck(c, lo, n, acc);
  const off = lo & 0xfff;
  const a = acc | ACC_WRITE;
  if (off + n <= 4096) {
    physWrite(c, translate(c, lo, hi, a), n, vLo, vHi);
  } else {
    const n1 = 4096 - off;
    const p1 = translate(c, lo, hi, a);
    const lo2 = (lo + n1) >>> 0, hi2 = lo2 === 0 ? (hi + 1) >>> 0 : hi;
    const p2 = translate(c, lo2, hi2, a);
    for (let k = 0; k < n; k++) {
      const b = k < 4 ? (vLo >>> (k * 8)) & 0xff : (vHi >>> ((k - 4) * 8)) & 0xff;
      physWrite(c, k < n1 ? p1 + k : p2 + (k - n1), 1, b, 0);
    }
  }
  if (c.dataBpOn !== 0) dataBp(c, lo, hi, n, true);
}

/** Checks that a write of n bytes at linear (lo,hi) would succeed, without writing. */
export function linearProbeWrite(c: CpuCore, lo: number, hi: number, n: number, acc: number): void {
  if (c.acCheck !== 0 && (n === 2 || n === 4 || n === 8)) alignmentCheck(c, lo, n, acc);
  const a = acc | ACC_WRITE;
  const p1 = translate(c, lo, hi, a);
  const off = lo & 0xfff;
  if (off + n > 4096) {
    const lo2 = (lo + 4096 - off) >>> 0, hi2 = lo2 === 0 ? (hi + 1) >>> 0 : hi;
    const p2 = translate(c, lo2, hi2, a);
    checkPhys(c, p2, n - (4096 - off), true);
    checkPhys(c, p1, 4096 - off, true);
  } else checkPhys(c, p1, n, true);
}

function checkPhys(c: CpuCore, p: number, n: number, write: boolean): void {
  if (p + n <= c.memSize) return;
  const r = c.mem.mmio.lookup(p);
  if (r === undefined || p + n > r.base + r.size) npf(c, p < c.memSize ? c.memSize : p, write, false);
}

/**
 * The physical address of the instruction byte at linear (lo,hi): RAM only. Raises #PF /
 * #GP / NPF (fetch) like the fetch itself; with probe, returns -1 instead.
 */
export function fetchPhys(c: CpuCore, lo: number, hi: number, probe: boolean): number {
  const e = (lo >>> 12) & TLB_MASK;
  if (c.tlbX[e] === (lo & ~0xfff) && c.tlbHi[e] === (hi | 0)) return c.tlbPhys[e] + (lo & 0xfff);
  let p: number;
  if (probe) {
    // a probe first (no CR2, no A bits on a fault); if it succeeds, the real walk, which
    // cannot fault now, fills the TLB and sets the accessed bits
    if (translate(c, lo, hi, ACC_FETCH | ACC_PROBE) < 0) return -1;
  }
  p = translate(c, lo, hi, ACC_FETCH);
  if (p >= c.memSize) {
    if (probe) return -1;
    return npf(c, p, false, true);
  }
  return p;
}

/**
 * Debugger access to linear memory (the stub's m/M/X and Z0, vmmctl): translated through
 * the vCPU's current paging structures with supervisor rights, no faults, no A/D updates,
 * no data breakpoints. Returns false (nothing written) when any byte is unmapped or
 * outside RAM.
 */
export function debugAccess(c: CpuCore, lo: number, hi: number, data: Uint8Array, write: boolean): boolean {
  const phys: number[] = [];
  let l = lo >>> 0, h = hi >>> 0;
  for (let k = 0; k < data.length;) {
    const p = translate(c, l, h, ACC_READ | ACC_PROBE);
    if (p < 0) return false;
    const run = Math.min(4096 - (l & 0xfff), data.length - k);
    if (p + run > c.memSize) return false;
    phys.push(p, run);
    k += run;
    const nl = l + run;
    l = nl >>> 0;
    if (nl > 0xffffffff) h = (h + 1) >>> 0;
  }
  let k = 0;
  for (let j = 0; j < phys.length; j += 2) {
    const p = phys[j], run = phys[j + 1];
    if (write) c.mem.write(p, data.subarray(k, k + run));
    else data.set(c.bytes.subarray(p, p + run), k);
    k += run;
  }
  return true;
}
