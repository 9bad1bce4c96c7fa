/** Where a command writes (injectable so tests can run commands in-process). */
export interface Output {
  stdout(text: string): void;
  stderr(text: string): void;
  /** Resolves once stdout can take more (a slow pipe holds the guest back, not our memory). */
  drained?(): Promise<void>;
  /** The process ends by this signal once the output is out (an interrupted run). */
  endBySignal?(signal: NodeJS.Signals): void;
}

let endSignal: NodeJS.Signals | undefined;

export function processOutput(): Output {
  // `vmm-gdbstub run guest.elf | head`: a closed pipe ends us quietly, not with a stack trace.
  for (const s of [process.stdout, process.stderr]) {
    s.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
      throw e;
    });
  }
  return {
    stdout: (t) => { process.stdout.write(t); },
    stderr: (t) => { process.stderr.write(t); },
    drained: () => (process.stdout.writableNeedDrain
      ? new Promise<void>((resolve) => process.stdout.once('drain', () => resolve()))
      : Promise.resolve()),
    endBySignal: (signal) => { endSignal = signal; },
  };
}

/** Exits with `code` once stdout and stderr have been flushed (pipes are asynchronous). */
export function reportAndExit(code: number): void {
  let pending = 2;
  const done = (): void => {
    if (--pending > 0) return;
    if (endSignal === undefined) process.exit(code);
    // as the shell expects of an interrupted program: no handler left, the signal again
    process.removeAllListeners(endSignal);
    process.kill(process.pid, endSignal);
  };
  process.stdout.write('', done);
  process.stderr.write('', done);
}
