import { expect } from 'chai';
import { Cpu } from '../../vmm/cpu/cpu';
import { enterFlat32 } from '../../vmm/cpu/flat32-entry';
import { PhysicalCpu } from '../../vmm/cpu/physical-cpu';
import { AR_DB, AR_L, AR_UNUSABLE, CS, DS, SS } from '../../vmm/cpu/segments';
import { bootGdt } from '../../vmm/loader/pc-layout';
import { GuestMemory } from '../../vmm/memory';

describe('platform: the Multiboot/PVH entry state (enterFlat32)', () => {
  function cpuWithBootGdt(): Cpu {
    const mem = new GuestMemory(4 << 20);
    const g = bootGdt();
    mem.write(g.blob.address, g.blob.data);
    return new Cpu(mem, new PhysicalCpu(0));
  }

  it('32-bit protected mode, paging off, flat CS 0x10 / data 0x18 from the boot GDT, EAX/EBX', () => {
    const c = cpuWithBootGdt();
    enterFlat32(c, { eip: 0x4000bc, eax: 0x2badb002, ebx: 0x9000, esi: 0, cs: 0x10, ds: 0x18, gdtBase: 0x7000, gdtLimit: 31 });
    expect(c.getReg('cr0').lo).to.equal(0x11);
    expect(c.getReg('cr4').lo).to.equal(0);
    expect(c.efer).to.equal(0);
    expect(c.codeMode).to.equal(1);                       // 32-bit code
    expect(c.segAttr[CS] & (AR_DB | AR_L)).to.equal(AR_DB);
    expect(c.segLimit[CS]).to.equal(0xffffffff);
    expect(c.sreg[DS]).to.equal(0x18);
    expect(c.sreg[SS]).to.equal(0x18);
    expect(c.getReg('rip').lo).to.equal(0x4000bc);
    expect(c.getGpr(0).lo).to.equal(0x2badb002);
    expect(c.getGpr(3).lo).to.equal(0x9000);
    expect(c.getReg('rflags').lo).to.equal(2);
    expect(c.cpl).to.equal(0);
  });

  it('an AP after its trampoline: data selectors null; a CS outside the GDT is refused', () => {
    const c = cpuWithBootGdt();
    enterFlat32(c, { eip: 0x1000, eax: 0, ebx: 0, esi: 0, cs: 0x10, ds: 0, gdtBase: 0x7000, gdtLimit: 31 });
    expect(c.segAttr[DS] & AR_UNUSABLE).to.equal(AR_UNUSABLE);
    expect(() => enterFlat32(c, { eip: 0, eax: 0, ebx: 0, esi: 0, cs: 0x28, ds: 0, gdtBase: 0x7000, gdtLimit: 31 })).to.throw(RangeError, /outside the GDT/);
  });
});
