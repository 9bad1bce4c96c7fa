/**
 * Operand access shared by the executors (exec.ts, exec-system.ts): the E operand (register
 * or memory at the effective address), control transfers to a 64-bit target, 16-bit pushes
 * and pops. A module of its own so that the executors do not import each other.
 */
import { CpuCore } from './core';
import { Insn } from './insn';

export function loadE(c: CpuCore, i: Insn, size: number): number {
  if (!i.isMem) return c.getR(size, i.rm);
  c.calcEA(i.base, i.index, i.scale, i.dispLo, i.dispHi, i.asize, i.seg, size);
  return c.readMem(size, c.eaLo, c.eaHi);
}

/**
 * Reads operand E of a read-modify-write instruction: a memory operand is read with write
 * intent, as the CPU does (a read-only or absent page faults with W/R = 1 in the #PF error
 * code before anything, flags included, has changed).
 */
export function loadRmw(c: CpuCore, i: Insn, size: number): number {
  if (!i.isMem) return c.getR(size, i.rm);
  c.calcEA(i.base, i.index, i.scale, i.dispLo, i.dispHi, i.asize, i.seg, size);
  c.probeWrite(c.eaLo, c.eaHi, size);
  return c.readMem(size, c.eaLo, c.eaHi);
}

/** Writes operand E: the register, or memory at the EA computed by loadE/ea. */
export function storeE(c: CpuCore, i: Insn, size: number, lo: number, hi: number): void {
  if (!i.isMem) c.setR(size, i.rm, lo, hi);
  else c.writeMem(size, c.eaLo, c.eaHi, lo, hi);
}

/** The EA of the memory operand; `size` = bytes accessed from it (the segment-limit check outside 64-bit mode). */
export function ea(c: CpuCore, i: Insn, size = i.size): void {
  c.calcEA(i.base, i.index, i.scale, i.dispLo, i.dispHi, i.asize, i.seg, size);
}

/** A control transfer to a 64-bit target: #GP(0) if non-canonical. */
export function jumpTo(c: CpuCore, lo: number, hi: number): number {
  c.branchTaken = true;
  if (hi === 0) return lo;
  const top = hi >>> 15;
  if (top !== 0 && top !== 0x1ffff) c.gp0();
  return (hi | 0) * 4294967296 + lo; // RIP is signed: the upper canonical half stays exact
}

/** PUSH of a 16-bit value (operand-size prefix). */
export function push16(c: CpuCore, v: number): void {
  let spLo = c.rl[4] - 2, spHi = c.rh[4];
  if (spLo < 0) { spLo += 4294967296; spHi = (spHi - 1) >>> 0; }
  c.wr16(spLo, spHi, v);
  c.rl[4] = spLo; c.rh[4] = spHi;
}

/** POP of a 16-bit value. */
export function pop16(c: CpuCore): number {
  const v = c.rd16(c.rl[4], c.rh[4]);
  c.addRsp(2);
  return v;
}
