/**
 * Event delivery in protected mode outside IA-32e mode (SDM 6.12.1): the 8-byte IDT gates
 * (32-bit interrupt gate, type 0xE; 32-bit trap gate, type 0xF). A handler at a more
 * privileged level runs on the stack the 32-bit TSS names (SSn:ESPn at 8n+8 and 8n+4), with
 * the old SS and ESP pushed; then EFLAGS, CS, EIP and the error code, 4 bytes each, at
 * SS:ESP. TF/RF/NT/VM are cleared, IF too for an interrupt gate.
 *
 * Not modelled: task gates and 16-bit gates (#GP with the IDT selector error code), the
 * virtual-8086 frame.
 */
import { CpuCore } from './core';
import { TF, RF, NT, VM, IF } from '../x86/rflags';
import { DeliveryFault } from './delivery-fault';
import { CS, SS, desc, readDescriptor, sysRd32, arOf, dplOf, loadCs, loadCache, AR_S, AR_P, AR_UNUSABLE, TYPE_CODE, TYPE_CONFORMING, TYPE_WRITABLE } from './segments';

/** Delivers `vector` (see events.ts tryDeliver), or throws a DeliveryFault or the core's FAULT. */
export function deliverLegacy(c: CpuCore, vector: number, error: number, retRip: number, ext: number, forceRF: boolean, soft: boolean): void {
  const off = vector * 8;
  const selErr = vector * 8 + 2 + ext;
  if (off + 7 > c.idtrLimit) throw new DeliveryFault(13, selErr, `IDT limit ${c.idtrLimit} does not cover vector ${vector}`);
  const g = (c.idtrBaseLo + off) >>> 0;
  const w0 = sysRd32(c, g, 0), w1 = sysRd32(c, (g + 4) >>> 0, 0);
  const type = (w1 >>> 8) & 0xf;
  if (type !== 0xe && type !== 0xf) throw new DeliveryFault(13, selErr, `IDT entry ${vector} is not a 32-bit interrupt/trap gate (type ${type}; task and 16-bit gates are not modelled)`);
  if (soft && ((w1 >>> 13) & 3) < c.cpl) throw new DeliveryFault(13, vector * 8 + 2, `IDT entry ${vector} DPL ${(w1 >>> 13) & 3} < CPL ${c.cpl} for a software interrupt`);
  if (!((w1 >>> 15) & 1)) throw new DeliveryFault(11, selErr, `IDT entry ${vector} not present`);
  const sel = w0 >>> 16;
  const target = ((w0 & 0xffff) | (w1 & 0xffff0000)) >>> 0;
  if ((sel & 0xfffc) === 0) throw new DeliveryFault(13, ext, `IDT entry ${vector} has a null code selector`);
  if (!readDescriptor(c, sel)) throw new DeliveryFault(13, (sel & 0xfffc) | ext, `IDT entry ${vector}: selector 0x${sel.toString(16)} beyond the descriptor table`);
  const ar = arOf(desc.w1);
  if (!(ar & AR_S) || !(ar & TYPE_CODE)) throw new DeliveryFault(13, (sel & 0xfffc) | ext, `IDT entry ${vector}: selector 0x${sel.toString(16)} is not a code segment`);
  const dpl = dplOf(ar);
  if (dpl > c.cpl) throw new DeliveryFault(13, (sel & 0xfffc) | ext, `IDT entry ${vector}: code segment DPL ${dpl} > CPL ${c.cpl}`);
  if (!(ar & AR_P)) throw new DeliveryFault(11, (sel & 0xfffc) | ext, `IDT entry ${vector}: code segment not present`);
  const csW0 = desc.w0, csW1 = desc.w1;
  const newCpl = ar & TYPE_CONFORMING ? c.cpl : dpl;
  const inner = newCpl < c.cpl;
  // the stack: SSn:ESPn from the 32-bit TSS on a privilege change
  let ssSel = c.sreg[SS], esp = c.rl[4], ssBase = c.segBase[SS], ssW0 = 0, ssW1 = 0;
  if (inner) {
    const tssOff = 4 + newCpl * 8;
    if ((c.trAttr & AR_UNUSABLE) || tssOff + 5 > c.trLimit) throw new DeliveryFault(10, (c.trSel & 0xfffc) | ext, `no TSS SS${newCpl}:ESP${newCpl} for vector ${vector}`);
    const t = (c.trBaseLo + tssOff) >>> 0;
    esp = sysRd32(c, t, 0);
    ssSel = sysRd32(c, (t + 4) >>> 0, 0) & 0xffff;
    if ((ssSel & 0xfffc) === 0 || !readDescriptor(c, ssSel)) throw new DeliveryFault(10, (ssSel & 0xfffc) | ext, `TSS SS${newCpl} 0x${ssSel.toString(16)} is null or beyond the GDT`);
    const sar = arOf(desc.w1);
    if ((ssSel & 3) !== newCpl || dplOf(sar) !== newCpl || !(sar & AR_S) || (sar & TYPE_CODE) || !(sar & TYPE_WRITABLE)) {
      throw new DeliveryFault(10, (ssSel & 0xfffc) | ext, `TSS SS${newCpl} 0x${ssSel.toString(16)} is not a writable data segment at DPL ${newCpl}`);
    }
    if (!(sar & AR_P)) throw new DeliveryFault(12, (ssSel & 0xfffc) | ext, `TSS SS${newCpl} not present`);
    ssW0 = desc.w0; ssW1 = desc.w1;
    ssBase = ((ssW0 >>> 16) | ((ssW1 & 0xff) << 16) | (ssW1 & 0xff000000)) >>> 0;
  }
  const words: number[] = [];
  if (inner) words.push(c.sreg[SS], c.rl[4]);
  words.push((c.getFlags() | (forceRF ? RF : 0)) >>> 0, c.sreg[CS], retRip >>> 0);
  if (error >= 0) words.push(error >>> 0);
  const newEsp = (esp - 4 * words.length) >>> 0;
  const base = (ssBase + newEsp) >>> 0;
  const oldCpl = c.cpl;
  c.cpl = newCpl; // the pushes are stack writes at the new CPL (U/S, data breakpoints)
  try {
    c.probeWrite(base, 0, 4 * words.length);
    for (let k = 0; k < words.length; k++) c.writeMem(4, (base + 4 * (words.length - 1 - k)) >>> 0, 0, words[k], 0);
  } catch (x) {
    c.cpl = oldCpl;
    throw x;
  }
  c.cpl = oldCpl;
  if (inner) { desc.w0 = ssW0; desc.w1 = ssW1; loadCache(c, SS, ssSel); }
  c.rl[4] = newEsp; c.rh[4] = 0;
  desc.w0 = csW0; desc.w1 = csW1;
  loadCs(c, sel, newCpl);
  let f = c.rflags & ~(TF | RF | NT | VM);
  if (type === 0xe) f &= ~IF;
  c.rflags = f;
  c.syncAlignCheck();
  c.rip = target;
  c.attention = 1;
}
