/** Runs the real gdb in batch mode for tests and the benchmark. */
import { spawn } from 'child_process';

export interface GdbRun {
  out: string;
  code: number | null;
  pid: number;
}

export interface GdbRunOptions {
  timeoutMs?: number;
  /** Send SIGINT to gdb after this many ms (Ctrl-C). */
  interruptAfterMs?: number;
  /**
   * Send SIGINT to gdb 500 ms after this text appears in its output (not on a timer from the
   * start, so a slow machine cannot interrupt an earlier command).
   */
  interruptAfterText?: string;
  /** The program file gdb loads symbols from (its last argument). */
  program?: string;
  /** Send SIGKILL to gdb after this many ms (a dropped connection). */
  killAfterMs?: number;
  cwd?: string;
  /** gdb commands before `target remote` (e.g. `set debug remote 1` to see the handshake). */
  before?: string[];
}

export function gdbArgs(target: string, commands: string[], before: string[] = [], program?: string): string[] {
  // A `target remote |` serve starting on a loaded machine may answer after gdb's 2 s default.
  const args = ['-batch', '-nx', '-ex', 'set confirm off', '-ex', 'set pagination off', '-ex', 'set remotetimeout 20'];
  for (const c of before) args.push('-ex', c);
  args.push('-ex', `target remote ${target}`);
  for (const c of commands) args.push('-ex', c);
  if (program !== undefined) args.push(program);
  return args;
}

export function runGdb(target: string, commands: string[], opts: GdbRunOptions = {}): Promise<GdbRun> {
  return new Promise((resolve, reject) => {
    const child = spawn('gdb', gdbArgs(target, commands, opts.before, opts.program), { stdio: ['ignore', 'pipe', 'pipe'], cwd: opts.cwd });
    let out = '';
    let textSeen = false;
    const onData = (d: Buffer): void => {
      out += d.toString();
      if (opts.interruptAfterText !== undefined && !textSeen && out.includes(opts.interruptAfterText)) {
        textSeen = true;
        setTimeout(() => child.kill('SIGINT'), 500);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30000);
    let intr: NodeJS.Timeout | undefined;
    if (opts.interruptAfterMs !== undefined) intr = setTimeout(() => child.kill('SIGINT'), opts.interruptAfterMs);
    else if (opts.killAfterMs !== undefined) intr = setTimeout(() => child.kill('SIGKILL'), opts.killAfterMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (intr) clearTimeout(intr);
      resolve({ out, code, pid: child.pid ?? -1 });
    });
  });
}
