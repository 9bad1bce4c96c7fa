/**
 * The arithmetic flags of a compiled block while it runs: which flag-setting instruction was
 * last (statically known at compile time) and the JavaScript locals that hold its operands.
 * Conditions (Jcc, SETcc, CMOVcc) are computed straight from those locals; the lazy record
 * the interpreter keeps in CpuCore (lfOp, lfSize, lfCin, lf[]) is written only where the
 * flags become visible: block exits, slow paths that may fault, interpreter call-outs.
 * The record written is exactly the one the interpreter's handler would have written.
 */
import { LF } from '../flags';

/**
 * A lazy record: kind, size and the int32 locals (or literals) of its halves; sizes 1 and 2
 * hold values masked to the size (hi '0'), as the interpreter's record does.
 */
export interface LazyFlags {
  kind: 'lazy';
  op: LF;
  size: number;
  dLo: string; dHi: string;
  sLo: string; sHi: string;
  rLo: string; rHi: string;
  /** INC/DEC: the carry flag kept; ADC/SBB: the carry in (a 0/1 local); else '0'. */
  cin: string;
}

/** Materialized flags: the six arithmetic bits (RFLAGS layout) in a local. */
export interface BitsFlags {
  kind: 'bits';
  bits: string;
}

/**
 * Pending in the exit locals (fo, fs, fc, f0-f5) as flagsToLocals left them, or in CpuCore if
 * fo = -1: a block of a region entered from another block of it (the flags its predecessor
 * left are known only at run time). Materialized (flushDyn) before anything reads them.
 */
export interface DynFlags {
  kind: 'dyn';
}

/** null: the flags are in CpuCore (nothing pending). */
export type PendingFlags = LazyFlags | BitsFlags | DynFlags | null;

const ARITH_MASK = 0x8d5;

/** Statements that store the pending flags into CpuCore the way the interpreter does. */
export function flushFlags(f: PendingFlags): string {
  if (f === null) return '';
  if (f.kind === 'dyn') return FLUSH_DYN;
  if (f.kind === 'bits') return `storeBits(c, ${f.bits});`;
  return `storeLazy(c, ${f.op}, ${f.size}, ${f.cin}, ${f.dLo}, ${f.dHi}, ${f.sLo}, ${f.sHi}, ${f.rLo}, ${f.rHi});`;
}

/**
 * Assignments that hand the pending flags to the block's common exit (locals fo, fs, fc,
 * f0-f5; fo = -1 nothing pending, -2 materialized bits in f0), written there by
 * EXIT_FLAGS: one copy of the stores per block instead of one per exit.
 */
export function flagsToLocals(f: PendingFlags): string {
  if (f === null) return 'fo = -1;';
  if (f.kind === 'dyn') return '';
  if (f.kind === 'bits') return `fo = -2; f0 = ${f.bits};`;
  if (f.op === LF.LOGIC) return `fo = ${LF.LOGIC}; fs = ${f.size}; f4 = ${f.rLo}; f5 = ${f.rHi};`;
  return `fo = ${f.op}; fs = ${f.size}; fc = ${f.cin}; f0 = ${f.dLo}; f1 = ${f.dHi}; f2 = ${f.sLo}; f3 = ${f.sHi}; f4 = ${f.rLo}; f5 = ${f.rHi};`;
}

/** The common exit's store of what flagsToLocals handed over (as flushFlags would have). */
export const EXIT_FLAGS = `if (fo >= 0) { c.lfOp = fo; c.lfSize = fs; c.lfCin = fo === ${LF.LOGIC} ? 0 : fc; ` +
  `if (fo !== ${LF.LOGIC}) { lf[0] = f0; lf[1] = f1; lf[2] = f2; lf[3] = f3; } lf[4] = f4; lf[5] = f5; } ` +
  `else if (fo === -2) { c.rflags = (c.rflags & ${~ARITH_MASK}) | f0; c.lfOp = 0; }`;

/** Stores flags pending in the exit locals into CpuCore (runtime.ts flushDyn; then nothing is pending there). */
export const FLUSH_DYN = 'if (fo !== -1) fo = flushDyn(c, fo, fs, fc, f0, f1, f2, f3, f4, f5);';

function known(f: LazyFlags | BitsFlags | DynFlags): LazyFlags | BitsFlags {
  if (f.kind === 'dyn') throw new Error('jit: flags read before they were materialized');
  return f;
}

