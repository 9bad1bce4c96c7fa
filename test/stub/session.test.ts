import { expect } from 'chai';
import * as fc from 'fast-check';
import { startGdbServer, GdbServer } from '../../stub/server';
import { TARGET_XML } from '../../stub/target-xml';
import { G_PACKET_BYTES } from '../../stub/register-layout';
import { textToHex } from '../../stub/protocol/hex';
import { FakeVm, CODE, COUNTER, EXIT_CODE, GUEST_INT3 } from './fake-vm';
import { RspClient } from './rsp-client';

async function serve(vcpus = 1): Promise<{ vm: FakeVm; server: GdbServer; port: number }> {
  const vm = new FakeVm(vcpus);
  const server = await startGdbServer(vm, { transport: { kind: 'tcp', host: '127.0.0.1', port: 0 } });
  if (server.port === undefined) throw new Error('tcp expected');
  expect(server.address).to.equal(`127.0.0.1:${server.port}`);
  return { vm, server, port: server.port };
}

function le64(n: number): string {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b.toString('hex');
}

describe('stub session (packet level, FakeVm)', function () {
  let vm: FakeVm;
  let server: GdbServer;
  let c: RspClient;

  beforeEach(async () => {
    const s = await serve(2);
    vm = s.vm;
    server = s.server;
    c = await RspClient.connect({ port: s.port, host: '127.0.0.1' });
  });
  afterEach(async () => {
    c.close();
    await server.close();
  });

  it('answers the handshake as gdb 13 expects', async () => {
    c.sendRaw('+');
    const sup = await c.request('qSupported:multiprocess+;swbreak+;hwbreak+;xmlRegisters=i386');
    expect(sup).to.equal('PacketSize=4000;qXfer:features:read+;qXfer:threads:read+;QStartNoAckMode+;swbreak+;hwbreak+;vContSupported+');
    expect(await c.request('vMustReplyEmpty')).to.equal('');
    expect(await c.request('QStartNoAckMode')).to.equal('OK');
    c.noAck = true;
    const acksBefore = c.acks.length;
    expect(await c.request('?')).to.match(/^T05.*thread:01;$/);
    expect(await c.request('qAttached')).to.equal('1');
    expect(await c.request('qTStatus')).to.equal('');
    expect(await c.request('vCont?')).to.equal('vCont;c;C;s;S;t');
    expect(await c.request('qfThreadInfo')).to.equal('m01,02');
    expect(await c.request('qsThreadInfo')).to.equal('l');
    expect(await c.request('qC')).to.equal('QC01');
    expect(Buffer.from(await c.request('qThreadExtraInfo,2'), 'hex').toString()).to.equal('vCPU 1, vmx, stopped');
    expect(await c.request('qSomethingNew')).to.equal('');
    expect(c.acks.length).to.equal(acksBefore); // no acks in no-ack mode
  });

  it('acks, asks for a resend on a bad checksum and resends on -', async () => {
    c.sendRaw('$qAttached#00');
    await new Promise((r) => setTimeout(r, 50));
    expect(await c.request('qAttached')).to.equal('1');
    expect(c.acks).to.deep.equal(['-', '+']);
    c.sendRaw('-');
    expect(await c.next()).to.equal('1');
  });

  it('sends the ack and the reply of a packet in one write', async () => {
    const chunks: string[] = [];
    c.socket.on('data', (d: Buffer) => chunks.push(d.toString('latin1')));
    c.send('qAttached');
    await c.next();
    expect(chunks[0]).to.equal('+$1#31');
    chunks.length = 0;
    c.send('?');
    await c.next();
    expect(chunks).to.have.length(1);
    expect(chunks[0]).to.match(/^\+\$T05.*#[0-9a-f]{2}$/);
  });

  it('lists the threads with their extra info in one qXfer:threads:read document', async () => {
    await c.handshake();
    const r = await c.request('qXfer:threads:read::0,1000');
    expect(r).to.equal('l<?xml version="1.0"?>\n<threads>\n' +
      '<thread id="01" core="0">vCPU 0, vmx, stopped</thread>\n<thread id="02" core="1">vCPU 1, vmx, stopped</thread>\n</threads>\n');
    // in chunks: offset and length are honoured, the last one is 'l'
    let doc = '';
    for (let off = 0; ;) {
      const part = await c.request(`qXfer:threads:read::${off.toString(16)},20`);
      doc += part.slice(1);
      off += part.length - 1;
      if (part[0] === 'l') break;
      expect(part[0]).to.equal('m');
    }
    expect(doc).to.equal(r.slice(1));
    expect(await c.request('qXfer:threads:read:x:0,100')).to.equal('E00');
    expect(await c.request('qXfer:threads:read::zz,100')).to.match(/^E[0-9a-f]{2}$/);
  });

  it('serves target.xml in chunks that honour offset and length', async () => {
    await c.handshake();
    let xml = '';
    let off = 0;
    for (;;) {
      const r = await c.request(`qXfer:features:read:target.xml:${off.toString(16)},100`);
      expect(r[0]).to.be.oneOf(['m', 'l']);
      xml += r.slice(1);
      off += r.length - 1;
      if (r[0] === 'l') break;
    }
    expect(xml).to.equal(TARGET_XML);
    expect(await c.request('qXfer:features:read:other.xml:0,100')).to.equal('E00');
    expect(await c.request('qXfer:features:read:target.xml:zz,100')).to.match(/^E[0-9a-f]{2}$/);
  });

  it('answers malformed packets with Exx or empty and changes nothing', async () => {
    await c.handshake();
    const g = await c.request('g');
    const mem = Buffer.from(vm.mem).toString('hex');
    const bad = ['m', 'mzz,1', 'm100000', 'M100000,2:00', 'M100000,1:zz', 'Xzz', 'X100000,5:ab', 'G123', 'Gzz',
      'p', 'pzz', 'p9999', 'P10=12', 'Pzz=00', 'Z2,100100', 'Z2,zz,8', 'Z0,100000,2', 'Z9,1,1', 'z2,,', 'Hg99', 'Hx1',
      'T9', 'vCont;q', 'vCont;s:zz', 'vCont', 'qXfer:features:read:target.xml:1,', 'qRcmd,zz', 'C', 'Szz',
      'qThreadExtraInfo,9', 'M' + 'f'.repeat(30) + ',1:00', 'm' + 'f'.repeat(16) + ',8'];
    for (const p of bad) {
      expect(await c.request(p), p).to.match(/^(E[0-9a-f]{2}|E\.[ -~]+)?$/);
    }
    expect(await c.request('g')).to.equal(g);
    expect(Buffer.from(vm.mem).toString('hex')).to.equal(mem);
    expect(vm.slotWrites).to.have.length(0);
  });

  it('survives random packets and random bytes (property)', async () => {
    await c.handshake();
    const safe = fc.stringMatching(/^[mpqHTvZz?][ -~]{0,40}$/).filter((s) => !s.includes('#') && !s.includes('$') && !s.startsWith('vCont;') && !s.startsWith('vKill'));
    await fc.assert(fc.asyncProperty(safe, async (p) => {
      const r = await c.request(p);
      expect(r).to.be.a('string');
    }), { numRuns: 300 });
    c.sendRaw(Buffer.from([0x7d, 0x23, 0x00, 0xff, 0x2a]));
    expect(await c.request('qAttached')).to.equal('1');
  });

  it('rejects an oversized packet with E01 and keeps serving', async () => {
    await c.handshake();
    c.sendRaw('$M100000,4000:' + '00'.repeat(0x4000) + '#00');
    expect(await c.next()).to.equal('E01');
    expect(await c.request('qAttached')).to.equal('1');
  });

  it('round-trips g/G with the x87/SSE shadow and writes dr registers through the guest view', async () => {
    await c.handshake();
    const g = await c.request('g');
    expect(g.length).to.equal(G_PACKET_BYTES * 2);
    // fctrl (reg 32) = 0x37f, mxcsr (reg 56) = 0x1f80
    expect(await c.request('p20')).to.equal('7f030000');
    expect(await c.request('p38')).to.equal('801f0000');
    expect(await c.request('P3b=3412000000000000')).to.equal('OK');
    expect(vm.getRegister(0, 'dr0').lo).to.equal(0x1234);
    expect(await c.request('P28=' + '11'.repeat(16))).to.equal('OK'); // xmm0 shadow
    expect(await c.request('p28')).to.equal('11'.repeat(16));
    const g2 = await c.request('g');
    expect(await c.request('G' + g2)).to.equal('OK');
    expect(await c.request('g')).to.equal(g2);
    // a dr7 value the VM refuses: an error with the reason (E.text), not a crash
    expect(await c.request('P40=0000000001000000')).to.match(/^E\.dr7: .*63:32/);
    // Hg selects the vCPU
    expect(await c.request('Hg2')).to.equal('OK');
    expect(await c.request('p10')).to.equal(le64(CODE + 7));
  });

  it('hides its int3 from m and keeps M/X writes under it right', async () => {
    await c.handshake();
    const a = (CODE + 14).toString(16);
    expect(await c.request(`Z0,${a},1`)).to.equal('OK');
    expect(await c.request(`Z0,${a},1`)).to.equal('OK'); // idempotent
    expect(vm.mem[CODE + 14]).to.equal(0xcc);
    expect(vm.getCapability(0, 'intercept-bp')).to.equal(true);
    expect(await c.request(`m${a},2`)).to.equal('90eb');
    expect(await c.request(`M${a},1:f4`)).to.equal('OK');
    expect(vm.mem[CODE + 14]).to.equal(0xcc);
    expect(await c.request(`m${a},1`)).to.equal('f4');
    // X with escaped binary: 0x7d and 0x23 written, int3 kept
    expect(await c.request(Buffer.concat([Buffer.from(`X${a},2:`), Buffer.from([0x7d, 0x5d, 0x7d, 0x03])]))).to.equal('OK');
    expect(await c.request(`m${a},2`)).to.equal('7d23');
    expect(vm.mem[CODE + 15]).to.equal(0x23);
    expect(await c.request(`z0,${a},1`)).to.equal('OK');
    expect(await c.request(`z0,${a},1`)).to.equal('OK');
    expect(vm.mem[CODE + 14]).to.equal(0x7d);
    expect(vm.getCapability(0, 'intercept-bp')).to.equal(false);
  });

  it('turns Z1/Z2/Z4 into debugger slots on every vCPU, refuses a fifth, Z3 unsupported', async () => {
    await c.handshake();
    expect(await c.request('Z2,100200,10')).to.equal('OK'); // 16-byte struct: 2 slots
    for (const v of [0, 1]) {
      const last = vm.slotWrites.filter((w) => w.vcpu === v).pop()!;
      expect(last.slots.map((s) => s && `${s.type}:${s.address.lo.toString(16)}/${s.len}`)).to.deep.equal(
        ['write:100200/8', 'write:100208/8', null, null]);
      expect(vm.getCapability(v, 'intercept-db')).to.equal(true);
    }
    expect(await c.request('Z2,100301,4')).to.equal('E01'); // needs 3, only 2 free: nothing changes
    expect(vm.vcpus[0].slots.filter((s) => s).length).to.equal(2);
    expect(await c.request('Z4,100100,8')).to.equal('OK');
    expect(await c.request('Z1,100000,1')).to.equal('OK');
    expect(await c.request('Z1,100000,1')).to.equal('OK'); // idempotent
    expect(await c.request('Z2,100400,1')).to.equal('E01'); // fifth slot
    expect(await c.request('Z3,100100,8')).to.equal('');
    expect(vm.vcpus[1].slots.map((s) => s && s.type)).to.deep.equal(['write', 'write', 'access', 'exec']);
    for (const p of ['z2,100200,10', 'z4,100100,8', 'z1,100000,1', 'z1,100000,1']) expect(await c.request(p)).to.equal('OK');
    expect(vm.vcpus[0].slots.every((s) => s === null)).to.equal(true);
    expect(vm.getCapability(1, 'intercept-db')).to.equal(false);
    expect(await c.request('Z2,100301,4')).to.equal('OK'); // unaligned 4 bytes: 3 slots
    expect(vm.vcpus[0].slots.filter((s) => s).length).to.equal(3);
  });

  it('reports watchpoint, hardware and software breakpoint stops with expedited registers', async () => {
    await c.handshake();
    expect(await c.request(`Z2,${COUNTER.toString(16)},8`)).to.equal('OK');
    const w = await c.request('vCont;c');
    expect(w).to.match(/^T05/);
    expect(w).to.contain(`10:${le64(CODE + 7)};`);
    expect(w).to.contain('thread:01;');
    expect(w).to.contain(`watch:${COUNTER.toString(16).padStart(16, '0')};`);
    expect(await c.request(`z2,${COUNTER.toString(16)},8`)).to.equal('OK');
    expect(await c.request(`Z4,${(COUNTER + 4).toString(16)},4`)).to.equal('OK');
    expect(await c.request('vCont;c')).to.contain(`awatch:${(COUNTER + 4).toString(16).padStart(16, '0')};`);
    expect(await c.request(`z4,${(COUNTER + 4).toString(16)},4`)).to.equal('OK');
    expect(await c.request(`Z1,${(CODE + 15).toString(16)},1`)).to.equal('OK');
    const h = await c.request('vCont;c');
    expect(h).to.contain('hwbreak:;');
    expect(h).to.contain(`10:${le64(CODE + 15)};`);
    expect(await c.request(`z1,${(CODE + 15).toString(16)},1`)).to.equal('OK');
    expect(await c.request(`Z0,${CODE.toString(16)},1`)).to.equal('OK');
    const s = await c.request('vCont;c');
    expect(s).to.contain('swbreak:;');
    expect(s).to.contain(`10:${le64(CODE)};`);
    expect(await c.request(`z0,${CODE.toString(16)},1`)).to.equal('OK');
    // a stop on vCPU 1 makes it the register thread
    const st = await c.request('vCont;s:2');
    expect(st).to.match(/^T05.*thread:02;$/);
    expect(await c.request('p10')).to.equal(/10:([0-9a-f]{16});/.exec(st)![1]);
    expect(await c.request('p10')).to.equal(le64(vm.getRegister(1, 'rip').lo));
  });

  it('steps with the guest TF and drops TF afterwards', async () => {
    await c.handshake();
    const pcs: number[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await c.request('vCont;s:1');
      pcs.push(Number(Buffer.from(/10:([0-9a-f]{16});/.exec(r)![1], 'hex').readBigUInt64LE()));
    }
    expect(pcs).to.deep.equal([CODE + 7, CODE + 14, CODE + 15, CODE, CODE + 7]);
    expect(vm.getRegister(0, 'rflags').lo & 0x100, 'no TF in the guest state').to.equal(0);
    expect(vm.getRegister(1, 'rip').lo).to.equal(CODE + 7); // vCPU 1 stayed stopped
    // the step set-up waits for the next step; a monitor command or a continue drops it first
    expect(vm.getCapability(0, 'rflags-tf')).to.equal(true);
    c.send('qRcmd,' + textToHex('help'));
    while ((await c.next()) !== 'OK');
    expect(vm.getCapability(0, 'rflags-tf')).to.equal(false);
    expect(vm.getCapability(0, 'intercept-db')).to.equal(false);
    expect(await c.request('vCont;s:1')).to.match(/^T05/);
    expect(vm.getCapability(0, 'rflags-tf')).to.equal(true);
    c.send('vCont;c');
    await new Promise((r) => setTimeout(r, 30));
    expect(vm.getCapability(0, 'rflags-tf'), 'a continue runs without the step set-up').to.equal(false);
    expect(vm.getCapability(0, 'intercept-db')).to.equal(false);
    c.sendRaw('\x03');
    expect(await c.next()).to.match(/^T02/);
    // stepping the other vCPU drops vCPU 0's set-up
    expect(await c.request('vCont;s:1')).to.match(/^T05/);
    expect(await c.request('vCont;s:2')).to.match(/^T05.*thread:02;/);
    expect(vm.getCapability(0, 'rflags-tf')).to.equal(false);
    expect(vm.getCapability(1, 'rflags-tf')).to.equal(true);
  });

  it('legacy s steps only the Hc thread; legacy c resumes all', async () => {
    await c.handshake();
    expect(await c.request('Hc2')).to.equal('OK');
    const before0 = vm.getRegister(0, 'rip').lo;
    expect(await c.request('s')).to.match(/^T05.*thread:02;$/);
    expect(vm.getRegister(0, 'rip').lo).to.equal(before0);
    expect(vm.getRegister(1, 'rip').lo).to.equal(CODE + 14);
    expect(await c.request(`s${(CODE).toString(16)}`)).to.match(/^T05.*thread:02;$/);
    expect(vm.getRegister(1, 'rip').lo).to.equal(CODE + 7);
    expect(await c.request(`Z2,${COUNTER.toString(16)},8`)).to.equal('OK');
    expect(await c.request('c')).to.contain('watch:');
  });

  it('stops a tight loop on 0x03 with T02', async () => {
    await c.handshake();
    c.send('vCont;c');
    await new Promise((r) => setTimeout(r, 30));
    const t0 = Date.now();
    c.sendRaw('\x03');
    expect(await c.next()).to.match(/^T02.*thread:0[12];$/);
    expect(Date.now() - t0).to.be.below(1000);
    expect(vm.instructions).to.be.greaterThan(1000);
  });

  it('hands back a guest int3, reports exit with W and triple faults with a message', async () => {
    await c.handshake();
    expect(await c.request(`Z0,${(CODE + 15).toString(16)},1`)).to.equal('OK');
    expect(await c.request(`P10=${le64(GUEST_INT3)}`)).to.equal('OK');
    const r = await c.request('vCont;c:1');
    expect(r).to.contain('swbreak:;');
    expect(vm.guestInt3s).to.equal(1); // the guest took its own int3
    expect(vm.getCapability(0, 'intercept-bp')).to.equal(true);
    expect(await c.request(`z0,${(CODE + 15).toString(16)},1`)).to.equal('OK');
    // triple fault: an undefined opcode in the fake
    expect(await c.request('M100050,1:0f')).to.equal('OK');
    expect(await c.request(`P10=${le64(0x100050)}`)).to.equal('OK');
    c.send('vCont;c:1');
    const o = await c.next();
    expect(Buffer.from(o.slice(1), 'hex').toString()).to.match(/triple fault/);
    expect(await c.next()).to.match(/^T0b/);
  });

  it('reports the guest exit with W and resolves guestExit', async () => {
    await c.handshake();
    expect(await c.request(`P10=${le64(EXIT_CODE)}`)).to.equal('OK');
    expect(await c.request('vCont;c:1')).to.equal('W07');
    expect(await server.guestExit).to.deep.equal({ kind: 'exit', status: 7 });
    expect(await server.closed).to.equal(7);
  });

  it('monitor commands answer with O packets then OK', async () => {
    await c.handshake();
    c.send('qRcmd,' + textToHex('help'));
    let out = '';
    for (;;) {
      const r = await c.next();
      if (r === 'OK') break;
      expect(r[0]).to.equal('O');
      out += Buffer.from(r.slice(1), 'hex').toString();
    }
    expect(out).to.contain('dr [VCPU]');
    expect(out).to.contain('vmexits');
    c.send('qRcmd,' + textToHex('bogus'));
    expect(Buffer.from((await c.next()).slice(1), 'hex').toString()).to.contain('unknown monitor command');
    expect(await c.next()).to.equal('E01');
  });

  it('refuses a second debugger without disturbing the first; detach cleans up and re-attach works', async () => {
    await c.handshake();
    expect(await c.request('Z0,100000,1')).to.equal('OK');
    expect(await c.request('Z2,100100,8')).to.equal('OK');
    const port = server.port!;
    const second = await RspClient.connect({ port, host: '127.0.0.1' });
    second.sendRaw('+$qAttached#8f');
    await second.next(2000).then(() => { throw new Error('second connection was served'); }, (e: Error) => {
      expect(e.message).to.match(/closed/);
    });
    expect(await c.request('qAttached')).to.equal('1');
    expect(await c.request('D')).to.equal('OK');
    c.close();
    expect(vm.mem[CODE]).to.equal(0x48);
    expect(vm.vcpus[0].slots.every((s) => s === null)).to.equal(true);
    expect(vm.getCapability(0, 'intercept-db')).to.equal(false);
    await new Promise((r) => setTimeout(r, 50));
    c = await RspClient.connect({ port, host: '127.0.0.1' });
    await c.handshake();
    expect(await c.request('?')).to.match(/^T05/);
  });
});
