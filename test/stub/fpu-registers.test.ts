/**
 * The stub's mapping of gdb's x87/SSE registers onto an FXSAVE image: every field where
 * gdb's amd64 FXSAVE reader has it, the full tag word computed from the abridged one and
 * the register contents, and writes that keep the bits a field does not hold.
 */
import { expect } from 'chai';
import { fpuFieldOf, fullTagWord, readFpuField, writeFpuField } from '../../stub/fpu-registers';
import { REMOTE_REGS } from '../../stub/register-layout';

function st(image: Uint8Array, i: number, mantissa: number[], exponent: number): void {
  const o = 32 + 16 * i;
  image.set(mantissa, o);
  image[o + 8] = exponent & 0xff;
  image[o + 9] = exponent >> 8;
}

describe('stub/fpu-registers: gdb x87/SSE registers as FXSAVE fields', () => {
  it('maps every x87/SSE register of the g layout to a field', () => {
    const fpuRegs = REMOTE_REGS.filter((r) => r.source.kind === 'fpu').map((r) => r.name);
    expect(fpuRegs).to.have.length(8 + 8 + 16 + 1);
    for (const n of fpuRegs) expect(fpuFieldOf(n), n).to.not.equal(undefined);
    expect(fpuFieldOf('rax')).to.equal(undefined);
  });

  it('reads xmm, mxcsr, fctrl, fop (11 bits) and the FIP/FDP halves where gdb puts them', () => {
    const img = new Uint8Array(512);
    for (let i = 0; i < 16; i++) img[160 + 16 * 3 + i] = i + 1;
    img.set([0x80, 0x1f, 0, 0], 24);
    img.set([0x7f, 0x03], 0);
    img.set([0xff, 0xff], 6);
    img.set([1, 2, 3, 4, 5, 6, 7, 8], 8);
    const read = (name: string, size: number): number[] => {
      const out = new Uint8Array(size);
      readFpuField(img, fpuFieldOf(name)!, out, 0, size);
      return [...out];
    };
    expect(read('xmm3', 16)).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
    expect(read('mxcsr', 4)).to.deep.equal([0x80, 0x1f, 0, 0]);
    expect(read('fctrl', 4)).to.deep.equal([0x7f, 0x03, 0, 0]);
    expect(read('fop', 4)).to.deep.equal([0xff, 0x07, 0, 0]);
    expect(read('fioff', 4)).to.deep.equal([1, 2, 3, 4]);
    expect(read('fiseg', 4)).to.deep.equal([5, 6, 7, 8]);
  });

  it('computes the full tag word: empty, valid, zero and special, relative to TOP', () => {
    const img = new Uint8Array(512);
    expect(fullTagWord(img)).to.equal(0xffff); // nothing valid
    img[3] = 6 << 3; // TOP = 6: ST0 is physical R6, ST1 is R7, ST2 is R0
    img[4] = (1 << 6) | (1 << 7) | (1 << 0) | (1 << 1);
    st(img, 0, [0, 0, 0, 0, 0, 0, 0, 0x80], 0x3fff); // 1.0: valid
    st(img, 1, [0, 0, 0, 0, 0, 0, 0, 0], 0); // +0: zero
    st(img, 2, [0, 0, 0, 0, 0, 0, 0, 0xc0], 0x7fff); // NaN: special
    st(img, 3, [0, 0, 0, 0, 0, 0, 0, 0x40], 0x3fff); // unnormal: special
    const tag = fullTagWord(img);
    expect((tag >> 12) & 3, 'R6 = ST0').to.equal(0);
    expect((tag >> 14) & 3, 'R7 = ST1').to.equal(1);
    expect(tag & 3, 'R0 = ST2').to.equal(2);
    expect((tag >> 2) & 3, 'R1 = ST3').to.equal(2);
    for (const r of [2, 3, 4, 5]) expect((tag >> (2 * r)) & 3, `R${r}`).to.equal(3);
  });

  it('writes: ftag to the abridged form, fop keeps its upper bits, xmm in place', () => {
    const img = new Uint8Array(512);
    img.set([0x00, 0xf8], 6);
    writeFpuField(img, fpuFieldOf('ftag')!, Uint8Array.of(0xf4, 0xff, 0, 0)); // R0 valid, R1 zero, others empty
    expect(img[4]).to.equal(0b11);
    writeFpuField(img, fpuFieldOf('fop')!, Uint8Array.of(0xff, 0xff, 0, 0));
    expect([img[6], img[7]]).to.deep.equal([0xff, 0xff]);
    writeFpuField(img, fpuFieldOf('fop')!, Uint8Array.of(0x34, 0x02, 0, 0));
    expect([img[6], img[7]]).to.deep.equal([0x34, 0xfa]);
    writeFpuField(img, fpuFieldOf('xmm15')!, new Uint8Array(16).fill(9));
    expect([...img.subarray(400, 416)]).to.deep.equal(new Array(16).fill(9));
  });
});
