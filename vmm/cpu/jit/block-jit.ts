/**
 * The block compiler's front: turns a hot decoded block and the blocks it goes on to
 * (region.ts) into one JavaScript function (emit.ts) and keeps the generated factories in a
 * bounded cache keyed by source, so that a region decoded again after an invalidation
 * (self-modifying code, gdb's int3 writes, a page dropped and reloaded) costs no second
 * `new Function`.
 *
 * Compiled functions hang off their entry Block (code-cache.ts), which is charged for the
 * region's instructions: they are dropped with it, so the code cache's bound on decoded
 * instructions bounds compiled code too.
 */
import type { CpuCore } from '../core';
import type { Insn } from '../insn';
import type { Block } from '../code-cache';
import { regionOf, seenSuccessors, memberAt } from './region';
import { PARITY } from '../flags';
import { emitRegion, EmittedBlock } from './emit';
import { imulTrunc } from '../alu';
import { mul64lo, MUL } from './mul';
import * as runtime from './runtime';

/**
 * A compiled region: runs its blocks (`insns`: theirs one after the other) from block number
 * `entry` (0: the region's own entry) within `left` instructions, block to block if `chain`
 * is 1; returns the next RIP. One
 * function per distinct source, shared by every region (of every vCPU and VM in the process)
 * that generates it, so that V8 optimizes it once.
 */
export type JitFn = (c: CpuCore, left: number, insns: readonly Insn[], chain: number, entry: number) => number;

/** A region's function, the instructions it is called with, and its blocks (entry first). */
export interface CompiledRegion {
  fn: JitFn;
  insns: Insn[];
  blocks: readonly Block[];
}

/** Executions of a block before it is compiled (once-run code such as a zero sled never is). */
export const JIT_THRESHOLD = thresholdFromEnv(process.env.VMM_JIT_THRESHOLD);
/**
 * Executions after which a block takes its region's function if the same region (same bytes
 * at the same addresses) was compiled before: code run again in a new vCPU or VM of this
 * process, or decoded again after an invalidation, then runs compiled early at no cost.
 */
export const JIT_CACHED_THRESHOLD = 16;

function thresholdFromEnv(v: string | undefined): number {
  const n = Number(v);
  return v !== undefined && Number.isInteger(n) && n >= 1 ? n : 500;
}
/** Generated factories kept (by source text), and their total source size. */
const MAX_FACTORIES = 4096;
const MAX_FACTORY_CHARS = 32 << 20;
let factoryChars = 0;

const factories = new Map<string, JitFn>();
/**
 * Region functions by what determines their source: the blocks' addresses, instruction
 * bytes and seen successors (the decoder's output is a function of the bytes and the address
 * in 64-bit mode). A region compiled again (the same code in a new vCPU or VM, or after an
 * invalidation) then costs no source generation; null: not worth compiling.
 */
const bySignature = new Map<string, JitFn | null>();
/** By the entry block's own signature: the blocks (addresses) and seen successors its region was compiled with. */
const byEntry = new Map<string, { addrs: number[]; seen: number[][] }>();

/**
 * Counters for tests and the bench (regions: blocks in compiled regions, entries included;
 * memberEntries: hot blocks entered in another block's region instead of compiling their own).
 */
export const jitStats = { compiled: 0, factoryHits: 0, regionBlocks: 0, memberEntries: 0 };

/** The signature of a region whose blocks all lie on one physical page (`bytes` = guest RAM), or null. */
function signatureOf(blocks: readonly Block[], seen: readonly number[][], bytes: Uint8Array): string | null {
  const page = blocks[0].page;
  if (page === null || blocks[0].crossPpn >= 0) return null;
  const base = Math.floor(page.key / 4) * 4096;
  let sig = '';
  for (let j = 0; j < blocks.length; j++) {
    const b = blocks[j], insns = b.insns;
    const p = base + (b.addr & 4095), len = insns[insns.length - 1].nextAddr - b.addr;
    if (len <= 0 || p + len > bytes.length) return null;
    sig += `${b.addr}:${seen[j].join(',')}:${String.fromCharCode.apply(null, Array.from(bytes.subarray(p, p + len)))}|`;
  }
  return sig;
}

/**
 * Compiles head's region (64-bit code only; `bytes`: guest RAM); null if not worth it, or
 * (`cachedOnly`) if the same region has not been compiled before.
 */
