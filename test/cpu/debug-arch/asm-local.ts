// Stand-in for test/helpers/asm.ts (on the cpu branch) until it is merged: GNU as + ld at a
// fixed origin, returning the flat bytes and the label addresses. Same shape as asm.ts's
// assembleProgram so the harness can switch with a one-line import change.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

export interface AssembledProgram {
  code: Uint8Array;
  labels: Record<string, number>;
}

const memo = new Map<string, AssembledProgram>();

export function assembleProgram(source: string, origin: number): AssembledProgram {
  const key = origin + '\0' + source;
  const hit = memo.get(key);
  if (hit) return hit;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbgtests-asm-'));
  try {
    fs.writeFileSync(path.join(dir, 'a.s'), source + '\n');
    const sh = (cmd: string, args: string[]): string => {
      try {
        return execFileSync(cmd, args, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      } catch (e) {
        throw new Error(`${cmd}: ${(e as { stderr?: string }).stderr ?? String(e)}`);
      }
    };
    sh('as', ['--64', '-o', 'a.o', 'a.s']);
    sh('ld', ['-N', '-static', '-nostdlib', '-Ttext=0x' + origin.toString(16), '-e', '0x' + origin.toString(16), '-o', 'a.elf', 'a.o']);
    sh('objcopy', ['-O', 'binary', 'a.elf', 'a.bin']);
    const labels: Record<string, number> = {};
    for (const line of sh('nm', ['a.elf']).split('\n')) {
      const m = /^([0-9a-f]+)\s+\S\s+(\S+)$/.exec(line.trim());
      if (m) labels[m[2]] = parseInt(m[1], 16);
    }
    const prog = { code: new Uint8Array(fs.readFileSync(path.join(dir, 'a.bin'))), labels };
    memo.set(key, prog);
    return prog;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
