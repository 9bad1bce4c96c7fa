/**
 * The guest x86-64 vCPU: the run loop, the instruction-boundary event logic (SDM 6.9
 * priorities), the debug exceptions and the hypervisor-facing GuestCpu interface.
 *
 * At each instruction boundary, in this order (SDM 6.9, Table 6-2):
 *   injected event (VM entry) > pending debug traps of the previous instruction (TF, data,
 *   I/O breakpoints; held while a MOV-SS shadow is in force) > maskable interrupt (IF=1, no
 *   STI/MOV-SS shadow; wakes HLT) > instruction breakpoint fault (suppressed by RF=1 and in
 *   the MOV-SS shadow) > the instruction (whose fetch/decode/execution faults follow).
 * Then the instruction runs; if it began with TF=1 (and, with DEBUGCTL.BTF, branched) a
 * single-step trap (BS) becomes pending, plus the B bits of data breakpoints it hit.
 */
import { U64, u64, u64FromNumber, u64ToNumber } from '../u64';
import { GuestMemory } from '../memory';
import { PhysicalCpu } from './physical-cpu';
import { CpuExit } from './cpu-exit';
import { GuestCpu, GprIndex, CpuStateReg, InjectedEvent, EmulatedAccessFault } from './guest-cpu';
import { CpuCore, FAULT, FaultKind, EXIT_RIP } from './core';
import { Insn, Op } from './insn';
import { decodeAt } from './decoder';
import { Block, CodeCache, CodePage, pageKey } from './code-cache';
import { fetchPhys, debugAccess, linearProbeWrite, ACC_READ } from './mmu';
import { bindHandler } from './fast';
import { SHADOW_MOVSS } from './exec-system';
import { DR6_BS } from '../x86/debug-regs';
import { TF, RF, IF } from '../x86/rflags';
import { tryDeliver, DELIVERED, DELIVERY_NPF, nested, isContributory, hasErrorCode, vectorName } from './events';
import { advanceTsc, readMsr, writeMsr } from './msr';
import { CS } from './segments';
import { EFER_LMA } from '../x86/msr';
import { enterFlat32 } from './flat32-entry';
import type { Flat32Entry } from '../loader/boot-plan';
import { DEBUGCTL_BTF, DEBUGCTL_LBR } from '../x86/msr';
import { compileRegion, offerToMembers, jitStats, jitDefault, JIT_THRESHOLD, JIT_CACHED_THRESHOLD } from './jit/block-jit';
import { fxsaveImage, loadFxsaveImage } from './fpu-image';

const BUDGET: CpuExit = { kind: 'budget' };
const MTF: CpuExit = { kind: 'mtf' };
const EVENT_DELIVERED: CpuExit = { kind: 'event-delivered' };
const NMI_WINDOW: CpuExit = { kind: 'nmi-window' };

const MAX_BLOCK = 32;
/** A first-run (scratch) block may be longer: it costs no cache space, and fewer block starts mean fewer lookups. */
const MAX_SCRATCH_BLOCK = 128;
/** The first-run record (seenBefore): 2^16 slots, cleared after 2^14 first runs. */
const SEEN_BITS = 16;
const SEEN_CLEAR = 1 << 14;
/** Decoded instructions one vCPU keeps (about 250 bytes each): a bounded working set. */
const MAX_CACHED_INSNS = 1 << 15;

/** Instructions after which a block ends (unconditional transfers, events, exits). */
function endsBlock(op: Op): boolean {
  switch (op) {
    case Op.JMP_REL: case Op.JMP_E: case Op.CALL_REL: case Op.CALL_E: case Op.RET: case Op.IRET:
    case Op.HLT: case Op.UD: case Op.UD2: case Op.GP_TOO_LONG: case Op.FETCH_NPF:
    case Op.INT3: case Op.INTN: case Op.INT1: case Op.IN: case Op.OUT: case Op.INS: case Op.OUTS:
    case Op.CPUID: case Op.RDMSR: case Op.WRMSR: case Op.VMCALL: case Op.VMMCALL:
    case Op.RETF: case Op.JMP_FAR: case Op.CALL_FAR: case Op.JMP_FAR_PTR: case Op.CALL_FAR_PTR: case Op.SYSCALL: case Op.SYSRET:
      return true;
    default:
      return false;
  }
}

/** endsBlock by opcode (the decoder's loop reads this table). */
const ENDS_BLOCK = new Uint8Array(256);
for (let op = 0; op < 256; op++) ENDS_BLOCK[op] = endsBlock(op as Op) ? 1 : 0;

type EventType = 'hw' | 'sw' | 'swexc' | 'priv' | 'ext' | 'nmi';

