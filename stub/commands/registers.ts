import { hexToBytes, parseHexNum } from '../protocol/hex';

export interface ReadRegisterCommand { regno: number }
export interface WriteRegisterCommand { regno: number; value: Uint8Array }

/** p n */
export function parseReadRegister(p: string): ReadRegisterCommand | undefined {
  const regno = parseHexNum(p.slice(1));
  return regno === undefined ? undefined : { regno };
}

/** P n=value (little-endian hex bytes) */
export function parseWriteRegister(p: string): WriteRegisterCommand | undefined {
  const m = /^P([0-9a-fA-F]{1,4})=([0-9a-fA-F]*)$/.exec(p);
  if (!m) return undefined;
  const value = hexToBytes(m[2]);
  if (!value || value.length === 0) return undefined;
  return { regno: parseHexNum(m[1])!, value };
}

/** G hexdata */
export function parseWriteAllRegisters(p: string): Uint8Array | undefined {
  return hexToBytes(p.slice(1));
}
