/**
 * Source generation for a region of decoded blocks (code-cache.ts Block; jit/region.ts picks
 * them): the JavaScript of a function `(c, left, I, ch, pc0) => next RIP` that runs them (from block pc0) with
 * exactly the interpreter's semantics (cpu.ts run loop + fast.ts/exec.ts handlers).
 *
 * - The first block is the entry. A branch, fall-through, call or return to another block of
 *   the region goes straight to it (a `switch` on the block number inside one loop) if the
 *   budget `left` covers all of that block and `ch` is 1; otherwise the function returns
 *   there, as the run loop would stop between two blocks. `ch` = 0 (instruction breakpoints
 *   armed: the run loop checks each block) allows only a block's branch to its own start.
 *   Each block start adds the instructions done so far to c.instret, as the run loop does
 *   between blocks (RDTSC in a call-out reads it). The arithmetic flags a block leaves for
 *   the next one stay in locals (flags-expr.ts DynFlags).
 *
 * - Guest registers live in int32 locals (l<r> bits 31:0, h<r> bits 63:32) across the block,
 *   loaded at entry and stored back at every exit, on a fault (catch) and before a call-out.
 * - Instruction forms listed in `inlineable` are generated inline; every other instruction
 *   is a call-out to its interpreter handler (registers and flags stored first, reloaded
 *   after), so the block behaves as the interpreter loop does for it: it stops after an
 *   instruction that branched, returned EXIT_RIP or set `attention`.
 * - Memory operands: the TLB fast tags inline (as fast.ts); anything else (TLB miss, data
 *   breakpoint page, MMIO, page-crossing, stores to pages holding code) calls the CpuCore
 *   accessor, after which `attention` is checked at the instruction's end.
 *
 * Results: c.jitN = instructions completed in the last block run (the earlier blocks' are in
 * c.instret); on a fault or EXIT_RIP, c.jitInsn = the instruction that did not complete.
 */
import { Insn, Op } from '../insn';
import { LF } from '../flags';
import { TLB_MASK } from '../mmu';
import { regEffects } from './reg-effects';
import { PendingFlags, flushFlags, condExpr, cfNumber, flagsToLocals, EXIT_FLAGS, FLUSH_DYN, szapBits } from './flags-expr';

const FLUSH = '/*FLUSH*/';
const RELOAD = '/*RELOAD*/';

/** Whether the compiler generates instruction i inline (else: a call-out to i.fn). */
export function inlineable(i: Insn): boolean {
  if (i.mode !== 0 || i.lock) return false;
  const s = i.size, q = s === 8 || s === 4;
  const memOk = !i.isMem || (i.asize === 8 && i.seg === 0);
  if (!memOk) return false;
  switch (i.op) {
    case Op.NOP: return true;
    case Op.MOV_EG: case Op.MOV_GE: return true;
    case Op.MOV_RI: return true;
    case Op.MOV_EI: return i.isMem;
    case Op.LEA: return (s === 8 && i.asize === 8) || s === 4;
    case Op.MOVZX: return q && (i.srcSize === 1 || i.srcSize === 2);
    case Op.MOVSX: return q;
    // group 1 at any size and operation; read-modify-write memory forms only 4/8-byte non-carry ones
    case Op.ALU_EG: case Op.ALU_EI: return !i.isMem || i.sub === 7 || (q && i.sub !== 2 && i.sub !== 3);
    case Op.ALU_GE: case Op.TEST_EG: case Op.TEST_EI: return true;
    case Op.NEG_E: case Op.NOT_E: return q && !i.isMem;
    case Op.INC_E: case Op.DEC_E: return q && !i.isMem;
    case Op.PUSH_R: case Op.POP_R: return s === 8;
    case Op.JCC: case Op.JMP_REL: case Op.CALL_REL: return true;
    case Op.CMOV: return q && !i.isMem;
    case Op.IMUL_GE: case Op.IMUL_GEI: return q && !i.isMem;
    case Op.RET: case Op.JMP_E: case Op.CALL_E: return true;
    case Op.CBW: case Op.CWD: return q;
    case Op.SETCC: return !i.isMem;
    case Op.SHIFT_E: return q && !i.isMem && i.sub >= 4 && i.cnt !== 2;
    default: return false;
  }
}

/** Inline forms that always leave the block (their own attention check made). */
function transfers(op: Op): boolean {
  return op === Op.CALL_REL || op === Op.RET || op === Op.JMP_E || op === Op.CALL_E;
}

/** The absolute address a relative branch goes to (as fast.ts jumpTarget). */
function branchTarget(i: Insn): number {
  return i.targetHi === 0 ? i.targetLo : (i.targetHi | 0) * 4294967296 + i.targetLo;
}

function lit(n: number): string {
  return Object.is(n, -0) ? '0' : String(n);
}

export interface EmittedBlock {
  /** Body of `function (PARITY, imulTrunc, mul64lo, MUL, RT)` (RT: runtime.ts) returning the region function `(c, left, I = the blocks' insns one after the other, ch)`. */
  source: string;
  /** Instruction count of the region. */
  length: number;
  inlined: number;
}

/** One block of a region: its start, instructions and the successors the run loop saw it take (returns, indirect jumps). */
export interface RegionBlock {
  addr: number;
  insns: readonly Insn[];
  seen: readonly number[];
}

