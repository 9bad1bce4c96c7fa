/**
 * gdb's x87/SSE registers (st0-7, fctrl ... fop, xmm0-15, mxcsr) as fields of the vCPU's
 * FXSAVE image (VmApi.getFpuState), mapped the way gdb's own amd64 FXSAVE reader maps them:
 * fiseg/foseg are the upper halves of the 64-bit FIP/FDP, fop is 11 bits, and ftag is the
 * full two-bits-per-register tag word that gdb shows, while FXSAVE keeps one "valid" bit
 * per register (the abridged form): the full tag is computed from the register contents.
 */

export type FpuField =
  | { kind: 'bytes'; offset: number; size: number }   // st (10 bytes), xmm (16), mxcsr, fioff...
  | { kind: 'word'; offset: number; mask: number }     // fctrl, fstat, fop: a 16-bit field
  | { kind: 'tag' };                                    // ftag

const FSW = 2;
const ABRIDGED_TAG = 4;
const ST0 = 32;

export function fpuFieldOf(name: string): FpuField | undefined {
  let m = /^st([0-7])$/.exec(name);
  if (m) return { kind: 'bytes', offset: ST0 + 16 * Number(m[1]), size: 10 };
  m = /^xmm([0-9]|1[0-5])$/.exec(name);
  if (m) return { kind: 'bytes', offset: 160 + 16 * Number(m[1]), size: 16 };
  switch (name) {
    case 'fctrl': return { kind: 'word', offset: 0, mask: 0xffff };
    case 'fstat': return { kind: 'word', offset: FSW, mask: 0xffff };
    case 'ftag': return { kind: 'tag' };
    case 'fop': return { kind: 'word', offset: 6, mask: 0x7ff };
    case 'fioff': return { kind: 'bytes', offset: 8, size: 4 };
    case 'fiseg': return { kind: 'bytes', offset: 12, size: 4 };
    case 'fooff': return { kind: 'bytes', offset: 16, size: 4 };
    case 'foseg': return { kind: 'bytes', offset: 20, size: 4 };
    case 'mxcsr': return { kind: 'bytes', offset: 24, size: 4 };
    default: return undefined;
  }
}

/** Tag of one valid register: 0 valid, 1 zero, 2 special (NaN, infinity, denormal, unnormal). */
function classify(image: Uint8Array, st: number): number {
  const o = ST0 + 16 * st;
  const exponent = (image[o + 8] | (image[o + 9] << 8)) & 0x7fff;
  let mantissaZero = true;
  for (let i = 0; i < 8; i++) if (image[o + i] !== 0) { mantissaZero = false; break; }
  if (exponent === 0x7fff) return 2;
  if (exponent === 0) return mantissaZero ? 1 : 2;
  return (image[o + 7] & 0x80) !== 0 ? 0 : 2; // the explicit integer bit
}

/** The full tag word: physical register i holds ST((i - TOP) & 7); 3 = empty. */
export function fullTagWord(image: Uint8Array): number {
  const top = (image[FSW + 1] >> 3) & 7;
  let tag = 0;
  for (let i = 0; i < 8; i++) {
    const t = (image[ABRIDGED_TAG] & (1 << i)) === 0 ? 3 : classify(image, (i - top) & 7);
    tag |= t << (2 * i);
  }
  return tag;
}

/** Reads a field into `out` at `at` (size bytes, little-endian, zero-extended). */
export function readFpuField(image: Uint8Array, f: FpuField, out: Uint8Array, at: number, size: number): void {
  out.fill(0, at, at + size);
  if (f.kind === 'bytes') {
    out.set(image.subarray(f.offset, f.offset + Math.min(f.size, size)), at);
    return;
  }
  const v = f.kind === 'tag' ? fullTagWord(image) : (image[f.offset] | (image[f.offset + 1] << 8)) & f.mask;
  out[at] = v & 0xff;
  out[at + 1] = v >> 8;
}

/** Writes gdb's value into the image (in place). Bits a field does not hold are ignored. */
export function writeFpuField(image: Uint8Array, f: FpuField, value: Uint8Array): void {
  if (f.kind === 'bytes') {
    image.set(value.subarray(0, f.size), f.offset);
    return;
  }
  const v = value[0] | (value[1] << 8);
  if (f.kind === 'tag') {
    // FXSAVE keeps only whether each register is empty (tag 3) or not.
    let abridged = 0;
    for (let i = 0; i < 8; i++) if (((v >> (2 * i)) & 3) !== 3) abridged |= 1 << i;
    image[ABRIDGED_TAG] = abridged;
    return;
  }
  const old = image[f.offset] | (image[f.offset + 1] << 8);
  const nv = (old & ~f.mask) | (v & f.mask);
  image[f.offset] = nv & 0xff;
  image[f.offset + 1] = nv >> 8;
}