/** CF of the pending flags as a JavaScript boolean expression. */
function cfExpr(f: LazyFlags | BitsFlags): string {
  if (f.kind === 'bits') return `(${f.bits} & 1) !== 0`;
  // ADD: the result below the destination, or equal to it with a carry in (ADC); SUB likewise
  const [a, b] = f.op === LF.ADD ? [[f.rLo, f.rHi], [f.dLo, f.dHi]] : [[f.dLo, f.dHi], [f.sLo, f.sHi]];
  switch (f.op) {
    case LF.ADD: case LF.SUB: {
      const lt = f.size === 8
        ? `((${a[1]} >>> 0) < (${b[1]} >>> 0) || (${a[1]} === ${b[1]} && (${a[0]} >>> 0) < (${b[0]} >>> 0)))`
        : `(${a[0]} >>> 0) < (${b[0]} >>> 0)`;
      if (f.cin === '0') return lt;
      const eq = f.size === 8 ? `(${a[1]} === ${b[1]} && ${a[0]} === ${b[0]})` : `${a[0]} === ${b[0]}`;
      return `(${lt} || (${f.cin} !== 0 && ${eq}))`;
    }
    case LF.LOGIC: return 'false';
    default: return `${f.cin} !== 0`;
  }
}

/** The sign bit of a 1- or 2-byte value. */
function signBit(size: number): number {
  return size === 1 ? 0x80 : 0x8000;
}

function zfExpr(f: LazyFlags | BitsFlags): string {
  if (f.kind === 'bits') return `(${f.bits} & 0x40) !== 0`;
  return f.size === 8 ? `(${f.rLo} | ${f.rHi}) === 0` : `${f.rLo} === 0`;
}

function sfExpr(f: LazyFlags | BitsFlags): string {
  if (f.kind === 'bits') return `(${f.bits} & 0x80) !== 0`;
  if (f.size < 4) return `(${f.rLo} & ${signBit(f.size)}) !== 0`;
  return f.size === 8 ? `${f.rHi} < 0` : `${f.rLo} < 0`;
}

function ofExpr(f: LazyFlags | BitsFlags): string {
  if (f.kind === 'bits') return `(${f.bits} & 0x800) !== 0`;
  const d = f.size === 8 ? f.dHi : f.dLo, s = f.size === 8 ? f.sHi : f.sLo, r = f.size === 8 ? f.rHi : f.rLo;
  const neg = f.size < 4 ? ` & ${signBit(f.size)}) !== 0` : ') < 0';
  switch (f.op) {
    case LF.LOGIC: return 'false';
    case LF.ADD: case LF.INC: return `(((${d} ^ ${r}) & (${s} ^ ${r}))${neg}`;
    default: return `(((${d} ^ ${s}) & (${d} ^ ${r}))${neg}`;
  }
}

function pfExpr(f: LazyFlags | BitsFlags): string {
  if (f.kind === 'bits') return `(${f.bits} & 4) !== 0`;
  return `PARITY[${f.rLo} & 0xff] !== 0`;
}

/** Condition code cc (0-15) as a JavaScript boolean expression over the pending flags. */
export function condExpr(pf: PendingFlags, cc: number): string {
  if (pf === null) return `c.cond(${cc})`;
  const f = known(pf);
  let e: string;
  if (f.kind === 'lazy' && f.op === LF.SUB && f.cin === '0' && f.size >= 4 && (cc >> 1) >= 6) {
    // signed compares straight from the operands (SF != OF is signed less-than)
    const lt = f.size === 8
      ? `(${f.dHi} < ${f.sHi} || (${f.dHi} === ${f.sHi} && (${f.dLo} >>> 0) < (${f.sLo} >>> 0)))`
      : `${f.dLo} < ${f.sLo}`;
    e = (cc >> 1) === 6 ? lt : `(${lt} || ${zfExpr(f)})`;
  } else {
    switch (cc >> 1) {
      case 0: e = ofExpr(f); break;
      case 1: e = cfExpr(f); break;
      case 2: e = zfExpr(f); break;
      case 3: e = `(${cfExpr(f)} || ${zfExpr(f)})`; break;
      case 4: e = sfExpr(f); break;
      case 5: e = pfExpr(f); break;
      case 6: e = `(${sfExpr(f)}) !== (${ofExpr(f)})`; break;
      default: e = `(${zfExpr(f)} || (${sfExpr(f)}) !== (${ofExpr(f)}))`; break;
    }
  }
  return cc & 1 ? `!(${e})` : `(${e})`;
}

/** SF, ZF, AF, PF of the pending flags as RFLAGS bits (a number expression). */
export function szapBits(pf: PendingFlags): string {
  if (pf === null) return '(c.getFlags() & 0xd4)';
  const f = known(pf);
  if (f.kind === 'bits') return `(${f.bits} & 0xd4)`;
  const af = f.op === LF.LOGIC ? '0' : `(((${f.dLo} ^ ${f.sLo} ^ ${f.rLo}) >>> 4) & 1) << 4`;
  return `((${pfExpr(f)} ? 4 : 0) | ${af} | (${zfExpr(f)} ? 0x40 : 0) | (${sfExpr(f)} ? 0x80 : 0))`;
}

/** CF as a 0/1 number expression (for INC/DEC, which keep it). */
export function cfNumber(pf: PendingFlags): string {
  if (pf === null) return 'c.getCF()';
  const f = known(pf);
  return `(${cfExpr(f)} ? 1 : 0)`;
}