export class Cpu extends CpuCore implements GuestCpu {
  /** Decoded blocks by (physical page, mode) and linear RIP (code-cache.ts). */
  private readonly blocks: CodeCache;
  /** The block and Insns of a block's first run (seenBefore), reused for every such block. */
  private readonly scratchBlock = new Block(0, null);
  private readonly scratchInsns: Insn[] = Array.from({ length: MAX_SCRATCH_BLOCK }, () => new Insn());
  /** Hashed record of blocks run once recently (seenBefore). */
  private readonly seen = new Uint8Array(1 << SEEN_BITS);
  private seenCount = 0;
  /** Instruction bytes of a fetch that crosses a page boundary. */
  private readonly fetchBuf = new Uint8Array(32);
  /** Debug traps pending for the next boundary: B0-B3 and BS (DR6 layout). */
  private pendingDbg = 0;
  private injected: InjectedEvent | null = null;
  private intrVector = -1;
  /** An NMI waiting for NMI blocking to end (requestNmi). */
  private nmiPending = false;
  /** RIP whose instruction breakpoints the boundary has just checked (-1: none). */
  private bpCheckedRip = -1;
  /** The instruction about to run began with TF=1. */
  private stepArmed = false;
  private shutdownReason: string | null = null;
  halted = false;
  /** Instructions decoded so far (code-cache misses), for tests and the bench. */
  decodes = 0;
  /** Hot blocks run compiled (jit/); off: every instruction is interpreted. Same results either way. */
  jitEnabled = jitDefault();
  /** Entries of a block before it is compiled (tests lower it to compile at once). */
  jitThreshold = JIT_THRESHOLD;

  /** Decoded instructions held in this vCPU's code cache now (bounded). */
  get cachedInstructions(): number {
    return this.blocks.insnCount;
  }

  constructor(mem: GuestMemory, phys: PhysicalCpu) {
    super(mem, phys);
    // a running block stops after an instruction whose store dropped decoded code
    this.blocks = new CodeCache(MAX_CACHED_INSNS, () => { this.attention = 1; });
    this.code.attach(this.blocks);
    this.refreshBreakpoints();
  }

  // ---- GuestCpu: state -------------------------------------------------------------------

  get pendingDebugExceptions(): number {
    const b = this.pendingDbg & 0x400f;
    return b | (b & 0xf ? 0x1000 : 0);
  }
  set pendingDebugExceptions(v: number) {
    this.pendingDbg = v & 0x400f;
    this.attention = 1;
  }

  get interruptibility(): number {
    return this.shadow;
  }
  set interruptibility(v: number) {
    this.shadow = v & 3;
    this.attention = 1;
  }

  get interruptPending(): boolean {
    return this.intrVector >= 0;
  }

  getGpr(i: GprIndex): U64 {
    return u64(this.rl[i], this.rh[i]);
  }
  setGpr(i: GprIndex, v: U64): void {
    this.rl[i] = v.lo >>> 0;
    this.rh[i] = v.hi >>> 0;
  }

  getReg(r: CpuStateReg): U64 {
    switch (r) {
      case 'rip': return u64FromNumber(this.rip);
      case 'rflags': return u64(this.getFlags());
      case 'cr0': return u64(this.cr0);
      case 'cr2': return u64(this.cr2Lo, this.cr2Hi);
      case 'cr3': return u64(this.cr3Lo, this.cr3Hi);
      case 'cr4': return u64(this.cr4);
      case 'cr8': return u64(this.cr8);
      case 'efer': return u64(this.efer);
      case 'es': return u64(this.sreg[0]);
      case 'cs': return u64(this.sreg[1]);
      case 'ss': return u64(this.sreg[2]);
      case 'ds': return u64(this.sreg[3]);
      case 'fs': return u64(this.sreg[4]);
      case 'gs': return u64(this.sreg[5]);
      case 'fs_base': return u64(this.fsBaseLo, this.fsBaseHi);
      case 'gs_base': return u64(this.gsBaseLo, this.gsBaseHi);
      case 'kernel_gs_base': return u64(this.kgsBaseLo, this.kgsBaseHi);
      case 'idtr_base': return u64(this.idtrBaseLo, this.idtrBaseHi);
      case 'idtr_limit': return u64(this.idtrLimit);
      case 'gdtr_base': return u64(this.gdtrBaseLo, this.gdtrBaseHi);
      case 'gdtr_limit': return u64(this.gdtrLimit);
      case 'tsc': return u64FromNumber(this.instret + this.tscOffset);
    }
  }

  getFpuImage(): Uint8Array {
    return fxsaveImage(this.fpu);
  }

  setFpuImage(image: Uint8Array): void {
    loadFxsaveImage(this.fpu, image);
  }

