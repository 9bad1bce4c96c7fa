import { expect } from 'chai';
import { VmApiError } from '../../vmm/api/vm-api';
import { PortDevice } from '../../vmm/devices/device';
import { FakeOp } from './fake-cpu';
import { cpuidExits, fakeVm, guestWatch, u } from './helpers';

const out = (port: number, size: 1 | 2 | 4 = 1): FakeOp => ({ op: 'exit', exit: { kind: 'io', length: 1, port, size, isIn: false, string: false, rep: false } });
const setRax = (v: number): FakeOp => ({ op: 'fn', fn: (c) => c.setGpr(0, u(v)) });

describe('Vm: guest ABI handled by the hypervisor', () => {
  it('console on 0xE9, exit status on 0xF4 (value & 0x7F)', () => {
    const { vm } = fakeVm({}, [setRax(0x68), out(0xe9), setRax(0x69), out(0xe9), setRax(0x183), out(0xf4)]);
    const stop = vm.run([0], 100);
    expect(stop).to.deep.equal({ kind: 'exit', vcpu: 0, status: 3 });
    expect(vm.takeConsoleOutput()).to.equal('hi');
    expect(vm.takeConsoleOutput()).to.equal('');
    expect(vm.run([0], 10)).to.deep.equal(stop);
  });

  it('other ports: reads all ones, writes dropped and counted', () => {
    const { vm, cpus } = fakeVm({}, [setRax(0x12345678),
      { op: 'exit', exit: { kind: 'io', length: 1, port: 0x60, size: 1, isIn: true, string: false, rep: false } }, out(0x80)]);
    cpus[0].idleCpuid = false;
    vm.run([0], 10);
    expect(cpus[0].gpr[0].lo).to.equal(0x123456ff);
    expect(vm.otherPortAccesses()).to.equal(2);
  });

  it('a device registered on the VM\'s bus gets the I/O exits of its ports with the vCPU; its effects are applied', () => {
    const seen: string[] = [];
    const dev: PortDevice = {
      name: 'probe',
      portRead: (port, size, vcpu) => { seen.push(`in ${port.toString(16)}/${size} vcpu${vcpu}`); return 0xab; },
      portWrite: (port, _size, value, vcpu) => {
        seen.push(`out ${port.toString(16)}=${value.toString(16)} vcpu${vcpu}`);
        return value === 0x55 ? { kind: 'exit', status: 9 } : null;
      },
    };
    const { vm, cpus } = fakeVm({}, [setRax(0x12345600),
      { op: 'exit', exit: { kind: 'io', length: 1, port: 0x2f8, size: 1, isIn: true, string: false, rep: false } },
      setRax(0x1), out(0x2f9), setRax(0x55), out(0x2f8)]);
    vm.bus.registerPorts(0x2f8, 8, dev);
    cpus[0].idleCpuid = false;
    expect(vm.run([0], 10)).to.deep.equal({ kind: 'exit', vcpu: 0, status: 9 });
    expect(seen).to.deep.equal(['in 2f8/1 vcpu0', 'out 2f9=1 vcpu0', 'out 2f8=55 vcpu0']);
    expect(vm.otherPortAccesses()).to.equal(0);
    // MMIO regions registered on the VM's bus land in its memory's map, the one the MMU consults.
    const lapic = { name: 'mmio-probe', mmioRead: () => 0, mmioWrite: () => null };
    vm.bus.registerMmio(0xfec00000, 0x1000, lapic);
    expect(vm.memory.mmio.lookup(0xfec00ff0)?.device).to.equal(lapic);
  });

  it('a device\'s wake effect lets a halted vCPU with IF=1 and an interrupt pending run again', () => {
    const { vm, cpus } = fakeVm({ vcpus: 2 }, [{ op: 'fn', fn: (c) => c.setReg('rflags', u(0x202)) }, { op: 'exit', exit: { kind: 'hlt', length: 1 } }]);
    let wake = true;
    vm.bus.registerPorts(0x700, 1, {
      name: 'doorbell',
      portRead: () => 0,
      portWrite: () => { cpus[0].interruptPending = true; return wake ? { kind: 'wake' } : null; },
    });
    for (const c of cpus) c.idleCpuid = false;
    expect(vm.run([0], 10)).to.deep.equal({ kind: 'all-halted', vcpu: 0 });
    cpus[1].script.push(out(0x700));
    vm.run([1], 10);
    expect(vm.vcpuState(0)).to.equal('running');
    // Without the effect the halted vCPU is not looked at again.
    const again = fakeVm({ vcpus: 2 }, [{ op: 'fn', fn: (c) => c.setReg('rflags', u(0x202)) }, { op: 'exit', exit: { kind: 'hlt', length: 1 } }]);
    wake = false;
    again.vm.bus.registerPorts(0x700, 1, { name: 'doorbell', portRead: () => 0, portWrite: () => { again.cpus[0].interruptPending = true; return null; } });
    for (const c of again.cpus) c.idleCpuid = false;
    again.vm.run([0], 10);
    again.cpus[1].script.push(out(0x700));
    again.vm.run([1], 10);
    expect(again.vm.vcpuState(0)).to.equal('halted');
  });

  it('CPUID: vendor by backend, DE in leaf 1 EDX', () => {
    for (const [backend, vendor] of [['vmx', 'GenuineIntel'], ['svm', 'AuthenticAMD']] as const) {
      const { vm, cpus } = fakeVm({ backend }, [setRax(0), ...cpuidExits(1), { op: 'fn', fn: (c) => {
        const s = [c.gpr[3].lo, c.gpr[2].lo, c.gpr[1].lo].map((x) => String.fromCharCode(x & 255, (x >> 8) & 255, (x >> 16) & 255, x >>> 24)).join('');
        expect(s).to.equal(vendor);
        c.setGpr(0, u(1));
      } }, ...cpuidExits(1)]);
      cpus[0].idleCpuid = false;
      vm.run([0], 10);
      expect(cpus[0].gpr[2].lo & 4).to.equal(4);
    }
  });

  it('RDMSR/WRMSR: EFER, FS_BASE, DEBUGCTL emulated; an unknown MSR injects #GP(0)', () => {
    const { vm, cpus } = fakeVm({}, [
      { op: 'fn', fn: (c) => { c.setGpr(1, u(0xc0000100)); c.setGpr(0, u(0x1234)); c.setGpr(2, u(0x1)); } },
      { op: 'exit', exit: { kind: 'wrmsr', length: 2 } },
      { op: 'fn', fn: (c) => { c.setGpr(1, u(0x1d9)); c.setGpr(0, u(0x2)); c.setGpr(2, u(0)); } },
      { op: 'exit', exit: { kind: 'wrmsr', length: 2 } },
      { op: 'fn', fn: (c) => c.setGpr(1, u(0x12345)) },
      { op: 'exit', exit: { kind: 'rdmsr', length: 2 } },
    ]);
    vm.run([0], 10);
    expect(cpus[0].getReg('fs_base')).to.deep.equal(u(0x1234, 1));
    expect(vm.getRegister(0, 'debugctl')).to.deep.equal(u(2));
    expect(cpus[0].injected).to.deep.equal([{ vector: 13, type: 'hw', errorCode: 0, instructionLength: 0 }]);
  });

  it('the 0xF8 timer interrupts through GuestCpu.requestInterrupt; HLT waits for it', () => {
    const { vm, cpus } = fakeVm({}, [setRax((100 << 8) | 0x20), out(0xf8, 4),
      { op: 'fn', fn: (c) => c.setReg('rflags', u(0x202)) }, { op: 'exit', exit: { kind: 'hlt', length: 1 } }]);
    cpus[0].idleCpuid = false;
    vm.run([0], 250);
    expect(cpus[0].requested.length).to.be.greaterThan(1);
    expect(cpus[0].requested.every((v) => v === 0x20)).to.equal(true);
  });

  it('HLT with nothing to wake it: all-halted', () => {
    const { vm } = fakeVm({}, [{ op: 'exit', exit: { kind: 'hlt', length: 1 } }]);
    expect(vm.run([0], 100)).to.deep.equal({ kind: 'all-halted', vcpu: 0 });
    expect(vm.vcpuState(0)).to.equal('halted');
  });

  it('NPF and triple fault stop the VM with a diagnosis', () => {
    const a = fakeVm({}, [{ op: 'exit', exit: { kind: 'npf', address: 0x9000000, write: true, fetch: false } }]);
    expect(a.vm.run([0], 10)).to.deep.equal({ kind: 'npf', vcpu: 0, address: 0x9000000, write: true });
    const b = fakeVm({ backend: 'svm' }, [{ op: 'exit', exit: { kind: 'triple-fault', reason: '#GP during #DF' } }]);
    expect(b.vm.run([0], 10)).to.deep.equal({ kind: 'triple-fault', vcpu: 0, reason: '#GP during #DF' });
  });

  it('preemption: an external-interrupt exit every N instructions', () => {
    const { vm, cpus } = fakeVm({ preemptEvery: 10 });
    cpus[0].idleCpuid = false;
    vm.run([0], 100);
    expect(vm.stats().exits.extint).to.equal(10);
  });

  it('bad input: clear errors and nothing changed', () => {
    const { vm } = fakeVm({});
    expect(() => vm.getRegister(3, 'rax')).to.throw(VmApiError);
    expect(() => vm.setRegister(0, 'dr7', u(0x400, 1))).to.throw(VmApiError, /63:32/);
    expect(vm.getRegister(0, 'dr7')).to.deep.equal(u(0x400));
    expect(() => vm.setRegister(0, 'debugctl', u(0x10000))).to.throw(VmApiError);
    expect(() => vm.setCapability(0, 'mtf', true)).to.not.throw();
    expect(() => fakeVm({ backend: 'svm' }).vm.setCapability(0, 'mtf', true)).to.throw(VmApiError, /vmx/);
    expect(() => vm.setDebuggerSlots(0, [{ address: u(0x1001), type: 'write', len: 4 }])).to.throw(VmApiError, /aligned/);
    expect(() => vm.run([0], 0)).to.throw(VmApiError);
    expect(() => fakeVm({ vcpus: 0 })).to.throw(VmApiError);
  });
});