class Emitter {
  private out: string[] = [];
  private readonly used = new Set<number>();
  private readonly written = new Set<number>();
  private flags: PendingFlags = null;
  private temps = 0;
  private callouts = 0;
  inlined = 0;
  /** The block being emitted (index in the region), the instruction (index in the block) and its index in I. */
  private j = 0;
  private k = 0;
  private g = 0;
  private slow = false;
  /** Block number by start address. */
  private readonly index = new Map<number, number>();

  constructor(private readonly blocks: readonly RegionBlock[]) {
    blocks.forEach((b, j) => this.index.set(b.addr, j));
  }

  private t(): string {
    return `t${this.temps++}`;
  }
  private lo(r: number): string { this.used.add(r); return `l${r}`; }
  private hi(r: number): string { this.used.add(r); return `h${r}`; }
  private setReg(r: number, lo: string, hi: string): void {
    this.used.add(r); this.written.add(r);
    this.out.push(`l${r} = ${lo}; h${r} = ${hi};`);
  }
  /** A byte register (16-19: AH CH DH BH) as a 0-255 expression. */
  private byteReg(r: number): string {
    return r < 16 ? `(${this.lo(r)} & 0xff)` : `((${this.lo(r - 16)} >>> 8) & 0xff)`;
  }
  private setByteReg(r: number, v: string): void {
    if (r < 16) { this.used.add(r); this.written.add(r); this.out.push(`l${r} = (l${r} & -256) | (${v});`); }
    else { const b = r - 16; this.used.add(b); this.written.add(b); this.out.push(`l${b} = (l${b} & -65281) | ((${v}) << 8);`); }
  }

  private exit(count: string, next: string): string {
    return `{ ${flagsToLocals(this.flags)} xn = ${count}; xr = ${next}; break B; }`;
  }

  /** Prepares a call into CpuCore that may fault or set attention (slow paths). */
  private beforeSlow(): string {
    this.slow = true;
    return `ci = ${this.g}; cn = ${this.k}; ${flushFlags(this.flags)}`;
  }

  /** Before an instruction reads the flags: those pending in the exit locals into CpuCore. */
  private needFlags(): void {
    if (this.flags !== null && this.flags.kind === 'dyn') { this.out.push(FLUSH_DYN); this.flags = null; }
  }

  /**
   * Statements that go on at `target` after instruction k: the region's block there if the
   * budget covers it (and chaining is on, or it is this block's own start), else the
   * function returns there.
   */
  private goTo(target: number): string {
    const k = this.k;
    const j = this.index.get(target);
    const pre = `${flagsToLocals(this.flags)} c.instret += ${k + 1}; left -= ${k + 1};`;
    if (j === undefined) return `{ ${pre} xn = 0; xr = ${lit(target)}; break B; }`;
    const len = this.blocks[j].insns.length;
    const chain = j === this.j ? '' : 'ch !== 0 && ';
    return `{ ${pre} if (${chain}left >= ${len}) { pc = ${j}; continue B; } xn = 0; xr = ${lit(target)}; break B; }`;
  }

  /** The same for a target known at run time (local `v`): the region's blocks this block was seen to go to, else a return. */
  private goToDynamic(v: string): string {
    const k = this.k;
    const pre = `${flagsToLocals(this.flags)} c.instret += ${k + 1}; left -= ${k + 1};`;
    let tests = '';
    for (const a of this.blocks[this.j].seen) {
      const j = this.index.get(a);
      if (j === undefined) continue;
      const chain = j === this.j ? '' : 'ch !== 0 && ';
      tests += `if (${v} === ${lit(a)} && ${chain}left >= ${this.blocks[j].insns.length}) { pc = ${j}; continue B; } `;
    }
    return `{ ${pre} ${tests}xn = 0; xr = ${v}; break B; }`;
  }

  /** The effective address of i's memory operand into two new int32 locals. */
  private ea(i: Insn): [string, string] {
    const aL = this.t(), aH = this.t();
    const dLo = i.dispLo >>> 0, dHi = i.dispHi | 0;
    if (i.base < 0 && i.index < 0) {
      this.out.push(`${aL} = ${dLo | 0}; ${aH} = ${dHi};`);
      return [aL, aH];
    }
    const s = this.t();
    let sum = `${dLo}`, hsum = `${dHi}`;
    if (i.base >= 0) { sum += ` + (${this.lo(i.base)} >>> 0)`; hsum += ` + ${this.hi(i.base)}`; }
    if (i.index < 0) {
      this.out.push(`${s} = ${sum}; ${aL} = ${s} | 0; ${aH} = (${hsum} + (${s} > 4294967295 ? 1 : 0)) | 0;`);
    } else {
      const m = 1 << i.scale;
      sum += ` + (${this.lo(i.index)} >>> 0) * ${m}`;
      hsum += ` + ${this.hi(i.index)} * ${m}`;
      this.out.push(`${s} = ${sum}; ${aL} = ${s} | 0; ${aH} = (${hsum} + Math.floor(${s} / 4294967296)) | 0;`);
    }
    return [aL, aH];
  }

  /** Reads n bytes at (aL,aH) into new locals [lo, hi] (hi '0' unless n = 8). */
  private load(aL: string, aH: string, n: number): [string, string] {
    const vL = this.t(), vH = n === 8 ? this.t() : '0';
    const call = n === 8 ? `${vL} = c.rd64(${aL} >>> 0, ${aH} >>> 0) | 0; ${vH} = c.t | 0;` : `${vL} = c.rd${n * 8}(${aL} >>> 0, ${aH} >>> 0) | 0;`;
    const p = this.t();
    let fast: string;
    switch (n) {
      case 1: fast = `${vL} = M8[${p}];`; break;
      case 2: fast = `${vL} = M8[${p}] | (M8[${p} + 1] << 8);`; break;
      case 4: fast = `${vL} = M32[${p} >>> 2] | 0;`; break;
      default: fast = `${vL} = M32[${p} >>> 2] | 0; ${vH} = M32[(${p} >>> 2) + 1] | 0;`;
    }
    this.out.push(`if (${this.tlbHit('tR', aL, aH, n, p)}) { ${fast} } else { ${this.beforeSlow()} ${call} sl = 1; }`);
    return [vL, vH];
  }

