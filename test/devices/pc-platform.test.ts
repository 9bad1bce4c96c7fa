import { expect } from 'chai';
import { AccessSize } from '../../vmm/devices/device';
import { PcPlatform } from '../../vmm/devices/pc-platform';

/** A minimal bus over the platform's ranges (the VM's real bus is vmm/devices/bus.ts). */
function bus(p: PcPlatform) {
  const ports = new Map<number, ReturnType<PcPlatform['portRanges']>[number]['device']>();
  for (const r of p.portRanges()) for (let i = 0; i < r.count; i++) {
    expect(ports.has(r.base + i), `port 0x${(r.base + i).toString(16)} claimed twice`).to.equal(false);
    ports.set(r.base + i, r.device);
  }
  const [apic] = p.mmioRanges();
  return {
    inb: (port: number, size: AccessSize = 1) => ports.get(port)!.portRead(port, size, 0),
    outb: (port: number, v: number, size: AccessSize = 1) => ports.get(port)!.portWrite(port, size, v, 0),
    mmioRead: (addr: number, vcpu: number) => apic.device.mmioRead(addr - apic.base, 4, vcpu),
  };
}

describe('devices: the PC platform as kvm-unit-tests\' start-up sees it', () => {
  it('serial output, fw_cfg CPU count, PIC masked, APIC IDs at 0xFEE00020, PM timer ticking, UART IRQ 4 through the PIC', () => {
    const out: number[] = [];
    let tsc = 0;
    const p = new PcPlatform({ vcpus: 2, memorySize: 64 << 20, serialOutput: (b) => out.push(b), now: () => tsc });
    const b = bus(p);
    b.outb(0x3fb, 0x83); b.outb(0x3f8, 1); b.outb(0x3f9, 0); b.outb(0x3fb, 0x03);
    for (const c of 'PASS: x\n') { while (!(b.inb(0x3fd) & 0x20)); b.outb(0x3f8, c.charCodeAt(0)); }
    expect(Buffer.from(out).toString()).to.equal('PASS: x\n');
    b.outb(0x510, 5, 2);
    expect(b.inb(0x511) | (b.inb(0x511) << 8)).to.equal(2);
    b.outb(0x21, 0xff); b.outb(0xa1, 0xff);
    expect(b.inb(0x21)).to.equal(0xff);
    expect(b.mmioRead(0xfee00020, 1)).to.equal(1 << 24);
    expect(p.mmioRanges()[0]).to.include({ base: 0xfee00000, size: 0x1000 });
    const t0 = b.inb(0x608, 4);
    tsc += 1_000_000;
    expect(b.inb(0x608, 4) - t0).to.equal(3579);
    // A kernel that unmasks IRQ4 and enables the UART's THRE interrupt sees it through the PIC.
    b.outb(0x21, 0xef); b.outb(0x3fc, 0x08); b.outb(0x3f9, 0x02);
    expect(p.pic.hasInterrupt()).to.equal(true);
    expect(p.pic.acknowledge()).to.equal(0x08 + 4);
  });
});
