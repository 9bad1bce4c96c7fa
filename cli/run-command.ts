import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DebugLeak, VmApi, VmStats, VmStop } from '../vmm/api/vm-api';
import { VmOptions } from '../vmm/api/vm-options';
import { CliError, EXIT } from './exit-codes';
import type { CliDeps } from './modules';
import { Output } from './output';
import { checkNameFree, createVmFromElf, openControlSocket } from './start-vm';
import { BootFlags } from './boot-flags';
import { SerialInput } from './serial-input';
import { startVmTrace } from './trace-vm';
import { checkWritable } from './writable-file';

export interface RunRequest {
  elf: string;
  vm: VmOptions;
  /** --boot/--cmdline/--module (absent: detect, none). */
  boot?: BootFlags;
  stats: boolean;
  json?: string;
  name?: string;
  /** --trace-vm FILE */
  traceVm?: string;
  /** --serial-input FILE|-: COM1's input */
  serialInput?: string;
}

/** Slice sizes: long enough to amortize the yield, short enough to serve vmmctl in milliseconds. */
const FIRST_SLICE = 200_000;
const MIN_SLICE = 10_000;
const MAX_SLICE = 20_000_000;
const TARGET_SLICE_MS = 10;

/** How a run ended: a stop of the VM, or a signal that interrupted the run. */
export type RunStop = VmStop | { kind: 'interrupted'; signal: NodeJS.Signals };

/** How a run ended: the exit status and the one-line diagnosis for a status >= 128. */
export interface RunOutcome {
  status: number;
  stop: RunStop;
  diagnosis?: string;
}

const INTERRUPTING_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/**
 * Notes SIGINT/SIGTERM/SIGHUP for the run loop, which ends the run at the next slice;
 * `onSignal` wakes a loop that waits for serial input.
 */
function watchSignals(onSignalCaught?: () => void): { signal(): NodeJS.Signals | undefined; dispose(): void } {
  let caught: NodeJS.Signals | undefined;
  const onSignal = (sig: NodeJS.Signals): void => { caught ??= sig; onSignalCaught?.(); };
  for (const s of INTERRUPTING_SIGNALS) process.on(s, onSignal);
  return {
    signal: () => caught,
    dispose: () => { for (const s of INTERRUPTING_SIGNALS) process.removeListener(s, onSignal); },
  };
}

export function outcomeOf(stop: VmStop, vm: VmApi): RunOutcome | undefined {
  switch (stop.kind) {
    case 'slice':
      return undefined;
    case 'exit':
      return { status: stop.status & 0x7f, stop };
    case 'triple-fault':
      return { status: EXIT.TRIPLE_FAULT, stop, diagnosis: `guest triple fault on vCPU ${stop.vcpu}: ${stop.reason}` };
    case 'npf': {
      const hex = '0x' + stop.address.toString(16);
      return {
        status: EXIT.OUTSIDE_MEMORY, stop,
        diagnosis: `vCPU ${stop.vcpu}: guest ${stop.write ? 'write to' : 'read of'} ${hex}, outside guest memory (0-0x${(vm.memorySize - 1).toString(16)})`,
      };
    }
    case 'all-halted':
      return {
        status: EXIT.ALL_HALTED, stop,
        diagnosis: `every vCPU is halted and nothing can wake it (HLT with interrupts disabled or no timer; last vCPU ${stop.vcpu})`,
      };
    case 'entry-failed':
      return { status: EXIT.ENTRY_FAILED, stop, diagnosis: `VM entry failed on vCPU ${stop.vcpu}: ${stop.reason}` };
    case 'debug':
    case 'breakpoint':
    case 'mtf':
      // Only a debugger turns on the capabilities that make these reach the client.
      return { status: EXIT.INTERNAL, stop, diagnosis: `internal error: unexpected ${stop.kind} stop on vCPU ${stop.vcpu} with no debugger attached` };
  }
}

/** `vmm-gdbstub run`: runs the guest to its end, printing its console on stdout. */
export async function runCommand(req: RunRequest, deps: CliDeps, out: Output): Promise<number> {
  if (req.json !== undefined) checkWritable(req.json, '--json');
  if (req.traceVm !== undefined) checkWritable(req.traceVm, '--trace-vm');
  if (req.name !== undefined) await checkNameFree(req.name);
  const serialSource = req.serialInput === undefined ? undefined : SerialInput.source(req.serialInput);
  const vm = createVmFromElf(req.elf, req.vm, deps, req.boot);
  const serial = serialSource === undefined ? undefined
    : SerialInput.attach(serialSource, vm, (m) => out.stderr(`vmm-gdbstub: ${m}\n`));
  const control = req.name === undefined ? undefined
    : await openControlSocket(vm, req.name, { command: 'run', guest: req.elf });
  const stopTrace = req.traceVm === undefined ? undefined : startVmTrace(vm, req.traceVm, req.elf, req.vm, deps);
  const started = process.hrtime.bigint();
  let outcome: RunOutcome;
  const signals = watchSignals(() => serial?.interrupt());
  try {
    outcome = await runToEnd(vm, out, signals.signal, serial);
  } finally {
    signals.dispose();
    serial?.close();
    stopTrace?.();
    const rest = vm.takeConsoleOutput();
    if (rest) out.stdout(rest);
    await control?.close();
  }
  const wallSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  const report = runReport(req, vm, outcome, wallSeconds);
  if (outcome.diagnosis !== undefined) out.stderr(`vmm-gdbstub: ${outcome.diagnosis}\n`);
  if (req.stats) out.stderr(formatRunReport(report));
  if (req.json !== undefined) {
    try {
      fs.writeFileSync(req.json, JSON.stringify(report, null, 2) + '\n');
    } catch (e) {
      throw new CliError(`cannot write --json ${req.json}: ${(e as Error).message}`, EXIT.INTERNAL);
    }
  }
  if (outcome.stop.kind === 'interrupted') out.endBySignal?.(outcome.stop.signal);
  return outcome.status;
}

