/**
 * Just enough 16-bit real mode for an application processor's SIPI trampoline: the AP
 * starts at CS = vector << 8, IP = 0 and the usual trampoline (kvm-unit-tests' sipi_entry,
 * Linux's and most hobby kernels' alike) only sets CR0.PE, loads a GDT and far-jumps into
 * 32-bit protected mode. The CPU core has no real mode; this small interpreter runs the
 * trampoline up to that far jump and hands back the state the core continues from.
 *
 * Instructions: MOV r32,CRn / MOV CRn,r32; OR/AND/ADD r,imm (83 /n ib, 0D, 25, 05); MOV
 * r,imm (B8+r); MOV Sreg,r16 and r16,Sreg; MOV r,r (89/8B register forms); XOR r,r; LGDT/LIDT m (16-bit
 * addressing, operand-size 16 or 32); JMP ptr16:16 / ptr16:32 (EA); JMP rel8/rel16; CLI,
 * STI, CLD, NOP; HLT stops. Operand-size (66) and address-size (67 with disp32 only) prefixes.
 * Anything else stops with 'unsupported' and the bytes, for a clear diagnosis.
 */

export interface RealModeState {
  /** EAX, ECX, EDX, EBX, ESP, EBP, ESI, EDI. */
  regs: Uint32Array;
  cr0: number;
  cr3: number;
  cr4: number;
  cs: number;
  ip: number;
  /** DS, ES, SS, FS, GS selectors (real mode: base = selector << 4). */
  ds: number;
  es: number;
  ss: number;
  fs: number;
  gs: number;
  eflags: number;
  gdtBase: number;
  gdtLimit: number;
  idtBase: number;
  idtLimit: number;
}

export type RealModeResult =
  | { kind: 'protected'; cs: number; eip: number }   // far jump with CR0.PE=1: continue in the core
  | { kind: 'hlt' }
  | { kind: 'unsupported'; address: number; bytes: number[] }
  | { kind: 'fault'; address: number; reason: string }
  | { kind: 'limit' };

/** Reads guest-physical bytes; undefined outside RAM. */
export type PhysRead = (address: number, length: number) => Uint8Array | undefined;

/** The state right after a SIPI with `vector` (SDM 8.4.4.1 / 10.4.7.3). */
export function sipiState(vector: number): RealModeState {
  return {
    regs: new Uint32Array(8), cr0: 0x60000010, cr3: 0, cr4: 0,
    cs: (vector & 0xff) << 8, ip: 0, ds: 0, es: 0, ss: 0, fs: 0, gs: 0, eflags: 2,
    gdtBase: 0, gdtLimit: 0xffff, idtBase: 0, idtLimit: 0xffff,
  };
}

const SREG_ORDER = ['es', 'cs', 'ss', 'ds', 'fs', 'gs'] as const;

