/**
 * Event delivery through the 64-bit IDT (SDM 6.14): interrupt and trap gates, the
 * architectural frame (SS, RSP, RFLAGS, CS, RIP, error code) on a 16-byte aligned stack,
 * TF/RF/NT/VM cleared on entry and IF cleared by interrupt gates. Faults met while
 * delivering an event are combined by the double-fault rules of SDM Table 6-5; a fault while
 * delivering #DF is a triple fault.
 *
 * Not modelled: IST stack switching (there is no TSS), privilege-level changes (CPL is 0).
 * Every access goes through the MMU: the gate read is an implicit supervisor access, the
 * frame pushes are stack writes that match data breakpoints (the cpu makes their hits
 * pending after the delivery).
 */
import { CpuCore, FAULT, FaultKind } from './core';
import { TF, RF, NT, VM, IF } from './flags';

export const DELIVERED = -1;
export const DELIVERY_NPF = -2;

/** Vectors that push an error code. */
export function hasErrorCode(vector: number): boolean {
  return vector === 8 || (vector >= 10 && vector <= 14) || vector === 17 || vector === 21;
}

export function isContributory(vector: number): boolean {
  return vector === 0 || (vector >= 10 && vector <= 13);
}

export const VECTOR_NAMES = ['#DE', '#DB', 'NMI', '#BP', '#OF', '#BR', '#UD', '#NM', '#DF', 'CSO', '#TS', '#NP', '#SS', '#GP', '#PF', '15', '#MF', '#AC', '#MC', '#XM'];

export function vectorName(v: number): string {
  return v < VECTOR_NAMES.length ? VECTOR_NAMES[v] : `vector ${v}`;
}

/** Filled by tryDeliver when it returns a nested fault vector. */
export const nested = { error: 0, why: '' };

/**
 * Delivers `vector` through the IDT, returning to `retRip` with `error` pushed when >= 0.
 * Returns DELIVERED, DELIVERY_NPF (c.npf* fields set), or the vector of a nested fault
 * (error code and reason in `nested`).
 */
export function tryDeliver(c: CpuCore, vector: number, error: number, retRip: number, ext: number, forceRF: boolean): number {
  try {
    return deliver(c, vector, error, retRip, ext, forceRF);
  } catch (x) {
    if (x !== FAULT) throw x;
    // a fault met on the way: the IDT read or the frame pushes (#PF, NPF)
    if (c.faultKind === FaultKind.NPF) return DELIVERY_NPF;
    nested.error = c.faultError >= 0 ? c.faultError : 0;
    nested.why = c.faultVector === 14
      ? `#PF at 0x${u64Hex(c.cr2Lo, c.cr2Hi)} (error code 0x${nested.error.toString(16)}) during delivery of vector ${vector}`
      : `${vectorName(c.faultVector)} during delivery of vector ${vector}`;
    return c.faultVector;
  }
}

function u64Hex(lo: number, hi: number): string {
  return hi === 0 ? lo.toString(16) : hi.toString(16) + (lo >>> 0).toString(16).padStart(8, '0');
}

function deliver(c: CpuCore, vector: number, error: number, retRip: number, ext: number, forceRF: boolean): number {
  const off = vector * 16;
  const selErr = vector * 8 + 2 + ext; // IDT bit + EXT
  if (off + 15 > c.idtrLimit) {
    nested.error = selErr; nested.why = `IDT limit ${c.idtrLimit} does not cover vector ${vector}`;
    return 13;
  }
  const gLo = c.idtrBaseLo + off;
  const gAddr = gLo >>> 0;
  const gHi = (c.idtrBaseHi + (gLo > 0xffffffff ? 1 : 0)) >>> 0;
  // the gate: an implicit supervisor read through the MMU
  const w0 = c.sysRd32(gAddr, gHi), w1 = c.sysRd32((gAddr + 4) >>> 0, gHi), w2 = c.sysRd32((gAddr + 8) >>> 0, gHi);
  const type = (w1 >>> 8) & 0xf;
  if (type !== 0xe && type !== 0xf) {
    nested.error = selErr; nested.why = `IDT entry ${vector} is not a 64-bit interrupt/trap gate (type ${type})`;
    return 13;
  }
  if (!((w1 >>> 15) & 1)) {
    nested.error = selErr; nested.why = `IDT entry ${vector} not present`;
    return 11;
  }
  const sel = w0 >>> 16;
  const tLo = ((w0 & 0xffff) | (w1 & 0xffff0000)) >>> 0;
  const tHi = w2;
  const top = tHi >>> 15;
  if (top !== 0 && top !== 0x1ffff) {
    nested.error = 0; nested.why = `IDT entry ${vector} handler address is not canonical`;
    return 13;
  }
  // new stack: RSP aligned down to 16, then the frame
  const oldSpLo = c.rl[4], oldSpHi = c.rh[4];
  const frame = error >= 0 ? 48 : 40;
  let spLo = (oldSpLo & ~15) >>> 0;
  let spHi = oldSpHi;
  const s = spLo - frame;
  if (s < 0) spHi = (spHi - 1) >>> 0;
  spLo = s >>> 0;
  const t = spHi >>> 15;
  if (t !== 0 && t !== 0x1ffff) {
    nested.error = 0; nested.why = 'stack pointer not canonical during event delivery';
    return 12;
  }
  // The frame pushes are ordinary stack writes through the MMU (so they also match data
  // breakpoints); every byte is checked before the first is written.
  c.probeWrite(spLo, spHi, frame);
  const flags = (c.getFlags() | (forceRF ? RF : 0)) >>> 0;
  let pLo = spLo;
  const put = (vLo: number, vHi: number): void => {
    c.wr64(pLo, spHi, vLo, vHi);
    pLo += 8;
  };
  if (error >= 0) put(error >>> 0, 0);
  put(retRip >>> 0, Math.floor(retRip / 4294967296) >>> 0);
  put(c.sreg[1], 0);
  put(flags, 0);
  put(oldSpLo, oldSpHi);
  put(c.sreg[2], 0);
  c.rl[4] = spLo; c.rh[4] = spHi;
  c.sreg[1] = sel;
  let f = c.rflags & ~(TF | RF | NT | VM);
  if (type === 0xe) f &= ~IF;
  c.rflags = f;
  c.rip = tHi === 0 ? tLo : tHi * 4294967296 + tLo;
  c.attention = 1;
  return DELIVERED;
}
