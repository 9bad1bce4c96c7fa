/**
 * The decoded-code cache: straight-line blocks of decoded instructions, kept per
 * (physical page, CPU mode) and per vCPU, bounded in size.
 *
 * CodeTracker (one per guest RAM, shared by its vCPUs) records which 16-byte lines of each
 * physical page hold decoded instruction bytes. A store (by any vCPU, the debugger, the
 * loader, a page-walk A/D update) that overlaps such a line drops that page's blocks in
 * every vCPU; a store beside the code on the same page costs one line test. Blocks are
 * found by linear RIP inside their page (the decoded form depends on the linear address:
 * RIP-relative operands and branch targets).
 *
 * A block never continues into the next linear page; its last instruction may cross into
 * it, and is then registered on that page too (`crossers`) and re-validated against the
 * current mapping of the second page.
 */
import { Insn } from './insn';
import type { JitFn } from './jit/block-jit';
import type { GuestMemory } from '../memory';

/** Bytes per tracked line (sub-page invalidation granularity). */
const LINE_SHIFT = 4;
const WORDS_PER_PAGE = 4096 >>> LINE_SHIFT >>> 5; // 8

export interface CodeCacheOwner {
  /** Drops every block holding bytes of physical page ppn. */
  dropPhysPage(ppn: number): void;
  dropAll(): void;
}

export class CodeTracker {
  /** Per physical RAM page: 1 if a vCPU may hold decoded instructions of it. */
  readonly pages: Uint8Array;
  /** Per page, WORDS_PER_PAGE words: one bit per line holding decoded bytes. */
  readonly lines: Uint32Array;
  private readonly caches: CodeCacheOwner[] = [];

  constructor(readonly memSize: number) {
    const n = (memSize >>> 12) + 2;
    this.pages = new Uint8Array(n);
    this.lines = new Uint32Array(n * WORDS_PER_PAGE);
  }

  attach(owner: CodeCacheOwner): void {
    this.caches.push(owner);
  }

  /** Records decoded bytes [p, p+len) (within one page). */
  mark(p: number, len: number): void {
    const ppn = p >>> 12;
    this.pages[ppn] = 1;
    const first = (p & 0xfff) >>> LINE_SHIFT, last = ((p & 0xfff) + len - 1) >>> LINE_SHIFT;
    const base = ppn * WORDS_PER_PAGE;
    for (let l = first; l <= last && l < 256; l++) this.lines[base + (l >>> 5)] |= 1 << (l & 31);
  }

  /** Bytes [p, p+n) of RAM changed: drop the decoded code they overlap. */
  written(p: number, n: number): void {
    if (n <= 0) return;
    const end = Math.min(p + n, this.memSize);
    for (let a = p; a < end;) {
      const ppn = a >>> 12;
      const pageEnd = (ppn + 1) * 4096;
      const stop = Math.min(end, pageEnd);
      if (this.pages[ppn] !== 0 && this.overlaps(ppn, a & 0xfff, stop - a)) this.dropPage(ppn);
      a = stop;
    }
  }

  private overlaps(ppn: number, off: number, len: number): boolean {
    const base = ppn * WORDS_PER_PAGE;
    const first = off >>> LINE_SHIFT, last = (off + len - 1) >>> LINE_SHIFT;
    for (let l = first; l <= last; l++) if ((this.lines[base + (l >>> 5)] >>> (l & 31)) & 1) return true;
    return false;
  }

  dropPage(ppn: number): void {
    this.pages[ppn] = 0;
    this.lines.fill(0, ppn * WORDS_PER_PAGE, (ppn + 1) * WORDS_PER_PAGE);
    for (const c of this.caches) c.dropPhysPage(ppn);
  }

  dropAll(): void {
    this.pages.fill(0);
    this.lines.fill(0);
    for (const c of this.caches) c.dropAll();
  }
}

const trackers = new WeakMap<GuestMemory, CodeTracker>();

/** The tracker of `mem` (created on first use; it listens to the memory's external writes). */
export function codeTrackerOf(mem: GuestMemory): CodeTracker {
  let t = trackers.get(mem);
  if (t === undefined) {
    const tracker = new CodeTracker(mem.size);
    mem.onExternalWrite((addr, len) => tracker.written(addr, len));
    trackers.set(mem, tracker);
    t = tracker;
  }
  return t;
}

const NO_INSNS: Insn[] = [];

/** Straight-line run of decoded instructions, with its two most recent successors. */
export class Block {
  readonly insns: Insn[] = [];
  succ0: Block | null = null;
  succ1: Block | null = null;
  /** The vCPU's translation epoch when the successors were linked (see CpuCore.xlatEpoch). */
  linkEpoch = -1;
  valid = true;
  /** Second page the last instruction crosses into: its linear address and physical page (-1: none). */
  crossLo = 0;
  crossHi = 0;
  crossPpn = -1;
  /** Times the run loop entered this block (the compiler takes it at the vCPU's jitThreshold). */
  hits = 0;
  /** The compiled form (jit/: this block's region), or null: interpreted. */
  jit: JitFn | null = null;
  /** The instructions of the compiled region (its blocks' one after the other). */
  jitInsns: Insn[] = NO_INSNS;
  /** This block's number in that region (0: its entry; else it is entered where another block's region holds it). */
  jitEntry = 0;
  /**
   * A compiled region of this page that holds this block (not as its entry), and the block's
   * number in it: when the block gets hot it is entered there instead of being compiled again.
   */
  memberOf: { fn: JitFn; insns: Insn[] } | null = null;
  memberIndex = 0;
  /** Instructions the code cache counts for the compiled region (its bound covers compiled code). */
  charged = 0;
  /** Outside 64-bit mode: the CS base and limit it was decoded under (fetch = base + EIP, up to the limit). */
  csBase = 0;
  csLimit = 0;
  constructor(public addr: number, readonly page: CodePage | null) {}

