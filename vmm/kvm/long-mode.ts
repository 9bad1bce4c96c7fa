/**
 * What the guest ABI's "64-bit mode at entry" needs on real hardware: a GDT, a TSS and
 * identity page tables, kept in a small memory slot of their own above guest RAM (the guest
 * never sees it in its RAM), and the segment / control registers for KVM_SET_SREGS.
 * CR0/CR4/EFER are those of our simulated CPU at entry (PG PE MP ET NE WP AM; PAE; LME LMA).
 */
import { Segment, SregSegment, controlOffset, segmentOffset, setNumber64, writeSegment, SREGS_GDT, SREGS_IDT } from './structs';

/** Guest-physical base of the boot area: above any guest RAM (< 2 GiB), below 4 GiB. */
export const BOOT_AREA_BASE = 0xfff00000;
export const BOOT_AREA_SIZE = 0x10000;

const GDT = 0x0000;
const PML4 = 0x1000;
const PDPT = 0x2000;
const PD = 0x3000; // four page directories (2 MiB pages) when 1 GiB pages are missing
const TSS = 0x8000;

export const SEL_CODE = 0x08;
export const SEL_DATA = 0x10;
export const SEL_TSS = 0x18;

export const CR0_AT_ENTRY = 0x80050033;
export const CR4_AT_ENTRY = 0x20;
export const EFER_AT_ENTRY = 0x500;

const PRESENT_RW = 0x3;
const PAGE_SIZE_BIT = 0x80;

/**
 * Fills the boot area (a fresh zeroed buffer of BOOT_AREA_SIZE). With 1 GiB pages the
 * identity map covers 512 GiB; without, the first 4 GiB in 2 MiB pages. Addresses outside
 * guest RAM inside the map reach KVM as MMIO (exit 131), as on our simulated VM.
 */
export function buildBootArea(area: DataView, gigabytePages: boolean): void {
  // GDT: null, 64-bit code, data, 64-bit TSS (16 bytes)
  setNumber64(area, GDT + 0x08, 0x00af9b000000ffff);
  setNumber64(area, GDT + 0x10, 0x00cf93000000ffff);
  const tss = BOOT_AREA_BASE + TSS;
  const lo = 0x67 | ((tss & 0xffff) << 16);
  area.setUint32(GDT + 0x18, lo >>> 0, true);
  area.setUint32(GDT + 0x1c, (((tss >>> 24) & 0xff) << 24 | 0x8b00 | ((tss >>> 16) & 0xff)) >>> 0, true);
  area.setUint32(GDT + 0x20, 0, true);
  area.setUint32(GDT + 0x24, 0, true);
  // TSS: I/O map base beyond the limit (no I/O bitmap)
  area.setUint16(TSS + 0x66, 0x68, true);

  setNumber64(area, PML4, BOOT_AREA_BASE + PDPT + PRESENT_RW);
  if (gigabytePages) {
    for (let i = 0; i < 512; i++) setNumber64(area, PDPT + 8 * i, i * 0x40000000 + PRESENT_RW + PAGE_SIZE_BIT);
    return;
  }
  for (let g = 0; g < 4; g++) {
    setNumber64(area, PDPT + 8 * g, BOOT_AREA_BASE + PD + g * 0x1000 + PRESENT_RW);
    for (let i = 0; i < 512; i++) {
      setNumber64(area, PD + g * 0x1000 + 8 * i, g * 0x40000000 + i * 0x200000 + PRESENT_RW + PAGE_SIZE_BIT);
    }
  }
}

const CODE: Segment = { base: 0, limit: 0xffffffff, selector: SEL_CODE, type: 11, present: 1, dpl: 0, db: 0, s: 1, l: 1, g: 1, unusable: 0 };
const DATA: Segment = { base: 0, limit: 0xffffffff, selector: SEL_DATA, type: 3, present: 1, dpl: 0, db: 1, s: 1, l: 0, g: 1, unusable: 0 };

/** Rewrites the segment, descriptor-table and control registers of a KVM_GET_SREGS buffer. */
export function setLongModeSregs(sregs: DataView): void {
  const seg = (name: SregSegment, s: Segment): void => writeSegment(sregs, segmentOffset(name), s);
  seg('cs', CODE);
  for (const n of ['ds', 'es', 'ss'] as const) seg(n, DATA);
  // our CPU starts with FS = GS = 0 (null selectors, base 0)
  for (const n of ['fs', 'gs'] as const) seg(n, { ...DATA, selector: 0 });
  seg('tr', { base: BOOT_AREA_BASE + TSS, limit: 0x67, selector: SEL_TSS, type: 11, present: 1, dpl: 0, db: 0, s: 0, l: 0, g: 0, unusable: 0 });
  seg('ldt', { base: 0, limit: 0, selector: 0, type: 2, present: 0, dpl: 0, db: 0, s: 0, l: 0, g: 0, unusable: 1 });
  setNumber64(sregs, SREGS_GDT, BOOT_AREA_BASE + GDT);
  sregs.setUint16(SREGS_GDT + 8, 0x27, true);
  // No IDT until the guest loads its own: an exception then ends in a triple fault (130).
  setNumber64(sregs, SREGS_IDT, 0);
  sregs.setUint16(SREGS_IDT + 8, 0, true);
  setNumber64(sregs, controlOffset('cr0'), CR0_AT_ENTRY);
  setNumber64(sregs, controlOffset('cr3'), BOOT_AREA_BASE + PML4);
  setNumber64(sregs, controlOffset('cr4'), CR4_AT_ENTRY);
  setNumber64(sregs, controlOffset('efer'), EFER_AT_ENTRY);
}
