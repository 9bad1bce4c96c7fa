// A CPL-3 test environment for the kernels of kernel.ts: a GDT with user segments and a TSS
// (RSP0, IST1, I/O bitmap), and the IRETQ sequence that enters CPL 3.
import { Kernel } from './kernel';
import { u64 } from '../../vmm/u64';

export const GDT = 0x80000;
export const TSS = 0x81000;
export const RSP0 = 0x90000;
export const IST1 = 0x98000;
export const USTACK = 0xa0000;
// null, 0x08 kernel code64, 0x10 kernel data, 0x18 user code32, 0x20 user data, 0x28 user
// code64, 0x30 TSS (16 bytes), 0x40 not-present data, 0x48 read-only data, 0x50 DPL3 code64
export const GDT_ENTRIES: [number, number][] = [
  [0, 0], [0x0000ffff, 0x00af9b00], [0x0000ffff, 0x00cf9300], [0x0000ffff, 0x00cffb00],
  [0x0000ffff, 0x00cff300], [0x0000ffff, 0x00affb00], [0, 0], [0, 0],
  [0x0000ffff, 0x00cf1300], [0x0000ffff, 0x00cf9100], [0x0000ffff, 0x00affb00],
];
export const KCODE = 0x08, UCODE32 = 0x1b, UDATA = 0x23, UCODE = 0x2b, TSS_SEL = 0x30;

/** A GDT with user segments and a TSS (RSP0, IST1, I/O bitmap allowing only port 0x80). */
export function setup(k: Kernel, opts: { ioBitmap?: boolean } = {}): void {
  const dv = k.cpu.mem.view;
  GDT_ENTRIES.forEach(([lo, hi], n) => { dv.setUint32(GDT + n * 8, lo, true); dv.setUint32(GDT + n * 8 + 4, hi, true); });
  const limit = opts.ioBitmap === false ? 0x67 : 0x68 + 8192;
  dv.setUint32(GDT + 0x30, ((TSS & 0xffff) << 16) | (limit & 0xffff), true);
  dv.setUint32(GDT + 0x34, (TSS & 0xff000000) | (limit & 0xf0000) | 0x8900 | ((TSS >>> 16) & 0xff), true);
  dv.setUint32(GDT + 0x38, 0, true);
  dv.setUint32(TSS + 4, RSP0, true); // RSP0
  dv.setUint32(TSS + 0x24, IST1, true); // IST1
  dv.setUint16(TSS + 0x66, 0x68, true); // I/O map base
  for (let b = 0; b < 8192; b++) k.cpu.mem.bytes[TSS + 0x68 + b] = 0xff;
  k.cpu.mem.bytes[TSS + 0x68 + (0x80 >>> 3)] = 0xfe; // port 0x80 allowed
  k.cpu.setReg('gdtr_base', u64(GDT));
  k.cpu.setReg('gdtr_limit', u64(GDT_ENTRIES.length * 8 - 1));
}

/** The body prefix: LTR, then IRETQ to `label` at CPL 3 with RFLAGS = `flags`. */
export function toUser(label: string, flags = 2): string {
  return `movw $${TSS_SEL}, %ax\n ltr %ax
  pushq $${UDATA}\n pushq $${USTACK}\n pushq $${flags}\n pushq $${UCODE}\n leaq ${label}(%rip), %rax\n pushq %rax\n iretq\n`;
}

/** The frame of the event whose handler stopped in HLT (the kernel's common handler). */
export function frame(k: Kernel): { vector: number; error: number; rip: number; cs: number; rflags: number; rsp: number; ss: number } {
  const sp = k.cpu.getGpr(4).lo;
  const q = (o: number) => k.cpu.mem.view.getUint32(sp + o, true);
  return { vector: q(16), error: q(24), rip: q(32), cs: q(40), rflags: q(48), rsp: q(56), ss: q(64) };
}

export function cs(k: Kernel): number { return k.cpu.getReg('cs').lo; }