export function compileRegion(head: Block, bytes: Uint8Array, cachedOnly = false): CompiledRegion | null {
  if (cachedOnly) return cachedRegion(head, bytes);
  const blocks = regionOf(head);
  if (blocks.length === 0) return null;
  const seen = blocks.map(seenSuccessors);
  const sig = signatureOf(blocks, seen, bytes);
  let f = sig === null ? undefined : bySignature.get(sig);
  if (f === undefined) {
    f = makeFunction(emitRegion(blocks.map((x, j) => ({ addr: x.addr, insns: x.insns, seen: seen[j] }))));
    if (sig !== null) {
      if (bySignature.size >= 4 * MAX_FACTORIES) { bySignature.clear(); byEntry.clear(); }
      bySignature.set(sig, f);
      const entry = signatureOf([head], [[]], bytes);
      if (entry !== null) byEntry.set(entry, { addrs: blocks.map((b) => b.addr), seen });
    }
  } else jitStats.factoryHits++;
  return regionWith(blocks, f);
}

/**
 * The function compiled before for the same entry code, if the blocks it covered are all
 * decoded again with the same bytes (so the decoded instructions, which the function was
 * generated from, are the same); else null.
 */
function cachedRegion(head: Block, bytes: Uint8Array): CompiledRegion | null {
  const entry = signatureOf([head], [[]], bytes);
  const rec = entry === null ? undefined : byEntry.get(entry);
  if (rec === undefined) return null;
  const blocks = [head];
  for (let j = 1; j < rec.addrs.length; j++) {
    const b = memberAt(head, rec.addrs[j]);
    if (b === undefined) return null;
    blocks.push(b);
  }
  const sig = signatureOf(blocks, rec.seen, bytes);
  const f = sig === null ? undefined : bySignature.get(sig);
  if (f === undefined) return null;
  jitStats.factoryHits++;
  return regionWith(blocks, f);
}

function regionWith(blocks: readonly Block[], f: JitFn | null): CompiledRegion | null {
  if (f === null) return null;
  jitStats.compiled++;
  jitStats.regionBlocks += blocks.length;
  const insns: Insn[] = [];
  for (const x of blocks) for (const i of x.insns) insns.push(i);
  return { fn: f, insns, blocks };
}

/**
 * Lets the blocks of region r other than its entry, not compiled yet, be entered in it when
 * they get hot (Block.memberOf) instead of each compiling a region of its own that repeats
 * much of r's code. Safe while the block is valid: the region's blocks all lie on one page
 * and, in 64-bit mode, leave the cache only with the whole page (an entry whose last
 * instruction crosses into the next page can leave alone: its region is not offered).
 */
export function offerToMembers(r: CompiledRegion): void {
  if (r.blocks[0].crossPpn >= 0) return;
  const shared = { fn: r.fn, insns: r.insns };
  for (let j = 1; j < r.blocks.length; j++) {
    const b = r.blocks[j];
    if (b.jit === null && b.memberOf === null) { b.memberOf = shared; b.memberIndex = j; }
  }
}

/** The function of an emitted region (shared by every region with the same source), or null if nothing in it is inlined. */
function makeFunction(b: EmittedBlock): JitFn | null {
  if (b.inlined === 0) return null;
  let f = factories.get(b.source);
  if (f === undefined) {
    if (factories.size >= MAX_FACTORIES || factoryChars >= MAX_FACTORY_CHARS) {
      factories.clear();
      bySignature.clear();
      byEntry.clear();
      factoryChars = 0;
    }
    factoryChars += b.source.length;
    const make = new Function('PARITY', 'imulTrunc', 'mul64lo', 'MUL', 'RT', b.source) as
      (p: Uint8Array, mul: typeof imulTrunc, lo: typeof mul64lo, m: Int32Array, rt: typeof runtime) => JitFn;
    f = make(PARITY, imulTrunc, mul64lo, MUL, runtime);
    factories.set(b.source, f);
  } else jitStats.factoryHits++;
  return f;
}

/**
 * Whether new vCPUs compile hot blocks: on unless the environment says VMM_JIT=0 (the
 * test suite runs its key suites both ways with it; the CLI has --no-jit).
 */
export function jitDefault(): boolean {
  return process.env.VMM_JIT !== '0';
}
