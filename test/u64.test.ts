import { expect } from 'chai';
import { parseU64, u64FromBigInt, u64Hex, u64ToBigInt, u64FromNumber, u64ToNumber } from '../vmm/u64';

describe('u64 helpers', () => {
  it('round-trips 64-bit values through halves', () => {
    for (const v of [0n, 1n, 0xffffffffn, 0x100000000n, 0xffffffffffffffffn, 0x8000000000000000n]) {
      expect(u64ToBigInt(u64FromBigInt(v))).to.equal(v);
    }
    expect(u64ToNumber(u64FromNumber(0x123456789ab))).to.equal(0x123456789ab);
  });
  it('parses hex and decimal and rejects junk', () => {
    expect(u64Hex(parseU64('0x401')!)).to.equal('0x401');
    expect(u64Hex(parseU64('18446744073709551615')!)).to.equal('0xffffffffffffffff');
    expect(parseU64('0x1ffffffffffffffff')).to.equal(undefined);
    expect(parseU64('12z')).to.equal(undefined);
    expect(parseU64('-1')).to.equal(undefined);
  });
});