/** Runs slices until the VM stops for good, yielding to the event loop between slices. */
async function runToEnd(vm: VmApi, out: Output, interrupted: () => NodeJS.Signals | undefined, serial?: SerialInput): Promise<RunOutcome> {
  const vcpus = Array.from({ length: vm.vcpuCount }, (_, i) => i);
  let budget = FIRST_SLICE;
  for (;;) {
    const signal = interrupted();
    if (signal !== undefined) {
      return {
        status: 128 + (os.constants.signals[signal] ?? 0), stop: { kind: 'interrupted', signal },
        diagnosis: `run interrupted by ${signal} after ${vm.stats().instructions} instructions`,
      };
    }
    const t0 = performance.now();
    const stop = vm.run(vcpus, budget);
    const ms = performance.now() - t0;
    const text = vm.takeConsoleOutput();
    if (text) out.stdout(text);
    const outcome = outcomeOf(stop, vm);
    if (outcome?.stop.kind === 'all-halted' && serial !== undefined && !serial.done) {
      // Idle until the user types: the UART's interrupt may wake a vCPU.
      await serial.nextInput();
      continue;
    }
    if (outcome) return outcome;
    // Aim each slice at TARGET_SLICE_MS of wall time.
    if (ms > 0) budget = Math.round(Math.min(MAX_SLICE, Math.max(MIN_SLICE, budget * (TARGET_SLICE_MS / ms))));
    else budget = Math.min(MAX_SLICE, budget * 2);
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (out.drained) await out.drained();
  }
}

export interface RunReport {
  guest: string;
  options: VmOptions;
  exitStatus: number;
  stop: RunStop;
  diagnosis?: string;
  instructions: number;
  wallTimeSeconds: number;
  instructionsPerSecond: number;
  vmExits: { total: number; byReason: Record<string, number> };
  transitions: number;
  hostWatchHits: number;
  /** Host NMIs handled (NMI exits) and those whose handler found foreign debug registers; absent when there were none. */
  hostNmis?: { handled: number; sawForeignDebugState: number };
  leaksDetected: number;
  leaks: DebugLeak[];
}

export function runReport(req: RunRequest, vm: VmApi, outcome: RunOutcome, wallSeconds: number): RunReport {
  const s: VmStats = vm.stats();
  const leaks = [...vm.leaks()];
  return {
    guest: req.elf,
    options: req.vm,
    exitStatus: outcome.status,
    stop: outcome.stop,
    ...(outcome.diagnosis !== undefined ? { diagnosis: outcome.diagnosis } : {}),
    instructions: s.instructions,
    wallTimeSeconds: Number(wallSeconds.toFixed(6)),
    instructionsPerSecond: wallSeconds > 0 ? Math.round(s.instructions / wallSeconds) : 0,
    vmExits: { total: Object.values(s.exits).reduce((a, b) => a + b, 0), byReason: { ...s.exits } },
    transitions: s.transitions,
    hostWatchHits: s.hostWatchHits,
    ...(s.hostNmis !== undefined && s.hostNmis.handled > 0 ? { hostNmis: { ...s.hostNmis } } : {}),
    leaksDetected: Math.max(s.leaks, leaks.length),
    leaks,
  };
}

export function formatRunReport(r: RunReport): string {
  const reasons = Object.entries(r.vmExits.byReason).filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]);
  const lines = [
    `--- vmm-gdbstub run: ${r.options.backend}, dr-switch ${r.options.drSwitch}, host ${r.options.hostScenario}, ${r.options.vcpus} vCPU(s)`,
    `exit status:          ${r.exitStatus}`,
    `instructions retired: ${r.instructions}`,
    `wall time:            ${r.wallTimeSeconds.toFixed(3)} s`,
    `instructions/s:       ${r.instructionsPerSecond}`,
    `vm exits:             ${r.vmExits.total}${reasons.length ? ` (${reasons.map(([k, n]) => `${k} ${n}`).join(', ')})` : ''}`,
    `transitions:          ${r.transitions}`,
    `host watchpoint hits: ${r.hostWatchHits}`,
    ...(r.hostNmis !== undefined ? [`host NMIs:            ${r.hostNmis.handled} (handler found foreign debug registers: ${r.hostNmis.sawForeignDebugState})`] : []),
    `debug-state leaks:    ${r.leaksDetected}`,
  ];
  for (const l of r.leaks.slice(0, MAX_LEAK_LINES)) {
    lines.push(`  transition ${l.transition} vCPU ${l.vcpu} at ${l.when}: ${l.register} expected ${l.expected} actual ${l.actual} (${l.side} value leaked into the ${l.side === 'host' ? 'guest' : 'host'})`);
  }
  if (r.leaks.length > MAX_LEAK_LINES) {
    lines.push(`  ... and ${r.leaks.length - MAX_LEAK_LINES} more (--json FILE lists them all)`);
  }
  return lines.join('\n') + '\n';
}

/** A pre-fix run can leak at every transition: --stats shows the first ones, --json all. */
const MAX_LEAK_LINES = 20;

