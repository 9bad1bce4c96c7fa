import { expect } from 'chai';
import { DeviceBus } from '../../vmm/devices/bus';
import { MmioMap } from '../../vmm/mmio-map';
import { DebugConsole } from '../../vmm/devices/debug-console';
import { AccessSize, DeviceEffect, MmioDevice, PortDevice } from '../../vmm/devices/device';
import { ExitPort } from '../../vmm/devices/exit-port';
import { GuestTimer } from '../../vmm/devices/guest-timer';
import { attachDevices, buildDevices } from '../../vmm/api/machine-devices';
import { DEFAULT_VM_OPTIONS } from '../../vmm/api/vm-options';

/** A port device that records its accesses and answers reads with port + size. */
class Recorder implements PortDevice {
  readonly log: string[] = [];
  constructor(readonly name: string) {}
  portRead(port: number, size: AccessSize, vcpu: number): number {
    this.log.push(`r ${port.toString(16)} ${size} ${vcpu}`);
    return port + size;
  }
  portWrite(port: number, size: AccessSize, value: number, vcpu: number): DeviceEffect {
    this.log.push(`w ${port.toString(16)} ${size} ${value.toString(16)} ${vcpu}`);
    return null;
  }
}

const mmio = (name: string): MmioDevice => ({
  name,
  mmioRead: () => 0,
  mmioWrite: () => null,
});

describe('DeviceBus', () => {
  it('routes a port range to its device with the full port number and the vCPU; other ports read all ones and are counted', () => {
    const bus = new DeviceBus();
    const uart = new Recorder('uart');
    bus.registerPorts(0x3f8, 8, uart);
    expect(bus.portRead(0x3fd, 1, 2)).to.equal(0x3fe);
    expect(bus.portWrite(0x3f8, 1, 0x41, 0)).to.equal(null);
    expect(uart.log).to.deep.equal(['r 3fd 1 2', 'w 3f8 1 41 0']);
    expect(bus.portDevice(0x3ff)).to.equal(uart);
    expect(bus.portDevice(0x400)).to.equal(null);
    expect(bus.portRead(0x400, 1, 0)).to.equal(0xff);
    expect(bus.portRead(0x400, 2, 0)).to.equal(0xffff);
    expect(bus.portRead(0x3f7, 4, 0)).to.equal(0xffffffff);
    expect(bus.portWrite(0x80, 1, 0, 0)).to.equal(null);
    expect(bus.unclaimedPortAccesses).to.equal(4);
    expect(uart.log.length).to.equal(2);
  });

  it('refuses a port that is taken, and ranges outside 0..0xFFFF, naming the devices; nothing changes', () => {
    const bus = new DeviceBus();
    const a = new Recorder('a');
    bus.registerPorts(0x20, 2, a);
    expect(() => bus.registerPorts(0x1f, 2, new Recorder('b'))).to.throw(/b: port 0x20 already belongs to a/);
    expect(bus.portDevice(0x1f)).to.equal(null);
    expect(() => bus.registerPorts(0xffff, 2, new Recorder('c'))).to.throw(/c: bad port range/);
    expect(() => bus.registerPorts(0x10, 0, new Recorder('d'))).to.throw(/d: bad port range/);
  });

  it('registers MMIO regions in the guest memory\'s map (the one the MMU consults) and finds them by address', () => {
    const map = new MmioMap();
    const bus = new DeviceBus(map);
    const apic = mmio('lapic');
    const ioapic = mmio('ioapic');
    bus.registerMmio(0xfee00000, 0x1000, apic);
    bus.registerMmio(0xfec00000, 0x1000, ioapic);
    expect(map.lookup(0xfee00010)?.device).to.equal(apic);
    expect(bus.mmioRegion(0xfee00ff0)?.device).to.equal(apic);
    expect(bus.mmioRegion(0xfec00000)?.device).to.equal(ioapic);
    expect(bus.mmioRegion(0xfee01000)).to.equal(null);
    expect(bus.mmioRegion(0xfebfffff)).to.equal(null);
    expect(() => bus.registerMmio(0xfee00800, 0x1000, mmio('x'))).to.throw(/overlaps lapic/);
    expect(() => bus.registerMmio(-1, 0x1000, mmio('y'))).to.throw(/bad MMIO region/);
    expect(map.size).to.equal(2);
  });
});

describe('guest ABI devices', () => {
  it('0xE9 collects characters (drained by take), 0xF4 asks for the exit with status & 0x7F', () => {
    const c = new DebugConsole();
    c.portWrite(0xe9, 1, 0x168);
    c.portWrite(0xe9, 1, 0x69);
    expect(c.take()).to.equal('hi');
    expect(c.take()).to.equal('');
    expect(c.portRead(0xe9, 1)).to.equal(0xff);
    expect(new ExitPort().portWrite(0xf4, 1, 0x183)).to.deep.equal({ kind: 'exit', status: 3 });
  });

  it('0xF8 programs the writing vCPU\'s timer from its clock; other sizes are ignored', () => {
    const clocks = [100, 5000];
    const t = new GuestTimer(2, (i) => clocks[i]);
    expect(t.portWrite(0xf8, 4, (250 << 8) | 0x20, 1)).to.equal(null);
    expect({ ...t.of(1) }).to.deep.equal({ vector: 0x20, period: 250, next: 5250 });
    expect({ ...t.of(0) }).to.deep.equal({ vector: 0, period: 0, next: 0 });
    t.portWrite(0xf8, 2, 0xffff, 0);
    expect(t.of(0).period).to.equal(0);
  });

  it('buildDevices + attachDevices put the three ABI ports on a VM\'s bus', () => {
    const devices = buildDevices({ ...DEFAULT_VM_OPTIONS, vcpus: 2 }, () => 0);
    const bus = attachDevices(devices);
    expect(bus.portDevice(0xe9)).to.equal(devices.console);
    expect(bus.portDevice(0xf4)?.name).to.equal('exit-port');
    expect(bus.portDevice(0xf8)).to.equal(devices.timer);
    expect(bus.portWrite(0xf4, 1, 7, 1)).to.deep.equal({ kind: 'exit', status: 7 });
  });
});
