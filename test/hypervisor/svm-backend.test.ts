import { expect } from 'chai';
import { PhysicalCpu } from '../../vmm/cpu/physical-cpu';
import { newGenericExit } from '../../vmm/hypervisor/exit';
import { SvmBackend } from '../../vmm/hypervisor/svm/svm-backend';
import { VMCB_CLEAN_DR, VMEXIT } from '../../vmm/hypervisor/svm/vmcb';
import { FakeCpu } from './fake-cpu';

function setup(mode: 'full' | 'none' | 'no-svm-dirty' = 'full'): { phys: PhysicalCpu; cpu: FakeCpu; svm: SvmBackend } {
  const phys = new PhysicalCpu();
  const cpu = new FakeCpu(phys);
  return { phys, cpu, svm: new SvmBackend(cpu, phys, mode) };
}

/** One VMRUN / #VMEXIT round trip, with `during` run as guest code. */
function roundTrip(svm: SvmBackend, during: () => void = () => undefined): void {
  svm.prepareEntry();
  expect(svm.hardwareEntry()).to.equal(null);
  during();
  svm.saveGuestState({ kind: 'cpuid', length: 2 }, newGenericExit());
  svm.loadHostState();
}

describe('SVM backend (APM rules of VMRUN and #VMEXIT)', () => {
  it('VMRUN loads guest DR6/DR7 from the VMCB; #VMEXIT saves them and disables host DR7 breakpoints', () => {
    const { phys, svm } = setup();
    svm.setGuestDr(7, { lo: 0x4f3, hi: 0 });
    svm.setGuestDr(6, { lo: 0xffff0ff1, hi: 0 });
    svm.prepareEntry();
    svm.hardwareEntry();
    expect(phys.drLo[7]).to.equal(0x4f3);
    expect(phys.drLo[6]).to.equal(0xffff0ff1);
    phys.setDr(7, { lo: 0x40c, hi: 0 });
    svm.saveGuestState({ kind: 'hlt', length: 1 }, newGenericExit());
    svm.loadHostState();
    expect(svm.vmcb.save.dr7Lo).to.equal(0x40c);
    expect(phys.drLo[7] & 0xff).to.equal(0);
  });

  it('DR6 or DR7 bits 63:32 set: VMRUN fails with VMEXIT_INVALID', () => {
    const { svm } = setup();
    svm.setGuestDr(7, { lo: 0x400, hi: 1 });
    svm.prepareEntry();
    expect(svm.hardwareEntry()).to.match(/VMEXIT_INVALID/);
    expect(svm.vmcb.control.exitCode).to.equal(VMEXIT.INVALID);
  });

  it('a #DB intercept writes DR6 and DR7 (GD cleared) before the exit, unlike VT-x', () => {
    const { phys, svm } = setup();
    svm.setGuestDr(7, { lo: 0x2401, hi: 0 });
    svm.prepareEntry();
    svm.hardwareEntry();
    const g = newGenericExit();
    svm.saveGuestState({ kind: 'exception', vector: 1, errorCode: undefined, dr6: 0x1, type: 'hw', instructionLength: 0 }, g);
    expect(svm.vmcb.control.exitCode).to.equal(0x41);
    expect(svm.vmcb.save.dr6Lo).to.equal(0xffff0ff1);
    expect(svm.vmcb.save.dr7Lo).to.equal(0x401);
    expect(phys.drLo[6]).to.equal(0xffff0ff1);
    expect(g).to.include({ kind: 'exception', vector: 1, dbStatus: 1 });
  });

  it('clean bit 6 set: VMRUN uses the cached DR7, so a write not marked dirty does not take effect', () => {
    const { phys, svm } = setup('no-svm-dirty');
    roundTrip(svm); // first run: clean bits 0 (all dirty), cache filled
    svm.setGuestDr(7, { lo: 0x403, hi: 0 });
    svm.prepareEntry();
    expect(svm.vmcb.control.vmcbClean & VMCB_CLEAN_DR).to.equal(VMCB_CLEAN_DR);
    svm.hardwareEntry();
    expect(phys.drLo[7]).to.equal(0x400); // stale
  });

  it('with dirty marking the same write takes effect (clean bit 6 cleared for that VMRUN)', () => {
    const { phys, svm } = setup('full');
    roundTrip(svm);
    svm.setGuestDr(7, { lo: 0x403, hi: 0 });
    svm.prepareEntry();
    expect(svm.vmcb.control.vmcbClean & VMCB_CLEAN_DR).to.equal(0);
    svm.hardwareEntry();
    expect(phys.drLo[7]).to.equal(0x403);
  });

  it('none: the DR clean bit is never used', () => {
    const { phys, svm } = setup('none');
    roundTrip(svm);
    svm.vmcb.save.dr7Lo = 0x40c; // even a raw VMCB write without dirty marking is seen
    svm.prepareEntry();
    expect(svm.vmcb.control.vmcbClean & VMCB_CLEAN_DR).to.equal(0);
    svm.hardwareEntry();
    expect(phys.drLo[7]).to.equal(0x40c);
  });

  it('DebugCtl is switched only with LBR virtualization', () => {
    const on = setup('full');
    on.phys.setDebugctl({ lo: 0x1, hi: 0 }); // host value
    on.svm.setGuestDebugctl({ lo: 0x2, hi: 0 });
    on.svm.prepareEntry();
    on.svm.hardwareEntry();
    expect(on.phys.debugctlLo).to.equal(2);
    on.svm.saveGuestState({ kind: 'hlt', length: 1 }, newGenericExit());
    on.svm.loadHostState();
    expect(on.phys.debugctlLo).to.equal(1);
    const off = setup('none');
    off.phys.setDebugctl({ lo: 0x1, hi: 0 });
    off.svm.setGuestDebugctl({ lo: 0x2, hi: 0 });
    off.svm.prepareEntry();
    off.svm.hardwareEntry();
    expect(off.phys.debugctlLo).to.equal(1); // the guest runs with the host's DEBUGCTL
  });

  it('#VMEXIT restores host TF (VMRUN behaves as one instruction for the host)', () => {
    const { phys, svm } = setup();
    phys.hostTF = true;
    roundTrip(svm);
    expect(phys.hostTF).to.equal(true);
  });

  it('exit codes: DRn read/write, exception 40H+n, INTR, HLT, CPUID, IOIO, MSR, SHUTDOWN, NPF', () => {
    const { svm } = setup();
    const g = newGenericExit();
    const cases: Array<[Parameters<SvmBackend['saveGuestState']>[0], number, string]> = [
      [{ kind: 'mov-dr', length: 3, dr: 3, gpr: 2, toDr: false }, 0x23, 'mov-dr'],
      [{ kind: 'mov-dr', length: 3, dr: 7, gpr: 2, toDr: true }, 0x37, 'mov-dr'],
      [{ kind: 'exception', vector: 3, errorCode: undefined, dr6: 0, type: 'swexc', instructionLength: 1 }, 0x43, 'exception'],
      [{ kind: 'extint' }, 0x60, 'extint'], [{ kind: 'hlt', length: 1 }, 0x78, 'hlt'],
      [{ kind: 'cpuid', length: 2 }, 0x72, 'cpuid'],
      [{ kind: 'io', length: 1, port: 0xf4, size: 1, isIn: false, string: false, rep: false }, 0x7b, 'io'],
      [{ kind: 'rdmsr', length: 2 }, 0x7c, 'rdmsr'], [{ kind: 'wrmsr', length: 2 }, 0x7c, 'wrmsr'],
      [{ kind: 'triple-fault', reason: 'r' }, 0x7f, 'triple-fault'],
      [{ kind: 'npf', address: 0x8000000, write: false, fetch: true }, 0x400, 'npf'],
    ];
    for (const [e, code, kind] of cases) {
      svm.saveGuestState(e, g);
      expect(svm.vmcb.control.exitCode).to.equal(code);
      expect(g.kind).to.equal(kind);
    }
    svm.saveGuestState({ kind: 'mov-dr', length: 3, dr: 7, gpr: 2, toDr: true }, g);
    expect(g).to.include({ dr: 7, gpr: 2, toDr: true });
    svm.saveGuestState({ kind: 'io', length: 1, port: 0xf4, size: 2, isIn: true, string: false, rep: false }, g);
    expect(g).to.include({ port: 0xf4, size: 2, isIn: true });
  });

  it('has no MTF', () => {
    expect(setup().svm.setMtf(true)).to.equal(false);
  });

  it('NMIs: the IRET intercept reaches the CPU and decodes as iret (0x74, nRIP past it); a host NMI is VMEXIT_NMI (0x61) and keeps the pending trap', () => {
    const { cpu, svm } = setup();
    expect(svm.setIretIntercept(true)).to.equal(true);
    expect(svm.hardwareEntry()).to.equal(null);
    expect(cpu.intercepts.iret).to.equal(true);
    expect(cpu.intercepts.nmiWindow).to.equal(false);
    const g = newGenericExit();
    svm.saveGuestState({ kind: 'iret', length: 2 }, g);
    expect(svm.vmcb.control.exitCode).to.equal(VMEXIT.IRET);
    expect(svm.vmcb.control.nextRipLo).to.equal(0x100002);
    expect(g.kind).to.equal('iret');
    cpu.pendingDebugExceptions = 0x4000;
    svm.saveGuestState({ kind: 'nmi' }, g);
    expect(svm.vmcb.control.exitCode).to.equal(VMEXIT.NMI);
    expect(g.kind).to.equal('nmi');
    expect(g.backendReason).to.equal('svm:0x61');
    expect(cpu.pendingDebugExceptions).to.equal(0x4000);
    expect(svm.setNmiWindowExiting(true)).to.equal(false);
  });

  it('NMIs: injectable only without an interrupt shadow, another EVENTINJ or a pending trap; EVENTINJ type NMI injects an NMI', () => {
    const { cpu, svm } = setup();
    expect(svm.nmiInjectable()).to.equal(true);
    svm.vmcb.control.interruptShadow = 1;
    expect(svm.nmiInjectable()).to.equal(false);
    svm.vmcb.control.interruptShadow = 0;
    cpu.pendingDebugExceptions = 0x4000;
    expect(svm.nmiInjectable()).to.equal(false);
    cpu.pendingDebugExceptions = 0;
    svm.injectEvent({ vector: 2, type: 'nmi' });
    expect(svm.nmiInjectable()).to.equal(false);
    expect(svm.hardwareEntry()).to.equal(null);
    expect(cpu.injected).to.deep.equal([{ vector: 2, type: 'nmi', errorCode: undefined, instructionLength: 0 }]);
  });
});
