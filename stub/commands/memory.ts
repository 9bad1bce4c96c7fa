import { unescapeBinary } from '../protocol/framing';
import { hexToBytes, parseHexBig, parseHexNum } from '../protocol/hex';

export interface ReadMemoryCommand { address: bigint; length: number }
export interface WriteMemoryCommand { address: bigint; data: Uint8Array }

const ADDR_LEN = /^([0-9a-fA-F]{1,16}),([0-9a-fA-F]{1,8})$/;

/** Digits of a hex character, or -1. */
function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}

/** m addr,length (what ADDR_LEN accepts, scanned without a regular expression: gdb sends one after every stop). */
export function parseReadMemory(p: string): ReadMemoryCommand | undefined {
  const comma = p.indexOf(',');
  const addrDigits = comma - 1;
  const lenDigits = p.length - comma - 1;
  if (comma < 0 || addrDigits < 1 || addrDigits > 16 || lenDigits < 1 || lenDigits > 8) return undefined;
  for (let i = 1; i < comma; i++) if (hexDigit(p.charCodeAt(i)) < 0) return undefined;
  let length = 0;
  for (let i = comma + 1; i < p.length; i++) {
    const d = hexDigit(p.charCodeAt(i));
    if (d < 0) return undefined;
    length = length * 16 + d;
  }
  return { address: BigInt('0x' + p.slice(1, comma)), length };
}

/** M addr,length:hexdata */
export function parseWriteMemoryHex(p: string): WriteMemoryCommand | undefined {
  const colon = p.indexOf(':');
  if (colon < 0) return undefined;
  const m = ADDR_LEN.exec(p.slice(1, colon));
  if (!m) return undefined;
  const data = hexToBytes(p.slice(colon + 1));
  if (!data || data.length !== parseHexNum(m[2])) return undefined;
  return { address: parseHexBig(m[1])!, data };
}

/** X addr,length:binary (binary escaped with '}'); works on the raw packet bytes. */
export function parseWriteMemoryBinary(raw: Buffer): WriteMemoryCommand | undefined {
  const colon = raw.indexOf(0x3a);
  if (colon < 0) return undefined;
  const m = ADDR_LEN.exec(raw.subarray(1, colon).toString('latin1'));
  if (!m) return undefined;
  const data = unescapeBinary(raw.subarray(colon + 1));
  if (!data || data.length !== parseHexNum(m[2])) return undefined;
  return { address: parseHexBig(m[1])!, data };
}
