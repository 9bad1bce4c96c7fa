import { expect } from 'chai';
import { W, div128by64 } from '../../vmm/cpu/arith64';

const M32 = 0xffffffffn;

/** A 64-bit value from a seeded xorshift, with its bit length drawn too (so small values are common). */
function makeRandom(seed: bigint): () => bigint {
  let s = seed;
  const next = (): bigint => {
    s ^= (s << 13n) & 0xffffffffffffffffn;
    s ^= s >> 7n;
    s ^= (s << 17n) & 0xffffffffffffffffn;
    return s;
  };
  return () => {
    const bits = Number(next() % 65n);
    return bits === 0 ? 0n : next() & ((1n << BigInt(bits)) - 1n);
  };
}

/** div128by64 on n (128-bit) / d (64-bit): [quotient, remainder] or null (quotient over 64 bits). */
function divide(n: bigint, d: bigint): [bigint, bigint] | null {
  for (let k = 0; k < 4; k++) W[k] = Number((n >> BigInt(32 * k)) & M32);
  if (!div128by64(Number(d & M32), Number(d >> 32n))) return null;
  return [BigInt(W[0]) | (BigInt(W[1]) << 32n), BigInt(W[2]) | (BigInt(W[3]) << 32n)];
}

describe('cpu: 128-by-64-bit division (DIV/IDIV)', () => {
  it('matches BigInt division on every path: 32-bit divisors, both below 2^52, and the general case', () => {
    const rnd = makeRandom(0x9e3779b97f4a7c15n);
    const edge = [1n, 2n, 3n, 10n, 0xffffffffn, 0x100000000n, (1n << 52n) - 1n, 1n << 52n, (1n << 53n) + 1n, (1n << 64n) - 1n];
    const cases: [bigint, bigint][] = [];
    for (const a of edge) for (const b of edge) cases.push([a, b], [(a << 64n) | b, b], [a * b + (b - 1n), b]);
    for (let k = 0; k < 20000; k++) {
      const d = rnd() || 1n;
      // a high half below d (the quotient fits) most of the time, any high half otherwise
      const hi = k % 8 === 0 ? rnd() : rnd() % d;
      cases.push([(hi << 64n) | rnd(), d]);
    }
    for (const [n, d] of cases) {
      if (d === 0n) continue;
      const q = n / d;
      const got = divide(n, d);
      if (q >> 64n !== 0n) expect(got, `${n} / ${d}`).to.equal(null);
      else expect(got, `${n} / ${d}`).to.deep.equal([q, n % d]);
    }
  });
});
