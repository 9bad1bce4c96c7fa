/** qXfer:features:read:target.xml:offset,length with m/l chunks. */
import { parseXferRead } from '../commands/query';
import { TARGET_XML } from '../target-xml';
import { EMPTY, ERR_BAD_PACKET, HandlerResult, SessionContext } from './context';

const XML_BYTES = Buffer.from(TARGET_XML, 'utf8');

export function handleXfer(ctx: SessionContext, p: string): HandlerResult | undefined {
  if (!p.startsWith('qXfer:')) return undefined;
  const cmd = parseXferRead(p);
  if (!cmd) return p.startsWith('qXfer:features:read:') ? ERR_BAD_PACKET : EMPTY;
  if (cmd.object !== 'features') return EMPTY;
  if (cmd.annex !== 'target.xml') return 'E00';
  if (cmd.offset > XML_BYTES.length) return ERR_BAD_PACKET;
  // keep the (escaped) reply inside the packet size
  const length = Math.min(cmd.length, Math.floor((ctx.packetSize - 8) / 2));
  const chunk = XML_BYTES.subarray(cmd.offset, cmd.offset + length);
  const last = cmd.offset + chunk.length >= XML_BYTES.length;
  return (last ? 'l' : 'm') + chunk.toString('latin1');
}
