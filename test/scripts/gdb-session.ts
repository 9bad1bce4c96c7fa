/** Test helper: run stock gdb in batch mode on a script and collect vmmcheck's results. */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseResultLines, VmmcheckResult } from '../../verify/vmmcheck-results';

export const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
export const VMMCHECK_PY = path.join(REPO_ROOT, 'gdb-scripts', 'vmmcheck.py');

export interface GdbSession {
  status: number | null;
  stdout: string;
  stderr: string;
  results: VmmcheckResult[];
  seconds: number;
}

export function gdbAvailable(): boolean {
  return spawnSync('gdb', ['--version']).status === 0;
}

/** Runs `gdb -nx -batch -x SCRIPT PROGRAM` with the script's lines; vmmcheck.py is sourced first. */
export function runGdbScript(program: string, lines: string[], env: NodeJS.ProcessEnv = {},
  timeoutMs = 30000): GdbSession {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmmcheck-'));
  const script = path.join(dir, 'session.gdb');
  fs.writeFileSync(script, [`source ${VMMCHECK_PY}`, ...lines].join('\n') + '\n');
  const started = Date.now();
  const run = spawnSync('gdb', ['-nx', '-batch', '-x', script, program], {
    encoding: 'utf8',
    timeout: timeoutMs,
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
  });
  fs.rmSync(dir, { recursive: true, force: true });
  return {
    status: run.status,
    stdout: run.stdout,
    stderr: run.stderr,
    results: parseResultLines(run.stdout),
    seconds: (Date.now() - started) / 1000,
  };
}

/** Builds a C file with gcc -g -O0 into a temporary directory; returns the executable. */
export function buildNative(source: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmmcheck-native-'));
  const out = path.join(dir, path.basename(source, '.c'));
  const gcc = spawnSync('gcc', ['-g', '-O0', '-o', out, source], { encoding: 'utf8' });
  if (gcc.status !== 0) throw new Error(`gcc failed: ${gcc.stderr}`);
  return out;
}
