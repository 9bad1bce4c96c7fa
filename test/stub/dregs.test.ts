import { expect } from 'chai';
import { dr7ForSlots, emptyDregState, insertRegion, removeRegion, slotsNeeded, splitRegion } from '../../stub/dregs';

const pieces = (a: bigint, n: number) => splitRegion(a, n).map((p) => `${p.address.toString(16)}/${p.len}`);

describe('stub dregs allocator', () => {
  it('splits regions into aligned pieces as x86-dregs does', () => {
    expect(pieces(0x1000n, 8)).to.deep.equal(['1000/8']);
    expect(pieces(0x1000n, 16)).to.deep.equal(['1000/8', '1008/8']);
    expect(pieces(0x1001n, 4)).to.deep.equal(['1001/1', '1002/2', '1004/1']);
    expect(pieces(0x1003n, 2)).to.deep.equal(['1003/1', '1004/1']);
    expect(pieces(0x1004n, 8)).to.deep.equal(['1004/4', '1008/4']);
    expect(pieces(0x1000n, 3)).to.deep.equal(['1000/2', '1002/1']);
    expect(slotsNeeded(0x1000n, 0)).to.equal(0);
    expect(slotsNeeded(0x1000n, 33)).to.equal(0);
  });

  it('covers exactly the region with naturally aligned pieces (all small cases)', () => {
    for (let a = 0; a < 16; a++) {
      for (let n = 1; n <= 32; n++) {
        let next = BigInt(a);
        for (const p of splitRegion(BigInt(a), n)) {
          expect(p.address).to.equal(next);
          expect(Number(p.address) % p.len).to.equal(0);
          next += BigInt(p.len);
        }
        expect(next).to.equal(BigInt(a + n));
      }
    }
  });

  it('shares identical pieces with a reference count and frees at zero', () => {
    let s = insertRegion(emptyDregState(), 'write', 0x2000n, 8)!;
    s = insertRegion(s, 'write', 0x2000n, 8)!;
    expect(s.filter((x) => x).length).to.equal(1);
    expect(s[0]!.refs).to.equal(2);
    s = removeRegion(s, 'write', 0x2000n, 8)!;
    expect(s[0]!.refs).to.equal(1);
    s = removeRegion(s, 'write', 0x2000n, 8)!;
    expect(s.every((x) => x === null)).to.equal(true);
    expect(removeRegion(s, 'write', 0x2000n, 8)).to.equal(undefined);
  });

  it('does not share between types or lengths', () => {
    let s = insertRegion(emptyDregState(), 'write', 0x2000n, 8)!;
    s = insertRegion(s, 'access', 0x2000n, 8)!;
    s = insertRegion(s, 'write', 0x2000n, 4)!;
    expect(s.filter((x) => x).length).to.equal(3);
  });

  it('is all-or-nothing: a region that does not fit changes nothing', () => {
    let s = insertRegion(emptyDregState(), 'write', 0x3000n, 16)!; // 2 slots
    s = insertRegion(s, 'exec', 0x100n, 1)!; // 3 slots
    const before = JSON.stringify(s, (_k, v) => (typeof v === 'bigint' ? v.toString() : v));
    expect(insertRegion(s, 'write', 0x4001n, 4)).to.equal(undefined); // needs 3
    expect(JSON.stringify(s, (_k, v) => (typeof v === 'bigint' ? v.toString() : v))).to.equal(before);
    s = insertRegion(s, 'write', 0x4000n, 4)!; // the fourth
    expect(insertRegion(s, 'write', 0x5000n, 1)).to.equal(undefined); // a fifth
  });

  it('refuses exec regions longer than one byte and programs DR7 like gdb', () => {
    expect(insertRegion(emptyDregState(), 'exec', 0x100n, 2)).to.equal(undefined);
    let s = insertRegion(emptyDregState(), 'write', 0x2000n, 8)!;
    s = insertRegion(s, 'exec', 0x100n, 1)!;
    // slot0: L0, RW=01 LEN=10 (8 bytes) -> 0x9 << 16; slot1: L1, RW=00 LEN=00; LE; bit 10
    expect(dr7ForSlots(s)).to.equal(0x90000n | 0x1n | 0x4n | 0x100n | 0x400n);
  });
});