  /**
   * The TLB fast path's test (core.ts, runtime.ts) inline: the entry of the page has a fast
   * tag for the access (RAM, allowed, no data breakpoint, no alignment check), the n bytes stay
   * on the page and, for 4 and 8 bytes, are 4-aligned in RAM (the 32-bit view); sets local p
   * to the RAM offset.
   */
  private tlbHit(tags: string, aL: string, aH: string, n: number, p: string): string {
    const e = this.t();
    const off = `(${aL} & 4095)`;
    let t = `(${e} = (${aL} >>> 12) & ${TLB_MASK}, ${tags}[${e}] === (${aL} & -4096)) && tH[${e}] === ${aH}`;
    if (n > 1) t += ` && ${off} <= ${4096 - n}`;
    t += n >= 4 ? ` && ((${p} = tP[${e}] + ${off}) & 3) === 0` : ` && (${p} = tP[${e}] + ${off}, true)`;
    return t;
  }

  /**
   * The n bytes at RAM offset p hold no decoded code (core.ts storeNearCode): the page holds
   * none, or the 16-byte lines of the first and last byte hold none.
   */
  private notCode(p: string, n: number): string {
    const last = n === 1 ? p : `(${p} + ${n - 1})`;
    return `(CP[${p} >>> 12] === 0 || ((CL[${p} >>> 9] >>> ((${p} >>> 4) & 31)) & 1 | (CL[${last} >>> 9] >>> ((${last} >>> 4) & 31)) & 1) === 0)`;
  }

  /** Writes n bytes (1, 2, 4, 8) of [vL, vH] at (aL,aH); a store into decoded code's lines takes the accessor (it drops that code). */
  private store(aL: string, aH: string, n: number, vL: string, vH: string): void {
    const p = this.t();
    let fast: string, call: string;
    if (n === 1) {
      fast = `M8[${p}] = ${vL};`;
      call = `c.wr8(${aL} >>> 0, ${aH} >>> 0, ${vL});`;
    } else if (n === 2) {
      fast = `M8[${p}] = ${vL}; M8[${p} + 1] = ${vL} >>> 8;`;
      call = `c.wr16(${aL} >>> 0, ${aH} >>> 0, ${vL} & 0xffff);`;
    } else if (n === 4) {
      fast = `M32[${p} >>> 2] = ${vL};`;
      call = `c.wr32(${aL} >>> 0, ${aH} >>> 0, ${vL} >>> 0);`;
    } else {
      fast = `M32[${p} >>> 2] = ${vL}; M32[(${p} >>> 2) + 1] = ${vH};`;
      call = `c.wr64(${aL} >>> 0, ${aH} >>> 0, ${vL} >>> 0, ${vH} >>> 0);`;
    }
    this.out.push(`if (${this.tlbHit('tW', aL, aH, n, p)} && ${this.notCode(p, n)}) { ${fast} } else { ${this.beforeSlow()} ${call} sl = 1; }`);
  }

  /**
   * ALU op (0 add, 1 or, 2 adc, 3 sbb, 4 and, 5 sub, 6 xor, 7 cmp) of d and s; sets the
   * pending flags. Sizes 1 and 2 take and give values masked to the size (as the
   * interpreter's record holds them).
   */
  private alu(op: number, size: number, d: [string, string], s: [string, string]): [string, string] {
    const dL = this.t(), dH = size === 8 ? this.t() : '0', sL = this.t(), sH = size === 8 ? this.t() : '0';
    const rL = this.t(), rH = size === 8 ? this.t() : '0';
    this.out.push(`${dL} = ${d[0]}; ${sL} = ${s[0]};` + (size === 8 ? ` ${dH} = ${d[1]}; ${sH} = ${s[1]};` : ''));
    // ADC/SBB: CF of the flags before, kept in the record as the interpreter keeps it
    let cin = '0';
    if (op === 2 || op === 3) {
      this.needFlags();
      cin = this.t();
      this.out.push(`${cin} = ${cfNumber(this.flags)};`);
    }
    const add = op === 0 || op === 2, sub = op === 3 || op === 5 || op === 7;
    const carry = cin === '0' ? '' : ` + ${cin}`, borrow = cin === '0' ? '' : ` - ${cin}`;
    let lf: LF;
    if (size === 8) {
      if (add) {
        const x = cin === '0' ? '' : this.t();
        this.out.push(cin === '0'
          ? `${rL} = (${dL} + ${sL}) | 0; ${rH} = (${dH} + ${sH} + ((${rL} >>> 0) < (${dL} >>> 0) ? 1 : 0)) | 0;`
          : `${x} = (${dL} >>> 0) + (${sL} >>> 0)${carry}; ${rL} = ${x} | 0; ${rH} = (${dH} + ${sH} + (${x} > 4294967295 ? 1 : 0)) | 0;`);
        lf = LF.ADD;
      } else if (sub) {
        const x = cin === '0' ? '' : this.t();
        this.out.push(cin === '0'
          ? `${rL} = (${dL} - ${sL}) | 0; ${rH} = (${dH} - ${sH} - ((${dL} >>> 0) < (${sL} >>> 0) ? 1 : 0)) | 0;`
          : `${x} = (${dL} >>> 0) - (${sL} >>> 0)${borrow}; ${rL} = ${x} | 0; ${rH} = (${dH} - ${sH} - (${x} < 0 ? 1 : 0)) | 0;`);
        lf = LF.SUB;
      } else {
        const o = op === 4 ? '&' : op === 1 ? '|' : '^';
        this.out.push(`${rL} = ${dL} ${o} ${sL}; ${rH} = ${dH} ${o} ${sH};`); lf = LF.LOGIC;
      }
    } else {
      const mask = size === 4 ? '' : size === 2 ? ' & 0xffff' : ' & 0xff';
      if (add) { this.out.push(`${rL} = (${dL} + ${sL}${carry})${mask || ' | 0'};`); lf = LF.ADD; }
      else if (sub) { this.out.push(`${rL} = (${dL} - ${sL}${borrow})${mask || ' | 0'};`); lf = LF.SUB; }
      else {
        const o = op === 4 ? '&' : op === 1 ? '|' : '^';
        this.out.push(`${rL} = ${dL} ${o} ${sL};`); lf = LF.LOGIC;
      }
    }
    this.flags = { kind: 'lazy', op: lf, size, dLo: dL, dHi: dH, sLo: sL, sHi: sH, rLo: rL, rHi: rH, cin };
    return [rL, rH];
  }

