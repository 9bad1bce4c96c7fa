import { expect } from 'chai';
import { createVm } from '../../vmm/api/create-vm';
import { DEFAULT_VM_OPTIONS } from '../../vmm/api/vm-options';
import { Cpu } from '../../vmm/cpu/cpu';
import { Flat32Entry } from '../../vmm/loader/boot-plan';
import { LoadedImage } from '../../vmm/loader/elf-types';
import { assembleProgram } from '../helpers/asm';

/**
 * INIT-SIPI-SIPI through the local APIC: the BSP copies a real-mode trampoline to 0x8000 and
 * sends INIT then SIPI (vector 8) to all but itself, as kvm-unit-tests' bringup_aps does.
 * The AP parks at INIT, runs the trampoline at SIPI (real-mode runner) and is handed to the
 * CPU at the far jump's target. The CPU here is the real one plus a recording startFlat32
 * that continues the AP in 64-bit code (this test is about the platform, not 32-bit mode).
 */
const GUEST = `
_start:
  test %edi, %edi
  jnz ap_spin
  mov $0xfee00000, %r14d
  movl $0x1ff, 0xf0(%r14)
  lea tramp(%rip), %rsi; mov $0x8000, %edi; mov $(tramp_end - tramp), %ecx; rep movsb
  movl $0xc4500, 0x300(%r14)          # INIT, all but self
  movl $0xc4608, 0x300(%r14)          # SIPI vector 8, all but self
  movl $0xc4608, 0x300(%r14)          # second SIPI: ignored
1: cmpl $0, ap_flag(%rip); je 1b
  xor %eax, %eax; mov $0xf4, %dx; out %eax, %dx
ap_spin: pause; jmp ap_spin
ap_main: movl $1, ap_flag(%rip); 2: hlt; jmp 2b

  .code16
tramp:
  mov %cs, %ax
  mov %ax, %ds
  lgdtl gdtr - tramp
  mov %cr0, %eax
  or $1, %eax
  mov %eax, %cr0
  ljmpl $0x10, $0x12345678
gdtr: .word 0x17
  .long 0x7000
tramp_end:
  .code64
  .data
ap_flag: .long 0
`;

class RecordingCpu extends Cpu {
  started: Flat32Entry[] = [];
  apMain = 0;
  startFlat32(e: Flat32Entry): void {
    this.started.push(e);
    this.setReg('rip', { lo: this.apMain, hi: 0 });
  }
}

describe('platform: INIT-SIPI-SIPI start-up of an application processor', () => {
  for (const backend of ['vmx', 'svm'] as const) {
    it(`${backend}: INIT parks the AP, SIPI runs the trampoline, the CPU continues at the far jump`, () => {
      const p = assembleProgram(GUEST, 0x100000);
      const image: LoadedImage = { entry: 0x100000, segments: [{ address: 0x100000, data: p.code, memSize: p.code.length, flags: 7 }], symbols: new Map() };
      const cpus: RecordingCpu[] = [];
      const vm = createVm(image, { ...DEFAULT_VM_OPTIONS, backend, vcpus: 2, memMiB: 4 }, (mem, phys) => {
        const c = new RecordingCpu(mem, phys);
        c.apMain = p.labels.ap_main;
        cpus.push(c);
        return c;
      });
      let stop = vm.run([0, 1], 1e6);
      for (let i = 0; i < 50 && stop.kind === 'slice'; i++) stop = vm.run([0, 1], 1e6);
      expect(stop).to.deep.equal({ kind: 'exit', vcpu: 0, status: 0 });
      expect(cpus[0].started).to.deep.equal([]);
      expect(cpus[1].started).to.deep.equal([{ eip: 0x12345678, cs: 0x10, ds: 0, eax: 0, ebx: 0, esi: 0, gdtBase: 0x7000, gdtLimit: 0x17 }]);
    });
  }
});
