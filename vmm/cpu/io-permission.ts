/**
 * I/O permission (SDM Vol. 1 19.5): IN, OUT, INS and OUTS are allowed when CPL <= IOPL;
 * otherwise every bit of the accessed ports in the TSS I/O permission bitmap must be 0, and
 * a bitmap (or a byte of it) beyond the TSS limit counts as set. Refused: #GP(0), before any
 * VM exit (SDM 25.1.1).
 */
import { CpuCore } from './core';
import { IOPL } from '../x86/rflags';
import { sysRd8, AR_UNUSABLE } from './segments';

export function checkIoPermission(c: CpuCore, port: number, size: number): void {
  if (c.cpl <= ((c.rflags & IOPL) >>> 12)) return;
  const type = c.trAttr & 0xf;
  if ((c.trAttr & AR_UNUSABLE) || (type !== 0xb && type !== 0x9) || c.trLimit < 0x67) c.gp0();
  const mb = c.trBaseLo + 0x66;
  const tHi = (c.trBaseHi + (mb > 0xffffffff ? 1 : 0)) >>> 0;
  const mapBase = sysRd8(c, mb >>> 0, tHi) | (sysRd8(c, (mb + 1) >>> 0, tHi) << 8);
  const off = mapBase + (port >>> 3);
  if (off + 1 > c.trLimit) c.gp0();
  const a = c.trBaseLo + off;
  const aHi = (c.trBaseHi + (a > 0xffffffff ? 1 : 0)) >>> 0;
  const bits = sysRd8(c, a >>> 0, aHi) | (sysRd8(c, (a + 1) >>> 0, aHi) << 8);
  if ((bits >>> (port & 7)) & ((1 << size) - 1)) c.gp0();
}