  /** Register r's operand of the size: 64-bit halves, or a value masked to 1 or 2 bytes (hi '0'). */
  private regOperand(r: number, size: number): [string, string] {
    if (size === 1) return [this.byteReg(r), '0'];
    if (size === 2) return [`(${this.lo(r)} & 0xffff)`, '0'];
    return this.reg64(r, size);
  }

  /** An immediate operand of the size (1 and 2 bytes masked, as the interpreter's ALU takes it). */
  private immOperand(i: Insn, size: number): [string, string] {
    if (size === 1) return [lit(i.immLo & 0xff), '0'];
    if (size === 2) return [lit(i.immLo & 0xffff), '0'];
    return [lit(i.immLo | 0), size === 8 ? lit(i.immHi | 0) : '0'];
  }

  /** Writes a result of the size into register r: 4 clears bits 63:32, 1 and 2 keep the other bits. */
  private setOperand(r: number, size: number, v: [string, string]): void {
    if (size === 1) this.setByteReg(r, v[0]);
    else if (size === 2) { this.used.add(r); this.written.add(r); this.out.push(`l${r} = (l${r} & -65536) | (${v[0]});`); }
    else this.setSized(r, size, v);
  }

  private reg64(r: number, size: number): [string, string] {
    return [this.lo(r), size === 8 ? this.hi(r) : '0'];
  }

  /** A store of the result at operand size into register r (4: bits 63:32 cleared). */
  private setSized(r: number, size: number, v: [string, string]): void {
    this.setReg(r, v[0], size === 8 ? v[1] : '0');
  }

  private callout(i: Insn): void {
    this.out.push(this.calloutCode(i));
    this.flags = null;
  }

  /** Statements that run instruction i by its interpreter handler (then the flags are in CpuCore). */
  private calloutCode(i: Insn): string {
    this.callouts++;
    const k = this.k, g = this.g;
    const call = `ci = ${g}; cn = ${k}; ${flushFlags(this.flags)} ${this.handlerCall(i, g)}`;
    const saved = this.flags;
    this.flags = null;
    // the block's last instruction (a transfer) may go on in the region; a fault, an exit or attention returns
    const last = k === this.blocks[this.j].insns.length - 1;
    const on = last ? `if (c.attention === 0 && r${g} !== -0.5) ${this.goToDynamic(`r${g}`)} ` : '';
    this.flags = saved;
    return `${call}\nif (r${g} !== ${lit(i.nextAddr)} || c.attention !== 0) { ${on}fo = -1; xr = r${g}; if (r${g} === -0.5) { c.jitInsn = i${g}; xn = ${k}; } else xn = ${k + 1}; break B; }`;
  }

  /**
   * The call of instruction i's handler (local r<g> = its next RIP) with the registers it
   * uses passed through CpuCore: only those it reads or writes stored, and those it writes
   * reloaded (reg-effects.ts), or all of them. A fault in a listed handler comes before it changes a
   * register, so the locals stay the state to restore (ok = 1); after a full call-out CpuCore
   * has it (ok = 0).
   */
  private handlerCall(i: Insn, g: number): string {
    const fx = regEffects(i);
    const call = `const i${g} = I[${g}], r${g} = i${g}.fn(c, i${g});`;
    if (fx === null) return `${FLUSH} ok = 0; ${call} ok = 1; ${RELOAD}`;
    // a register the handler may leave unchanged is stored too, so the reload finds its value
    const reads = [...new Set([...fx.reads, ...fx.writes])].map((r) => { this.used.add(r); return `rl[${r}] = l${r}; rh[${r}] = h${r};`; });
    const writes = [...new Set(fx.writes)].map((r) => { this.used.add(r); this.written.add(r); return `l${r} = rl[${r}] | 0; h${r} = rh[${r}] | 0;`; });
    return `${reads.join(' ')} ${call} ${writes.join(' ')}`;
  }

