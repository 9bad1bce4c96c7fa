import { expect } from 'chai';
import { ApicSystem } from '../../vmm/devices/apic-system';
import {
  APIC_BASE_EN, APIC_BASE_EXTD, APIC_DEFAULT_BASE, LVT_MASKED, MSR_APIC_BASE, MSR_TSC_DEADLINE, REG,
  TIMER_PERIODIC, TIMER_TSC_DEADLINE, timerDivisor,
} from '../../vmm/devices/local-apic';
import { DualPic } from '../../vmm/devices/pic8259';

/** A VM's APICs with a settable clock per vCPU. */
function system(vcpus = 2, pic?: DualPic): { sys: ApicSystem; clock: number[] } {
  const clock = new Array(vcpus).fill(0);
  return { sys: new ApicSystem(vcpus, (v) => clock[v], pic), clock };
}

const w = (sys: ApicSystem, vcpu: number, reg: number, v: number) => sys.mmioWrite(reg, 4, v, vcpu);
const r = (sys: ApicSystem, vcpu: number, reg: number) => sys.mmioRead(reg, 4, vcpu);
const enable = (sys: ApicSystem, vcpu: number) => w(sys, vcpu, REG.SVR, 0x1ff);

describe('devices: local APIC', () => {
  it('reset state: ID per vCPU, version, BSP bit, SVR 0xFF, LVTs masked', () => {
    const { sys } = system(3);
    expect(r(sys, 0, REG.ID)).to.equal(0);
    expect(r(sys, 2, REG.ID)).to.equal(2 << 24);
    expect(r(sys, 1, REG.VERSION)).to.equal(0x50014);
    expect(sys.readMsr(MSR_APIC_BASE, 0)).to.deep.equal([APIC_DEFAULT_BASE + 0x900, 0]);
    expect(sys.readMsr(MSR_APIC_BASE, 1)).to.deep.equal([APIC_DEFAULT_BASE + 0x800, 0]);
    expect(r(sys, 0, REG.SVR)).to.equal(0xff);
    for (const reg of [REG.LVT_TIMER, REG.LVT_LINT0, REG.LVT_ERROR]) expect(r(sys, 0, reg)).to.equal(LVT_MASKED);
  });

  it('a software-disabled APIC keeps LVTs masked and accepts no fixed interrupts', () => {
    const { sys } = system(1);
    w(sys, 0, REG.LVT_TIMER, 0x40);
    expect(r(sys, 0, REG.LVT_TIMER)).to.equal(LVT_MASKED | 0x40);
    w(sys, 0, REG.ICR_LO, 0x40000 | 0x41); // self IPI
    expect(sys.pendingVector(0)).to.equal(-1);
    enable(sys, 0);
    w(sys, 0, REG.ICR_LO, 0x40000 | 0x41);
    expect(sys.pendingVector(0)).to.equal(0x41);
  });

  it('IRR -> ISR at acknowledge, PPR blocks equal classes, EOI clears the highest ISR bit', () => {
    const { sys } = system(1);
    enable(sys, 0);
    w(sys, 0, REG.ICR_LO, 0x40000 | 0x51);
    w(sys, 0, REG.ICR_LO, 0x40000 | 0x62);
    w(sys, 0, REG.ICR_LO, 0x40000 | 0x65);
    expect(sys.pendingVector(0)).to.equal(0x65);
    sys.acknowledge(0, 0x65);
    expect(r(sys, 0, REG.ISR + 0x30)).to.equal(1 << 5);     // vector 0x65 in ISR word 3
    expect(r(sys, 0, REG.PPR)).to.equal(0x60);
    expect(sys.pendingVector(0)).to.equal(-1);                 // 0x62: same class as in service
    w(sys, 0, REG.EOI, 0);
    expect(sys.pendingVector(0)).to.equal(0x62);
    sys.acknowledge(0, 0x62);
    w(sys, 0, REG.EOI, 0);
    w(sys, 0, REG.TPR, 0x50);                                  // TPR masks class 5
    expect(sys.pendingVector(0)).to.equal(-1);
    sys.apic(0).cr8 = 4;
    expect(r(sys, 0, REG.TPR)).to.equal(0x40);
    expect(sys.pendingVector(0)).to.equal(0x51);
  });

  it('linked to a CPU\'s CR8: MOV to CR8 is TPR[7:4] (and masks), a TPR write is what MOV from CR8 reads', () => {
    const { sys } = system(1);
    enable(sys, 0);
    let cr8 = 0;
    sys.apic(0).linkCr8(() => cr8, (v) => { cr8 = v; });
    w(sys, 0, REG.ICR_LO, 0x40000 | 0x45);
    cr8 = 4;                                                   // the guest's MOV to CR8
    expect(r(sys, 0, REG.TPR)).to.equal(0x40);
    expect(sys.pendingVector(0)).to.equal(-1);
    w(sys, 0, REG.TPR, 0x2f);
    expect(cr8).to.equal(2);
    expect(r(sys, 0, REG.TPR)).to.equal(0x2f);                 // TPR[3:0] kept while CR8 agrees
    expect(sys.pendingVector(0)).to.equal(0x45);
  });

  it('fixed IPI to another vCPU by physical ID, logical (flat) and shorthands', () => {
    const { sys } = system(3);
    for (const v of [0, 1, 2]) enable(sys, v);
    w(sys, 0, REG.ICR_HI, 2 << 24);
    w(sys, 0, REG.ICR_LO, 0x4030);
    expect(sys.pendingVector(2)).to.equal(0x30);
    expect(sys.pendingVector(1)).to.equal(-1);
    w(sys, 1, REG.LDR, 0x02000000);
    w(sys, 0, REG.ICR_HI, 0x02000000);
    w(sys, 0, REG.ICR_LO, 0x4800 | 0x31);                      // logical
    expect(sys.pendingVector(1)).to.equal(0x31);
    w(sys, 0, REG.ICR_LO, (3 << 18) | 0x4000 | 0x32);          // all but self
    expect(sys.apic(0).highestPending()).to.equal(-1);
    expect(sys.apic(2).irr[1] & (1 << 0x12)).to.not.equal(0);
  });

  it('an illegal vector sets ESR (send) and is not delivered', () => {
    const { sys } = system(1);
    enable(sys, 0);
    w(sys, 0, REG.ICR_LO, 0x40000 | 0x05);
    w(sys, 0, REG.ESR, 0);
    expect(r(sys, 0, REG.ESR)).to.equal(0x20);
    expect(sys.pendingVector(0)).to.equal(-1);
  });

  it('NMI, INIT then SIPI: wait-for-SIPI, the vector, SIPI ignored when not waiting', () => {
    const { sys } = system(2);
    w(sys, 0, REG.ICR_HI, 1 << 24);
    w(sys, 0, REG.ICR_LO, 0x4600 | 0x12);                      // SIPI before INIT: ignored
    expect(sys.apic(1).takeSipi()).to.equal(-1);
    w(sys, 0, REG.ICR_LO, 0x4400);                             // NMI
    expect(sys.wakesFromHlt(1, false)).to.equal(true);
    expect(sys.apic(1).takeNmi()).to.equal(true);
    expect(sys.apic(1).takeNmi()).to.equal(false);
    w(sys, 0, REG.ICR_LO, (3 << 18) | 0x8500);                 // INIT level de-assert: no effect
    expect(sys.apic(1).takeInit()).to.equal(false);
    w(sys, 0, REG.ICR_LO, (3 << 18) | 0x4500);                 // INIT to all but self
    expect(sys.apic(0).takeInit()).to.equal(false);
    expect(sys.apic(1).takeInit()).to.equal(true);
    expect(sys.apic(1).waitingForSipi).to.equal(true);
    w(sys, 0, REG.ICR_LO, (3 << 18) | 0x4600 | 0x9a);
    w(sys, 0, REG.ICR_LO, (3 << 18) | 0x4600 | 0x11);          // second SIPI: the first one counts
    expect(sys.apic(1).takeSipi()).to.equal(0x9a);
    expect(sys.apic(1).waitingForSipi).to.equal(false);
  });

  it('one-shot timer with the divide register; current count runs down; fires once', () => {
    const { sys, clock } = system(1);
    enable(sys, 0);
    expect([0, 1, 2, 3, 8, 9, 10, 11].map(timerDivisor)).to.deep.equal([2, 4, 8, 16, 32, 64, 128, 1]);
    w(sys, 0, REG.TIMER_DIVIDE, 0x1);                          // divide by 4
    w(sys, 0, REG.LVT_TIMER, 0x40);
    w(sys, 0, REG.TIMER_INITIAL, 100);
    clock[0] = 40;
    expect(r(sys, 0, REG.TIMER_CURRENT)).to.equal(90);
    expect(sys.nextEvent(0)).to.equal(400);
    clock[0] = 399; sys.update(0, clock[0]);
    expect(sys.pendingVector(0)).to.equal(-1);
    clock[0] = 400; sys.update(0, clock[0]);
    expect(sys.pendingVector(0)).to.equal(0x40);
    expect(r(sys, 0, REG.TIMER_CURRENT)).to.equal(0);
    expect(sys.nextEvent(0)).to.equal(undefined);
  });

  it('periodic timer reloads; a masked LVT counts but does not interrupt', () => {
    const { sys, clock } = system(1);
    enable(sys, 0);
    w(sys, 0, REG.TIMER_DIVIDE, 0xb);                          // divide by 1
    w(sys, 0, REG.LVT_TIMER, TIMER_PERIODIC | 0x41);
    w(sys, 0, REG.TIMER_INITIAL, 10);
    clock[0] = 25; sys.update(0, 25);
    expect(sys.pendingVector(0)).to.equal(0x41);
    sys.acknowledge(0, 0x41); w(sys, 0, REG.EOI, 0);
    expect(r(sys, 0, REG.TIMER_CURRENT)).to.equal(5);
    expect(sys.nextEvent(0)).to.equal(30);
    w(sys, 0, REG.LVT_TIMER, TIMER_PERIODIC | LVT_MASKED | 0x41);
    clock[0] = 31; sys.update(0, 31);
    expect(sys.pendingVector(0)).to.equal(-1);
    expect(sys.nextEvent(0)).to.equal(40);
  });

  it('TSC-deadline mode: IA32_TSC_DEADLINE arms, fires at the deadline, then reads 0', () => {
    const { sys, clock } = system(1);
    enable(sys, 0);
    expect(sys.writeMsr(MSR_TSC_DEADLINE, 1000, 0, 0)).to.deep.equal({ kind: 'wake' });
    expect(sys.readMsr(MSR_TSC_DEADLINE, 0)).to.deep.equal([0, 0]); // ignored outside the mode
    w(sys, 0, REG.LVT_TIMER, TIMER_TSC_DEADLINE | 0x42);
    sys.writeMsr(MSR_TSC_DEADLINE, 1000, 0, 0);
    expect(sys.readMsr(MSR_TSC_DEADLINE, 0)).to.deep.equal([1000, 0]);
    clock[0] = 999; sys.update(0, 999);
    expect(sys.pendingVector(0)).to.equal(-1);
    clock[0] = 1000; sys.update(0, 1000);
    expect(sys.pendingVector(0)).to.equal(0x42);
    expect(sys.readMsr(MSR_TSC_DEADLINE, 0)).to.deep.equal([0, 0]);
  });

  it('x2APIC: enable through IA32_APIC_BASE, MSR access, 64-bit ICR, self-IPI, #GP rules, MMIO off', () => {
    const { sys } = system(2);
    expect(sys.readMsr(0x802, 1)).to.equal(undefined);          // not in x2APIC mode yet: #GP
    const base = APIC_DEFAULT_BASE | APIC_BASE_EN | APIC_BASE_EXTD;
    expect(sys.writeMsr(MSR_APIC_BASE, base, 0, 1)).to.equal(null);
    expect(sys.writeMsr(MSR_APIC_BASE, base, 0, 0)).to.equal(null);
    expect(sys.readMsr(0x802, 1)).to.deep.equal([1, 0]);       // ID is the plain ID
    expect(sys.readMsr(0x80d, 1)).to.deep.equal([(0 << 16) | (1 << 1), 0]); // LDR derived
    sys.writeMsr(0x80f, 0x1ff, 0, 0); sys.writeMsr(0x80f, 0x1ff, 0, 1);
    expect(sys.writeMsr(0x830, 0x4000 | 0x55, 1, 0)).to.deep.equal({ kind: 'wake' });
    expect(sys.pendingVector(1)).to.equal(0x55);
    expect(sys.readMsr(0x830, 0)).to.deep.equal([0x4055, 1]);
    sys.writeMsr(0x83f, 0x66, 0, 0);                            // SELF IPI
    expect(sys.pendingVector(0)).to.equal(0x66);
    expect(sys.writeMsr(0x80b, 1, 0, 0)).to.equal('gp');        // EOI must be 0
    expect(sys.readMsr(0x80b, 0)).to.equal(undefined);          // EOI is write-only
    expect(sys.writeMsr(0x802, 5, 0, 0)).to.equal('gp');        // ID is read-only
    expect(sys.readMsr(0x831, 0)).to.equal(undefined);          // no ICR high half in x2APIC
    expect(sys.readMsr(0x80e, 0)).to.equal(undefined);          // no DFR in x2APIC
    expect(sys.mmioRead(REG.ID, 4, 1)).to.equal(0);             // the MMIO page is gone
    expect(sys.writeMsr(MSR_APIC_BASE, APIC_DEFAULT_BASE | APIC_BASE_EN, 0, 0)).to.equal('gp'); // x2 -> x needs disable
    expect(sys.writeMsr(MSR_APIC_BASE, APIC_DEFAULT_BASE | APIC_BASE_EXTD, 0, 0)).to.equal('gp'); // invalid
    expect(sys.writeMsr(MSR_APIC_BASE, 1, 0, 0)).to.equal('gp');     // reserved bit
  });

  it('disabling the APIC in IA32_APIC_BASE resets its registers', () => {
    const { sys } = system(1);
    enable(sys, 0);
    w(sys, 0, REG.TPR, 0x20);
    sys.writeMsr(MSR_APIC_BASE, APIC_DEFAULT_BASE, 0, 0);
    sys.writeMsr(MSR_APIC_BASE, APIC_DEFAULT_BASE | APIC_BASE_EN, 0, 0);
    expect(r(sys, 0, REG.TPR)).to.equal(0);
    expect(r(sys, 0, REG.SVR)).to.equal(0xff);
  });

  it('the 8259 reaches the BSP through LINT0 in ExtINT mode only', () => {
    const pic = new DualPic();
    const { sys } = system(2, pic);
    enable(sys, 0);
    pic.portWrite(0x21, 1, 0xfe, 0);                            // unmask IRQ0
    pic.setIrq(0, true);
    expect(sys.pendingVector(0)).to.equal(-1);                  // LINT0 masked
    w(sys, 0, REG.LVT_LINT0, 0x700);                            // ExtINT, unmasked
    expect(sys.pendingVector(0)).to.equal(0x08);
    expect(sys.pendingVector(1)).to.equal(-1);
    sys.acknowledge(0, 0x08);
    expect(pic.state.masterIsr).to.equal(1);
  });
});
