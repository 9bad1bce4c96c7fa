import { expect } from 'chai';
import { FW_CFG_PORT_DATA as DATA, FW_CFG_PORT_SELECTOR as SEL, FwCfg } from '../../vmm/devices/fw-cfg';
import { PmTimer } from '../../vmm/devices/pm-timer';
import { ticksAt, TSC_HZ } from '../../vmm/devices/tsc';
import { Uart16550 } from '../../vmm/devices/uart16550';

describe('devices: 16550 UART', () => {
  it('kvm-unit-tests\' serial_init and output: divisor latch, LCR, LSR THRE/TEMT, bytes out', () => {
    const out: number[] = [];
    const u = new Uart16550((b) => out.push(b));
    const lcr = u.portRead(0x3fb, 1, 0);
    u.portWrite(0x3fb, 1, lcr | 0x80, 0);
    u.portWrite(0x3f8, 1, 0x01, 0); u.portWrite(0x3f9, 1, 0x00, 0);
    expect(u.portRead(0x3f8, 1, 0)).to.equal(1);               // DLL reads back with DLAB
    u.portWrite(0x3fb, 1, 0x03, 0);
    expect(u.divisorLatch).to.equal(1);
    u.portWrite(0x3f9, 1, 0, 0); u.portWrite(0x3fa, 1, 0, 0); u.portWrite(0x3fc, 1, 0x03, 0);
    for (const ch of 'ok\n') {
      expect(u.portRead(0x3fd, 1, 0) & 0x60).to.equal(0x60);
      u.portWrite(0x3f8, 1, ch.charCodeAt(0), 0);
    }
    expect(Buffer.from(out).toString()).to.equal('ok\n');
    u.portWrite(0x3ff, 1, 0x5a, 0);
    expect(u.portRead(0x3ff, 1, 0)).to.equal(0x5a);
  });

  it('loopback (Linux probe): THR goes to RBR, MSR mirrors MCR; nothing is output', () => {
    const out: number[] = [];
    const u = new Uart16550((b) => out.push(b));
    u.portWrite(0x3fc, 1, 0x1f, 0);
    expect(u.portRead(0x3fe, 1, 0) & 0xf0).to.equal(0xf0);
    u.portWrite(0x3f8, 1, 0x42, 0);
    expect(u.portRead(0x3fd, 1, 0) & 1).to.equal(1);
    expect(u.portRead(0x3f8, 1, 0)).to.equal(0x42);
    expect(u.portRead(0x3fd, 1, 0) & 1).to.equal(0);
    expect(out).to.deep.equal([]);
  });

  it('THRE interrupt: IER, IIR identification, cleared by reading IIR, IRQ gated by OUT2', () => {
    const levels: boolean[] = [];
    const u = new Uart16550(() => undefined, (l) => levels.push(l));
    expect(u.portRead(0x3fa, 1, 0)).to.equal(0x01);
    u.portWrite(0x3fc, 1, 0x08, 0);                             // OUT2
    expect(u.portWrite(0x3f9, 1, 0x02, 0)).to.deep.equal({ kind: 'wake' });
    expect(levels).to.deep.equal([true]);
    expect(u.portRead(0x3fa, 1, 0)).to.equal(0x02);
    expect(levels).to.deep.equal([true, false]);
    expect(u.portRead(0x3fa, 1, 0)).to.equal(0x01);
    u.portWrite(0x3f8, 1, 0x41, 0);
    expect(levels).to.deep.equal([true, false, true]);
  });
});

