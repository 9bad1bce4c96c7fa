/**
 * Which blocks a hot block's compiled function covers (its region): the block, then the
 * cached blocks it can go to next (branch targets, fall-through, call targets and return
 * sites, and the successors the run loop saw it take: returns, indirect calls and jumps),
 * breadth first, bounded in blocks and instructions.
 *
 * Only blocks on the same linear page and the same decoded page (CodePage: physical page
 * and CPU mode) as the entry, in 64-bit mode, none crossing into the next page. So the
 * checks the run loop makes before it enters the entry block (the page's translation and
 * fetch permission, the block's validity) hold for all of them: their bytes are all on that
 * one page, whose decoded blocks are dropped together (a store into its code, gdb's int3,
 * eviction) and then the entry is invalid too and the region is never entered again. A store
 * into the page while the region runs sets `attention`, which ends it after that instruction.
 */
import type { Block } from '../code-cache';
import { Insn, Op } from '../insn';

/** A region's bounds: its generated function grows with them (compiled-code memory). */
export const MAX_REGION_BLOCKS = 12;
export const MAX_REGION_INSNS = 64;

function branchTarget(i: Insn): number {
  return i.targetHi === 0 ? i.targetLo : (i.targetHi | 0) * 4294967296 + i.targetLo;
}

/** Addresses block b may continue at, most likely first. */
function successors(b: Block): number[] {
  const out: number[] = [];
  const insns = b.insns;
  for (const i of insns) if (i.op === Op.JCC) out.push(branchTarget(i));
  const last = insns[insns.length - 1];
  switch (last.op) {
    case Op.JMP_REL: out.push(branchTarget(last)); break;
    case Op.CALL_REL: out.push(branchTarget(last), last.nextAddr); break;
    case Op.CALL_E: out.push(last.nextAddr); break;
    case Op.JMP_E: case Op.RET: break;
    default: out.push(last.nextAddr); // the block ended at its size limit or ends with a Jcc's fall-through
  }
  for (const s of [b.succ0, b.succ1]) if (s !== null && s.valid) out.push(s.addr);
  return out;
}

/** Successors the run loop saw b take (the dynamic targets the region goes on to). */
export function seenSuccessors(b: Block): number[] {
  const out: number[] = [];
  for (const s of [b.succ0, b.succ1]) if (s !== null && s.valid && !out.includes(s.addr)) out.push(s.addr);
  return out;
}

function compilable(b: Block): boolean {
  return b.insns.length > 0 && b.insns.every((i) => i.mode === 0);
}

/** The cached block at linear address a that may join head's region (same linear and decoded page, no crossing, 64-bit), or undefined. */
export function memberAt(head: Block, a: number): Block | undefined {
  const page = head.page;
  if (page === null || Math.floor(a / 4096) !== Math.floor(head.addr / 4096)) return undefined;
  const b: Block | undefined = page.blocks.get(a);
  if (b === undefined || !b.valid || b.page !== page || b.crossPpn >= 0 || !compilable(b)) return undefined;
  return b;
}

/** The blocks of head's region, head first; [] if head cannot be compiled. */
export function regionOf(head: Block): Block[] {
  if (!compilable(head)) return [];
  const out = [head];
  if (head.page === null) return out;
  const visited = new Set<number>([head.addr]);
  let insns = head.insns.length;
  for (let q = 0; q < out.length && out.length < MAX_REGION_BLOCKS; q++) {
    for (const a of successors(out[q])) {
      if (visited.has(a)) continue;
      visited.add(a);
      const b = memberAt(head, a);
      if (b === undefined) continue;
      if (b.hits * 8 < head.hits) continue; // rarely run: not worth its code
      if (insns + b.insns.length > MAX_REGION_INSNS) continue;
      out.push(b);
      insns += b.insns.length;
      if (out.length >= MAX_REGION_BLOCKS) break;
    }
  }
  return out;
}
