/**
 * Event delivery through the 64-bit IDT (SDM 6.14): interrupt and trap gates, the
 * architectural frame (SS, RSP, RFLAGS, CS, RIP, error code) on a 16-byte aligned stack,
 * TF/RF/NT/VM cleared on entry and IF cleared by interrupt gates. Faults met while
 * delivering an event are combined by the double-fault rules of SDM Table 6-5; a fault while
 * delivering #DF is a triple fault.
 *
 * The gate's code segment is checked (SDM 6.12.1.1); a handler at a more privileged level
 * runs on the stack TSS.RSPn names and a gate with IST != 0 on TSS.IST[n], at any level
 * (SDM 6.14.4, 6.14.5); SS becomes a null selector with RPL = the new CPL. INT n, INT3 and
 * INTO check the gate's DPL against CPL (#GP(vector*8+2)).
 *
 * Outside IA-32e mode the 8-byte gates of protected mode are used (events-legacy.ts).
 * Not modelled: task gates, real-address mode.
 */
import { CpuCore, FAULT, FaultKind } from './core';
import { TF, RF, NT, VM, IF } from '../x86/rflags';
import { DeliveryFault } from './delivery-fault';
import { deliverLegacy } from './events-legacy';
import { CS, SS, desc, readDescriptor, sysRd32, arOf, dplOf, loadNull, loadCs, AR_S, AR_P, AR_L, AR_DB, AR_UNUSABLE, TYPE_CODE, TYPE_CONFORMING } from './segments';
import { EFER_LMA } from '../x86/msr';

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
 * `soft`: INT n / INT3 / INTO (the gate DPL is checked). Returns DELIVERED, DELIVERY_NPF
 * (c.npf* fields set), or the vector of a nested fault (error code and reason in `nested`).
 */
export function tryDeliver(c: CpuCore, vector: number, error: number, retRip: number, ext: number, forceRF: boolean, soft = false): number {
  try {
    return deliver(c, vector, error, retRip, ext, forceRF, soft);
  } catch (x) {
    if (x instanceof DeliveryFault) {
      nested.error = x.error; nested.why = x.why;
      return x.vector;
    }
    if (x !== FAULT) throw x;
    if (c.faultKind === FaultKind.NPF) return DELIVERY_NPF;
    // a fault reading a descriptor or the TSS (selector faults carry EXT), or pushing the frame
    const v = c.faultVector;
    nested.error = c.faultError < 0 ? 0 : v >= 10 && v <= 13 ? c.faultError | ext : c.faultError;
    nested.why = v === 14
      ? `#PF at 0x${u64Hex(c.cr2Lo, c.cr2Hi)} (error code 0x${nested.error.toString(16)}) during delivery of vector ${vector}`
      : `${vectorName(v)} during delivery of vector ${vector}`;
    return v;
  }
}

function u64Hex(lo: number, hi: number): string {
  return hi === 0 ? lo.toString(16) : hi.toString(16) + (lo >>> 0).toString(16).padStart(8, '0');
}

