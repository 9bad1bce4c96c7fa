import { expect } from 'chai';
import { PhysicalCpu } from '../../vmm/cpu/physical-cpu';
import { newGenericExit } from '../../vmm/hypervisor/exit';
import { VmxBackend } from '../../vmm/hypervisor/vmx/vmx-backend';
import {
  EXIT_REASON, PROCBASED_MOV_DR_EXITING, PROCBASED_MTF, VMCS, VM_ENTRY_LOAD_DEBUG_CONTROLS, VM_EXIT_SAVE_DEBUG_CONTROLS, Vmcs, VmcsError,
} from '../../vmm/hypervisor/vmx/vmcs';
import { FakeCpu } from './fake-cpu';

function setup(mode: 'full' | 'none' = 'full'): { phys: PhysicalCpu; cpu: FakeCpu; vmx: VmxBackend } {
  const phys = new PhysicalCpu();
  const cpu = new FakeCpu(phys);
  return { phys, cpu, vmx: new VmxBackend(cpu, phys, mode) };
}

describe('VT-x backend (SDM rules of VM entry and VM exit)', () => {
  it('reads and writes VMCS fields by encoding; unknown fields fail; 32-bit fields drop the high half', () => {
    const v = new Vmcs();
    v.write(0x681a, { lo: 0x401, hi: 0 });
    expect(v.read(VMCS.GUEST_DR7)).to.deep.equal({ lo: 0x401, hi: 0 });
    v.write(VMCS.GUEST_IA32_DEBUGCTL, { lo: 2, hi: 5 });
    expect(v.read(0x2802)).to.deep.equal({ lo: 2, hi: 5 });
    v.write(VMCS.EXCEPTION_BITMAP, { lo: 0xa, hi: 7 });
    expect(v.read(0x4004)).to.deep.equal({ lo: 0xa, hi: 0 });
    expect(() => v.read(0x1234)).to.throw(VmcsError);
  });

  it('full mode sets load/save debug controls; none leaves them off', () => {
    expect(setup('full').vmx.vmcs.read32(VMCS.ENTRY_CTLS) & VM_ENTRY_LOAD_DEBUG_CONTROLS).to.equal(4);
    expect(setup('full').vmx.vmcs.read32(VMCS.EXIT_CTLS) & VM_EXIT_SAVE_DEBUG_CONTROLS).to.equal(4);
    expect(setup('none').vmx.vmcs.read32(VMCS.ENTRY_CTLS)).to.equal(0);
    expect(setup('none').vmx.vmcs.read32(VMCS.EXIT_CTLS)).to.equal(0);
  });

  it('VM entry loads DR7 with bit 10 forced 1 and bits 12, 14, 15 forced 0, and DEBUGCTL', () => {
    const { phys, vmx } = setup();
    vmx.vmcs.write32(VMCS.GUEST_DR7, 0xd001 | 0x00010000);
    vmx.vmcs.write32(VMCS.GUEST_IA32_DEBUGCTL, 1);
    expect(vmx.hardwareEntry()).to.equal(null);
    expect(phys.drLo[7]).to.equal(0x00010401);
    expect(phys.debugctlLo).to.equal(1);
  });

  it('without the load-debug-controls control, entry leaves DR7 and DEBUGCTL as they are', () => {
    const { phys, vmx } = setup('none');
    phys.setDr(7, { lo: 0x455, hi: 0 });
    vmx.vmcs.write32(VMCS.GUEST_DR7, 0x403);
    vmx.hardwareEntry();
    expect(phys.drLo[7]).to.equal(0x455);
  });

  it('entry fails on DR7[63:32] != 0 or DEBUGCTL reserved bits, reporting the failure and loading host state', () => {
    const { phys, vmx } = setup();
    phys.setDr(7, { lo: 0x4ff, hi: 0 });
    vmx.vmcs.write32(VMCS.GUEST_DR7, 0x401, 1);
    expect(vmx.hardwareEntry()).to.match(/DR7\[63:32\]/);
    expect(vmx.vmcs.read32(VMCS.EXIT_REASON)).to.equal((0x80000000 | 33) >>> 0);
    expect(phys.drLo[7]).to.equal(0x400);
    vmx.vmcs.write32(VMCS.GUEST_DR7, 0x401, 0);
    vmx.vmcs.write32(VMCS.GUEST_IA32_DEBUGCTL, 0x10000);
    expect(vmx.hardwareEntry()).to.match(/DEBUGCTL/);
  });

  it('entry checks pending debug exceptions: reserved bits, and BS vs TF under STI blocking', () => {
    const { cpu, vmx } = setup();
    vmx.vmcs.write32(VMCS.GUEST_PENDING_DBG_EXCEPTIONS, 0x10);
    expect(vmx.hardwareEntry()).to.match(/reserved/);
    vmx.vmcs.write32(VMCS.GUEST_PENDING_DBG_EXCEPTIONS, 0);
    vmx.vmcs.write32(VMCS.GUEST_INTERRUPTIBILITY, 1);
    cpu.setReg('rflags', { lo: 0x102, hi: 0 });
    expect(vmx.hardwareEntry()).to.match(/BS must be 1/);
    vmx.vmcs.write32(VMCS.GUEST_PENDING_DBG_EXCEPTIONS, 0x4000);
    expect(vmx.hardwareEntry()).to.equal(null);
    expect(cpu.pendingDebugExceptions).to.equal(0x4000);
    cpu.setReg('rflags', { lo: 0x2, hi: 0 });
    expect(vmx.hardwareEntry()).to.match(/BS must be 0/);
  });

  it('after every exit the host has DR7 = 400H, DEBUGCTL = 0 and TF = 0', () => {
    const { phys, vmx } = setup();
    vmx.vmcs.write32(VMCS.GUEST_DR7, 0x403);
    vmx.vmcs.write32(VMCS.GUEST_IA32_DEBUGCTL, 2);
    phys.hostTF = true;
    vmx.hardwareEntry();
    vmx.saveGuestState({ kind: 'hlt', length: 1 }, newGenericExit());
    vmx.loadHostState();
    expect(phys.drLo[7]).to.equal(0x400);
    expect(phys.debugctlLo).to.equal(0);
    expect(phys.hostTF).to.equal(false);
    // save debug controls: the guest's DR7 and DEBUGCTL went to the VMCS
    expect(vmx.vmcs.read32(VMCS.GUEST_DR7)).to.equal(0x403);
    expect(vmx.vmcs.read32(VMCS.GUEST_IA32_DEBUGCTL)).to.equal(2);
  });

  it('without save debug controls the VMCS keeps the old DR7', () => {
    const { phys, vmx } = setup('none');
    vmx.vmcs.write32(VMCS.GUEST_DR7, 0x400);
    vmx.hardwareEntry();
    phys.setDr(7, { lo: 0x40f, hi: 0 });
    vmx.saveGuestState({ kind: 'cpuid', length: 2 }, newGenericExit());
    expect(vmx.vmcs.read32(VMCS.GUEST_DR7)).to.equal(0x400);
  });

  it('a #DB exit leaves DR6 alone and reports B0-B3, BD, BS in the exit qualification', () => {
    const { phys, vmx } = setup();
    vmx.hardwareEntry();
    phys.setDr(6, { lo: 0xffff0ff0, hi: 0 });
    const g = newGenericExit();
    vmx.saveGuestState({ kind: 'exception', vector: 1, errorCode: undefined, dr6: 0x4002 | 0x8000, type: 'hw', instructionLength: 0 }, g);
    expect(phys.drLo[6]).to.equal(0xffff0ff0);
    expect(vmx.vmcs.read32(VMCS.EXIT_REASON)).to.equal(EXIT_REASON.EXCEPTION_NMI);
    expect(vmx.vmcs.read32(VMCS.EXIT_QUALIFICATION)).to.equal(0x4002);
    expect(vmx.vmcs.read32(VMCS.EXIT_INTR_INFO)).to.equal((0x80000000 | (3 << 8) | 1) >>> 0);
    expect(g).to.include({ kind: 'exception', vector: 1, dbStatus: 0x4002, eventType: 'hw' });
  });

  it('saves pending debug exceptions only for MTF exits and non-#DB exits under MOV-SS blocking', () => {
    const { cpu, vmx } = setup();
    vmx.vmcs.write32(VMCS.PRI_PROC_BASED_CTLS, PROCBASED_MTF);
    vmx.hardwareEntry();
    cpu.pendingDebugExceptions = 0x4000;
    vmx.saveGuestState({ kind: 'cpuid', length: 2 }, newGenericExit());
    expect(vmx.vmcs.read32(VMCS.GUEST_PENDING_DBG_EXCEPTIONS)).to.equal(0);
    vmx.saveGuestState({ kind: 'mtf' }, newGenericExit());
    expect(vmx.vmcs.read32(VMCS.GUEST_PENDING_DBG_EXCEPTIONS)).to.equal(0x4000);
    cpu.interruptibility = 2;
    vmx.saveGuestState({ kind: 'cpuid', length: 2 }, newGenericExit());
    expect(vmx.vmcs.read32(VMCS.GUEST_PENDING_DBG_EXCEPTIONS)).to.equal(0x4000);
    vmx.saveGuestState({ kind: 'exception', vector: 1, errorCode: undefined, dr6: 1, type: 'hw', instructionLength: 0 }, newGenericExit());
    expect(vmx.vmcs.read32(VMCS.GUEST_PENDING_DBG_EXCEPTIONS)).to.equal(0);
  });

  it('programs MOV-DR exiting (bit 23), MTF (bit 27) and the exception bitmap into the CPU at entry', () => {
    const { cpu, vmx } = setup();
    vmx.setDrIntercept(true);
    vmx.setMtf(true);
    vmx.setExceptionIntercept(1, true);
    expect(vmx.vmcs.read32(VMCS.PRI_PROC_BASED_CTLS) & (PROCBASED_MOV_DR_EXITING | PROCBASED_MTF)).to.equal((1 << 23) | (1 << 27));
    vmx.hardwareEntry();
    expect(cpu.intercepts).to.deep.equal({ exceptionBitmap: (1 << 18) | 2, movDr: true, mtf: true, eventDelivered: false, hypercall: 'vmcall', nmiWindow: false, iret: false });
  });

  it('encodes and decodes exits: I/O, MOV DR, CPUID, HLT, RDMSR, WRMSR, triple fault, EPT violation, MTF', () => {
    const { vmx } = setup();
    const g = newGenericExit();
    vmx.saveGuestState({ kind: 'io', length: 1, port: 0xe9, size: 1, isIn: false, string: false, rep: false }, g);
    expect(vmx.vmcs.read32(VMCS.EXIT_REASON)).to.equal(30);
    expect(vmx.vmcs.read32(VMCS.EXIT_QUALIFICATION)).to.equal(0xe90000);
    expect(g).to.include({ kind: 'io', port: 0xe9, size: 1, isIn: false, length: 1 });
    vmx.saveGuestState({ kind: 'io', length: 2, port: 0x80, size: 4, isIn: true, string: true, rep: true }, g);
    expect(g).to.include({ kind: 'io', port: 0x80, size: 4, isIn: true, string: true, rep: true });
    vmx.saveGuestState({ kind: 'mov-dr', length: 3, dr: 7, gpr: 11, toDr: false }, g);
    expect(vmx.vmcs.read32(VMCS.EXIT_QUALIFICATION)).to.equal(7 | 16 | (11 << 8));
    expect(g).to.include({ kind: 'mov-dr', dr: 7, gpr: 11, toDr: false });
    const kinds: Array<[Parameters<VmxBackend['saveGuestState']>[0], number, string]> = [
      [{ kind: 'cpuid', length: 2 }, 10, 'cpuid'], [{ kind: 'hlt', length: 1 }, 12, 'hlt'],
      [{ kind: 'rdmsr', length: 2 }, 31, 'rdmsr'], [{ kind: 'wrmsr', length: 2 }, 32, 'wrmsr'],
      [{ kind: 'triple-fault', reason: 'x' }, 2, 'triple-fault'], [{ kind: 'mtf' }, 37, 'mtf'],
      [{ kind: 'extint' }, 1, 'extint'], [{ kind: 'npf', address: 0x5000000, write: true, fetch: false }, 48, 'npf'],
    ];
    for (const [e, reason, kind] of kinds) {
      vmx.saveGuestState(e, g);
      expect(vmx.vmcs.read32(VMCS.EXIT_REASON)).to.equal(reason);
      expect(g.kind).to.equal(kind);
    }
    expect(g.address).to.equal(0x5000000);
    expect(g.write).to.equal(true);
  });

  it('injects events through the VM-entry interruption-information field, cleared by the exit', () => {
    const { cpu, vmx } = setup();
    vmx.injectEvent({ vector: 13, type: 'hw', errorCode: 0 });
    vmx.hardwareEntry();
    expect(cpu.injected).to.deep.equal([{ vector: 13, type: 'hw', errorCode: 0, instructionLength: 0 }]);
    vmx.saveGuestState({ kind: 'hlt', length: 1 }, newGenericExit());
    expect(vmx.vmcs.read32(VMCS.ENTRY_INTR_INFO) >>> 31).to.equal(0);
  });

  describe('NMIs (virtual NMIs, NMI exiting, NMI-window exiting)', () => {
    it('runs with NMI exiting and virtual NMIs; blocking by NMI (interruptibility bit 3) is loaded at entry and saved at exit', () => {
      const { cpu, vmx } = setup();
      expect(vmx.vmcs.read32(VMCS.PIN_BASED_CTLS)).to.equal((1 << 3) | (1 << 5));
      vmx.vmcs.write32(VMCS.GUEST_INTERRUPTIBILITY, 8);
      expect(vmx.hardwareEntry()).to.equal(null);
      expect(cpu.nmiBlocked).to.equal(true);
      expect(vmx.guestNmiBlocked()).to.equal(true);
      expect(vmx.nmiInjectable()).to.equal(false);
      cpu.nmiBlocked = false; // the guest's IRET
      vmx.saveGuestState({ kind: 'hlt', length: 1 }, newGenericExit());
      expect(vmx.vmcs.read32(VMCS.GUEST_INTERRUPTIBILITY)).to.equal(0);
      expect(vmx.nmiInjectable()).to.equal(true);
    });

    it('an NMI is not injectable with STI / MOV-SS blocking, another event injected or a debug trap pending', () => {
      const { vmx } = setup();
      vmx.vmcs.write32(VMCS.GUEST_INTERRUPTIBILITY, 1);
      expect(vmx.nmiInjectable()).to.equal(false);
      vmx.vmcs.write32(VMCS.GUEST_INTERRUPTIBILITY, 0);
      vmx.injectEvent({ vector: 13, type: 'hw', errorCode: 0 });
      expect(vmx.nmiInjectable()).to.equal(false);
      vmx.vmcs.write32(VMCS.ENTRY_INTR_INFO, 0);
      vmx.addPendingDebugTraps(0x4000);
      expect(vmx.nmiInjectable()).to.equal(false);
    });

    it('entry checks: NMI injection with MOV-SS blocking or blocking by NMI fails; NMI-window exiting needs virtual NMIs', () => {
      const { vmx } = setup();
      vmx.injectEvent({ vector: 2, type: 'nmi' });
      vmx.vmcs.write32(VMCS.GUEST_INTERRUPTIBILITY, 2);
      expect(vmx.hardwareEntry()).to.match(/NMI injection with blocking by MOV SS/);
      vmx.vmcs.write32(VMCS.GUEST_INTERRUPTIBILITY, 8);
      expect(vmx.hardwareEntry()).to.match(/NMI injection with blocking by NMI/);
      vmx.vmcs.write32(VMCS.GUEST_INTERRUPTIBILITY, 0);
      vmx.vmcs.write32(VMCS.ENTRY_INTR_INFO, 0);
      vmx.setNmiWindowExiting(true);
      vmx.vmcs.write32(VMCS.PIN_BASED_CTLS, 1 << 3);
      expect(vmx.hardwareEntry()).to.match(/NMI-window exiting without virtual NMIs/);
    });

    it('NMI-window exiting reaches the CPU; exit reason 8 decodes as nmi-window; a host NMI is exit reason 0 with an NMI (type 2, vector 2)', () => {
      const { cpu, vmx } = setup();
      vmx.setNmiWindowExiting(true);
      expect(vmx.hardwareEntry()).to.equal(null);
      expect(cpu.intercepts.nmiWindow).to.equal(true);
      const g = newGenericExit();
      vmx.saveGuestState({ kind: 'nmi-window' }, g);
      expect(vmx.vmcs.read32(VMCS.EXIT_REASON)).to.equal(EXIT_REASON.NMI_WINDOW);
      expect(g.kind).to.equal('nmi-window');
      cpu.pendingDebugExceptions = 0x4000;
      vmx.saveGuestState({ kind: 'nmi' }, g);
      expect(vmx.vmcs.read32(VMCS.EXIT_REASON)).to.equal(EXIT_REASON.EXCEPTION_NMI);
      expect(vmx.vmcs.read32(VMCS.EXIT_INTR_INFO)).to.equal((0x80000000 | (2 << 8) | 2) >>> 0);
      expect(g.kind).to.equal('nmi');
      expect(g.backendReason).to.equal('vmx:0');
      expect(vmx.vmcs.read32(VMCS.GUEST_PENDING_DBG_EXCEPTIONS), 'the guest\'s pending trap survives the host NMI').to.equal(0x4000);
    });
  });
});
