import { expect } from 'chai';
import { Cpu } from '../../vmm/cpu/cpu';
import { PhysicalCpu } from '../../vmm/cpu/physical-cpu';
import { GuestMemory } from '../../vmm/memory';
import { u64FromNumber, u64ToNumber } from '../../vmm/u64';
import { MSR_TSC } from '../../vmm/x86/msr';

describe('cpu: advanceTsc is writeMsr(TSC, readMsr(TSC) + ticks)', () => {
  it('gives the same TSC offset for ordinary, large, wrapping and negative-offset values', () => {
    const mem = new GuestMemory(1 << 16);
    const tscs = [0, 1, 12345, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1001, 2 ** 53 - 1000, 2 ** 53 - 999, 2 ** 53, 2 ** 60 + 2 ** 20, 2 ** 64 - 1000, 2 ** 64 - 999];
    for (const instret of [0, 7, 1_000_000]) {
      for (const tsc of tscs) {
        for (const ticks of [0, 1, 1000]) {
          const a = new Cpu(mem, new PhysicalCpu());
          const b = new Cpu(mem, new PhysicalCpu());
          for (const c of [a, b]) { c.instret = instret; c.writeMsr(MSR_TSC, u64FromNumber(tsc)); }
          const now = u64ToNumber(a.readMsr(MSR_TSC) ?? { lo: 0, hi: 0 });
          a.writeMsr(MSR_TSC, u64FromNumber(now + ticks));
          b.advanceTsc(ticks);
          expect(b.tscOffset, `instret ${instret} tsc ${tsc} ticks ${ticks}`).to.equal(a.tscOffset);
          expect(b.readMsr(MSR_TSC)).to.deep.equal(a.readMsr(MSR_TSC));
        }
      }
    }
    // an offset that puts the TSC below zero (the guest wrote less than instret): the slow path
    const a = new Cpu(mem, new PhysicalCpu());
    const b = new Cpu(mem, new PhysicalCpu());
    for (const c of [a, b]) { c.instret = 5000; c.tscOffset = -6000; }
    const now = u64ToNumber(a.readMsr(MSR_TSC) ?? { lo: 0, hi: 0 });
    a.writeMsr(MSR_TSC, u64FromNumber(now + 1000));
    b.advanceTsc(1000);
    expect(b.tscOffset).to.equal(a.tscOffset);
  });
});