function deliver(c: CpuCore, vector: number, error: number, retRip: number, ext: number, forceRF: boolean, soft: boolean): number {
  if (!(c.efer & EFER_LMA)) { deliverLegacy(c, vector, error, retRip, ext, forceRF, soft); return DELIVERED; }
  const off = vector * 16;
  const selErr = vector * 8 + 2 + ext; // IDT bit + EXT
  if (off + 15 > c.idtrLimit) throw new DeliveryFault(13, selErr, `IDT limit ${c.idtrLimit} does not cover vector ${vector}`);
  const gLo = c.idtrBaseLo + off;
  const gAddr = gLo >>> 0;
  const gHi = (c.idtrBaseHi + (gLo > 0xffffffff ? 1 : 0)) >>> 0;
  const w0 = sysRd32(c, gAddr, gHi), w1 = sysRd32(c, gAddr + 4, gHi), w2 = sysRd32(c, gAddr + 8, gHi);
  const type = (w1 >>> 8) & 0xf;
  if (type !== 0xe && type !== 0xf) throw new DeliveryFault(13, selErr, `IDT entry ${vector} is not a 64-bit interrupt/trap gate (type ${type})`);
  if (soft && ((w1 >>> 13) & 3) < c.cpl) throw new DeliveryFault(13, vector * 8 + 2, `IDT entry ${vector} DPL ${(w1 >>> 13) & 3} < CPL ${c.cpl} for a software interrupt`);
  if (!((w1 >>> 15) & 1)) throw new DeliveryFault(11, selErr, `IDT entry ${vector} not present`);
  const sel = w0 >>> 16;
  const ist = w1 & 7;
  const tLo = ((w0 & 0xffff) | (w1 & 0xffff0000)) >>> 0;
  const tHi = w2;
  // the handler's code segment (SDM 6.12.1.1)
  if ((sel & 0xfffc) === 0) throw new DeliveryFault(13, ext, `IDT entry ${vector} has a null code selector`);
  if (!readDescriptor(c, sel)) throw new DeliveryFault(13, (sel & 0xfffc) | ext, `IDT entry ${vector}: selector 0x${sel.toString(16)} beyond the descriptor table`);
  const ar = arOf(desc.w1);
  if (!(ar & AR_S) || !(ar & TYPE_CODE) || !(ar & AR_L) || (ar & AR_DB)) {
    throw new DeliveryFault(13, (sel & 0xfffc) | ext, `IDT entry ${vector}: selector 0x${sel.toString(16)} is not a 64-bit code segment`);
  }
  const dpl = dplOf(ar);
  if (dpl > c.cpl) throw new DeliveryFault(13, (sel & 0xfffc) | ext, `IDT entry ${vector}: code segment DPL ${dpl} > CPL ${c.cpl}`);
  if (!(ar & AR_P)) throw new DeliveryFault(11, (sel & 0xfffc) | ext, `IDT entry ${vector}: code segment not present`);
  const csW0 = desc.w0, csW1 = desc.w1;
  const newCpl = ar & TYPE_CONFORMING ? c.cpl : dpl;
  const top = tHi >>> 15;
  if (top !== 0 && top !== 0x1ffff) throw new DeliveryFault(13, 0, `IDT entry ${vector} handler address is not canonical`);
  // the stack: TSS.IST[ist] or, on a privilege change, TSS.RSP[newCpl] (SDM 6.14.4, 6.14.5)
  const oldSpLo = c.rl[4], oldSpHi = c.rh[4];
  let baseLo = oldSpLo, baseHi = oldSpHi;
  if (ist !== 0 || newCpl < c.cpl) {
    const tssOff = ist !== 0 ? 0x24 + (ist - 1) * 8 : 4 + newCpl * 8;
    if ((c.trAttr & AR_UNUSABLE) || tssOff + 7 > c.trLimit) {
      throw new DeliveryFault(10, (c.trSel & 0xfffc) | ext, `no TSS ${ist !== 0 ? `IST${ist}` : `RSP${newCpl}`} for vector ${vector}`);
    }
    const a = c.trBaseLo + tssOff;
    const aHi = (c.trBaseHi + (a > 0xffffffff ? 1 : 0)) >>> 0;
    baseLo = sysRd32(c, a >>> 0, aHi);
    baseHi = sysRd32(c, (a + 4) >>> 0, aHi);
  }
  // new stack: aligned down to 16, then the frame
  const frame = error >= 0 ? 48 : 40;
  let spLo = (baseLo & ~15) >>> 0;
  let spHi = baseHi;
  const s = spLo - frame;
  if (s < 0) spHi = (spHi - 1) >>> 0;
  spLo = s >>> 0;
  const t = spHi >>> 15;
  if (t !== 0 && t !== 0x1ffff) throw new DeliveryFault(12, newCpl !== c.cpl ? ext : 0, 'stack pointer not canonical during event delivery');
  // The frame pushes are ordinary stack writes at the new CPL through the MMU (so they also
  // match data breakpoints); every byte is checked before the first is written.
  const flags = (c.getFlags() | (forceRF ? RF : 0)) >>> 0;
  const oldCpl = c.cpl;
  c.cpl = newCpl;
  try {
    c.probeWrite(spLo, spHi, frame);
    let pLo = spLo;
    if (error >= 0) { c.wr64(pLo, spHi, error >>> 0, 0); pLo += 8; }
    c.wr64(pLo, spHi, retRip >>> 0, Math.floor(retRip / 4294967296) >>> 0);
    c.wr64(pLo + 8, spHi, c.sreg[CS], 0);
    c.wr64(pLo + 16, spHi, flags, 0);
    c.wr64(pLo + 24, spHi, oldSpLo, oldSpHi);
    c.wr64(pLo + 32, spHi, c.sreg[SS], 0);
  } catch (x) {
    c.cpl = oldCpl;
    throw x;
  }
  c.cpl = oldCpl;
  c.rl[4] = spLo; c.rh[4] = spHi;
  if (newCpl !== c.cpl) loadNull(c, SS, newCpl);
  desc.w0 = csW0; desc.w1 = csW1;
  loadCs(c, sel, newCpl);
  let f = c.rflags & ~(TF | RF | NT | VM);
  if (type === 0xe) f &= ~IF;
  c.rflags = f;
  c.syncAlignCheck();
  c.rip = tHi === 0 ? tLo : (tHi | 0) * 4294967296 + tLo; // signed: exact in the upper half
  c.attention = 1;
  return DELIVERED;
}