describe('devices: 16550 UART receive side', () => {
  const bytes = (t: string) => new Uint8Array(Buffer.from(t));
  /** RBR reads while LSR.DR is set. */
  const drain = (u: Uart16550) => {
    const got: number[] = [];
    while (u.portRead(0x3fd, 1, 0) & 1) got.push(u.portRead(0x3f8, 1, 0));
    return Buffer.from(got).toString();
  };

  it('flow control: host bytes wait on the line until the guest asserts RTS', () => {
    const u = new Uart16550(() => undefined);
    u.feed(bytes('early'));
    expect(u.portRead(0x3fd, 1, 0) & 1).to.equal(0);
    u.portWrite(0x3fa, 1, 0x07, 0);                            // FIFO on and cleared: nothing lost
    expect(u.pendingInput).to.equal(5);
    u.portWrite(0x3fc, 1, 0x03, 0);                            // DTR RTS
    expect(drain(u)).to.equal('early');
    u.portWrite(0x3fc, 1, 0x01, 0);                            // RTS off again
    u.feed(bytes('late'));
    expect(u.portRead(0x3fd, 1, 0) & 1).to.equal(0);
    u.portWrite(0x3fc, 1, 0x03, 0);
    expect(drain(u)).to.equal('late');
  });

  it('FIFOs off: one byte at a time in the holding register, the rest waits on the line', () => {
    const u = new Uart16550(() => undefined);
    u.portWrite(0x3fc, 1, 0x02, 0);                            // RTS
    expect(u.portRead(0x3fd, 1, 0) & 1).to.equal(0);
    u.feed(bytes('abc'));
    expect(u.receiveRoom).to.equal(0);
    expect(u.pendingInput).to.equal(2);
    expect(u.portRead(0x3f8, 1, 0)).to.equal(0x61);
    expect(u.pendingInput).to.equal(1);                       // refilled from the line
    expect(drain(u)).to.equal('bc');
    expect(u.portRead(0x3f8, 1, 0)).to.equal(0);              // empty: 0, DR clear
    expect(u.pendingInput).to.equal(0);
  });

  it('FIFOs on: 16 bytes in the FIFO, a 100-byte paste arrives whole and in order', () => {
    const u = new Uart16550(() => undefined);
    u.portWrite(0x3fc, 1, 0x02, 0);                            // RTS
    u.portWrite(0x3fa, 1, 0x07, 0);                            // FIFO on, cleared
    const text = Array.from({ length: 100 }, (_, i) => String.fromCharCode(33 + (i % 90))).join('');
    u.feed(bytes(text.slice(0, 60)));
    u.feed(bytes(text.slice(60)));
    expect(u.receiveRoom).to.equal(0);
    expect(u.pendingInput).to.equal(100 - 16);
    expect(drain(u)).to.equal(text);
  });

  it('FCR: clearing the receive FIFO drops what it holds, not what waits on the line', () => {
    const u = new Uart16550(() => undefined);
    u.portWrite(0x3fc, 1, 0x02, 0);                            // RTS
    u.portWrite(0x3fa, 1, 0x01, 0);
    u.feed(bytes('0123456789abcdefXYZ'));
    u.portWrite(0x3fa, 1, 0x03, 0);                            // FIFO on, receive FIFO cleared
    expect(drain(u)).to.equal('XYZ');
  });

  it('received-data interrupt: IER.RDA, trigger level (RDA) and below it the timeout ID, IRQ gated by OUT2', () => {
    const levels: boolean[] = [];
    const u = new Uart16550(() => undefined, (l) => levels.push(l));
    u.portWrite(0x3fa, 1, 0x81, 0);                            // FIFO on, trigger level 8
    u.portWrite(0x3fc, 1, 0x0a, 0);                            // RTS OUT2
    u.portWrite(0x3f9, 1, 0x01, 0);                            // IER: RDA only
    expect(levels).to.deep.equal([]);
    expect(u.feed(bytes('abc'))).to.equal(true);               // the line went up
    expect(u.portRead(0x3fa, 1, 0)).to.equal(0xcc);            // FIFO bits | character timeout
    expect(u.feed(bytes('defgh'))).to.equal(false);            // already up
    expect(u.portRead(0x3fa, 1, 0)).to.equal(0xc4);            // 8 bytes: data available
    expect(drain(u)).to.equal('abcdefgh');
    expect(u.portRead(0x3fa, 1, 0)).to.equal(0xc1);            // none pending
    expect(levels).to.deep.equal([true, false]);
    u.portWrite(0x3fc, 1, 0x02, 0);                            // OUT2 off: the line stays low
    expect(u.feed(bytes('x'))).to.equal(false);
    expect(u.portRead(0x3fa, 1, 0)).to.equal(0xcc);            // identified all the same
    expect(levels).to.deep.equal([true, false]);
  });

  it('loopback cuts the line: host bytes wait until it ends, looped bytes are received', () => {
    const out: number[] = [];
    const u = new Uart16550((b) => out.push(b));
    u.portWrite(0x3fa, 1, 0x01, 0);
    u.portWrite(0x3fc, 1, 0x10, 0);                            // loopback
    u.feed(bytes('host'));
    u.portWrite(0x3f8, 1, 0x41, 0);
    expect(drain(u)).to.equal('A');
    u.portWrite(0x3fc, 1, 0x03, 0);                            // loopback off
    expect(drain(u)).to.equal('host');
    expect(out).to.deep.equal([]);
  });
});

describe('devices: fw_cfg', () => {
  const read = (f: FwCfg, key: number, n: number) => {
    f.portWrite(SEL, 2, key, 0);
    const b: number[] = [];
    for (let i = 0; i < n; i++) b.push(f.portRead(DATA, 1, 0));
    return b;
  };
  it('signature, ID, RAM size, CPU counts, unknown keys zero, reads past the end zero', () => {
    const f = new FwCfg({ ramSize: 64 * 1024 * 1024, cpus: 2 });
    expect(Buffer.from(read(f, 0, 4)).toString()).to.equal('QEMU');
    expect(read(f, 1, 4)).to.deep.equal([1, 0, 0, 0]);
    expect(read(f, 3, 8)).to.deep.equal([0, 0, 0, 4, 0, 0, 0, 0]);
    expect(read(f, 5, 2)).to.deep.equal([2, 0]);
    expect(read(f, 0x0f, 2)).to.deep.equal([2, 0]);
    expect(read(f, 0x11, 8)).to.deep.equal([0, 0, 0, 0, 0, 0, 0, 0]); // FW_CFG_MAX_RAM: no limit
    expect(read(f, 0x8000, 4)).to.deep.equal([0, 0, 0, 0]);
    expect(read(f, 5, 4)).to.deep.equal([2, 0, 0, 0]);
    f.portWrite(DATA, 1, 0x99, 0);                               // ignored
    expect(read(f, 0, 1)).to.deep.equal([0x51]);
  });
});

describe('devices: time (TSC, ACPI PM timer)', () => {
  it('ticksAt is exact and monotonic; the PM timer is 24 bits at 3.579545 MHz of the TSC', () => {
    expect(ticksAt(TSC_HZ, 3579545)).to.equal(3579545);
    expect(ticksAt(2 ** 52, 3579545)).to.equal(Number((2n ** 52n * 3579545n) / 1000000000n));
    expect(ticksAt(999, 3579545)).to.equal(3); // 999 ns -> 3.576 ticks
    let now = 0;
    const t = new PmTimer(() => now);
    expect(t.portRead(0x608, 4, 0)).to.equal(0);
    now = 1_000_000; // 1 ms
    expect(t.portRead(0x608, 4, 0)).to.equal(3579);
    now = 5 * TSC_HZ;  // wraps at 2^24
    expect(t.portRead(0x608, 4, 0)).to.equal((5 * 3579545) % 0x1000000);
    expect(t.portRead(0x609, 1, 0)).to.equal(((5 * 3579545) % 0x1000000 >>> 8) & 0xff);
  });
});
