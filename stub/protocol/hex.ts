// Hex helpers for the remote protocol. Parsers return undefined on bad input, never throw.

const HEX_RE = /^[0-9a-fA-F]+$/;

export function isHex(s: string): boolean {
  return HEX_RE.test(s);
}

/** A hex number of at most 16 digits as bigint (gdb sends no 0x and no sign). */
export function parseHexBig(s: string): bigint | undefined {
  if (s.length === 0 || s.length > 16 || !isHex(s)) return undefined;
  return BigInt('0x' + s);
}

/** A small hex number (lengths, offsets, thread ids); undefined if not hex or >= 2^48. */
export function parseHexNum(s: string): number | undefined {
  if (s.length === 0 || s.length > 12 || !isHex(s)) return undefined;
  return parseInt(s, 16);
}

export function hexToBytes(s: string): Uint8Array | undefined {
  if (s.length % 2 !== 0 || (s.length > 0 && !isHex(s))) return undefined;
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.substr(i * 2, 2), 16);
  return out;
}

const HEX_DIGITS = '0123456789abcdef';

export function bytesToHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex');
}

/** "00".."ff": a byte's two hex digits, looked up instead of built. */
const BYTE_HEX: readonly string[] = Array.from({ length: 256 }, (_, n) => HEX_DIGITS[n >> 4] + HEX_DIGITS[n & 15]);

export function hex2(n: number): string {
  return BYTE_HEX[n & 0xff];
}

export function textToHex(text: string): string {
  return bytesToHex(Buffer.from(text, 'utf8'));
}

export function hexToText(s: string): string | undefined {
  const b = hexToBytes(s);
  return b === undefined ? undefined : Buffer.from(b).toString('utf8');
}

/** Little-endian bytes of a bigint value (two's complement truncated to `size` bytes). */
export function bigToLeBytes(v: bigint, size: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = BigInt.asUintN(size * 8, v);
  for (let i = 0; i < size; i++) {
    out[i] = Number(x & 0xffn);
    x >>= 8n;
  }
  return out;
}

export function leBytesToBig(b: Uint8Array): bigint {
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
  return v;
}
