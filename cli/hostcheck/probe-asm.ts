/**
 * Builds a probe guest: x86-64 assembly -> a static ELF64 (GNU as + ld, as guests/build.sh
 * builds the built-in guests; text at 0x100000) and its symbols (nm), so that the host side
 * knows where to set its breakpoints.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface ProbeImage {
  elf: Uint8Array;
  symbols: Record<string, number>;
}

export class ToolMissing extends Error {}

export const PROBE_TEXT_BASE = 0x100000;

export function assembleProbe(name: string, source: string): ProbeImage {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmm-probe-'));
  try {
    const src = path.join(dir, `${name}.S`);
    const obj = path.join(dir, `${name}.o`);
    const elf = path.join(dir, `${name}.elf`);
    fs.writeFileSync(src, source);
    run('as', ['--64', '-o', obj, src]);
    run('ld', ['-static', '-nostdlib', `-Ttext=0x${PROBE_TEXT_BASE.toString(16)}`, '-e', '_start', '-o', elf, obj]);
    const symbols: Record<string, number> = {};
    for (const line of run('nm', [elf]).split('\n')) {
      const m = /^([0-9a-f]+) [tTaAdDbB] (\S+)$/.exec(line.trim());
      if (m) symbols[m[2]] = parseInt(m[1], 16);
    }
    return { elf: new Uint8Array(fs.readFileSync(elf)), symbols };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function run(tool: string, args: string[]): string {
  try {
    return execFileSync(tool, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string };
    if (err.code === 'ENOENT') throw new ToolMissing(`${tool} is not installed (apt-get install binutils)`);
    throw new Error(`${tool} failed: ${(err.stderr ?? err.message).trim()}`);
  }
}
