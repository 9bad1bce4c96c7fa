import { parseHexBig, parseHexNum } from '../protocol/hex';

/** Z/z type,addr,kind (conditions after ';' are not supported: we never advertise them). */
export interface BreakpointCommand {
  insert: boolean;
  type: 0 | 1 | 2 | 3 | 4;
  address: bigint;
  kind: number;
}

export function parseBreakpoint(p: string): BreakpointCommand | undefined {
  const m = /^([Zz])([0-4]),([0-9a-fA-F]{1,16}),([0-9a-fA-F]{1,8})$/.exec(p);
  if (!m) return undefined;
  const address = parseHexBig(m[3]);
  const kind = parseHexNum(m[4]);
  if (address === undefined || kind === undefined) return undefined;
  return { insert: m[1] === 'Z', type: Number(m[2]) as BreakpointCommand['type'], address, kind };
}
