import { expect } from 'chai';
import { createVm } from '../../vmm/api/create-vm';
import { BackendName, VmStop } from '../../vmm/api/vm-api';
import { DEFAULT_VM_OPTIONS } from '../../vmm/api/vm-options';
import { LoadedImage } from '../../vmm/loader/elf-types';

/**
 * 0x100000 pushfq; pop rax; mov al, ah; out 0xe9, al; cpuid; popfq-test; exit:
 * the console byte is RFLAGS[15:8] as the guest saw it through PUSHF (TF = bit 0).
 */
const CODE = [
  0x9c,             // 100000 pushfq
  0x58,             // 100001 pop rax
  0x88, 0xe0,       // 100002 mov al, ah
  0xe6, 0xe9,       // 100004 out 0xe9, al
  0x0f, 0xa2,       // 100006 cpuid
  0x6a, 0x02,       // 100008 push 2
  0x9d,             // 10000a popfq (TF=0 from the guest's image)
  0xb0, 0x00,       // 10000b mov al, 0
  0xe6, 0xf4,       // 10000d out 0xf4, al
];
const RIPS = [0x100001, 0x100002, 0x100004, 0x100006, 0x100008, 0x10000a, 0x10000b, 0x10000d];
const IMAGE: LoadedImage = {
  entry: 0x100000, symbols: new Map(),
  segments: [{ address: 0x100000, data: Uint8Array.from(CODE), memSize: CODE.length, flags: 5 }],
};

function stepAll(backend: BackendName, cap: 'rflags-tf' | 'mtf'): { rips: number[]; stops: VmStop[]; console: string; tfSeen: boolean; last: VmStop } {
  const vm = createVm(IMAGE, { ...DEFAULT_VM_OPTIONS, backend, memMiB: 2 });
  vm.setCapability(0, cap, true);
  const rips: number[] = [];
  const stops: VmStop[] = [];
  let tfSeen = false;
  let last: VmStop = { kind: 'slice', vcpu: 0 };
  for (let i = 0; i < 20; i++) {
    last = vm.run([0], 100);
    if (last.kind === 'exit') break;
    stops.push(last);
    rips.push(vm.getRegister(0, 'rip').lo);
    if ((vm.getRegister(0, 'rflags').lo & 0x100) !== 0) tfSeen = true;
  }
  expect(vm.leaks()).to.deep.equal([]);
  return { rips, stops, console: vm.takeConsoleOutput(), tfSeen, last };
}

describe('stepping capabilities on the real CPU', () => {
  for (const backend of ['vmx', 'svm'] as const) {
    it(`${backend}: rflags-tf steps one instruction per run, emulated ones included, with TF hidden from PUSHF and the register view`, () => {
      const r = stepAll(backend, 'rflags-tf');
      expect(r.rips).to.deep.equal(RIPS);
      expect(r.stops.every((s) => s.kind === 'debug' && s.step && s.slotsHit === 0)).to.equal(true);
      expect(r.console.charCodeAt(0) & 1).to.equal(0);
      expect(r.tfSeen).to.equal(false);
      expect(r.last).to.deep.equal({ kind: 'exit', vcpu: 0, status: 0 });
    });
  }

  it('vmx: mtf stops after every instruction, emulated ones included', () => {
    const r = stepAll('vmx', 'mtf');
    expect(r.rips).to.deep.equal(RIPS);
    expect(r.stops.every((s) => s.kind === 'mtf')).to.equal(true);
  });
});

describe('intercept-bp on the real CPU', () => {
  for (const backend of ['vmx', 'svm'] as const) {
    it(`${backend}: int3 stops with RIP at the int3; without the capability the guest takes its own #BP`, () => {
      const code = [0x90, 0xcc, 0xb0, 0x05, 0xe6, 0xf4]; // nop; int3; mov al, 5; out 0xf4, al
      const img: LoadedImage = { entry: 0x100000, symbols: new Map(), segments: [{ address: 0x100000, data: Uint8Array.from(code), memSize: code.length, flags: 5 }] };
      const vm = createVm(img, { ...DEFAULT_VM_OPTIONS, backend, memMiB: 2 });
      vm.setCapability(0, 'intercept-bp', true);
      expect(vm.run([0], 100)).to.deep.equal({ kind: 'breakpoint', vcpu: 0, rip: { lo: 0x100001, hi: 0 } });
      vm.setRegister(0, 'rip', { lo: 0x100002, hi: 0 });
      expect(vm.run([0], 100)).to.deep.equal({ kind: 'exit', vcpu: 0, status: 5 });
      const own = createVm(img, { ...DEFAULT_VM_OPTIONS, backend, memMiB: 2 });
      expect(own.run([0], 100).kind).to.equal('triple-fault'); // no IDT: the guest's own #BP cannot be delivered
    });
  }
});

