/**
 * The parts of vmm-gdbstub the CLI drives: the ELF loader and the VM (vmm/), imported as
 * usual, and the gdb server (stub/) and the verifier (verify/), loaded when a command
 * needs them, so that a build without one of them gives a clear "not available" error
 * (exit 134) for that command alone.
 */
import * as path from 'node:path';
import { LoadedImage } from '../vmm/loader/elf-types';
import { VmApi } from '../vmm/api/vm-api';
import { VmOptions } from '../vmm/api/vm-options';
import { parseElf } from '../vmm/loader/elf';
import { createVm } from '../vmm/api/create-vm';
import { CliError, EXIT } from './exit-codes';
import { createVmAnyBackend } from './kvm-cli';
import { StartGdbServer } from './serve-options';
import { RunVerify } from './verify-options';

/** vmm/loader/elf.ts: validates the whole file for a VM of that RAM size and vCPU count. */
export type ParseElf = (bytes: Uint8Array, memorySize: number, vcpus: number) => LoadedImage;
export type CreateVm = (image: LoadedImage, opts: VmOptions) => VmApi;

/** A VM that can report trace events (the real Vm's setTraceSink; not part of VmApi). */
export interface TraceableVm {
  setTraceSink(sink: ((event: never) => void) | null): void;
}
/** verify/trace-writer.ts: sends a VM's trace events to FILE; the result closes it. */
export type TraceVmToFile = (vm: TraceableVm, file: string, label?: string) => () => void;

/** What the commands need; tests pass their own (a FakeVm, say). */
export interface CliDeps {
  traceVmToFile(): TraceVmToFile;
  parseElf(): ParseElf;
  createVm(): CreateVm;
  startGdbServer(): StartGdbServer;
  runVerify(): { runVerify: RunVerify; scenarios?: readonly string[] };
}

function load(relative: string, what: string): Record<string, unknown> {
  const file = path.join(__dirname, '..', relative);
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    return require(file) as Record<string, unknown>;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'MODULE_NOT_FOUND' && err.message.includes(file)) {
      throw new CliError(`${what} is not available in this build (${relative}.js is missing)`, EXIT.INTERNAL);
    }
    throw e;
  }
}

function exported<T>(mod: Record<string, unknown>, name: string, relative: string): T {
  const f = mod[name];
  if (typeof f !== 'function') throw new CliError(`${relative} does not export ${name}()`, EXIT.INTERNAL);
  return f as T;
}

export const realDeps: CliDeps = {
  traceVmToFile: () => exported<TraceVmToFile>(load('verify/trace-writer', '--trace-vm'), 'traceVmToFile', 'verify/trace-writer'),
  parseElf: () => parseElf,
  createVm: () => createVmAnyBackend(createVm),
  startGdbServer: () => exported<StartGdbServer>(load('stub/server', 'the gdb stub'), 'startGdbServer', 'stub/server'),
  runVerify: () => {
    const mod = load('verify/run-verify', 'verify');
    const scenarios = mod['VERIFY_SCENARIOS'];
    return {
      runVerify: exported<RunVerify>(mod, 'runVerify', 'verify/run-verify'),
      scenarios: Array.isArray(scenarios) ? scenarios.map(String) : undefined,
    };
  },
};
