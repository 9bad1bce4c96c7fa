/**
 * --boot, --cmdline and --module of run and serve (PC boot protocols, vmm/loader). The
 * module files are read here, so that a missing one is refused before anything starts.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BOOT_PROTOCOLS, BootModule, BootProtocol } from '../vmm/loader/boot-plan';
import { UsageError } from './exit-codes';
import { parseChoiceFlag, singleString } from './parse-values';

export interface BootFlags {
  /** undefined: detect (a PVH note, a Multiboot header, else our ELF64 ABI). */
  protocol?: BootProtocol;
  cmdline?: string;
  modules: BootModule[];
}

export const BOOT_OPTION_SPECS = {
  boot: { type: 'string', describe: `boot protocol: ${BOOT_PROTOCOLS.join(', ')} (default: detected from the file)` },
  cmdline: { type: 'string', describe: 'Multiboot/PVH kernel command line (Multiboot: after the kernel path, as QEMU -append)' },
  module: { type: 'string', describe: 'Multiboot/PVH boot modules: FILE[,FILE...] (as QEMU -initrd)' },
} as const;

export function bootFlagsFromArgs(args: Record<string, unknown>): BootFlags {
  const protocol = args['boot'] === undefined ? undefined : parseChoiceFlag('boot', args['boot'], BOOT_PROTOCOLS, 'elf64');
  const cmdline = singleString('cmdline', args['cmdline']);
  const list = singleString('module', args['module']);
  const modules: BootModule[] = [];
  for (const file of list === undefined ? [] : list.split(',')) {
    if (file === '') throw new UsageError('--module: an empty file name');
    try {
      modules.push({ name: path.basename(file), data: new Uint8Array(fs.readFileSync(file)) });
    } catch (e) {
      throw new UsageError(`--module ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
    }
  }
  if ((protocol === 'elf64') && (cmdline !== undefined || modules.length > 0)) {
    throw new UsageError('--cmdline and --module need a Multiboot or PVH kernel, not --boot elf64');
  }
  return { protocol, cmdline, modules };
}
