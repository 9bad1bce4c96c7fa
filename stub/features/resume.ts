/** c, C, s, S, vCont?, vCont: the stop reply is sent later by the session. */
import { parseLegacyResume, parseVCont } from '../commands/resume';
import { ERR_BAD_PACKET, HandlerResult, SessionContext } from './context';

export function handleResume(ctx: SessionContext, p: string): HandlerResult | undefined {
  if (p === 'vCont?') return 'vCont;c;C;s;S;t';
  if (p.startsWith('vCont;')) {
    const cmd = parseVCont(p);
    if (!cmd) return ERR_BAD_PACKET;
    ctx.resume(cmd);
    return 'async';
  }
  if (p === 'vCont') return ERR_BAD_PACKET;
  const c = p[0];
  if (c === 'c' || c === 'C' || c === 's' || c === 'S') {
    const stepThread = typeof ctx.cThread === 'number' ? ctx.cThread : ctx.gVcpu + 1;
    const cmd = parseLegacyResume(p, stepThread);
    if (!cmd) return ERR_BAD_PACKET;
    ctx.resume(cmd);
    return 'async';
  }
  return undefined;
}