  /**
   * A read-modify-write ALU instruction on memory (size 4/8): done inline if the page has a
   * fast write tag (then it is readable RAM without breakpoints, and the bytes are not decoded
   * code), else by the interpreter's handler (write-intent read, faults, breakpoints). The
   * flags go to the exit locals on both paths (DynFlags).
   */
  private aluMemRmw(i: Insn, src: [string, string]): void {
    const s = i.size;
    const [aL, aH] = this.ea(i);
    const p = this.t();
    const slow = this.calloutCode(i);
    const hit = `${this.tlbHit('tW', aL, aH, s, p)} && ${this.notCode(p, s)}`;
    const before = this.flags;
    const at = this.out.length;
    const dL = this.t(), dH = s === 8 ? this.t() : '0';
    this.out.push(`${dL} = M32[${p} >>> 2] | 0;` + (s === 8 ? ` ${dH} = M32[(${p} >>> 2) + 1] | 0;` : ''));
    const [rL, rH] = this.alu(i.sub, s, [dL, dH], src);
    this.out.push(`M32[${p} >>> 2] = ${rL};` + (s === 8 ? ` M32[(${p} >>> 2) + 1] = ${rH};` : ''));
    this.out.push(flagsToLocals(this.flags));
    const fast = this.out.splice(at).join(' ');
    this.flags = before;
    this.out.push(`if (${hit}) { ${fast} } else { ${slow} fo = -1; }`);
    this.flags = { kind: 'dyn' };
  }

  /** A taken branch to `target` after instruction k. */
  private branch(target: number): string {
    return this.goTo(target);
  }