  setReg(r: CpuStateReg, v: U64): void {
    const lo = v.lo >>> 0, hi = v.hi >>> 0;
    switch (r) {
      case 'rip': this.rip = (v.hi | 0) * 4294967296 + (v.lo >>> 0); break; // signed: exact in the upper canonical half
      case 'rflags': this.putFlags(lo | 2); this.rflags = (lo | 2) >>> 0; break;
      case 'cr0': this.cr0 = lo; this.pagingChanged(); break;
      case 'cr2': this.cr2Lo = lo; this.cr2Hi = hi; break;
      case 'cr3': this.cr3Lo = lo; this.cr3Hi = hi; this.cr3Loaded(); break;
      case 'cr4': this.cr4 = lo; this.refreshBreakpoints(); this.pagingChanged(); break;
      case 'cr8': this.cr8 = lo & 15; break;
      case 'efer': this.efer = ((lo & ~EFER_LMA) | (this.efer & EFER_LMA)) >>> 0; this.pagingChanged(); break; // LMA follows CR0.PG
      case 'es': this.sreg[0] = lo; break;
      case 'cs': this.sreg[1] = lo; break;
      case 'ss': this.sreg[2] = lo; break;
      case 'ds': this.sreg[3] = lo; break;
      case 'fs': this.sreg[4] = lo; break;
      case 'gs': this.sreg[5] = lo; break;
      case 'fs_base': this.fsBaseLo = lo; this.fsBaseHi = hi; break;
      case 'gs_base': this.gsBaseLo = lo; this.gsBaseHi = hi; break;
      case 'kernel_gs_base': this.kgsBaseLo = lo; this.kgsBaseHi = hi; break;
      case 'idtr_base': this.idtrBaseLo = lo; this.idtrBaseHi = hi; break;
      case 'idtr_limit': this.idtrLimit = lo & 0xffff; break;
      case 'gdtr_base': this.gdtrBaseLo = lo; this.gdtrBaseHi = hi; break;
      case 'gdtr_limit': this.gdtrLimit = lo & 0xffff; break;
      case 'tsc': this.tscOffset = u64ToNumber(v) - this.instret; break;
    }
    this.attention = 1;
  }

  /** The Multiboot/PVH hand-over, or an AP after its SIPI trampoline: 32-bit protected mode, paging off. */
  startFlat32(e: Flat32Entry): void {
    enterFlat32(this, e);
  }

  /** RDMSR as the hypervisor emulates it: the value, or undefined for #GP(0). */
  readMsr(index: number): U64 | undefined {
    return readMsr(this, index);
  }
  /** WRMSR as the hypervisor emulates it: false means #GP(0) (nothing changed). */
  writeMsr(index: number, v: U64): boolean {
    return writeMsr(this, index, v);
  }
  advanceTsc(ticks: number): void {
    advanceTsc(this, ticks);
  }

  // ---- GuestCpu: memory ----------------------------------------------------------------------

  accessLinear(address: U64, data: Uint8Array, write: boolean): boolean {
    return debugAccess(this, address.lo >>> 0, address.hi >>> 0, data, write);
  }

  emulatedAccess(address: U64, data: Uint8Array, write: boolean): EmulatedAccessFault | null {
    const lo = address.lo >>> 0, hi = address.hi >>> 0;
    const at = (k: number): [number, number] => {
      const n = lo + k;
      return [n >>> 0, n > 0xffffffff ? (hi + 1) >>> 0 : hi];
    };
    try {
      // INS/OUTS data are checked like any data access (#AC at CPL 3 with CR0.AM and RFLAGS.AC)
      const n = data.length;
      if (this.acCheck !== 0 && (n === 2 || n === 4 || n === 8) && (lo & (n - 1)) !== 0) this.exception(17, 0);
      if (write) {
        for (let k = 0; k < data.length; k += 8) {
          const [l, h] = at(k);
          linearProbeWrite(this, l, h, Math.min(8, data.length - k), ACC_READ);
        }
        for (let k = 0; k < data.length; k++) { const [l, h] = at(k); this.wr8(l, h, data[k]); }
      } else {
        for (let k = 0; k < data.length; k++) { const [l, h] = at(k); data[k] = this.rd8(l, h); }
      }
      return null;
    } catch (x) {
      if (x !== FAULT) throw x;
      this.dataHits = 0;
      if (this.faultKind === FaultKind.NPF) return { kind: 'npf', address: this.npfAddr, write: this.npfWrite };
      return { kind: 'exception', vector: this.faultVector, errorCode: Math.max(this.faultError, 0) };
    }
  }

  // ---- GuestCpu: events ----------------------------------------------------------------------

  inject(ev: InjectedEvent): void {
    this.injected = { ...ev };
    this.attention = 1;
  }

  withdrawInterrupt(): number {
    const v = this.intrVector;
    this.intrVector = -1;
    return v;
  }

  requestNmi(): void {
    this.nmiPending = true;
    this.attention = 1;
  }

  requestInterrupt(vector: number): void {
    if (this.intrVector < 0) this.intrVector = vector & 0xff;
    this.attention = 1;
  }

  completeEmulatedInstruction(length: number, io?: { port: number; size: number }): void {
    this.rip += length;
    // data breakpoints hit by emulatedAccess (string I/O): traps after the instruction
    this.pendingDbg |= this.dataHits;
    this.dataHits = 0;
    this.instret++;
    if ((this.rflags & TF) && !(this.phys.debugctlLo & DEBUGCTL_BTF)) this.pendingDbg |= DR6_BS;
    if (io) {
      if (this.bp.stale(this.phys, (this.cr4 & 8) !== 0)) this.refreshBreakpoints();
      this.pendingDbg |= this.bp.matchIo(io.port & 0xffff, io.size);
    }
    this.rflags &= ~RF;
    this.shadow = 0;
    this.shadowNext = 0;
    this.attention = 1;
  }

