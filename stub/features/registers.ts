/** g, G, p, P over the register layout of target.xml. */
import { parseReadRegister, parseWriteAllRegisters, parseWriteRegister } from '../commands/registers';
import { ERR_BAD_PACKET, ERR_FAILED, errorText, HandlerResult, HexReply, SessionContext } from './context';

export function handleRegisters(ctx: SessionContext, p: string): HandlerResult | undefined {
  switch (p[0]) {
    case 'g':
      if (p !== 'g') return undefined;
      return new HexReply(ctx.target.readAllRegisters(ctx.gVcpu));
    case 'G': {
      const block = parseWriteAllRegisters(p);
      if (!block) return ERR_BAD_PACKET;
      return errorText(ctx.target.writeAllRegisters(ctx.gVcpu, block)) ?? 'OK';
    }
    case 'p': {
      const cmd = parseReadRegister(p);
      if (!cmd) return ERR_BAD_PACKET;
      const value = ctx.target.readRegister(ctx.gVcpu, cmd.regno);
      return value ? new HexReply(value) : ERR_FAILED;
    }
    case 'P': {
      const cmd = parseWriteRegister(p);
      if (!cmd) return ERR_BAD_PACKET;
      return errorText(ctx.target.writeRegister(ctx.gVcpu, cmd.regno, cmd.value)) ?? 'OK';
    }
  }
  return undefined;
}
