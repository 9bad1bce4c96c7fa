/**
 * Issue 12: what a client that does not behave like gdb costs the server (bounded memory,
 * no refusal of a quick reconnect), and the packet-level side of G and lldb's query.
 */
import { expect } from 'chai';
import * as v8 from 'v8';
import * as vm from 'vm';
import { GdbServer, startGdbServer } from '../../stub/server';
import { G_PACKET_BYTES, regNumber } from '../../stub/register-layout';
import { CODE, FakeVm } from './fake-vm';
import { RspClient } from './rsp-client';

const MIB = 1024 * 1024;

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** Buffer memory of this process after a full collection (garbage chunks do not count). */
function liveBuffers(): number {
  gc();
  return process.memoryUsage().arrayBuffers;
}

/** Writes `packets` framed, as fast as the server takes them, for at most `ms`; returns the bytes it took. */
async function flood(c: RspClient, packet: Buffer, count: number, ms: number): Promise<number> {
  const framed = RspClient.frame(packet);
  const deadline = Date.now() + ms;
  let sent = 0;
  for (let i = 0; i < count && Date.now() < deadline; i++) {
    if (!c.socket.write(framed)) {
      const drained = await Promise.race([
        new Promise<boolean>((r) => c.socket.once('drain', () => r(true))),
        new Promise<boolean>((r) => setTimeout(() => r(false), Math.max(0, deadline - Date.now()))),
      ]);
      if (!drained) return sent;
    }
    sent += framed.length;
  }
  return sent;
}

describe('stub connection limits (packet level, FakeVm)', function () {
  this.timeout(60000);
  let fake: FakeVm;
  let server: GdbServer;
  let port: number;
  let log: string[];

  beforeEach(async () => {
    fake = new FakeVm(1);
    log = [];
    server = await startGdbServer(fake, { transport: { kind: 'tcp', host: '127.0.0.1', port: 0 }, log: (l) => log.push(l) });
    port = server.port!;
  });

  afterEach(async () => {
    await server.close();
  });

  it('a debugger reconnecting right after a disconnect is never refused', async () => {
    for (let i = 0; i < 60; i++) {
      const c = await RspClient.connect({ port, host: '127.0.0.1' });
      const sup = await c.handshake().catch((e: Error) => `attempt ${i}: ${e.message}`);
      expect(sup).to.match(/^PacketSize=/);
      c.socket.end(); // as gdb closes its socket: the next connect follows at once
    }
  });

  it('a refused G changes no register (all or nothing) and says why', async () => {
    const c = await RspClient.connect({ port, host: '127.0.0.1' });
    await c.handshake();
    const g = await c.request('g');
    const block = Buffer.from(g, 'hex');
    block.writeUInt32LE(0x1234, 0); // rax: accepted on its own
    const dr7 = 592;
    expect(regNumber('dr7')).to.equal(0x40);
    block.writeUInt32LE(0x401, dr7);
    block.writeUInt32LE(1, dr7 + 4); // dr7 bits 63:32: refused by the VM
    expect(block.length).to.equal(G_PACKET_BYTES);
    expect(await c.request('G' + block.toString('hex'))).to.match(/^E\.dr7: .*63:32/);
    expect(await c.request('g')).to.equal(g);
    expect(fake.getRegister(0, 'rax').lo).to.equal(0);
    c.close();
  });

  it('answers lldb\'s qWatchpointSupportInfo with the four slots', async () => {
    const c = await RspClient.connect({ port, host: '127.0.0.1' });
    await c.handshake();
    expect(await c.request('qWatchpointSupportInfo:')).to.equal('num:4;');
    expect(await c.request('qWatchpointSupportInfo')).to.equal('num:4;');
    c.close();
  });

  it('a client that pipelines requests and never reads costs bounded memory; replies stay in order', async () => {
    const c = await RspClient.connect({ port, host: '127.0.0.1' });
    await c.handshake();
    c.socket.pause(); // never reads
    const before = liveBuffers();
    await flood(c, Buffer.from(`m${CODE.toString(16)},2000`), 20000, 5000);
    await new Promise((r) => setTimeout(r, 500));
    const grown = liveBuffers() - before;
    expect(grown, `grew ${(grown / MIB).toFixed(1)} MiB`).to.be.lessThan(40 * MIB);
    c.close();
    // a well-behaved pipelining client still gets every reply, in order
    const d = await RspClient.connect({ port, host: '127.0.0.1' });
    await d.handshake();
    d.socket.pause();
    for (let i = 0; i < 300; i++) d.send(`m${(CODE + i).toString(16)},1`);
    await new Promise((r) => setTimeout(r, 200));
    d.socket.resume();
    for (let i = 0; i < 300; i++) expect(await d.next()).to.equal(fake.mem[CODE + i].toString(16).padStart(2, '0'));
    d.close();
  });

  it('packets sent while the guest runs are held up to a bound (the rest dropped); 0x03 still stops it', async () => {
    const c = await RspClient.connect({ port, host: '127.0.0.1' });
    await c.handshake();
    c.send('vCont;c'); // the FakeVm program loops forever
    await new Promise((r) => setTimeout(r, 50));
    const body = Buffer.from(`M${(CODE + 0x1000).toString(16)},1ff0:${'00'.repeat(0x1ff0)}`);
    const before = liveBuffers();
    const taken = await flood(c, body, 5000, 10000);
    const grown = liveBuffers() - before;
    expect(taken).to.be.greaterThan(40 * MIB);
    expect(grown, `grew ${(grown / MIB).toFixed(1)} MiB`).to.be.lessThan(16 * MIB);
    expect(log.join('\n')).to.contain('dropping packets sent while the guest runs');
    c.sendRaw(Buffer.from([3]));
    expect(await c.next()).to.match(/^T02/);
    c.close();
    await new Promise((r) => setTimeout(r, 50));
    const d = await RspClient.connect({ port, host: '127.0.0.1' });
    expect(await d.handshake()).to.match(/^PacketSize=/);
    expect(await d.request('?')).to.match(/^T05/);
    d.close();
  });
});