  // ---- run loop ----------------------------------------------------------------------------

  run(budget: number): CpuExit {
    if (this.shutdownReason !== null) return { kind: 'triple-fault', reason: this.shutdownReason };
    if (this.bp.stale(this.phys, (this.cr4 & 8) !== 0)) this.refreshBreakpoints();
    this.attention = 1;
    const stop = this.instret + budget;
    let prev: Block | null = null;
    for (;;) {
      if (this.instret >= stop) {
        // The debug traps of the last instruction belong to its completion: deliver them
        // (or exit, if #DB is intercepted) before giving the budget back.
        if (this.pendingDbg !== 0 && !(this.shadow & SHADOW_MOVSS) && this.injected === null && !this.halted) {
          const e = this.deliverPendingTraps();
          if (e !== null) return e;
        }
        return BUDGET;
      }
      if (this.attention !== 0) {
        const e = this.boundary();
        if (e !== null) return e;
      }
      const rip = this.rip;
      let blk: Block;
      if (prev !== null && prev.linkEpoch === this.xlatEpoch) {
        const a: Block | null = prev.succ0, b: Block | null = prev.succ1;
        if (a !== null && a.addr === rip && a.valid) blk = a;
        else if (b !== null && b.addr === rip && b.valid) blk = b;
        else {
          blk = this.blockAt(rip);
          if (prev.succ0 === null || !prev.succ0.valid) prev.succ0 = blk; else prev.succ1 = blk;
        }
      } else {
        blk = this.blockAt(rip);
        if (prev !== null) { prev.succ0 = blk; prev.succ1 = null; prev.linkEpoch = this.xlatEpoch; }
      }
      const insns = blk.insns;
      let n = insns.length;
      const left = stop - this.instret;
      // Armed instruction breakpoints: the block runs up to the first breakpoint address (not
      // counting the one the boundary just checked, with RF and the shadows); at it, the
      // boundary decides.
      let bpAt = n;
      if (this.bp.execEnabled !== 0 && this.attention === 0) {
        bpAt = this.bpCheckedRip === rip ? 1 : 0;
        while (bpAt < n && this.bp.matchExec(insns[bpAt].addr) === 0) bpAt++;
        if (bpAt === 0) { this.attention = 1; prev = null; continue; }
      }
      this.bpCheckedRip = -1;
      if (blk.jit === null) {
        const h = ++blk.hits;
        if ((h === this.jitThreshold || (h === JIT_CACHED_THRESHOLD && h < this.jitThreshold)) && this.jitEnabled && blk.valid) {
          this.compile(blk, h < this.jitThreshold);
        }
      } else if (this.attention === 0 && left >= n && bpAt === n && this.jitEnabled) {
        // compiled: the same instructions with the same stops as the loop below; on from
        // block to block of the region only while no instruction breakpoint is armed (the
        // loop above checks each block for them)
        let nx: number;
        try {
          nx = blk.jit(this, left, blk.jitInsns, this.bp.execEnabled === 0 ? 1 : 0, blk.jitEntry);
        } catch (x) {
          if (x !== FAULT) return this.internalError(x, this.jitInsn ?? insns[0]);
          nx = EXIT_RIP;
        }
        if (nx === EXIT_RIP) {
          // a fault or an intercept at jitInsn, after jitN instructions of its block
          prev = null;
          const e = this.stopInBlock(this.jitInsn ?? insns[0], this.jitN);
          if (e !== null) return e;
          continue;
        }
        this.instret += this.jitN;
        this.rip = nx;
        prev = blk;
        if (this.attention !== 0) {
          const e = this.afterInstruction();
          if (e !== null) return e;
        }
        continue;
      }
      if (n > left) n = left;
      // With anything needing per-instruction attention (TF, shadows, MTF, instruction
      // breakpoints...), run one instruction and take the slow path after it.
      if (this.attention !== 0) n = 1;
      else if (bpAt < n) n = bpAt;
      let k = 0;
      let next = rip;
      try {
        while (k < n) {
          const i = insns[k++];
          next = i.fn(this, i);
          if (next !== i.nextAddr || this.attention !== 0) break;
        }
      } catch (x) {
        if (x !== FAULT) return this.internalError(x, insns[k - 1]);
        next = EXIT_RIP;
      }
      if (next === EXIT_RIP) {
        // a fault, or an instruction intercept: the instruction has not executed
        prev = null;
        const e = this.stopInBlock(insns[k - 1], k - 1);
        if (e !== null) return e;
        continue;
      }
      this.instret += k;
      this.rip = next;
      prev = blk;
      if (this.attention !== 0) {
        const e = this.afterInstruction();
        if (e !== null) return e;
      }
    }
  }

