import { expect } from 'chai';
import * as fc from 'fast-check';
import { encodeReply, escapeBinary, FrameEvent, PacketDecoder, rleEncodeHex, unescapeBinary } from '../../stub/protocol/framing';
import { ReplyWriter, TextReply } from '../../stub/protocol/reply-writer';
import { RspClient } from './rsp-client';

function decode(bytes: string | Uint8Array, max = 64): FrameEvent[] {
  const d = new PacketDecoder(max);
  const out: FrameEvent[] = [];
  d.push(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes, (e) => out.push(e));
  return out;
}

describe('stub protocol framing', () => {
  it('decodes packets, acks, nacks and a raw 0x03', () => {
    const ev = decode('+$g#67-\x03$m0,1#fa');
    expect(ev.map((e) => e.kind)).to.deep.equal(['ack', 'packet', 'nack', 'interrupt', 'packet']);
    const p = ev[1] as Extract<FrameEvent, { kind: 'packet' }>;
    expect(p.body.toString()).to.equal('g');
    expect(p.checksumOk).to.equal(true);
  });

  it('flags a wrong or non-hex checksum', () => {
    expect((decode('$g#68')[0] as { checksumOk: boolean }).checksumOk).to.equal(false);
    expect((decode('$g#zz')[0] as { checksumOk: boolean }).checksumOk).to.equal(false);
  });

  it('restarts on an unescaped $ and keeps 0x03 inside a packet as data', () => {
    const ev = decode('$garbage$g#67');
    expect(ev).to.have.length(1);
    const bin = decode(Buffer.concat([Buffer.from('$X'), Buffer.from([3]), Buffer.from('#'), Buffer.from(((0x58 + 3) & 0xff).toString(16))]));
    expect(bin.map((e) => e.kind)).to.deep.equal(['packet']);
  });

  it('drops an oversized packet with bounded memory and reports it', () => {
    const d = new PacketDecoder(16);
    const out: FrameEvent[] = [];
    d.push(Buffer.from('$'), (e) => out.push(e));
    for (let i = 0; i < 1000; i++) d.push(Buffer.alloc(1024, 0x61), (e) => out.push(e));
    expect(out).to.have.length(0);
    d.push(Buffer.from('#00$g#67'), (e) => out.push(e));
    expect(out.map((e) => e.kind)).to.deep.equal(['oversized', 'packet']);
  });

  it('escapes and unescapes binary data', () => {
    const data = Uint8Array.from([0x23, 0x24, 0x7d, 0x2a, 0, 0xff]);
    const esc = escapeBinary(data);
    expect([...esc]).to.deep.equal([0x7d, 0x03, 0x7d, 0x04, 0x7d, 0x5d, 0x7d, 0x0a, 0, 0xff]);
    expect([...unescapeBinary(esc)!]).to.deep.equal([...data]);
    expect(unescapeBinary(Uint8Array.of(0x7d))).to.equal(undefined);
    expect(encodeReply('OK').toString()).to.equal('$OK#9a');
  });

  it('run-length encodes hex replies that decode back exactly, never using # or $ as a count', () => {
    const decode = (s: string): string => s.replace(/(.)\*(.)/g, (_m, c: string, n: string) => c.repeat(n.charCodeAt(0) - 29 + 1));
    for (const t of ['0'.repeat(1216), 'ab' + '0'.repeat(7) + 'cd', '0'.repeat(8), '1'.repeat(9), 'f'.repeat(300) + '0123', '00000']) {
      const e = rleEncodeHex(t);
      expect(e).to.not.match(/[#$]/);
      expect(decode(e)).to.equal(t);
    }
    expect(rleEncodeHex('0'.repeat(1216)).length).to.be.below(60);
    fc.assert(fc.property(fc.stringMatching(/^[0-9a-f]{0,300}$/), fc.nat(40), (t, n) => {
      const s = t + '0'.repeat(n);
      expect(decode(rleEncodeHex(s))).to.equal(s);
    }), { numRuns: 300 });
  });

  it('the reply writer frames text and hex replies that decode back exactly, in one buffer per batch', () => {
    fc.assert(fc.property(fc.array(fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.string({ maxLength: 80 }), fc.uint8Array({ maxLength: 40 }).map((b) => [...b].map((x) => x & 3))), { maxLength: 5 }), (replies) => {
      const w = new ReplyWriter();
      const expected: string[] = [];
      w.ack(true);
      for (const r of replies) {
        if (typeof r === 'string') { w.text(r); expected.push(r); }
        else { const b = Uint8Array.from(r); w.hex(b); expected.push(Buffer.from(b).toString('hex')); }
      }
      const out = w.take()!;
      expect(out[0]).to.equal(0x2b);
      expect(w.take()).to.equal(undefined);
      const ev = decode(out.subarray(1), 4000).filter((e) => e.kind === 'packet') as Array<Extract<FrameEvent, { kind: 'packet' }>>;
      expect(ev.map((e) => e.checksumOk)).to.deep.equal(expected.map(() => true));
      expect(ev.map((e) => RspClient.decodeBody(e.body.toString('latin1')))).to.deep.equal(expected);
      for (const e of ev) expect(e.body.toString('latin1')).to.not.match(/[#$]/);
    }), { numRuns: 300 });
    const w = new ReplyWriter();
    w.hex(new Uint8Array(608));
    expect(w.take()!.length).to.be.below(60); // a g reply of zeros, run-length encoded
    w.text('OK');
    expect(w.take()!.toString()).to.equal('$OK#9a');
    expect(w.resend()).to.equal(true);
    expect(w.take()!.toString()).to.equal('$OK#9a');
  });

  it('a reply built in place (the stop reply) frames as its text does; an aborted one leaves nothing', () => {
    const piece = fc.oneof(fc.stringMatching(/^[0-9a-zA-Z:;.]{0,20}$/), fc.integer({ min: 0, max: 0xffffffff }));
    fc.assert(fc.property(fc.array(piece, { maxLength: 12 }), fc.boolean(), (pieces, keepLast) => {
      const inPlace = new ReplyWriter();
      inPlace.keepLast = keepLast;
      const text = new TextReply();
      inPlace.text('OK');
      inPlace.beginPacket();
      for (const p of pieces) {
        if (typeof p === 'string') { inPlace.putText(p); text.putText(p); }
        else { inPlace.putHexLe32(p); text.putHexLe32(p); }
      }
      inPlace.endPacket();
      const byText = new ReplyWriter();
      byText.text('OK');
      byText.text(text.text);
      expect(inPlace.take()!.toString('latin1')).to.equal(byText.take()!.toString('latin1'));
      if (keepLast) {
        // a resend ('-') repeats the packet built in place
        const alone = new ReplyWriter();
        alone.text(text.text);
        expect(inPlace.resend()).to.equal(true);
        expect(inPlace.take()!.toString('latin1')).to.equal(alone.take()!.toString('latin1'));
      }
      inPlace.text('OK');
      inPlace.beginPacket();
      for (const p of pieces) if (typeof p === 'string') inPlace.putText(p); else inPlace.putHexLe32(p);
      inPlace.abortPacket();
      expect(inPlace.take()!.toString('latin1')).to.equal('$OK#9a');
    }), { numRuns: 300 });
    const t = new TextReply();
    t.putHexLe32(0x00101050);
    expect(t.text).to.equal('50101000');
  });

  it('never throws and round-trips any framed reply (property)', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      decode(bytes, 32);
    }), { numRuns: 500 });
    fc.assert(fc.property(fc.uint8Array({ maxLength: 100 }), (bytes) => {
      const ev = decode(encodeReply(bytes), 1000);
      expect(ev).to.have.length(1);
      const p = ev[0] as Extract<FrameEvent, { kind: 'packet' }>;
      expect(p.checksumOk).to.equal(true);
      expect([...unescapeBinary(p.body)!]).to.deep.equal([...bytes]);
    }), { numRuns: 300 });
  });
});
