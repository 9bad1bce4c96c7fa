/** Connection-level packets: qSupported, vMustReplyEmpty, QStartNoAckMode, ?, qAttached, qTStatus, D, k. */
import { parseSupported } from '../commands/query';
import { SLOT_COUNT } from '../dregs';
import { EMPTY, HandlerResult, SessionContext } from './context';

export function handleBase(ctx: SessionContext, p: string): HandlerResult | undefined {
  if (p.startsWith('qSupported')) {
    ctx.gdbFeatures = parseSupported(p);
    return `PacketSize=${ctx.packetSize.toString(16)};qXfer:features:read+;qXfer:threads:read+;QStartNoAckMode+;swbreak+;hwbreak+;vContSupported+`;
  }
  switch (p) {
    case 'vMustReplyEmpty': return EMPTY;
    case 'QStartNoAckMode': ctx.startNoAck(); return 'OK';
    case '?': return ctx.currentStopReply();
    case 'qAttached': return '1';
    case 'qTStatus': return EMPTY;
    // lldb asks how many watchpoints it may set: the four debug-register slots
    case 'qWatchpointSupportInfo': case 'qWatchpointSupportInfo:': return `num:${SLOT_COUNT};`;
    case 'D': ctx.detach(); return 'OK';
    case 'k': ctx.kill(); return 'async';
  }
  if (/^D;[0-9a-fA-F]+$/.test(p)) { ctx.detach(); return 'OK'; }
  if (/^vKill;[0-9a-fA-F]+$/.test(p)) { ctx.kill(); return 'OK'; }
  return undefined;
}