  /**
   * Compiles blk's region (jit/; cachedOnly: only if compiled before); the code cache counts
   * its instructions. A block that a region of its page already holds is entered there.
   */
  private compile(blk: Block, cachedOnly: boolean): void {
    const m = blk.memberOf;
    if (m !== null) {
      blk.jit = m.fn;
      blk.jitInsns = m.insns;
      blk.jitEntry = blk.memberIndex;
      jitStats.memberEntries++;
      return;
    }
    const r = compileRegion(blk, this.bytes, cachedOnly);
    if (r === null) return;
    blk.jit = r.fn;
    blk.jitInsns = r.insns;
    blk.jitEntry = 0;
    this.blocks.charge(blk, r.insns.length);
    offerToMembers(r);
  }

  /** Instruction `i` of a block faulted or was intercepted after `retired` others: RIP back at it, then its handling. */
  private stopInBlock(i: Insn, retired: number): CpuExit | null {
    this.instret += retired;
    this.rip = i.addr;
    return this.instructionFault(i);
  }

  /** A bug in the simulator must not take the process down: stop this vCPU with a diagnosis. */
  private internalError(x: unknown, i: Insn): CpuExit {
    const msg = x instanceof Error ? x.message : String(x);
    this.rip = i.addr;
    this.shutdownReason = `simulator internal error at rip 0x${i.addr.toString(16)} (op ${i.op}): ${msg}`;
    return { kind: 'triple-fault', reason: this.shutdownReason };
  }

  /**
   * The decoded straight-line block at linear rip (up to an unconditional control transfer
   * or the end of the page), from the code cache or freshly decoded. An instruction whose
   * bytes cannot be fetched decodes to FETCH_NPF, which raises the fetch's fault when it
   * runs; such blocks are not cached.
   */
  private blockAt(rip: number): Block {
    let lo: number, hi: number;
    const legacy = this.codeMode !== 0;
    if (legacy) {
      // outside 64-bit mode: the fetch is at CS.base + EIP, within the CS limit (else #GP(0), see FETCH_NPF)
      if (rip > this.segLimit[CS]) return this.decodeBlock(rip, 0, 0, -1, null);
      lo = (rip + this.segBase[CS]) >>> 0; hi = 0;
    } else {
      lo = rip >>> 0; hi = Math.floor(rip / 4294967296) >>> 0;
    }
    const p = fetchPhys(this, lo, hi, true);
    if (p < 0) return this.decodeBlock(rip, lo, hi, -1, null);
    const key = pageKey(Math.floor(p / 4096), this.codeMode);
    let b = this.blocks.find(key, rip);
    if (b !== undefined && legacy && (b.csBase !== this.segBase[CS] || b.csLimit !== this.segLimit[CS])) {
      this.blocks.removeBlock(b); // decoded under another CS base or limit
      b = undefined;
    }
    if (b !== undefined) {
      if (b.crossPpn < 0) return b;
      const p2 = fetchPhys(this, b.crossLo, b.crossHi, true);
      if (p2 >= 0 && Math.floor(p2 / 4096) === b.crossPpn) return b;
      this.blocks.removeBlock(b); // the second page is mapped elsewhere now
    }
    if (!this.seenBefore(p)) return this.decodeBlock(rip, lo, hi, p, null);
    return this.decodeBlock(rip, lo, hi, p, this.blocks.page(key));
  }

  /**
   * Whether a block starting at physical p (in this code mode) was probably decoded recently.
   * A block's first run decodes it into the few scratch Insns and does not cache it: code that
   * runs once (a zero sled, start-up code) then costs no cache insertion, eviction or cold
   * Insn objects; code that runs again is cached at its second run. The record is a hashed
   * bitmap cleared every SEEN_CLEAR first runs, so a collision only caches a block early.
   */
  private seenBefore(p: number): boolean {
    const h = Math.imul((p | 0) ^ (this.codeMode << 29), 0x9e3779b1) >>> (32 - SEEN_BITS);
    if (this.seen[h] !== 0) return true;
    this.seen[h] = 1;
    if (++this.seenCount >= SEEN_CLEAR) { this.seen.fill(0); this.seenCount = 0; }
    return false;
  }

  /** Decodes the block at rip; page null: a first run, into the scratch Insns (not cached). */
  private decodeBlock(rip: number, lo: number, hi: number, phys: number, page: CodePage | null): Block {
    const scratch = page === null && phys >= 0;
    let b: Block;
    if (scratch) { b = this.scratchBlock; b.reuse(rip); } // never cached, never chained to
    else b = new Block(rip, page);
    if (phys < 0) {
      // the first byte cannot be fetched
      const i = this.scratchInsn(b);
      decodeAt(this.fetchBuf, 0, rip, rip, i, this.codeMode);
      bindHandler(i);
      return b;
    }
    const pageEnd = rip + (4096 - (lo & 0xfff)); // RIP/EIP of the next page's first byte
    // outside 64-bit mode no byte beyond the CS limit is fetched (the decoder then yields FETCH_NPF)
    const legacy = this.codeMode !== 0;
    const limEnd = legacy ? this.segLimit[CS] + 1 : Infinity;
    if (legacy) { b.csBase = this.segBase[CS]; b.csLimit = this.segLimit[CS]; }
    let a = rip;
    let crossPage: CodePage | null = null;
    const maxInsns = scratch ? MAX_SCRATCH_BLOCK : MAX_BLOCK;
    for (let k = 0; k < maxInsns && a < pageEnd; k++) {
      const i = scratch ? this.scratchInsns[k] : this.blocks.newInsn();
      const p = phys + (a - rip);
      if (pageEnd - a >= 15 || limEnd < pageEnd) decodeAt(this.bytes, p - a, Math.min(pageEnd, limEnd), a, i, this.codeMode);
      else crossPage = this.decodeCrossing(b, a, p, pageEnd, limEnd, i);
      bindHandler(i);
      this.decodes++;
      b.insns.push(i);
      if (i.op === Op.FETCH_NPF) { b.valid = false; break; } // not cached
      a = i.nextAddr;
      if (ENDS_BLOCK[i.op] !== 0 || b.crossPpn >= 0) break;
    }
    // The block's bytes on this page are contiguous: one mark (decodeCrossing marks the
    // crossing tail). Scratch blocks are marked too: a store into the running block must
    // stop it (CodeCache's onDrop) like a store into cached code.
    if (b.valid || scratch) this.code.mark(phys, Math.min(a, pageEnd) - rip);
    if (b.valid) this.blocks.add(b, crossPage);
    return b;
  }