describe('Vm: debug-register views and the debugger', () => {
  it('register interface reads and writes the guest view; the guest reads back what the client set', () => {
    for (const backend of ['vmx', 'svm'] as const) {
      const { vm, cpus } = fakeVm({ backend }, cpuidExits(1));
      vm.run([0], 2);
      vm.setRegister(0, 'dr2', u(0x7000));
      vm.setRegister(0, 'dr7', u(0x410));
      cpus[0].script.push({ op: 'mov-from-dr', dr: 2, gpr: 8 }, { op: 'mov-from-dr', dr: 7, gpr: 9 });
      vm.run([0], 3);
      expect(cpus[0].gpr[8].lo).to.equal(0x7000);
      expect(cpus[0].gpr[9].lo).to.equal(0x410);
      expect(vm.getRegister(0, 'dr7')).to.deep.equal(u(0x410));
      expect(vm.leaks()).to.deep.equal([]);
    }
  });

  it('a debugger slot hit stops with slotsHit; the guest never reads the debugger values', () => {
    for (const backend of ['vmx', 'svm'] as const) {
      const { vm, cpus } = fakeVm({ backend }, []);
      vm.setDebuggerSlots(0, [null, { address: u(0x6000), type: 'write', len: 8 }]);
      cpus[0].script.push({ op: 'mov-from-dr', dr: 7, gpr: 8 }, { op: 'mov-from-dr', dr: 0, gpr: 9 }, { op: 'store', address: 0x6000, len: 4 });
      const stop = vm.run([0], 50);
      expect(stop).to.deep.equal({ kind: 'debug', vcpu: 0, slotsHit: 2, step: false });
      expect(cpus[0].gpr[8].lo).to.equal(0x400);
      expect(cpus[0].gpr[9].lo).to.equal(0);
      expect(vm.getRegister(0, 'dr6')).to.deep.equal(u(0xffff0ff0));
      expect(cpus[0].guestDbs).to.deep.equal([]);
      expect(vm.leaks()).to.deep.equal([]);
      expect(vm.describeDebugState(0)).to.match(/debugger slot 1: write len 8 at 0x6000/);
    }
  });

  it('a guest #DB while the debugger is merged in is reflected with the guest numbering and never reaches the client', () => {
    for (const backend of ['vmx', 'svm'] as const) {
      const { vm, cpus } = fakeVm({ backend }, []);
      vm.setDebuggerSlots(0, [{ address: u(0x6000), type: 'write', len: 8 }]);
      // The debugger has physical slot 0; the guest now enables its slot 0: relocated.
      cpus[0].script.push(...guestWatch(0x2000), { op: 'store', address: 0x2000, len: 8 }, { op: 'mov-from-dr', dr: 6, gpr: 8 });
      const stop = vm.run([0], 30);
      expect(stop.kind).to.equal('slice');
      expect(cpus[0].injected.map((e) => e.vector)).to.deep.equal([1]);
      expect(cpus[0].gpr[8].lo).to.equal(0xffff0ff1);
      expect(vm.getRegister(0, 'dr0')).to.deep.equal(u(0x2000));
      expect(vm.leaks()).to.deep.equal([]);
      vm.setDebuggerSlots(0, [null]);
      expect(vm.getRegister(0, 'dr7').lo & 3).to.equal(1);
    }
  });

  it('rflags-tf stepping: a step stops with step=true; the guest TF is unchanged', () => {
    const { vm, cpus } = fakeVm({ backend: 'svm' }, [{ op: 'nop' }, { op: 'nop' }]);
    cpus[0].run = ((orig) => function (this: typeof cpus[0], budget: number) {
      // The fake executes one op and raises the TF trap when TF is set and #DB intercepted.
      const before = this.instret;
      const r = orig.call(this, budget);
      if (this.instret > before && (this.getReg('rflags').lo & 0x100) !== 0 && (this.intercepts.exceptionBitmap & 2) !== 0) {
        return { kind: 'exception', vector: 1, errorCode: undefined, dr6: 0x4000, type: 'hw', instructionLength: 0 };
      }
      return r;
    })(cpus[0].run);
    vm.setCapability(0, 'rflags-tf', true);
    expect(vm.run([0], 10)).to.deep.equal({ kind: 'debug', vcpu: 0, slotsHit: 0, step: true });
    expect(cpus[0].instret).to.equal(1);
    expect(cpus[0].getReg('rflags').lo & 0x100).to.equal(0);
    expect(vm.getRegister(0, 'dr6').lo & 0x4000).to.equal(0);
    vm.setCapability(0, 'rflags-tf', false);
    expect(vm.leaks()).to.deep.equal([]);
  });

  it('DR7.GD while merged: the next MOV DR raises #DB with DR6.BD in the guest and GD is cleared', () => {
    const { vm, cpus } = fakeVm({}, []);
    cpus[0].idleCpuid = false;
    vm.setDebuggerSlots(0, [{ address: u(0x6000), type: 'write', len: 8 }]);
    cpus[0].script.push({ op: 'mov-to-dr', dr: 7, value: u(0x2400) }, { op: 'mov-to-dr', dr: 0, value: u(0x1234) });
    vm.run([0], 10);
    expect(cpus[0].injected.map((e) => e.vector)).to.deep.equal([1]);
    expect(vm.getRegister(0, 'dr6').lo & 0x2000).to.equal(0x2000);
    expect(vm.getRegister(0, 'dr7').lo & 0x2000).to.equal(0);
    expect(vm.getRegister(0, 'dr0')).to.deep.equal(u(0));
  });

  it('trace sink sees phases, exits, DR writes and leaks', () => {
    const { vm } = fakeVm({ drSwitch: 'none' }, [...guestWatch(0x2000), ...cpuidExits(2)]);
    const types = new Set<string>();
    vm.setTraceSink((ev) => types.add(ev.type));
    vm.setRegister(0, 'dr1', u(0x10));
    vm.run([0], 10);
    expect([...types].sort()).to.deep.equal(['dr-write', 'exit', 'leak', 'phase']);
  });
});

