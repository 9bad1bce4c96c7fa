/**
 * Z/z: Z0 = int3 in guest memory; Z1/Z2/Z4 = the debugger's debug-register slots; Z3 is
 * not supported (x86 has no read-only data breakpoint: gdb falls back to Z4 and filters).
 */
import { parseBreakpoint } from '../commands/breakpoint';
import { SlotType } from '../dregs';
import { EMPTY, ERR_BAD_PACKET, HandlerResult, SessionContext } from './context';

const SLOT_TYPE: Record<number, SlotType | undefined> = { 1: 'exec', 2: 'write', 4: 'access' };

export function handleBreakpoints(ctx: SessionContext, p: string): HandlerResult | undefined {
  if (p[0] !== 'Z' && p[0] !== 'z') return undefined;
  const cmd = parseBreakpoint(p);
  if (!cmd) return /^[Zz][0-4]/.test(p) ? ERR_BAD_PACKET : EMPTY;
  if (cmd.type === 3) return EMPTY;
  if (cmd.type === 0) {
    if (cmd.kind !== 1) return ERR_BAD_PACKET;
    const ok = cmd.insert ? ctx.target.insertSwBreakpoint(ctx.gVcpu, cmd.address) : ctx.target.removeSwBreakpoint(ctx.gVcpu, cmd.address);
    return ok ? 'OK' : ERR_BAD_PACKET;
  }
  const type = SLOT_TYPE[cmd.type]!;
  if (cmd.insert) {
    // gdb only gives up on "too many" when the reply is exactly E + two hex digits
    return ctx.target.insertHw(type, cmd.address, cmd.kind) === 'ok' ? 'OK' : ERR_BAD_PACKET;
  }
  return ctx.target.removeHw(type, cmd.address, cmd.kind) ? 'OK' : ERR_BAD_PACKET;
}
