import { unescapeBinary } from '../protocol/framing';
import { hexToBytes, parseHexBig, parseHexNum } from '../protocol/hex';

export interface ReadMemoryCommand { address: bigint; length: number }
export interface WriteMemoryCommand { address: bigint; data: Uint8Array }

const ADDR_LEN = /^([0-9a-fA-F]{1,16}),([0-9a-fA-F]{1,8})$/;

/** m addr,length */
export function parseReadMemory(p: string): ReadMemoryCommand | undefined {
  const m = ADDR_LEN.exec(p.slice(1));
  if (!m) return undefined;
  return { address: parseHexBig(m[1])!, length: parseHexNum(m[2])! };
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