  /** A one-instruction uncached block for an instruction whose first byte cannot be fetched. */
  private scratchInsn(b: Block): Insn {
    const i = new Insn();
    b.insns.push(i);
    b.valid = false;
    return i;
  }

  /**
   * Decodes an instruction that may run into the next page: its bytes are gathered in
   * fetchBuf from both physical pages. Returns the second page's code page if the
   * instruction does cross (the block then ends with it).
   */
  private decodeCrossing(b: Block, a: number, p: number, pageEnd: number, limEnd: number, i: Insn): CodePage | null {
    const n1 = pageEnd - a;
    const buf = this.fetchBuf;
    buf.set(this.bytes.subarray(p, p + n1), 0);
    const legacy = this.codeMode !== 0;
    const lo2 = legacy ? (pageEnd + this.segBase[CS]) >>> 0 : pageEnd >>> 0;
    const hi2 = legacy ? 0 : Math.floor(pageEnd / 4294967296) >>> 0;
    const p2 = limEnd > pageEnd ? fetchPhys(this, lo2, hi2, true) : -1;
    let end = pageEnd;
    if (p2 >= 0) {
      buf.set(this.bytes.subarray(p2, p2 + 16 - n1), n1);
      end = Math.min(pageEnd + 16 - n1, limEnd);
    }
    decodeAt(buf, -a, end, a, i, this.codeMode);
    if (i.op === Op.FETCH_NPF || i.nextAddr <= pageEnd) return null;
    b.crossLo = lo2; b.crossHi = hi2; b.crossPpn = Math.floor(p2 / 4096);
    this.code.mark(p2, i.nextAddr - pageEnd);
    return this.blocks.page(pageKey(b.crossPpn, this.codeMode));
  }

  /** The slow path at an instruction boundary. Returns an exit, or null to run the instruction. */
  private boundary(): CpuExit | null {
    for (;;) {
      const inj = this.injected;
      if (inj !== null) {
        this.injected = null;
        this.halted = false;
        const e = this.deliverInjected(inj);
        if (e !== null) return e;
        if (this.intercepts.mtf) return MTF;
        continue;
      }
      if (this.halted) {
        if ((this.intrVector >= 0 && (this.rflags & IF)) || (this.nmiPending && !this.nmiBlocked)) this.halted = false;
        else return BUDGET;
      }
      if (this.pendingDbg !== 0 && !(this.shadow & SHADOW_MOVSS)) {
        const e = this.deliverPendingTraps();
        if (e !== null) return e;
        if (this.intercepts.mtf) return MTF;
        continue;
      }
      // VT-x NMI-window exiting ranks below the pending debug exceptions (SDM 26.6.3)
      if (this.intercepts.nmiWindow && !this.nmiBlocked && this.shadow === 0) return NMI_WINDOW;
      if (this.nmiPending && !this.nmiBlocked && !(this.shadow & SHADOW_MOVSS)) {
        this.nmiPending = false;
        const e = this.raiseEvent(2, -1, 'nmi', this.rip, 0, false);
        if (e !== null) return e;
        if (this.intercepts.mtf) return MTF;
        continue;
      }
      if (this.intrVector >= 0 && (this.rflags & IF) && this.shadow === 0) {
        const v = this.intrVector;
        this.intrVector = -1;
        const e = this.raiseEvent(v, -1, 'ext', this.rip, 0, false);
        if (e !== null) return e;
        if (this.intercepts.mtf) return MTF;
        continue;
      }
      if (this.bp.execEnabled !== 0 && !(this.rflags & RF) && !(this.shadow & SHADOW_MOVSS)) {
        const bits = this.bp.matchExec(this.linearRip());
        if (bits !== 0) {
          // instruction breakpoint: a fault, RIP at the instruction, RF pushed as is
          const e = this.raiseEvent(1, -1, 'hw', this.rip, bits, false);
          if (e !== null) return e;
          if (this.intercepts.mtf) return MTF;
          continue;
        }
      }
      break;
    }
    this.stepArmed = (this.rflags & TF) !== 0;
    this.repOne = this.stepArmed || this.intercepts.mtf;
    this.rflags &= ~RF;
    this.branchTaken = false;
    this.attention = this.stepArmed || this.shadow !== 0 || this.intercepts.mtf ||
      this.pendingDbg !== 0 || this.injected !== null || (this.nmiPending && !this.nmiBlocked) ? 1 : 0;
    // the instruction breakpoints of this address are decided (the run loop checks the others)
    this.bpCheckedRip = this.rip;
    return null;
  }

