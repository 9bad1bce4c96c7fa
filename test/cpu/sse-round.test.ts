// The exactness helpers behind MXCSR rounding control and PE/UE/OE (vmm/cpu/sse-round.ts):
// the sign of (exact result - nearest binary64 result), also where the operands or the
// result are far outside [1, 4) and must be scaled, and the one-ulp steps of RC.
import { expect } from 'chai';
import { addDir, mulDir, divDir, sqrtDir, directed, nextUp64, nextUp32 } from '../../vmm/cpu/sse-round';

const MIN_SUB = 5e-324;
const MAX32 = 3.4028234663852886e38;

describe('cpu: SSE rounding helpers (sse-round.ts)', () => {
  it('addDir: TwoSum gives the sign of the rounding error, 0 when exact', () => {
    expect(addDir(1, Math.pow(2, -60), 1)).to.equal(1);
    expect(addDir(1, -Math.pow(2, -60), 1)).to.equal(-1);
    expect(addDir(1.5, 2.25, 3.75)).to.equal(0);
    expect(addDir(1e308, -1e308, 0)).to.equal(0);
  });

  it('mulDir: exact, rounded up/down, and underflowing products (operands scaled by up to 2^2148)', () => {
    const e = 1 + Math.pow(2, -52);
    expect(mulDir(e, e, e * e)).to.equal(1); // exact 1 + 2^-51 + 2^-104
    expect(mulDir(3, 0.5, 1.5)).to.equal(0);
    expect(mulDir(MIN_SUB, MIN_SUB, 0)).to.equal(1); // 2^-2148 underflows to +0
    expect(mulDir(-MIN_SUB, 0.75, -MIN_SUB * 0.75)).to.equal(1); // -0.75 ulp rounds to -1 ulp: exact is above
    expect(mulDir(Math.pow(2, 1000), Math.pow(2, -1070), Math.pow(2, -70))).to.equal(0);
  });

  it('divDir and sqrtDir: the residual decides (1/3 and sqrt(2) round down and up)', () => {
    expect(divDir(1, 3, 1 / 3)).to.equal(1); // 1/3 in binary64 is below one third
    expect(divDir(-1, 3, -1 / 3)).to.equal(-1);
    expect(divDir(1, 4, 0.25)).to.equal(0);
    expect(divDir(MIN_SUB, 3, MIN_SUB / 3)).to.equal(1); // rounds to 0
    expect(sqrtDir(2, Math.SQRT2)).to.equal(-1); // the binary64 sqrt(2) is above the real one
    expect(sqrtDir(2.25, 1.5)).to.equal(0);
    expect(sqrtDir(MIN_SUB, Math.sqrt(MIN_SUB))).to.equal(0); // 2^-537 exactly
    expect(sqrtDir(3 * MIN_SUB, Math.sqrt(3 * MIN_SUB))).to.not.equal(0);
  });

  it('directed: RC down/up/toward zero move the nearest result one ulp only when the error points that way', () => {
    const up1 = 1 + Math.pow(2, -52), down1 = 1 - Math.pow(2, -53);
    expect(directed(1, 1, 2, nextUp64)).to.equal(up1);
    expect(directed(1, -1, 2, nextUp64)).to.equal(1);
    expect(directed(1, -1, 1, nextUp64)).to.equal(down1);
    expect(directed(1, -1, 3, nextUp64)).to.equal(down1);
    expect(directed(-1, 1, 3, nextUp64)).to.equal(-down1);
    expect(directed(-1, -1, 3, nextUp64)).to.equal(-1);
    expect(Object.is(directed(-MIN_SUB, 1, 3, nextUp64), -0)).to.equal(true);
    expect(directed(0, 1, 2, nextUp64)).to.equal(MIN_SUB);
    expect(directed(Number.MAX_VALUE, 1, 2, nextUp64)).to.equal(Infinity);
    expect(nextUp32(MAX32)).to.equal(Infinity);
    expect(nextUp32(1)).to.equal(1 + Math.pow(2, -23));
    expect(Object.is(nextUp32(-1.401298464324817e-45), -0)).to.equal(true);
  });
});
