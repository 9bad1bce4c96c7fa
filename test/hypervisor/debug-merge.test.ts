import { expect } from 'chai';
import { DebuggerSlot } from '../../vmm/api/vm-api';
import { mergeDebugState, splitBreakpointStatus } from '../../vmm/hypervisor/debug-merge';

const lo = (a: number[]): number[] => [...a, 0, 0, 0, 0].slice(0, 8);
const zero = [0, 0, 0, 0, 0, 0, 0, 0];
const w8 = (addr: number): DebuggerSlot => ({ address: { lo: addr, hi: 0 }, type: 'write', len: 8 });

describe('merging the guest view with the debugger slots (effective state)', () => {
  it('with no debugger slot the effective state is the guest view', () => {
    const dr7 = 0x400 | 0x5 | (0x9 << 16) | (0xd << 20);
    const m = mergeDebugState(lo([0x10, 0x20, 0x30, 0x40]), zero, dr7, [null, null, null, null], null);
    expect(m.drLo).to.deep.equal([0x10, 0x20, 0x30, 0x40]);
    expect(m.dr7).to.equal(dr7);
    expect(m.suspended).to.deep.equal([]);
  });

  it('the debugger takes the slots the guest leaves disabled first', () => {
    const m = mergeDebugState(lo([0x10, 0x20]), zero, 0x400 | 0x1 | (0x9 << 16), [w8(0x5000)], null);
    expect(m.owners[0]).to.deep.equal({ owner: 'guest', slot: 0 });
    expect(m.owners[1]).to.deep.equal({ owner: 'debugger', slot: 0 });
    expect(m.drLo.slice(0, 2)).to.deep.equal([0x10, 0x5000]);
    expect((m.dr7 >>> 2) & 3).to.equal(2); // G1
    expect((m.dr7 >>> 20) & 0xf).to.equal(0x9); // RW1=01 LEN1=10
  });

  it('a guest slot is relocated when the debugger already holds its index; B bits translate back', () => {
    const first = mergeDebugState(lo([]), zero, 0x400, [w8(0x5000)], null);
    expect(first.owners[0]).to.deep.equal({ owner: 'debugger', slot: 0 });
    const second = mergeDebugState(lo([0x10]), zero, 0x400 | 0x1 | (0x9 << 16), [w8(0x5000)], first.owners);
    expect(second.owners[0]).to.deep.equal({ owner: 'debugger', slot: 0 });
    expect(second.owners[1]).to.deep.equal({ owner: 'guest', slot: 0 });
    expect(second.drLo[1]).to.equal(0x10);
    expect(splitBreakpointStatus(0x2, second.owners)).to.deep.equal({ guest: 0x1, debugger: 0 });
    expect(splitBreakpointStatus(0x3, second.owners)).to.deep.equal({ guest: 0x1, debugger: 0x1 });
  });

  it('more than four needed: the debugger wins and the guest breakpoint is reported suspended', () => {
    const dr7 = 0x400 | 0x55 | 0x99990000;
    const m = mergeDebugState(lo([0x10, 0x20, 0x30, 0x40]), zero, dr7 >>> 0, [w8(0x5000)], null);
    expect(m.suspended).to.deep.equal([3]);
    expect(m.owners[3]).to.deep.equal({ owner: 'debugger', slot: 0 });
    expect(m.owners.filter((o) => o?.owner === 'guest').length).to.equal(3);
  });

  it('GD is not put in the effective DR7 (emulated while merged)', () => {
    const m = mergeDebugState(lo([]), zero, 0x2400, [w8(0x5000)], null);
    expect(m.dr7 & 0x2000).to.equal(0);
  });
});
