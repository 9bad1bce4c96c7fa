import { expect } from 'chai';
import { DualPic } from '../../vmm/devices/pic8259';

/** The remap sequence Linux and most hobby kernels use: master to 0x20, slave to 0x28. */
function remap(pic: DualPic, autoEoi = false): void {
  pic.portWrite(0x20, 1, 0x11, 0); pic.portWrite(0xa0, 1, 0x11, 0);
  pic.portWrite(0x21, 1, 0x20, 0); pic.portWrite(0xa1, 1, 0x28, 0);
  pic.portWrite(0x21, 1, 0x04, 0); pic.portWrite(0xa1, 1, 0x02, 0);
  pic.portWrite(0x21, 1, autoEoi ? 0x03 : 0x01, 0); pic.portWrite(0xa1, 1, 0x01, 0);
}

describe('devices: 8259 PIC pair', () => {
  it('reset: everything masked, BIOS bases; masking writes read back', () => {
    const pic = new DualPic();
    expect(pic.portRead(0x21, 1, 0)).to.equal(0xff);
    pic.portWrite(0x21, 1, 0xfb, 0);
    pic.portWrite(0xa1, 1, 0xff, 0);
    expect(pic.portRead(0x21, 1, 0)).to.equal(0xfb);
    expect(pic.state.masterBase).to.equal(0x08);
    pic.setIrq(0, true);
    expect(pic.hasInterrupt()).to.equal(false);                 // IRQ0 masked
  });

  it('remap, IRQ priority, ISR blocks lower priorities until EOI', () => {
    const pic = new DualPic();
    remap(pic);
    expect(pic.state.masterBase).to.equal(0x20);
    expect(pic.state.slaveBase).to.equal(0x28);
    expect(pic.portRead(0x21, 1, 0)).to.equal(0);              // ICW1 cleared the mask
    pic.setIrq(4, true); pic.setIrq(1, true);
    expect(pic.acknowledge()).to.equal(0x21);
    expect(pic.hasInterrupt()).to.equal(false);                // IRQ4 waits for the EOI of IRQ1
    pic.portWrite(0x20, 1, 0x0b, 0);                            // OCW3: read ISR
    expect(pic.portRead(0x20, 1, 0)).to.equal(0x02);
    pic.portWrite(0x20, 1, 0x20, 0);                            // non-specific EOI
    expect(pic.acknowledge()).to.equal(0x24);
    pic.portWrite(0x20, 1, 0x64, 0);                            // specific EOI for IRQ4
    expect(pic.state.masterIsr).to.equal(0);
  });

  it('edge-triggered: a held line requests once; a slave IRQ cascades through IRQ2', () => {
    const pic = new DualPic();
    remap(pic);
    pic.setIrq(3, true);
    expect(pic.acknowledge()).to.equal(0x23);
    pic.portWrite(0x20, 1, 0x20, 0);
    pic.setIrq(3, true);                                         // still high: no new edge
    expect(pic.hasInterrupt()).to.equal(false);
    pic.setIrq(12, true);
    expect(pic.hasInterrupt()).to.equal(true);
    expect(pic.peekVector()).to.equal(0x2c);
    expect(pic.acknowledge()).to.equal(0x2c);
    expect(pic.state.slaveIsr).to.equal(1 << 4);
    expect(pic.state.masterIsr).to.equal(1 << 2);
  });

  it('auto-EOI leaves nothing in service; a spurious INTA returns IRQ7', () => {
    const pic = new DualPic();
    remap(pic, true);
    pic.setIrq(5, true);
    expect(pic.acknowledge()).to.equal(0x25);
    expect(pic.state.masterIsr).to.equal(0);
    expect(pic.acknowledge()).to.equal(0x27);
  });

  it('a mask write that unmasks a pending request asks for a wake-up', () => {
    const pic = new DualPic();
    remap(pic);
    pic.portWrite(0x21, 1, 0xff, 0);
    pic.setIrq(6, true);
    expect(pic.portWrite(0x21, 1, 0xbf, 0)).to.deep.equal({ kind: 'wake' });
  });
});