  private emitInsn(i: Insn): boolean {
    const s = i.size;
    switch (i.op) {
      case Op.NOP: return true;
      case Op.MOV_EG: {
        const v = this.regOperand(i.reg, s);
        if (!i.isMem) { this.setOperand(i.rm, s, v); return true; }
        const [aL, aH] = this.ea(i);
        this.store(aL, aH, s, v[0], v[1]);
        return true;
      }
      case Op.MOV_GE:
        if (!i.isMem) { this.setOperand(i.reg, s, this.regOperand(i.rm, s)); return true; }
        { const [aL, aH] = this.ea(i); this.setOperand(i.reg, s, this.load(aL, aH, s)); return true; }
      case Op.MOV_RI: this.setOperand(i.rm, s, this.immOperand(i, s)); return true;
      case Op.MOV_EI: { const [aL, aH] = this.ea(i); const v = this.immOperand(i, s); this.store(aL, aH, s, v[0], v[1]); return true; }
      case Op.LEA: { const [aL, aH] = this.ea(i); this.setReg(i.reg, aL, s === 8 ? aH : '0'); return true; }
      case Op.MOVZX: {
        let v: string;
        if (i.isMem) { const [aL, aH] = this.ea(i); v = this.load(aL, aH, i.srcSize)[0]; }
        else v = i.srcSize === 1 ? this.byteReg(i.rm) : `(${this.lo(i.rm)} & 0xffff)`;
        this.setReg(i.reg, v, '0');
        return true;
      }
      case Op.MOVSX: {
        const n = i.srcSize;
        let raw: string;
        if (i.isMem) { const [aL, aH] = this.ea(i); raw = this.load(aL, aH, n)[0]; }
        else raw = n === 1 && i.rm >= 16 ? `(${this.lo(i.rm - 16)} >>> 8)` : this.lo(i.rm);
        const v = this.t();
        this.out.push(`${v} = ${n === 1 ? `(${raw} << 24) >> 24` : n === 2 ? `(${raw} << 16) >> 16` : `${raw} | 0`};`);
        this.setReg(i.reg, v, s === 8 ? `(${v} < 0 ? -1 : 0)` : '0');
        return true;
      }
      case Op.ALU_EG: { // rm op= reg
        if (i.isMem) {
          if (i.sub !== 7) { this.aluMemRmw(i, this.reg64(i.reg, s)); return true; }
          const [aL, aH] = this.ea(i);
          this.alu(7, s, this.load(aL, aH, s), this.regOperand(i.reg, s));
          return true;
        }
        const r = this.alu(i.sub, s, this.regOperand(i.rm, s), this.regOperand(i.reg, s));
        if (i.sub !== 7) this.setOperand(i.rm, s, r);
        return true;
      }
      case Op.ALU_GE: { // reg op= rm / [mem]
        let src: [string, string];
        if (i.isMem) { const [aL, aH] = this.ea(i); src = this.load(aL, aH, s); } else src = this.regOperand(i.rm, s);
        const r = this.alu(i.sub, s, this.regOperand(i.reg, s), src);
        if (i.sub !== 7) this.setOperand(i.reg, s, r);
        return true;
      }
      case Op.ALU_EI: {
        if (i.isMem) {
          if (i.sub !== 7) { this.aluMemRmw(i, this.immOperand(i, s)); return true; }
          const [aL, aH] = this.ea(i);
          this.alu(7, s, this.load(aL, aH, s), this.immOperand(i, s));
          return true;
        }
        const r = this.alu(i.sub, s, this.regOperand(i.rm, s), this.immOperand(i, s));
        if (i.sub !== 7) this.setOperand(i.rm, s, r);
        return true;
      }
      case Op.TEST_EI: {
        let d: [string, string];
        if (i.isMem) { const [aL, aH] = this.ea(i); d = this.load(aL, aH, s); } else d = this.regOperand(i.rm, s);
        this.alu(4, s, d, this.immOperand(i, s));
        return true;
      }
      case Op.TEST_EG: {
        let d: [string, string];
        if (i.isMem) { const [aL, aH] = this.ea(i); d = this.load(aL, aH, s); } else d = this.regOperand(i.rm, s);
        this.alu(4, s, d, this.regOperand(i.reg, s));
        return true;
      }
      case Op.NEG_E: { // as the interpreter: SUB from 0
        const r = this.alu(5, s, ['0', '0'], this.reg64(i.rm, s));
        this.setSized(i.rm, s, r);
        return true;
      }
      case Op.NOT_E:
        this.setReg(i.rm, `~${this.lo(i.rm)}`, s === 8 ? `~${this.hi(i.rm)}` : '0');
        return true;
      case Op.INC_E: case Op.DEC_E: {
        this.needFlags();
        const dec = i.op === Op.DEC_E;
        const cin = this.t(), dL = this.t(), dH = s === 8 ? this.t() : '0', rL = this.t(), rH = s === 8 ? this.t() : '0';
        this.out.push(`${cin} = ${cfNumber(this.flags)}; ${dL} = ${this.lo(i.rm)};`);
        if (s === 8) {
          this.out.push(`${dH} = ${this.hi(i.rm)};`);
          this.out.push(dec ? `${rL} = (${dL} - 1) | 0; ${rH} = ${dL} === 0 ? (${dH} - 1) | 0 : ${dH};`
            : `${rL} = (${dL} + 1) | 0; ${rH} = ${rL} === 0 ? (${dH} + 1) | 0 : ${dH};`);
        } else this.out.push(`${rL} = (${dL} ${dec ? '-' : '+'} 1) | 0;`);
        this.flags = { kind: 'lazy', op: dec ? LF.DEC : LF.INC, size: s, dLo: dL, dHi: dH, sLo: '1', sHi: '0', rLo: rL, rHi: rH, cin };
        this.setReg(i.rm, rL, rH);
        return true;
      }
      case Op.PUSH_R: {
        const vL = this.t(), vH = this.t(), sL = this.t(), sH = this.t();
        this.out.push(`${vL} = ${this.lo(i.rm)}; ${vH} = ${this.hi(i.rm)}; ${sL} = (${this.lo(4)} - 8) | 0; ${sH} = (l4 >>> 0) < 8 ? (${this.hi(4)} - 1) | 0 : h4;`);
        this.store(sL, sH, 8, vL, vH);
        this.setReg(4, sL, sH);
        return true;
      }
      case Op.POP_R: {
        const [vL, vH] = this.load(this.lo(4), this.hi(4), 8);
        const x = this.t();
        this.out.push(`${x} = (l4 >>> 0) + 8;`);
        this.setReg(4, `${x} | 0`, `${x} > 4294967295 ? (h4 + 1) | 0 : h4`);
        this.setReg(i.rm, vL, vH);
        return true;
      }
      case Op.CALL_REL: {
        this.pushReturn(i);
        this.endSlow(lit(branchTarget(i)));
        this.out.push(this.branch(branchTarget(i)));
        return true;
      }
      case Op.JMP_REL: this.out.push(this.branch(branchTarget(i))); return true;
      case Op.JCC: this.needFlags(); this.out.push(`if (${condExpr(this.flags, i.cc)}) ${this.branch(branchTarget(i))}`); return true;
      case Op.CMOV: {
        this.needFlags();
        const c = this.t();
        this.out.push(`${c} = ${condExpr(this.flags, i.cc)};`);
        if (s === 8) this.out.push(`if (${c}) { l${i.reg} = ${this.lo(i.rm)}; h${i.reg} = ${this.hi(i.rm)}; }`);
        else this.out.push(`if (${c}) l${i.reg} = ${this.lo(i.rm)}; h${i.reg} = 0;`);
        this.used.add(i.reg); this.written.add(i.reg);
        return true;
      }
      case Op.SETCC: this.needFlags(); this.setByteReg(i.rm, `${condExpr(this.flags, i.cc)} ? 1 : 0`); return true;
      case Op.SHIFT_E: return this.shift(i);
      case Op.IMUL_GE: case Op.IMUL_GEI: {
        // CF = OF = signed overflow; SF ZF AF PF unchanged (as the interpreter's imulTrunc)
        this.needFlags();
        const a = i.op === Op.IMUL_GE ? this.reg64(i.reg, s) : this.reg64(i.rm, s);
        const b = i.op === Op.IMUL_GE ? this.reg64(i.rm, s) : [lit(i.immLo | 0), lit(i.immHi | 0)];
        const rL = this.t(), rH = s === 8 ? this.t() : '0', bits = this.t(), ov = this.t();
        if (s === 8) {
          this.out.push(`${ov} = mul64lo(${a[0]}, ${a[1]}, ${b[0]}, ${b[1]});`);
          this.out.push(`if (${ov} === 2) { ${flushFlags(this.flags)} ${rL} = imulTrunc(c, 8, ${a[0]} >>> 0, ${a[1]} >>> 0, ${b[0]} >>> 0, ${b[1]} >>> 0) | 0; ` +
            `${rH} = c.t | 0; ${bits} = c.rflags & 0x8d5; } else { ${rL} = MUL[0]; ${rH} = MUL[1]; ${bits} = ${szapBits(this.flags)} | (${ov} !== 0 ? 0x801 : 0); }`);
        } else {
          const p = this.t();
          this.out.push(`${rL} = Math.imul(${a[0]}, ${b[0]}); ${p} = ${a[0]} * ${b[0]}; ` +
            `${bits} = ${szapBits(this.flags)} | (${p} > 2147483647 || ${p} < -2147483648 ? 0x801 : 0);`);
        }
        this.flags = { kind: 'bits', bits };
        this.setReg(i.reg, rL, rH);
        return true;
      }
      case Op.CBW: // CDQE / CWDE
        if (s === 8) this.setReg(0, this.lo(0), `(${this.lo(0)} >> 31)`);
        else this.setReg(0, `((${this.lo(0)} << 16) >> 16)`, '0');
        return true;
      case Op.CWD: // CQO / CDQ
        if (s === 8) this.setReg(2, `(${this.hi(0)} >> 31)`, `(${this.hi(0)} >> 31)`);
        else this.setReg(2, `(${this.lo(0)} >> 31)`, '0');
        return true;
      case Op.RET: {
        // as fast.ts ret: a target with bits 63:32 set goes to the interpreter's handler
        const [vL, vH] = this.load(this.lo(4), this.hi(4), 8);
        const k = this.k, g = this.g;
        this.out.push(`if (${vH} !== 0) { ci = ${g}; cn = ${k}; ${FLUSH} ${flushFlags(this.flags)} ok = 0; const r${g} = I[${g}].fn(c, I[${g}]); ok = 1; ${RELOAD} ` +
          `fo = -1; xr = r${g}; if (r${g} === -0.5) { c.jitInsn = I[${g}]; xn = ${k}; } else xn = ${k + 1}; break B; }`);
        const x = this.t();
        this.out.push(`${x} = (l4 >>> 0) + ${8 + i.imm2};`);
        this.setReg(4, `${x} | 0`, `${x} > 4294967295 ? (h4 + 1) | 0 : h4`);
        const to = this.t();
        this.out.push(`${to} = ${vL} >>> 0;`);
        // a data breakpoint on the stack read (the slow path) is taken before the next block
        this.endSlow(to);
        this.out.push(this.goToDynamic(to));
        return true;
      }
      case Op.JMP_E: case Op.CALL_E: return this.indirect(i);
      default: return false;
    }
  }

