import * as path from 'node:path';
import { VmApi } from '../vmm/api/vm-api';
import { VmOptions } from '../vmm/api/vm-options';
import { CliError, EXIT } from './exit-codes';
import type { CliDeps, TraceableVm } from './modules';
import { onProcessEnd } from './start-vm';

function isTraceable(vm: VmApi): vm is VmApi & TraceableVm {
  return typeof (vm as Partial<TraceableVm>).setTraceSink === 'function';
}

/**
 * --trace-vm FILE: the VM's trace events (guest/host phases, VM exits, #DBs, debug-register
 * writes, leaks) go to FILE as Chrome trace events, each written at once so a killed
 * process still leaves a readable file; `verify --trace` merges these files. Returns the
 * function that stops the trace and closes the file (also run on Ctrl-C or kill).
 */
export function startVmTrace(vm: VmApi, file: string, elf: string, opts: VmOptions, deps: CliDeps): () => void {
  if (!isTraceable(vm)) throw new CliError('--trace-vm: this VM cannot report trace events', EXIT.INTERNAL);
  const traceVmToFile = deps.traceVmToFile();
  const label = `${path.basename(elf, '.elf')} ${opts.backend} ${opts.drSwitch}`;
  let stop: (() => void) | undefined;
  try {
    stop = traceVmToFile(vm, file, label);
  } catch (e) {
    throw new CliError(`--trace-vm ${file}: ${(e as Error).message}`, EXIT.INTERNAL);
  }
  const finish = stop;
  let done = false;
  const close = (): void => {
    if (done) return;
    done = true;
    dispose();
    finish();
  };
  const dispose = onProcessEnd(close);
  return close;
}