describe('Vm: IA32_DEBUGCTL has one write mask (SDM 17.4.1: bits 0, 1, 6-12, 14, 15)', () => {
  for (const backend of ['vmx', 'svm'] as const) {
    it(`${backend}: reserved bit 13 (and 2-5) refused for the client and for the guest's WRMSR (#GP); bit 14 accepted`, () => {
      const { vm, cpus } = fakeVm({ backend }, [
        { op: 'fn', fn: (c) => { c.setGpr(1, u(0x1d9)); c.setGpr(0, u(0x2000)); c.setGpr(2, u(0)); } },
        { op: 'exit', exit: { kind: 'wrmsr', length: 2 } },
      ]);
      expect(() => vm.setRegister(0, 'debugctl', u(0x2000))).to.throw(VmApiError, /reserved/);
      expect(() => vm.setRegister(0, 'debugctl', u(0x4))).to.throw(VmApiError, /reserved/);
      vm.setRegister(0, 'debugctl', u(0x4003));
      expect(vm.getRegister(0, 'debugctl')).to.deep.equal(u(0x4003));
      vm.run([0], 5);
      expect(cpus[0].injected[0]).to.deep.include({ vector: 13, errorCode: 0 });
      expect(vm.getRegister(0, 'debugctl')).to.deep.equal(u(0x4003));
    });
  }
});

