/** m, M, X: guest-VIRTUAL memory of the Hg vCPU (through its page tables), with gdb's int3s hidden. */
import { parseReadMemory, parseWriteMemoryBinary, parseWriteMemoryHex } from '../commands/memory';
import { ERR_BAD_PACKET, ERR_MEMORY, HandlerResult, HexReply, SessionContext } from './context';

export function handleMemory(ctx: SessionContext, p: string): HandlerResult | undefined {
  switch (p[0]) {
    case 'm': {
      const cmd = parseReadMemory(p);
      if (!cmd) return ERR_BAD_PACKET;
      // a reply never exceeds what the packet size allows; gdb asks again for the rest
      const length = Math.min(cmd.length, Math.floor((ctx.packetSize - 4) / 2));
      const data = ctx.target.readMemory(ctx.gVcpu, cmd.address, length);
      return data ? new HexReply(data) : ERR_MEMORY;
    }
    case 'M': {
      const cmd = parseWriteMemoryHex(p);
      if (!cmd) return ERR_BAD_PACKET;
      return ctx.target.writeMemory(ctx.gVcpu, cmd.address, cmd.data) ? 'OK' : ERR_MEMORY;
    }
    case 'X': {
      // the packet text holds one character per byte (latin1): its bytes are the raw packet
      const cmd = parseWriteMemoryBinary(Buffer.from(p, 'latin1'));
      if (!cmd) return ERR_BAD_PACKET;
      return ctx.target.writeMemory(ctx.gVcpu, cmd.address, cmd.data) ? 'OK' : ERR_MEMORY;
    }
  }
  return undefined;
}
