import { expect } from 'chai';
import { createVm } from '../../vmm/api/create-vm';
import { DEFAULT_VM_OPTIONS } from '../../vmm/api/vm-options';
import { LoadedImage } from '../../vmm/loader/elf-types';
import { VmStop } from '../../vmm/vmm-types';
import { assembleProgram } from '../helpers/asm';

function runGuest(src: string, backend: 'vmx' | 'svm'): VmStop {
  const p = assembleProgram(src, 0x100000);
  const img: LoadedImage = { entry: 0x100000, segments: [{ address: 0x100000, data: p.code, memSize: p.code.length, flags: 7 }], symbols: new Map() };
  const vm = createVm(img, { ...DEFAULT_VM_OPTIONS, backend, memMiB: 4 });
  let stop = vm.run([0], 1e6);
  for (let i = 0; i < 10 && stop.kind === 'slice'; i++) stop = vm.run([0], 1e6);
  return stop;
}

/** The hypercall of each backend: RAX = -KVM_ENOSYS (no hypercalls offered), then on. */
const HYPERCALL = (insn: string): string => `
  xor %eax, %eax
  ${insn}
  mov $1, %edi; cmp $-1000, %rax; jne fail
  xor %edi, %edi
fail:
  mov %edi, %eax; mov $0xf4, %dx; out %eax, %dx
  hlt
`;

/** RDTSC around one CPUID: 3 instructions retire in between, plus one exit's round trip. */
const EXIT_TIME = `
  rdtsc; mov %eax, %esi
  cpuid
  rdtsc; sub %esi, %eax
  mov $2, %edi; cmp $1000, %eax; jb fail
  mov $3, %edi; cmp $1010, %eax; ja fail
  xor %edi, %edi
fail:
  mov %edi, %eax; mov $0xf4, %dx; out %eax, %dx
  hlt
`;

describe('hypervisor: VMCALL / VMMCALL and the time an exit takes', () => {
  for (const [backend, own, other] of [['vmx', 'vmcall', 'vmmcall'], ['svm', 'vmmcall', 'vmcall']] as const) {
    it(`${backend}: ${own} exits and returns -1000 in RAX (as KVM for an unknown hypercall); ${other} is #UD`, () => {
      expect(runGuest(HYPERCALL(own), backend)).to.deep.equal({ kind: 'exit', vcpu: 0, status: 0 });
      const stop = runGuest(HYPERCALL(other), backend);
      expect(stop.kind).to.equal('triple-fault');
      expect(JSON.stringify(stop)).to.match(/#UD at rip 0x100002/);
    });
    it(`${backend}: an emulated CPUID costs the guest 1000 TSC ticks besides its instructions`, () => {
      expect(runGuest(EXIT_TIME, backend)).to.deep.equal({ kind: 'exit', vcpu: 0, status: 0 });
    });
  }
});
