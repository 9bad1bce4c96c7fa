/**
 * Tests that need a usable /dev/kvm (and the built addon) call requireKvm(this) in their
 * `before`: on a machine without it the whole suite is skipped, and the reason is printed
 * once per test run (one line, so that CI output shows whether the kvm tests ran).
 */
import * as path from 'node:path';
import { kvmProblem } from '../../vmm/kvm/kvm-device';
import { KvmVm } from '../../vmm/kvm/kvm-vm';
import { DEFAULT_VM_OPTIONS } from '../../vmm/api/vm-options';
import { parseElf } from '../../vmm/loader/elf';
import { assembleProbe, ProbeImage } from '../../cli/hostcheck/probe-asm';

let announced = false;

export function requireKvm(ctx: Mocha.Context): void {
  const problem = kvmProblem();
  if (!announced) {
    announced = true;
    console.log(problem === undefined ? '      [kvm] kvm tests run on this host\'s /dev/kvm'
      : `      [kvm] kvm tests SKIPPED: ${problem}`);
  }
  if (problem !== undefined) ctx.skip();
}

export const ROOT = path.resolve(__dirname, '..', '..', '..');
export const BIN = path.join(ROOT, 'bin', 'vmm-gdbstub.js');
export const guestPath = (name: string): string => path.join(ROOT, 'guests', `${name}.elf`);

/** A guest from assembly (the body after _start; our ELF64 ABI, text at 0x100000). */
export function asmGuest(name: string, body: string): ProbeImage {
  return assembleProbe(name, `  .text\n  .globl _start\n_start:\n${body}\n`);
}

export function kvmVm(image: ProbeImage, vcpus = 1, memMiB = 16): KvmVm {
  return new KvmVm(parseElf(image.elf, memMiB * 1024 * 1024, vcpus), { ...DEFAULT_VM_OPTIONS, backend: 'kvm', vcpus, memMiB });
}