  /** A CALL's push of its return address (the next instruction's) and the new RSP. */
  private pushReturn(i: Insn): void {
    const nx = i.nextAddr;
    const nL = nx >>> 0, nH = nx > 0xffffffff || nx < 0 ? Math.floor(nx / 4294967296) | 0 : 0;
    const sL = this.t(), sH = this.t();
    this.out.push(`${sL} = (${this.lo(4)} - 8) | 0; ${sH} = (l4 >>> 0) < 8 ? (${this.hi(4)} - 1) | 0 : h4;`);
    this.store(sL, sH, 8, lit(nL | 0), lit(nH));
    this.setReg(4, sL, sH);
  }

  /**
   * JMP/CALL through a register or memory (as exec.ts): a non-canonical target faults before
   * anything changes (CALL: before the push); then the region's block seen at the target, or
   * a return there.
   */
  private indirect(i: Insn): boolean {
    let v: [string, string];
    if (i.isMem) { const [aL, aH] = this.ea(i); v = this.load(aL, aH, 8); } else v = this.reg64(i.rm, 8);
    const tL = this.t(), tH = this.t(), to = this.t();
    this.out.push(`${tL} = ${v[0]}; ${tH} = ${v[1]};`);
    this.out.push(`if (${tH} !== 0 && (${tH} >>> 15) !== 0 && (${tH} >>> 15) !== 131071) { ${this.beforeSlow()} c.gp0(); }`);
    this.out.push(`${to} = ${tH} === 0 ? ${tL} >>> 0 : (${tH} | 0) * 4294967296 + (${tL} >>> 0);`);
    if (i.op === Op.CALL_E) this.pushReturn(i);
    this.endSlow(to);
    this.out.push(this.goToDynamic(to));
    return true;
  }

  /** SHL/SHR/SAR by a constant count (as fast.ts shiftFast). */
  private shift(i: Insn): boolean {
    const sub = i.sub, d = i.rm, s = i.size;
    let count = i.cnt === 0 ? i.immLo : 1;
    const rL = this.t(), rH = this.t(), bits = this.t();
    if (s === 4) {
      count &= 31;
      if (count === 0) { this.setReg(d, this.lo(d), '0'); return true; }
      const v = this.lo(d);
      let cf: string, of: string;
      if (sub === 5) { this.out.push(`${rL} = (${v} >>> ${count}) | 0;`); cf = `((${v} >>> ${count - 1}) & 1)`; of = count === 1 ? `(${v} >>> 31)` : '0'; }
      else if (sub === 7) { this.out.push(`${rL} = ${v} >> ${count};`); cf = `((${v} >> ${count - 1}) & 1)`; of = '0'; }
      else { this.out.push(`${rL} = ${v} << ${count};`); cf = `((${v} >>> ${32 - count}) & 1)`; of = `((${rL} >>> 31) ^ ${cf})`; }
      this.out.push(`${bits} = ${cf} | (${of} << 11) | 0x10 | (${rL} === 0 ? 0x40 : 0) | ((${rL} >>> 31) << 7) | (PARITY[${rL} & 0xff] << 2);`);
      this.flags = { kind: 'bits', bits };
      this.setReg(d, rL, '0');
      return true;
    }
    count &= 63;
    if (count === 0) return true;
    const lo = this.lo(d), hi = this.hi(d);
    let cf: string, of: string;
    if (sub === 5) {
      if (count < 32) { this.out.push(`${rL} = (${lo} >>> ${count}) | (${count === 0 ? 0 : `${hi} << ${32 - count}`}); ${rH} = (${hi} >>> ${count}) | 0;`); cf = `((${lo} >>> ${count - 1}) & 1)`; }
      else { this.out.push(`${rL} = (${hi} >>> ${count - 32}) | 0; ${rH} = 0;`); cf = count === 32 ? `(${lo} >>> 31)` : `((${hi} >>> ${count - 33}) & 1)`; }
      of = count === 1 ? `(${hi} >>> 31)` : '0';
    } else if (sub === 7) {
      if (count < 32) { this.out.push(`${rL} = (${lo} >>> ${count}) | (${hi} << ${32 - count}); ${rH} = ${hi} >> ${count};`); cf = `((${lo} >>> ${count - 1}) & 1)`; }
      else { this.out.push(`${rL} = ${hi} >> ${count - 32}; ${rH} = ${hi} >> 31;`); cf = count === 32 ? `(${lo} >>> 31)` : `((${hi} >> ${count - 33}) & 1)`; }
      of = '0';
    } else {
      const k = 64 - count;
      cf = k >= 32 ? `((${hi} >>> ${k - 32}) & 1)` : `((${lo} >>> ${k}) & 1)`;
      if (count < 32) this.out.push(`${rH} = (${hi} << ${count}) | (${lo} >>> ${32 - count}); ${rL} = ${lo} << ${count};`);
      else this.out.push(`${rH} = ${lo} << ${count - 32}; ${rL} = 0;`);
      of = `(((${rH} >>> 31) & 1) ^ ${cf})`;
    }
    // cf/of read the operand before the register is written
    this.out.push(`${bits} = ${cf} | (${of} << 11) | 0x10 | ((${rL} | ${rH}) === 0 ? 0x40 : 0) | (((${rH} >>> 31) & 1) << 7) | (PARITY[${rL} & 0xff] << 2);`);
    this.flags = { kind: 'bits', bits };
    this.setReg(d, rL, rH);
    return true;
  }

