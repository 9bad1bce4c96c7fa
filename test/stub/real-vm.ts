/**
 * Creates the real VM for a built-in guest when the vmm (createVm) and the ELF loader are in
 * this build; undefined otherwise, so stub tests and the benchmark can say what they skip.
 * Loaded at run time so the stub builds before the vmm exists.
 */
import * as fs from 'fs';
import * as path from 'path';
import { VmApi } from '../../vmm/api/vm-api';
import { DEFAULT_VM_OPTIONS, VmOptions } from '../../vmm/api/vm-options';
import { LoadedImage } from '../../vmm/loader/elf-types';

type ParseElf = (bytes: Uint8Array, memSize: number, vcpus?: number) => LoadedImage;
type CreateVm = (image: LoadedImage, opts: VmOptions, factory?: unknown) => VmApi;
type CpuClass = new (mem: unknown, phys: unknown) => unknown;

const ROOT = path.join(__dirname, '..', '..', '..');

function tryRequire(rel: string): Record<string, unknown> | undefined {
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    return require(path.join(ROOT, 'dist', rel)) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

export function guestPath(name: string): string {
  return path.join(ROOT, 'guests', `${name}.elf`);
}

export interface RealVm {
  vm: VmApi;
  image: LoadedImage;
  elf: string;
}

/** undefined when the VM, the loader or the guest is not in this build. */
export function makeRealVm(guest: string, opts: Partial<VmOptions> = {}): RealVm | undefined {
  return makeRealVmFromElf(guestPath(guest), opts);
}

export function makeRealVmFromElf(elf: string, opts: Partial<VmOptions> = {}): RealVm | undefined {
  const create = tryRequire('vmm/api/create-vm')?.['createVm'];
  const parse = tryRequire('vmm/loader/elf')?.['parseElf'];
  if (typeof create !== 'function' || typeof parse !== 'function' || !fs.existsSync(elf)) return undefined;
  const o: VmOptions = { ...DEFAULT_VM_OPTIONS, ...opts };
  const image = (parse as ParseElf)(fs.readFileSync(elf), o.memMiB * 1024 * 1024, o.vcpus);
  // the real CPU, if this build has not registered it as createVm's default yet
  const Cpu = tryRequire('vmm/cpu/cpu')?.['Cpu'];
  const factory = typeof Cpu === 'function' ? (mem: unknown, phys: unknown) => new (Cpu as CpuClass)(mem, phys) : undefined;
  return { vm: (create as CreateVm)(image, o, factory), image, elf };
}