  /** The linear address of the next instruction (instruction breakpoints match linear addresses): CS.base + EIP outside 64-bit mode. */
  private linearRip(): number {
    return this.codeMode === 0 ? this.rip : (this.rip + this.segBase[CS]) >>> 0;
  }

  /** Delivers the pending debug traps as one #DB (trap-like, RIP = the next instruction). */
  private deliverPendingTraps(): CpuExit | null {
    let bits = this.pendingDbg;
    this.pendingDbg = 0;
    // The code breakpoint of the next instruction is reported in the same #DB
    // (SDM 17.3.1: "may report one or both"; checklist 6.1 step 4).
    if (this.bp.execEnabled !== 0 && !(this.rflags & RF)) bits |= this.bp.matchExec(this.linearRip());
    return this.raiseEvent(1, -1, 'hw', this.rip, bits, false);
  }

  /** After an instruction retired: single-step and data-breakpoint traps, shadows, MTF. */
  private afterInstruction(): CpuExit | null {
    const armed = this.stepOnFinalTf ? (this.rflags & TF) !== 0 : this.stepArmed;
    this.stepOnFinalTf = false;
    if (armed && (!(this.phys.debugctlLo & DEBUGCTL_BTF) || this.branchTaken)) this.pendingDbg |= DR6_BS;
    if (this.dataHits !== 0) {
      this.pendingDbg |= this.dataHits;
      this.dataHits = 0;
    }
    this.shadow = this.shadowNext;
    this.shadowNext = 0;
    this.attention = 1;
    if (this.intercepts.mtf) return MTF;
    return null;
  }

  /** The instruction did not complete normally: exception, exit, npf or software interrupt. */
  private instructionFault(i: Insn): CpuExit | null {
    this.dataHitsOnFault();
    switch (this.faultKind) {
      case FaultKind.NPF:
        this.shadowNext = 0;
        return { kind: 'npf', address: this.npfAddr, write: this.npfWrite, fetch: this.npfFetch };
      case FaultKind.EXIT: {
        this.shadowNext = 0;
        const e = this.exitReason;
        this.exitReason = null;
        return e ?? BUDGET;
      }
      case FaultKind.SOFTINT: {
        // INT n / INT3 / ICEBP completed; the event is delivered with RIP after it. No
        // single-step trap for the instruction itself (the handler is entered with TF=0).
        this.instret++;
        this.shadow = 0;
        this.shadowNext = 0;
        const v = this.softVector;
        if (this.softType === 'priv') {
          // ICEBP: a trap-like #DB with no DR6 status bit; it absorbs pending data-breakpoint
          // B bits held by a MOV-SS shadow but not a pending BS (kvm-unit-tests "icebp").
          const bits = this.pendingDbg & 0xf;
          this.pendingDbg = 0;
          return this.raiseEvent(1, -1, 'priv', i.nextAddr, bits, false, i);
        }
        return this.raiseEvent(v, -1, this.softType, i.nextAddr, 0, false, i);
      }
      default: {
        // A fault: RIP at the instruction. Pending traps (held by a MOV-SS shadow) are lost.
        this.shadowNext = 0;
        this.shadow = 0;
        this.pendingDbg = 0;
        const v = this.faultVector;
        const err = this.faultError >= 0 ? this.faultError : hasErrorCode(v) ? 0 : -1;
        const dbBits = v === 1 ? this.faultDr6 : 0;
        this.faultDr6 = 0;
        // RF=1 is pushed for every fault but an instruction-breakpoint #DB (SDM 17.3.1.1);
        // those are raised at the boundary, so every fault here (general detect included).
        return this.raiseEvent(v, err, 'hw', this.rip, dbBits, true, i);
      }
    }
  }

  private dataHitsOnFault(): void {
    // data-breakpoint hits of an instruction that faults are discarded; a software
    // interrupt instruction completed, so its hits stay pending.
    if (this.faultKind === FaultKind.SOFTINT) {
      this.pendingDbg |= this.dataHits;
    }
    this.dataHits = 0;
  }