  /** After an instruction with a slow path: a set `attention` ends the block after it. */
  private endSlow(next: string): void {
    if (!this.slow) return;
    this.slow = false;
    this.out.push(`if (sl !== 0) { sl = 0; if (c.attention !== 0) ${this.exit(String(this.k + 1), next)} }`);
  }

  /** One block of the region as the body of its `case`. */
  private emitBlock(j: number, base: number): void {
    const insns = this.blocks[j].insns;
    this.j = j;
    this.flags = { kind: 'dyn' };
    this.slow = false;
    this.out.push(`case ${j}: {`);
    for (let k = 0; k < insns.length; k++) {
      this.k = k;
      this.g = base + k;
      const i = insns[k];
      const firstTemp = this.temps, at = this.out.length;
      this.out.push('');
      if (inlineable(i) && this.emitInsn(i)) {
        this.inlined++;
        if (!transfers(i.op)) this.endSlow(lit(i.nextAddr));
      } else this.callout(i);
      // this instruction's temporaries: fresh bindings (no loop phis, no mixed representations)
      if (this.temps > firstTemp) this.out[at] = `let ${Array.from({ length: this.temps - firstTemp }, (_, n) => `t${firstTemp + n} = 0`).join(', ')};`;
    }
    const last = insns[insns.length - 1];
    const lastOp = last.op;
    const ends = lastOp === Op.JMP_REL || (transfers(lastOp) && inlineable(last));
    if (!ends) {
      this.k = insns.length - 1;
      this.out.push(this.goTo(last.nextAddr));
    }
    this.out.push('}');
  }

  emit(): EmittedBlock {
    let base = 0;
    for (let j = 0; j < this.blocks.length; j++) {
      this.emitBlock(j, base);
      base += this.blocks[j].insns.length;
    }
    const regs = [...this.used].sort((a, b) => a - b);
    const flush = [...this.written].sort((a, b) => a - b).map((r) => `rl[${r}] = l${r}; rh[${r}] = h${r};`).join(' ');
    const reload = regs.map((r) => `l${r} = rl[${r}] | 0; h${r} = rh[${r}] | 0;`).join(' ');
    const decl = regs.map((r) => `l${r} = rl[${r}] | 0, h${r} = rh[${r}] | 0`);
    const body = this.out.join('\n').split(FLUSH).join(flush).split(RELOAD).join(reload);
    const source = `"use strict";
const { storeLazy, storeBits, flushDyn } = RT;
return function jitRegion(c, left, I, ch, pc0) {
  const rl = c.rl, rh = c.rh, lf = c.lf, tR = c.tlbR, tW = c.tlbW, tH = c.tlbHi, tP = c.tlbPhys, M8 = c.bytes, M32 = c.u32, CP = c.codePages, CL = c.codeLines;
  let ${['pc = pc0', 'ci = 0', 'cn = 0', 'ok = 1', 'sl = 0', 'xn = 0', 'xr = 0', 'fo = -1', 'fs = 0', 'fc = 0', 'f0 = 0', 'f1 = 0', 'f2 = 0', 'f3 = 0', 'f4 = 0', 'f5 = 0', ...decl].join(', ')};
  try {
    B: for (;;) {
    switch (pc) {
${body}
    }
    }
    ${flush}
    ${EXIT_FLAGS}
    c.jitN = xn;
    return xr;
  } catch (x) {
    if (ok !== 0) { ${flush} }
    c.jitInsn = I[ci]; c.jitN = cn;
    throw x;
  }
};`;
    return { source, length: base, inlined: this.inlined };
  }
}

/** Generates the source of a region: blocks[0] is its entry. */
export function emitRegion(blocks: readonly RegionBlock[]): EmittedBlock {
  return new Emitter(blocks).emit();
}
