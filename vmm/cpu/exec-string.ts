/**
 * String instructions MOVS STOS LODS CMPS SCAS, all sizes, with REP/REPE/REPNE.
 *
 * REP and data breakpoints (SDM 17.3.1.2): the breakpoint is reported after the iteration
 * that hit it; if iterations remain, RIP stays at the REP instruction with RCX/RSI/RDI
 * reflecting the completed iterations, and RF=1 is set so that the image pushed by the #DB
 * makes the resumed instruction skip its instruction breakpoint.
 */
import { CpuCore } from './core';
import { Insn, Op } from './insn';
import { alu } from './alu';
import { DF, RF } from '../x86/rflags';

/** reg += delta (signed) at address size. */
function advance(c: CpuCore, r: number, delta: number, a64: boolean): void {
  const n = c.rl[r] + delta;
  c.rl[r] = n >>> 0;
  if (!a64) c.rh[r] = 0;
  else if (n > 0xffffffff) c.rh[r] = (c.rh[r] + 1) >>> 0;
  else if (n < 0) c.rh[r] = (c.rh[r] - 1) >>> 0;
}

/** Source address DS:rSI (FS/GS override allowed). */
function srcAddr(c: CpuCore, i: Insn): void {
  c.calcEA(6, -1, 0, 0, 0, i.asize, i.seg, i.size);
}
/** Destination ES:rDI (no override; the ES base applies outside 64-bit mode). */
function dstAddr(c: CpuCore, i: Insn): void {
  c.calcEA(7, -1, 0, 0, 0, i.asize, i.mode !== 0 ? 3 : 0, i.size);
}

/** One iteration. Returns false when REPE/REPNE should stop after it. */
function iteration(c: CpuCore, i: Insn, delta: number, a64: boolean): boolean {
  const size = i.size;
  switch (i.op) {
    case Op.MOVS: {
      srcAddr(c, i);
      const lo = c.readMem(size, c.eaLo, c.eaHi), hi = c.t;
      dstAddr(c, i);
      c.writeMem(size, c.eaLo, c.eaHi, lo, hi);
      advance(c, 6, delta, a64);
      advance(c, 7, delta, a64);
      return true;
    }
    case Op.STOS: {
      dstAddr(c, i);
      c.writeMem(size, c.eaLo, c.eaHi, c.rl[0], c.rh[0]);
      advance(c, 7, delta, a64);
      return true;
    }
    case Op.LODS: {
      srcAddr(c, i);
      const lo = c.readMem(size, c.eaLo, c.eaHi);
      c.setR(size, 0, lo, c.t);
      advance(c, 6, delta, a64);
      return true;
    }
    case Op.CMPS: {
      srcAddr(c, i);
      const aLo = c.readMem(size, c.eaLo, c.eaHi), aHi = c.t;
      dstAddr(c, i);
      const bLo = c.readMem(size, c.eaLo, c.eaHi), bHi = c.t;
      alu(c, 7, size, aLo, aHi, bLo, bHi);
      advance(c, 6, delta, a64);
      advance(c, 7, delta, a64);
      return i.rep === 1 ? c.getZF() !== 0 : c.getZF() === 0;
    }
    default: { // SCAS
      dstAddr(c, i);
      const bLo = c.readMem(size, c.eaLo, c.eaHi), bHi = c.t;
      const aLo = c.getR(size, 0), aHi = c.t;
      alu(c, 7, size, aLo, aHi, bLo, bHi);
      advance(c, 7, delta, a64);
      return i.rep === 1 ? c.getZF() !== 0 : c.getZF() === 0;
    }
  }
}

export function execString(c: CpuCore, i: Insn): number {
  const delta = c.rflags & DF ? -i.size : i.size;
  const a64 = i.asize === 8;
  if (i.rep === 0) {
    iteration(c, i, delta, a64);
    return i.nextAddr;
  }
  for (;;) {
    if (a64 ? (c.rl[1] | c.rh[1]) === 0 : c.rl[1] === 0) return i.nextAddr;
    const more = iteration(c, i, delta, a64);
    advance(c, 1, -1, a64);
    const done = !more || (a64 ? (c.rl[1] | c.rh[1]) === 0 : c.rl[1] === 0);
    if (done) return i.nextAddr;
    if (c.dataHits !== 0 || c.repOne) {
      // A trap (data breakpoint, single-step) or an MTF exit after a non-final iteration:
      // RIP stays at the instruction and RF=1 goes into the pushed image (SDM 17.3.1.1,
      // 25.5.2 "after each iteration").
      c.rflags |= RF;
      return i.addr;
    }
  }
}
