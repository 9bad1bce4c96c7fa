/**
 * The machine state a Multiboot (or PVH) loader hands over (Multiboot spec 3.2): 32-bit
 * protected mode, paging off, CS a flat 32-bit read/execute code segment, DS/ES/SS/FS/GS
 * flat 32-bit read/write data segments (base 0, limit 4 GiB), CR4 = EFER = 0, CPL 0. The
 * selectors are the given ones; the GDTR is left as it is (the kernel must load its own).
 */
import { CpuCore } from './core';
import { CS, updateCodeMode, setCpl } from './segments';

const FLAT_CODE32 = 0xc09b; // G D P S type 0xb (execute/read, accessed)
const FLAT_DATA32 = 0xc093; // G B P S type 3 (read/write, accessed)

export function enterFlatProtectedMode(c: CpuCore, codeSel = 0x08, dataSel = 0x10): void {
  for (let r = 0; r < 6; r++) {
    c.sreg[r] = r === CS ? codeSel : dataSel;
    c.segAttr[r] = r === CS ? FLAT_CODE32 : FLAT_DATA32;
    c.segLimit[r] = 0xffffffff;
    c.segBase[r] = 0;
  }
  c.fsBaseLo = 0; c.fsBaseHi = 0; c.gsBaseLo = 0; c.gsBaseHi = 0;
  c.cr0 = 0x11; // PE | ET
  c.cr4 = 0;
  c.efer = 0;
  setCpl(c, 0);
  c.pagingChanged();
  c.refreshBreakpoints();
  updateCodeMode(c);
}
