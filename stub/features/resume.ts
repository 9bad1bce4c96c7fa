/** c, C, s, S, vCont?, vCont: the stop reply is sent later by the session. */
import { parseLegacyResume, parseVCont, ResumeCommand } from '../commands/resume';
import { ERR_BAD_PACKET, HandlerResult, SessionContext } from './context';

/**
 * gdb sends the same few vCont packets over and over (`vCont;s:1;c` for every stepi): their
 * parsed commands are kept (they are never modified), so a step parses nothing.
 */
const VCONT_CACHE_SIZE = 16;
const vContCache = new Map<string, ResumeCommand>();

function parsedVCont(p: string): ResumeCommand | undefined {
  const hit = vContCache.get(p);
  if (hit) return hit;
  const cmd = parseVCont(p);
  if (!cmd) return undefined;
  if (vContCache.size >= VCONT_CACHE_SIZE) vContCache.clear();
  vContCache.set(p, cmd);
  return cmd;
}

export function handleResume(ctx: SessionContext, p: string): HandlerResult | undefined {
  if (p === 'vCont?') return 'vCont;c;C;s;S;t';
  if (p.startsWith('vCont;')) {
    const cmd = parsedVCont(p);
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
