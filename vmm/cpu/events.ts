/**
 * Event delivery through the 64-bit IDT (SDM 6.14): interrupt and trap gates, the
 * architectural frame (SS, RSP, RFLAGS, CS, RIP, error code) on a 16-byte aligned stack,
 * TF/RF/NT/VM cleared on entry and IF cleared by interrupt gates. Faults met while
 * delivering an event are combined by the double-fault rules of SDM Table 6-5; a fault while
 * delivering #DF is a triple fault.
 *
 * Not modelled: IST stack switching (there is no TSS), privilege-level changes (CPL is 0).
 * The frame pushes are not checked against data breakpoints.
 */
import { CpuCore } from './core';
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
  const off = vector * 16;
  const selErr = vector * 8 + 2 + ext; // IDT bit + EXT
  if (off + 15 > c.idtrLimit) {
    nested.error = selErr; nested.why = `IDT limit ${c.idtrLimit} does not cover vector ${vector}`;
    return 13;
  }
  const gLo = c.idtrBaseLo + off;
  const gAddr = gLo >>> 0;
  const gHi = (c.idtrBaseHi + (gLo > 0xffffffff ? 1 : 0)) >>> 0;
  if (gHi !== 0 || gAddr + 16 > c.memSize) {
    c.npfAddr = gHi * 4294967296 + gAddr; c.npfWrite = false; c.npfFetch = false;
    return DELIVERY_NPF;
  }
  const dv = c.dv;
  const w0 = dv.getUint32(gAddr, true), w1 = dv.getUint32(gAddr + 4, true), w2 = dv.getUint32(gAddr + 8, true);
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
  if (spHi !== 0 || spLo + frame > c.memSize) {
    const t = spHi >>> 15;
    if (t !== 0 && t !== 0x1ffff) {
      nested.error = 0; nested.why = 'stack pointer not canonical during event delivery';
      return 12;
    }
    c.npfAddr = spHi * 4294967296 + spLo; c.npfWrite = true; c.npfFetch = false;
    return DELIVERY_NPF;
  }
  const flags = (c.getFlags() | (forceRF ? RF : 0)) >>> 0;
  let p = spLo;
  if (error >= 0) { dv.setUint32(p, error >>> 0, true); dv.setUint32(p + 4, 0, true); p += 8; }
  dv.setUint32(p, retRip >>> 0, true); dv.setUint32(p + 4, Math.floor(retRip / 4294967296) >>> 0, true);
  dv.setUint32(p + 8, c.sreg[1], true); dv.setUint32(p + 12, 0, true);
  dv.setUint32(p + 16, flags, true); dv.setUint32(p + 20, 0, true);
  dv.setUint32(p + 24, oldSpLo, true); dv.setUint32(p + 28, oldSpHi, true);
  dv.setUint32(p + 32, c.sreg[2], true); dv.setUint32(p + 36, 0, true);
  const cp = c.codePages;
  if ((cp[spLo >>> 12] | cp[(spLo + frame - 1) >>> 12]) !== 0) c.invalidateCode();
  c.rl[4] = spLo; c.rh[4] = spHi;
  c.sreg[1] = sel;
  let f = c.rflags & ~(TF | RF | NT | VM);
  if (type === 0xe) f &= ~IF;
  c.rflags = f;
  c.rip = tHi === 0 ? tLo : tHi * 4294967296 + tLo;
  c.attention = 1;
  return DELIVERED;
}
