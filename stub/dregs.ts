/**
 * The debugger's four x86 debug-register slots, allocated as gdb's nat/x86-dregs does:
 * a slot holds (address, type, len) with a reference count; identical aligned pieces share a
 * slot; a region that is not one aligned 1/2/4/8-byte piece is split by a small table; an
 * insert or remove works on a copy and is committed only when every piece fits.
 * Pure: no VM, no I/O. Addresses are bigint because gdb may send full 64-bit addresses.
 * The DR7 encoding is the one codec of vmm/x86/debug-regs.ts (x86 facts, not the VM).
 */
import { DR7_LE, DR7_RESERVED1, dr7EncodeSlot, dr7LocalEnable } from '../vmm/x86/debug-regs';

export type SlotType = 'exec' | 'write' | 'access';
export type SlotLen = 1 | 2 | 4 | 8;

export interface DregSlot {
  readonly address: bigint;
  readonly type: SlotType;
  readonly len: SlotLen;
  readonly refs: number;
}

/** Always four entries; null = vacant. */
export type DregState = ReadonlyArray<DregSlot | null>;

export const SLOT_COUNT = 4;
const MAX_PIECE = 8;
/** The longest region four 8-byte slots can ever cover (anything longer is refused at once). */
export const MAX_REGION_LEN = SLOT_COUNT * MAX_PIECE;

export function emptyDregState(): DregState {
  return [null, null, null, null];
}

/**
 * Piece size by [min(len, 8) - 1][address % 8]: the biggest naturally aligned piece that
 * starts at that address and does not run past the region.
 */
const PIECE_SIZE: ReadonlyArray<ReadonlyArray<SlotLen>> = [
  [1, 1, 1, 1, 1, 1, 1, 1], // 1 byte left
  [2, 1, 2, 1, 2, 1, 2, 1], // 2
  [2, 1, 2, 1, 2, 1, 2, 1], // 3
  [4, 1, 2, 1, 4, 1, 2, 1], // 4
  [4, 1, 2, 1, 4, 1, 2, 1], // 5
  [4, 1, 2, 1, 4, 1, 2, 1], // 6
  [4, 1, 2, 1, 4, 1, 2, 1], // 7
  [8, 1, 2, 1, 4, 1, 2, 1], // 8 or more
];

export interface Piece {
  address: bigint;
  len: SlotLen;
}

const ADDRESS_MASK = (1n << 64n) - 1n;

/** Splits [address, address+len) into aligned pieces; [] when len is 0 or too long to fit. */
export function splitRegion(address: bigint, len: number): Piece[] {
  if (!Number.isInteger(len) || len <= 0 || len > MAX_REGION_LEN) return [];
  const pieces: Piece[] = [];
  let addr = address & ADDRESS_MASK;
  let left = len;
  while (left > 0) {
    const size = PIECE_SIZE[Math.min(left, MAX_PIECE) - 1][Number(addr % 8n)];
    pieces.push({ address: addr, len: size });
    addr = (addr + BigInt(size)) & ADDRESS_MASK;
    left -= size;
  }
  return pieces;
}

/** How many slots a region needs on its own (gdb's WP_COUNT). */
export function slotsNeeded(address: bigint, len: number): number {
  return splitRegion(address, len).length;
}

function sameSlot(s: DregSlot, address: bigint, type: SlotType, len: SlotLen): boolean {
  return s.address === address && s.type === type && s.len === len;
}

function insertPiece(state: Array<DregSlot | null>, piece: Piece, type: SlotType): boolean {
  const shared = state.findIndex((s) => s !== null && sameSlot(s, piece.address, type, piece.len));
  if (shared >= 0) {
    const s = state[shared]!;
    state[shared] = { ...s, refs: s.refs + 1 };
    return true;
  }
  const vacant = state.indexOf(null);
  if (vacant < 0) return false;
  state[vacant] = { address: piece.address, type, len: piece.len, refs: 1 };
  return true;
}

function removePiece(state: Array<DregSlot | null>, piece: Piece, type: SlotType): boolean {
  const i = state.findIndex((s) => s !== null && sameSlot(s, piece.address, type, piece.len));
  if (i < 0) return false;
  const s = state[i]!;
  state[i] = s.refs > 1 ? { ...s, refs: s.refs - 1 } : null;
  return true;
}

/**
 * Inserts a region of `type` (exec regions are always one byte). Returns the new state, or
 * undefined when it does not fit (the given state is never modified).
 */
export function insertRegion(state: DregState, type: SlotType, address: bigint, len: number): DregState | undefined {
  const pieces = type === 'exec' ? (len === 1 ? splitRegion(address, 1) : []) : splitRegion(address, len);
  if (pieces.length === 0) return undefined;
  const copy = state.slice();
  for (const p of pieces) if (!insertPiece(copy, p, type)) return undefined;
  return copy;
}

/** Removes a region inserted before; undefined when some piece was not there. */
export function removeRegion(state: DregState, type: SlotType, address: bigint, len: number): DregState | undefined {
  const pieces = type === 'exec' ? (len === 1 ? splitRegion(address, 1) : []) : splitRegion(address, len);
  if (pieces.length === 0) return undefined;
  const copy = state.slice();
  for (const p of pieces) if (!removePiece(copy, p, type)) return undefined;
  return copy;
}

/** DR7 as gdb would program it for these slots (local enables, LE, bit 10 set). For display. */
export function dr7ForSlots(state: DregState): bigint {
  let dr7 = DR7_RESERVED1;
  state.forEach((s, i) => {
    if (!s) return;
    dr7 |= dr7LocalEnable(i) | dr7EncodeSlot(i, s.type, s.len) | DR7_LE;
  });
  return BigInt(dr7 >>> 0);
}