describe('Vm: more than four breakpoints', () => {
  it('the debugger wins a slot, describeDebugState names the suspended guest breakpoint, and it comes back', () => {
    const { vm, cpus } = fakeVm({}, []);
    cpus[0].idleCpuid = false;
    vm.setRegister(0, 'dr0', u(0x1000));
    vm.setRegister(0, 'dr1', u(0x2000));
    vm.setRegister(0, 'dr2', u(0x3000));
    vm.setRegister(0, 'dr3', u(0x4000));
    vm.setRegister(0, 'dr7', u(0x400 | 0x55 | 0x99990000));
    vm.setDebuggerSlots(0, [{ address: u(0x8000), type: 'write', len: 8 }]);
    expect(vm.describeDebugState(0)).to.match(/guest breakpoint 3 suspended/);
    expect(vm.getRegister(0, 'dr3')).to.deep.equal(u(0x4000)); // the guest view is untouched
    cpus[0].script.push({ op: 'store', address: 0x8000, len: 8 });
    expect(vm.run([0], 5)).to.deep.equal({ kind: 'debug', vcpu: 0, slotsHit: 1, step: false });
    vm.setDebuggerSlots(0, [null]);
    expect(vm.describeDebugState(0)).to.not.match(/suspended/);
    cpus[0].script.push({ op: 'store', address: 0x4000, len: 8 });
    vm.run([0], 5);
    expect(cpus[0].guestDbs.length).to.equal(1);
    expect(vm.leaks()).to.deep.equal([]);
  });
});
