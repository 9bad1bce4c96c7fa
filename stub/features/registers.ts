/** g, G, p, P over the register layout of target.xml. */
import { parseReadRegister, parseWriteAllRegisters, parseWriteRegister } from '../commands/registers';
import { bytesToHex } from '../protocol/hex';
import { ERR_BAD_PACKET, ERR_FAILED, errorText, HandlerResult, SessionContext } from './context';

export function handleRegisters(ctx: SessionContext, p: string): HandlerResult | undefined {
  switch (p[0]) {
    case 'g':
      if (p !== 'g') return undefined;
      return bytesToHex(ctx.target.readAllRegisters(ctx.gVcpu));
    case 'G': {
      const block = parseWriteAllRegisters(p);
      if (!block) return ERR_BAD_PACKET;
      return errorText(ctx.target.writeAllRegisters(ctx.gVcpu, block)) ?? 'OK';
    }
    case 'p': {
      const cmd = parseReadRegister(p);
      if (!cmd) return ERR_BAD_PACKET;
      const value = ctx.target.readRegister(ctx.gVcpu, cmd.regno);
      return value ? bytesToHex(value) : ERR_FAILED;
    }
    case 'P': {
      const cmd = parseWriteRegister(p);
      if (!cmd) return ERR_BAD_PACKET;
      return errorText(ctx.target.writeRegister(ctx.gVcpu, cmd.regno, cmd.value)) ?? 'OK';
    }
  }
  return undefined;
}
