/** qXfer:features:read:target.xml and qXfer:threads:read::, offset,length with m/l chunks. */
import { parseXferRead } from '../commands/query';
import { TARGET_XML } from '../target-xml';
import { EMPTY, ERR_BAD_PACKET, HandlerResult, SessionContext } from './context';
import { threadsXml } from './threads';

const XML_BYTES = Buffer.from(TARGET_XML, 'utf8');

export function handleXfer(ctx: SessionContext, p: string): HandlerResult | undefined {
  if (!p.startsWith('qXfer:')) return undefined;
  const cmd = parseXferRead(p);
  if (!cmd) return p.startsWith('qXfer:features:read:') || p.startsWith('qXfer:threads:read:') ? ERR_BAD_PACKET : EMPTY;
  if (cmd.object === 'features') {
    if (cmd.annex !== 'target.xml') return 'E00';
    return chunkOf(ctx, XML_BYTES, cmd.offset, cmd.length);
  }
  if (cmd.object === 'threads') {
    if (cmd.annex !== '') return 'E00';
    return chunkOf(ctx, Buffer.from(threadsXml(ctx), 'utf8'), cmd.offset, cmd.length);
  }
  return EMPTY;
}

/** The m/l reply for offset,length of a document. */
function chunkOf(ctx: SessionContext, doc: Buffer, offset: number, length: number): string {
  if (offset > doc.length) return ERR_BAD_PACKET;
  // keep the (escaped) reply inside the packet size
  const n = Math.min(length, Math.floor((ctx.packetSize - 8) / 2));
  const chunk = doc.subarray(offset, offset + n);
  const last = offset + chunk.length >= doc.length;
  return (last ? 'l' : 'm') + chunk.toString('latin1');
}
