/** Where a command writes (injectable so tests can run commands in-process). */
export interface Output {
  stdout(text: string): void;
  stderr(text: string): void;
}

export function processOutput(): Output {
  return {
    stdout: (t) => { process.stdout.write(t); },
    stderr: (t) => { process.stderr.write(t); },
  };
}

/** Exits with `code` once stdout and stderr have been flushed (pipes are asynchronous). */
export function reportAndExit(code: number): void {
  let pending = 2;
  const done = (): void => {
    if (--pending === 0) process.exit(code);
  };
  process.stdout.write('', done);
  process.stderr.write('', done);
}