  /** Makes this (uncached, page-less) block empty for a new start address (the scratch block). */
  reuse(addr: number): void {
    this.addr = addr;
    this.insns.length = 0;
    this.succ0 = null;
    this.succ1 = null;
    this.linkEpoch = -1;
    this.valid = false;
    this.crossLo = 0;
    this.crossHi = 0;
    this.crossPpn = -1;
    this.hits = 0;
    this.jit = null;
    this.jitInsns = NO_INSNS;
    this.jitEntry = 0;
    this.memberOf = null;
    this.memberIndex = 0;
    this.charged = 0;
  }
}

export class CodePage {
  readonly blocks = new Map<number, Block>();
  /** Blocks of other pages whose last instruction crosses into this one. */
  readonly crossers: Block[] = [];
  insns = 0;
  constructor(readonly key: number) {}
}

/** Cache key of a physical page in a CPU mode (0-3). */
export function pageKey(ppn: number, mode: number): number {
  return ppn * 4 + mode;
}

/** One vCPU's blocks: at most `maxInsns` decoded instructions, oldest pages evicted first. */
export class CodeCache implements CodeCacheOwner {
  private readonly pages = new Map<number, CodePage>();
  /** What find returned last (see find). */
  private lastFound: Block | null = null;
  insnCount = 0;
  /**
   * Insn objects of dropped blocks, reused by the decoder (the decoder resets every field):
   * a guest that keeps decoding new code (a zero sled) then allocates almost nothing. Safe
   * because decoding happens only between instructions, when no dropped Insn is running.
   */
  private readonly pool: Insn[] = [];

  constructor(private readonly maxInsns: number, private readonly onDrop: () => void) {}

  /** A recycled or new Insn for the decoder. */
  newInsn(): Insn {
    return this.pool.pop() ?? new Insn();
  }

  private recycle(b: Block): void {
    if (this.pool.length + b.insns.length <= this.maxInsns) for (const i of b.insns) this.pool.push(i);
  }

  find(key: number, rip: number): Block | undefined {
    // The last block found, while still valid, is still the one at (key, rip): a block leaves
    // its page's map only by being invalidated. (The run loop looks up the same block after
    // every VM exit.)
    const last = this.lastFound;
    if (last !== null && last.valid && last.addr === rip && last.page !== null && last.page.key === key) return last;
    const pg = this.pages.get(key);
    const b = pg === undefined ? undefined : pg.blocks.get(rip);
    if (b !== undefined) this.lastFound = b;
    return b;
  }

  page(key: number): CodePage {
    let pg = this.pages.get(key);
    if (pg === undefined) {
      pg = new CodePage(key);
      this.pages.set(key, pg);
    }
    return pg;
  }

  add(b: Block, crossPage: CodePage | null): void {
    const pg = b.page;
    if (pg === null) return;
    const old = pg.blocks.get(b.addr);
    if (old !== undefined) this.removeBlock(old);
    pg.blocks.set(b.addr, b);
    pg.insns += b.insns.length;
    this.insnCount += b.insns.length;
    if (crossPage !== null) crossPage.crossers.push(b);
    if (this.insnCount > this.maxInsns) this.evict();
  }

  /** Invalidates one block and forgets it. */
  removeBlock(b: Block): void {
    if (!b.valid) return;
    b.valid = false;
    const pg = b.page;
    if (pg !== null && pg.blocks.get(b.addr) === b) {
      pg.blocks.delete(b.addr);
      pg.insns -= b.insns.length + b.charged;
      this.insnCount -= b.insns.length + b.charged;
      this.recycle(b);
    }
  }

  /** Counts n instructions of compiled code (b's region) against the bound, until b is dropped. */
  charge(b: Block, n: number): void {
    const pg = b.page;
    if (pg === null || !b.valid || pg.blocks.get(b.addr) !== b) return;
    b.charged += n;
    pg.insns += n;
    this.insnCount += n;
    if (this.insnCount > this.maxInsns) this.evict();
  }

  private dropKey(key: number): void {
    const pg = this.pages.get(key);
    if (pg === undefined) return;
    this.pages.delete(key);
    for (const b of pg.blocks.values()) { b.valid = false; this.recycle(b); }
    this.insnCount -= pg.insns;
    pg.blocks.clear();
    pg.insns = 0;
    for (const b of pg.crossers) this.removeBlock(b);
    pg.crossers.length = 0;
  }

  dropPhysPage(ppn: number): void {
    for (let m = 0; m < 4; m++) this.dropKey(pageKey(ppn, m));
    this.onDrop();
  }

  dropAll(): void {
    for (const pg of this.pages.values()) for (const b of pg.blocks.values()) b.valid = false;
    this.pages.clear();
    this.insnCount = 0;
    this.onDrop();
  }

  /** Oldest pages first until at most half the budget is used. */
  private evict(): void {
    for (const key of this.pages.keys()) {
      if (this.insnCount <= this.maxInsns >>> 1) break;
      this.dropKey(key);
    }
  }
}
