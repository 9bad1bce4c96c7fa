import { DebuggerSlot } from '../vmm-types';
import { DR7_GD, dr7EncodeSlot, dr7GlobalEnable, dr7SlotControl, dr7SlotEnabled } from '../x86/debug-regs';

/** Owner of one physical slot in the effective state. */
export type SlotOwner = { owner: 'guest' | 'debugger'; slot: number } | null;

export interface MergedDebugState {
  /** Index = physical slot 0-3. */
  owners: SlotOwner[];
  /** Guest slots enabled in the guest view that got no physical slot (debugger won). */
  suspended: number[];
  drLo: number[];
  drHi: number[];
  dr7: number;
}

/**
 * The effective state: the guest view merged slot by slot with the debugger's slots, as
 * VirtualBox's DBGF does. Debugger slots keep the physical slot they had (`prev`); guest
 * slots keep their own index when free and are otherwise moved to a free slot; new
 * debugger slots take the slots the guest leaves disabled. Only when more than four are
 * needed does a guest slot go without (suspended). Pure: the caller applies the result.
 */
export function mergeDebugState(
  viewLo: ArrayLike<number>, viewHi: ArrayLike<number>, viewDr7: number,
  slots: ReadonlyArray<DebuggerSlot | null>, prev: readonly SlotOwner[] | null,
): MergedDebugState {
  const owners: SlotOwner[] = [null, null, null, null];
  const suspended: number[] = [];
  const placedDbg = new Set<number>();
  // 1. Debugger slots keep their previous physical slot.
  if (prev !== null) {
    prev.forEach((o, p) => {
      if (o !== null && o.owner === 'debugger' && slots[o.slot] != null && !placedDbg.has(o.slot)) {
        owners[p] = o;
        placedDbg.add(o.slot);
      }
    });
  }
  // 2. Guest slots at their own index when free.
  const homeless: number[] = [];
  for (let i = 0; i < 4; i++) {
    if (!dr7SlotEnabled(viewDr7, i)) continue;
    if (owners[i] === null) owners[i] = { owner: 'guest', slot: i };
    else homeless.push(i);
  }
  // 3. New debugger slots: first the slots the guest leaves disabled.
  const free = (): number => owners.findIndex((o) => o === null);
  for (let j = 0; j < slots.length && j < 4; j++) {
    if (slots[j] == null || placedDbg.has(j)) continue;
    let p = free();
    if (p < 0) {
      // More than four needed: the debugger wins the highest guest slot.
      p = owners.map((o, k) => (o !== null && o.owner === 'guest' ? k : -1)).filter((k) => k >= 0).pop() ?? -1;
      if (p < 0) continue;
      const lost = owners[p];
      if (lost !== null) suspended.push(lost.slot);
    }
    owners[p] = { owner: 'debugger', slot: j };
    placedDbg.add(j);
  }
  // 4. Displaced guest slots move to a free slot, or are suspended.
  for (const i of homeless) {
    const p = free();
    if (p < 0) suspended.push(i);
    else owners[p] = { owner: 'guest', slot: i };
  }

  const drLo: number[] = [];
  const drHi: number[] = [];
  let dr7 = viewDr7 & 0xff00 & ~DR7_GD; // LE/GE, bit 10; GD is emulated while merged
  for (let p = 0; p < 4; p++) {
    const o = owners[p];
    if (o === null) {
      drLo.push(viewLo[p] >>> 0);
      drHi.push(viewHi[p] >>> 0);
      dr7 |= dr7SlotControl(viewDr7, p) << (16 + 4 * p); // keep its (disabled) RW/LEN
    } else if (o.owner === 'guest') {
      const i = o.slot;
      drLo.push(viewLo[i] >>> 0);
      drHi.push(viewHi[i] >>> 0);
      dr7 |= ((viewDr7 >>> (2 * i)) & 3) << (2 * p);
      dr7 |= dr7SlotControl(viewDr7, i) << (16 + 4 * p);
    } else {
      const s = slots[o.slot] as DebuggerSlot;
      drLo.push(s.address.lo >>> 0);
      drHi.push(s.address.hi >>> 0);
      dr7 |= dr7GlobalEnable(p) | dr7EncodeSlot(p, s.type, s.len);
    }
  }
  return { owners, suspended, drLo, drHi, dr7: dr7 >>> 0 };
}

/** Split physical B0-B3 bits into the guest's (guest numbering) and the debugger's (client numbering). */
export function splitBreakpointStatus(physB: number, owners: readonly SlotOwner[]): { guest: number; debugger: number } {
  let guest = 0;
  let debuggerBits = 0;
  for (let p = 0; p < 4; p++) {
    if ((physB & (1 << p)) === 0) continue;
    const o = owners[p];
    if (o === null) continue;
    if (o.owner === 'guest') guest |= 1 << o.slot;
    else debuggerBits |= 1 << o.slot;
  }
  return { guest, debugger: debuggerBits };
}
