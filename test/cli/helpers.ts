import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, SpawnOptions } from 'node:child_process';
import { Output } from '../../cli/output';

export const ROOT = path.resolve(__dirname, '..', '..', '..');
export const VMM_GDBSTUB_BIN = path.join(ROOT, 'bin', 'vmm-gdbstub.js');
export const VMMCTL_BIN = path.join(ROOT, 'bin', 'vmmctl.js');

export interface Captured extends Output {
  out: string;
  err: string;
}

export function capture(): Captured {
  const c: Captured = {
    out: '', err: '',
    stdout: (t) => { c.out += t; },
    stderr: (t) => { c.err += t; },
  };
  return c;
}

export function tempDir(prefix = 'vmm-cli-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** A file the fake ELF loader accepts (ELF magic, nothing else). */
export function fakeElf(dir: string, name = 'guest.elf'): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]));
  return p;
}

/** Points the control sockets of this process (and its children) at a private temp dir. */
export function privateRuntimeDir(): { dir: string; restore(): void } {
  const saved = process.env['XDG_RUNTIME_DIR'];
  const dir = tempDir('vmm-xdg-');
  fs.chmodSync(dir, 0o700);
  process.env['XDG_RUNTIME_DIR'] = dir;
  return {
    dir,
    restore: () => {
      if (saved === undefined) delete process.env['XDG_RUNTIME_DIR'];
      else process.env['XDG_RUNTIME_DIR'] = saved;
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface ProcResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs a node script asynchronously (the test's own event loop keeps serving sockets). */
export function runNode(script: string, args: string[], opts: SpawnOptions = {}, timeoutMs = 30000): Promise<ProcResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr?.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`${script} ${args.join(' ')} timed out`)); }, timeoutMs);
    child.on('error', reject);
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, stdout, stderr });
    });
  });
}

export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