describe('rflags-tf through the stepper guest (loop, call, OUT, CPUID, STI;HLT woken by the timer, its interrupt handler entered at the vector entry)', () => {
  const fs = require('fs') as typeof import('fs');
  const path = require('path') as typeof import('path');
  const { parseElf } = require('../../vmm/loader/elf') as typeof import('../../vmm/loader/elf');
  const run = (backend: BackendName): string[] => {
    const img = parseElf(new Uint8Array(fs.readFileSync(path.join(__dirname, '..', '..', '..', 'guests', 'stepper.elf'))), 16 << 20, 1);
    const vm = createVm(img, { ...DEFAULT_VM_OPTIONS, backend, memMiB: 16 });
    const start = img.symbols.get('step_start') ?? -1;
    const end = img.symbols.get('step_end') ?? -1;
    vm.setDebuggerSlots(0, [{ address: { lo: start, hi: 0 }, type: 'exec', len: 1 }]);
    expect(vm.run([0], 1e6)).to.deep.include({ kind: 'debug', slotsHit: 1 });
    vm.setDebuggerSlots(0, [null]);
    vm.setCapability(0, 'rflags-tf', true);
    const rips: string[] = [];
    // The timer's vector 0x20 entry, from the guest's IDT (offset bits 15:0 and 31:16).
    const gate = vm.readMemory((img.symbols.get('idt') ?? -1) + 0x20 * 16, 16);
    expect(gate, 'IDT gate 0x20').to.not.equal(undefined);
    const entry = gate === undefined ? -1 : (gate[0] | (gate[1] << 8) | (gate[6] << 16) | (gate[7] << 24)) >>> 0;
    let prev = 0;
    let atEntry = 0;
    for (let n = 0; n < 500; n++) {
      const s = vm.run([0], 100);
      expect(s).to.deep.equal({ kind: 'debug', vcpu: 0, slotsHit: 0, step: true });
      expect(vm.getRegister(0, 'rflags').lo & 0x100, 'TF hidden').to.equal(0);
      const rip = vm.getRegister(0, 'rip').lo;
      rips.push(rip.toString(16));
      if (rip === entry) {
        // A step into the interrupt stops at the vector entry, before it runs, with the
        // frame pushed: the interrupted RIP (the step's start), and the guest's TF (0) saved.
        atEntry++;
        const frame = vm.readMemory(vm.getRegister(0, 'rsp').lo, 24);
        const f = new DataView((frame ?? new Uint8Array(24)).buffer);
        expect(f.getUint32(0, true), 'interrupted RIP in the frame').to.equal(prev);
        expect(f.getUint32(16, true) & 0x300, 'saved RFLAGS: IF=1, TF=0').to.equal(0x200);
      } else if (prev === entry) {
        expect(rip, 'the next step runs the entry\'s first instruction only').to.be.greaterThan(entry).and.lessThan(entry + 16);
      }
      prev = rip;
      if (rip === end) break;
    }
    expect(atEntry, 'stops at the vector entry').to.equal(1);
    vm.setCapability(0, 'rflags-tf', false);
    expect(vm.run([0], 1e6)).to.deep.equal({ kind: 'exit', vcpu: 0, status: 0 });
    const ticks = vm.readMemory(img.symbols.get('step_ticks') ?? -1, 8);
    expect(ticks?.[0]).to.equal(1);
    expect(vm.leaks()).to.deep.equal([]);
    return rips;
  };

  it('reaches step_end on both backends through the same instructions; the guest never sees TF and finishes normally', () => {
    const vmx = run('vmx');
    const svm = run('svm');
    expect(vmx.length).to.be.greaterThan(100);
    expect(svm).to.deep.equal(vmx);
  });
});
