import { expect } from 'chai';
import { BreakpointSummary } from '../../vmm/cpu/debug-match';
import { dr7EncodeSlot, dr7LocalEnable, normalizeDr7 } from '../../vmm/x86/debug-regs';

/** DR0-3 and DR7 (index = DR number), as BreakpointSummary.load takes them. */
function regs(dr: number[], dr7: number): { lo: number[]; hi: number[] } {
  return { lo: [dr[0], dr[1], dr[2], dr[3], 0, 0, 0, normalizeDr7(dr7)], hi: [0, 0, 0, 0, 0, 0, 0, 0] };
}

describe('BreakpointSummary.dataLayout (what the TLB\'s data-breakpoint flags depend on)', () => {
  it('changes only when the ranges of the enabled data breakpoints change', () => {
    const s = new BreakpointSummary();
    const load = (r: { lo: number[]; hi: number[] }): number => { s.load(r.lo, r.hi, false); return s.dataLayout; };
    const watch0 = dr7LocalEnable(0) | dr7EncodeSlot(0, 'write', 4);
    const none = load(regs([0, 0, 0, 0], 0));
    expect(load(regs([0x1000, 0, 0, 0], 0))).to.equal(none); // nothing enabled: addresses do not matter
    const on = load(regs([0x1000, 0, 0, 0], watch0));
    expect(on).to.not.equal(none);
    expect(load(regs([0x1000, 0x2000, 0, 0], watch0 | dr7EncodeSlot(1, 'write', 8)))).to.equal(on); // slot 1 disabled
    expect(load(regs([0x1000, 0x5000, 0, 0], watch0 | dr7LocalEnable(1)))).to.equal(on); // slot 1 exec: not data
    const moved = load(regs([0x3000, 0, 0, 0], watch0));
    expect(moved).to.not.equal(on);
    const longer = load(regs([0x3000, 0, 0, 0], dr7LocalEnable(0) | dr7EncodeSlot(0, 'write', 8)));
    expect(longer).to.not.equal(moved);
    expect(load(regs([0x3000, 0, 0, 0], 0))).to.not.equal(longer);
  });
});
