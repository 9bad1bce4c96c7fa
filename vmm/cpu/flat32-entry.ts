/**
 * The CPU state a Multiboot/PVH kernel starts in, and an application processor after its
 * SIPI trampoline's far jump (vmm/loader/boot-plan.ts, Flat32Entry): 32-bit protected mode,
 * paging off (CR0 = PE|ET, CR4 = 0, EFER = 0), CPL 0, CS and the data segments loaded from
 * the GDT the entry names (a data selector of 0 leaves DS..SS null), RFLAGS = 2.
 * Cpu.startFlat32 runs it (create-vm and the SIPI path check for that method).
 */
import { Flat32Entry } from '../loader/boot-plan';
import { CpuCore } from './core';
import { CS, DS, ES, FS, GS, SS, loadCache, loadNull, readDescriptor, setCpl, updateCodeMode } from './segments';

export function enterFlat32(c: CpuCore, e: Flat32Entry): void {
  c.cr0 = 0x11;
  c.cr4 = 0;
  c.efer = 0;
  c.cr3Lo = 0; c.cr3Hi = 0;
  c.pagingChanged();
  c.cr3Loaded();
  c.gdtrBaseLo = e.gdtBase >>> 0; c.gdtrBaseHi = 0; c.gdtrLimit = e.gdtLimit & 0xffff;
  if (!readDescriptor(c, e.cs)) throw new RangeError(`entry CS 0x${e.cs.toString(16)} is outside the GDT (limit 0x${e.gdtLimit.toString(16)})`);
  loadCache(c, CS, e.cs & 0xfffc);
  setCpl(c, 0);
  for (const r of [DS, ES, FS, GS, SS]) {
    if (e.ds === 0) { loadNull(c, r, 0); continue; }
    if (!readDescriptor(c, e.ds)) throw new RangeError(`entry DS 0x${e.ds.toString(16)} is outside the GDT`);
    loadCache(c, r, e.ds & 0xfffc);
  }
  updateCodeMode(c);
  c.rl.fill(0); c.rh.fill(0);
  c.rl[0] = e.eax >>> 0; c.rl[3] = e.ebx >>> 0; c.rl[6] = e.esi >>> 0;
  c.rip = e.eip >>> 0;
  c.rflags = 2;
  c.attention = 1;
}