/** Runs at most `maxSteps` instructions of `s` (mutated) until it leaves real mode or stops. */
export function runRealMode(s: RealModeState, read: PhysRead, maxSteps = 10000): RealModeResult {
  for (let step = 0; step < maxSteps; step++) {
    const start = s.cs * 16 + s.ip;
    const bytes = read(start, 16);
    if (!bytes) return { kind: 'fault', address: start, reason: 'instruction fetch outside guest RAM' };
    let i = 0;
    let op32 = false, addr32 = false;
    let segOverride: number | undefined;
    for (;;) {
      const b = bytes[i];
      if (b === 0x66) { op32 = true; i++; continue; }
      if (b === 0x67) { addr32 = true; i++; continue; }
      if (b === 0x2e || b === 0x3e || b === 0x26 || b === 0x36) {
        segOverride = { 0x2e: s.cs, 0x3e: s.ds, 0x26: s.es, 0x36: s.ss }[b]; i++; continue;
      }
      if (b === 0x64) { segOverride = s.fs; i++; continue; }
      if (b === 0x65) { segOverride = s.gs; i++; continue; }
      break;
    }
    const unsupported = (): RealModeResult => ({ kind: 'unsupported', address: start, bytes: Array.from(bytes.subarray(0, Math.min(i + 6, 16))) });
    const imm16 = (o: number) => bytes[o] | (bytes[o + 1] << 8);
    const imm32 = (o: number) => (imm16(o) | (imm16(o + 2) << 16)) >>> 0;
    const setReg = (r: number, v: number) => {
      s.regs[r] = op32 ? v >>> 0 : ((s.regs[r] & 0xffff0000) | (v & 0xffff)) >>> 0;
    };
    const getReg = (r: number) => (op32 ? s.regs[r] : s.regs[r] & 0xffff);

    /** Effective address of a memory ModRM at `o` (16-bit forms, or 67 + disp32); [address, length]. */
    const memOperand = (o: number): [number, number] | undefined => {
      const modrm = bytes[o], mod = modrm >> 6, rm = modrm & 7;
      if (mod === 3) return undefined;
      if (addr32) {
        if (mod !== 0 || rm !== 5) return undefined;
        return [imm32(o + 1), 5];
      }
      const base16 = [
        s.regs[3] + s.regs[6], s.regs[3] + s.regs[7], s.regs[5] + s.regs[6], s.regs[5] + s.regs[7],
        s.regs[6], s.regs[7], s.regs[5], s.regs[3],
      ];
      let ea: number, len: number;
      if (mod === 0 && rm === 6) { ea = imm16(o + 1); len = 3; }
      else if (mod === 0) { ea = base16[rm]; len = 1; }
      else if (mod === 1) { ea = base16[rm] + ((bytes[o + 1] << 24) >> 24); len = 2; }
      else { ea = base16[rm] + imm16(o + 1); len = 3; }
      const defaultSeg = (rm === 2 || rm === 3 || (rm === 6 && mod !== 0)) ? s.ss : s.ds;
      return [(segOverride ?? defaultSeg) * 16 + (ea & 0xffff), len];
    };

    const op = bytes[i];
    let next: number; // length of the instruction
    if (op === 0x0f) {
      const op2 = bytes[i + 1];
      const modrm = bytes[i + 2];
      const reg = (modrm >> 3) & 7, rm = modrm & 7;
      if (op2 === 0x20 || op2 === 0x22) {            // MOV r32, CRn / MOV CRn, r32 (always 32-bit)
        if ((modrm >> 6) !== 3) return unsupported();
        const crs = { 0: 'cr0', 3: 'cr3', 4: 'cr4' } as const;
        const cr = crs[reg as 0 | 3 | 4];
        if (!cr) return unsupported();
        if (op2 === 0x20) s.regs[rm] = s[cr] >>> 0;
        else {
          if (cr === 'cr0' && (s.regs[rm] & 0x80000000) !== 0 && (s.regs[rm] & 1) === 0) {
            return { kind: 'fault', address: start, reason: 'CR0.PG without CR0.PE (#GP)' };
          }
          s[cr] = s.regs[rm] >>> 0;
        }
        next = i + 3;
      } else if (op2 === 0x01 && (reg === 2 || reg === 3)) { // LGDT / LIDT
        const m = memOperand(i + 2);
        if (!m) return unsupported();
        const d = read(m[0], 6);
        if (!d) return { kind: 'fault', address: start, reason: 'LGDT/LIDT operand outside guest RAM' };
        const limit = d[0] | (d[1] << 8);
        const base = (d[2] | (d[3] << 8) | (d[4] << 16) | (op32 ? d[5] << 24 : 0)) >>> 0;
        if (reg === 2) { s.gdtBase = base; s.gdtLimit = limit; } else { s.idtBase = base; s.idtLimit = limit; }
        next = i + 2 + m[1];
      } else {
        return unsupported();
      }
    } else if (op >= 0xb8 && op <= 0xbf) {            // MOV r, imm
      setReg(op - 0xb8, op32 ? imm32(i + 1) : imm16(i + 1));
      next = i + 1 + (op32 ? 4 : 2);
    } else if (op === 0x83 || op === 0x81) {          // ADD/OR/AND r, imm
      const modrm = bytes[i + 1];
      if ((modrm >> 6) !== 3) return unsupported();
      const sub = (modrm >> 3) & 7, r = modrm & 7;
      const immLen = op === 0x83 ? 1 : op32 ? 4 : 2;
      const imm = op === 0x83 ? (bytes[i + 2] << 24) >> 24 : op32 ? imm32(i + 2) : imm16(i + 2);
      const a = getReg(r);
      if (sub === 0) setReg(r, a + imm); else if (sub === 1) setReg(r, a | imm); else if (sub === 4) setReg(r, a & imm);
      else return unsupported();
      next = i + 2 + immLen;
    } else if (op === 0x0d || op === 0x25 || op === 0x05) { // OR/AND/ADD eAX, imm
      const imm = op32 ? imm32(i + 1) : imm16(i + 1);
      const a = getReg(0);
      setReg(0, op === 0x0d ? a | imm : op === 0x25 ? a & imm : a + imm);
      next = i + 1 + (op32 ? 4 : 2);
    } else if (op === 0x31 || op === 0x33 || op === 0x89 || op === 0x8b) { // XOR/MOV register forms
      const modrm = bytes[i + 1];
      if ((modrm >> 6) !== 3) return unsupported();
      const reg = (modrm >> 3) & 7, rm = modrm & 7;
      if (op === 0x31 || op === 0x33) setReg(op === 0x31 ? rm : reg, getReg(reg) ^ getReg(rm));
      else if (op === 0x89) setReg(rm, getReg(reg));
      else setReg(reg, getReg(rm));
      next = i + 2;
    } else if (op === 0x8e) {                          // MOV Sreg, r16
      const modrm = bytes[i + 1];
      const sreg = SREG_ORDER[(modrm >> 3) & 7];
      if ((modrm >> 6) !== 3 || sreg === undefined || sreg === 'cs') return unsupported();
      s[sreg] = s.regs[modrm & 7] & 0xffff;
      next = i + 2;
    } else if (op === 0x8c) {                          // MOV r16, Sreg
      const modrm = bytes[i + 1];
      const sreg = SREG_ORDER[(modrm >> 3) & 7];
      if ((modrm >> 6) !== 3 || sreg === undefined) return unsupported();
      setReg(modrm & 7, s[sreg]);
      next = i + 2;
    } else if (op === 0xea) {                          // JMP ptr16:16 / ptr16:32
      const off = op32 ? imm32(i + 1) : imm16(i + 1);
      const sel = imm16(i + 1 + (op32 ? 4 : 2));
      if (s.cr0 & 1) return { kind: 'protected', cs: sel, eip: off };
      s.cs = sel; s.ip = off & 0xffff;
      continue;
    } else if (op === 0xeb) {                          // JMP rel8
      s.ip = (s.ip + i + 2 + ((bytes[i + 1] << 24) >> 24)) & 0xffff;
      continue;
    } else if (op === 0xe9 && !op32) {                 // JMP rel16
      s.ip = (s.ip + i + 3 + imm16(i + 1)) & 0xffff;
      continue;
    } else if (op === 0xfa) { s.eflags &= ~0x200; next = i + 1; }
    else if (op === 0xfb) { s.eflags |= 0x200; next = i + 1; }
    else if (op === 0xfc) { s.eflags &= ~0x400; next = i + 1; }
    else if (op === 0x90) { next = i + 1; }
    else if (op === 0xf4) { s.ip = (s.ip + i + 1) & 0xffff; return { kind: 'hlt' }; }
    else return unsupported();
    s.ip = (s.ip + next) & 0xffff;
  }
  return { kind: 'limit' };
}

/** A GDT entry's base, limit and access bits, for the core to load CS after the far jump. */
export function readDescriptor(read: PhysRead, gdtBase: number, gdtLimit: number, selector: number): { base: number; limit: number; access: number; flags: number } | undefined {
  const index = selector & ~7;
  if ((selector & 4) !== 0 || index === 0 || index + 7 > gdtLimit) return undefined;
  const d = read(gdtBase + index, 8);
  if (!d) return undefined;
  const base = (d[2] | (d[3] << 8) | (d[4] << 16) | (d[7] << 24)) >>> 0;
  let limit = d[0] | (d[1] << 8) | ((d[6] & 0xf) << 16);
  if (d[6] & 0x80) limit = (limit * 0x1000 + 0xfff) >>> 0;
  return { base, limit, access: d[5], flags: d[6] >> 4 };
}