  /**
   * Raises an event: an exception whose vector is in the exception bitmap exits; otherwise it
   * is delivered through the IDT, with #DB side effects (DR6, DR7.GD, DEBUGCTL.LBR/BTF) and
   * the double/triple-fault rules. `dbBits` = DR6 bits for a #DB.
   */
  private raiseEvent(vector: number, error: number, type: EventType, retRip: number, dbBits: number, forceRF: boolean, insn?: Insn): CpuExit | null {
    const isException = type === 'hw' || type === 'swexc' || type === 'priv';
    if (isException && vector < 32 && ((this.intercepts.exceptionBitmap >>> vector) & 1)) {
      // Exception exit: software exceptions report the instruction itself (RIP at it).
      if (type !== 'hw' && insn) this.rip = insn.addr;
      else this.rip = retRip;
      if (forceRF) this.rflags |= RF;
      return {
        kind: 'exception', vector, errorCode: error >= 0 ? error : undefined, dr6: vector === 1 ? dbBits : 0,
        type: type as 'hw' | 'swexc' | 'priv', instructionLength: type !== 'hw' && insn ? insn.len : 0,
      };
    }
    if (vector === 1 && type !== 'sw' && type !== 'ext') this.debugExceptionEffects(dbBits);
    return this.deliverWithNesting(vector, error, type === 'ext' || type === 'hw' || type === 'nmi' ? 1 : 0, retRip, forceRF, type);
  }

  /** What delivering #DB does to the physical debug state (SDM 17.2.3, 17.2.4, 17.4.2-3). */
  private debugExceptionEffects(bits: number): void {
    const p = this.phys;
    // B0-B3 replaced by this event's matches; BD, BS, BT sticky; bit 12 reads 0.
    const dr6 = (((p.drLo[6] & ~0xf) | (bits & 0xf) | (bits & 0xe000) | 0xffff0ff0) & ~0x1000) >>> 0;
    p.setDr(6, { lo: dr6, hi: 0 });
    if (p.drLo[7] & 0x2000) p.setDr(7, { lo: (p.drLo[7] & ~0x2000) >>> 0, hi: p.drHi[7] });
    if (p.debugctlLo & (DEBUGCTL_LBR | DEBUGCTL_BTF)) p.setDebugctl({ lo: (p.debugctlLo & ~(DEBUGCTL_LBR | DEBUGCTL_BTF)) >>> 0, hi: p.debugctlHi });
    this.refreshBreakpoints();
  }

  private deliverWithNesting(vector: number, error: number, ext: number, retRip: number, forceRF: boolean, type: EventType): CpuExit | null {
    const first = vector;
    const firstRip = this.rip;
    let vec = vector, err = error;
    for (let guard = 0; guard < 4; guard++) {
      const r = tryDeliver(this, vec, err, retRip, ext, forceRF, type === 'sw' || type === 'swexc');
      if (r === DELIVERED) {
        if (type === 'nmi') this.nmiBlocked = true;
        this.halted = false;
        this.shadow = 0;
        // data breakpoints hit by the frame pushes: a trap before the handler's first instruction
        if (this.dataHits !== 0) { this.pendingDbg |= this.dataHits; this.dataHits = 0; }
        return this.intercepts.eventDelivered ? EVENT_DELIVERED : null;
      }
      this.dataHits = 0;
      if (r === DELIVERY_NPF) return { kind: 'npf', address: this.npfAddr, write: this.npfWrite, fetch: false };
      if (vec === 8) {
        this.shutdownReason = `triple fault: ${vectorName(r)} while delivering #DF (first event ${vectorName(first)}` +
          ` at rip 0x${firstRip.toString(16)}; ${nested.why})`;
        return { kind: 'triple-fault', reason: this.shutdownReason };
      }
      const df = (isContributory(vec) || vec === 14) && type === 'hw' && (isContributory(r) || (vec === 14 && r === 14));
      if (df) { vec = 8; err = 0; } else { vec = r; err = nested.error; }
      // a fault while delivering INT n / INT3 / ICEBP is a fault of that instruction
      if (type === 'sw' || type === 'swexc' || type === 'priv') retRip = firstRip;
      type = 'hw';
      ext = 1;
      forceRF = true;
      if ((this.intercepts.exceptionBitmap >>> vec) & 1) {
        return { kind: 'exception', vector: vec, errorCode: err, dr6: 0, type: 'hw', instructionLength: 0 };
      }
    }
    this.shutdownReason = `triple fault: event delivery loop for ${vectorName(first)}`;
    return { kind: 'triple-fault', reason: this.shutdownReason };
  }

  /** VM-entry event injection (VMCS VM-entry interruption information / VMCB EVENTINJ). */
  private deliverInjected(ev: InjectedEvent): CpuExit | null {
    const len = ev.instructionLength ?? 0;
    const soft = ev.type === 'sw' || ev.type === 'swexc' || ev.type === 'priv';
    const retRip = soft ? this.rip + len : this.rip;
    // Injecting a hardware exception, NMI, interrupt or ICEBP discards pending debug exceptions.
    if (!soft || ev.type === 'priv') this.pendingDbg = 0;
    const err = ev.errorCode ?? -1;
    const ext = soft ? 0 : 1;
    // Injection of #DB does not modify DR6/DR7/DEBUGCTL; the hypervisor sets DR6 itself.
    return this.deliverWithNesting(ev.vector & 0xff, err, ext, retRip, false, ev.type === 'extint' ? 'ext' : ev.type === 'nmi' ? 'nmi' : ev.type);
  }
}
