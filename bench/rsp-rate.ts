/**
 * The round-trip client of the stub benchmark, run as its own process so that it never
 * shares the stub's event loop (gdbserver gets its client in another process too).
 * Usage: node rsp-rate.js PORT MADDR|rsp MS  -> prints {"g":n,"m":n}
 */
import { RspClient } from '../test/stub/rsp-client';

export async function measureRoundTrips(port: number, mAddress: number | 'rsp', ms: number): Promise<{ g: number; m: number }> {
  const c = await RspClient.connect({ host: '127.0.0.1', port });
  try {
    await c.handshake();
    await c.request('?');
    const regs = await c.request('g');
    const addr = mAddress === 'rsp' ? Number(Buffer.from(regs.slice(7 * 16, 8 * 16), 'hex').readBigUInt64LE()) : mAddress;
    const rate = async (packet: string): Promise<number> => {
      // warm up (JIT, caches) on both sides before timing
      for (let w = performance.now(); performance.now() - w < 200;) await c.request(packet);
      const t0 = performance.now();
      let n = 0;
      while (performance.now() - t0 < ms) {
        const r = await c.request(packet);
        if (r.startsWith('E') || r.length === 0) throw new Error(`${packet} -> ${r}`);
        n++;
      }
      return n / ((performance.now() - t0) / 1000);
    };
    return { g: await rate('g'), m: await rate(`m${addr.toString(16)},40`) };
  } finally {
    c.close();
  }
}

/** Milliseconds from a raw 0x03 to the stop reply while the target runs (worst of `n`). */
export async function measureInterrupt(port: number, n: number): Promise<{ worstMs: number; meanMs: number }> {
  const c = await RspClient.connect({ host: '127.0.0.1', port });
  try {
    await c.handshake();
    await c.request('?');
    await c.request('vCont?');
    let worst = 0;
    let sum = 0;
    for (let i = 0; i < n; i++) {
      c.send('vCont;c');
      await new Promise((r) => setTimeout(r, 50));
      const t0 = performance.now();
      c.sendRaw('\x03');
      const reply = await c.next(5000);
      const ms = performance.now() - t0;
      if (!/^[TS]02/.test(reply)) throw new Error(`interrupt -> ${reply}`);
      worst = Math.max(worst, ms);
      sum += ms;
    }
    return { worstMs: worst, meanMs: sum / n };
  } finally {
    c.close();
  }
}

if (require.main === module) {
  const [port, addr, ms] = process.argv.slice(2);
  if (addr === 'intr') {
    measureInterrupt(Number(port), Number(ms)).then((r) => process.stdout.write(JSON.stringify(r) + '\n'), (e) => {
      process.stderr.write(`rsp-rate: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(1);
    });
  } else measureRoundTrips(Number(port), addr === 'rsp' ? 'rsp' : Number(addr), Number(ms)).then((r) => {
    process.stdout.write(JSON.stringify(r) + '\n');
  }, (e) => {
    process.stderr.write(`rsp-rate: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  });
}
