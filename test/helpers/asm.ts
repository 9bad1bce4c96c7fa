// Test helper: assemble x86-64 source with GNU as/ld into a flat binary at a given origin.
// Results are cached by content hash in os.tmpdir() so repeated test runs stay fast.
import { execFileSync } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Cpu } from '../../vmm/cpu/cpu';
import { GuestMemory } from '../../vmm/memory';
import { PhysicalCpu } from '../../vmm/cpu/physical-cpu';
import { u64 } from '../../vmm/u64';

export interface AssembledProgram {
  code: Uint8Array;
  /** Symbol (label) name -> absolute address. */
  labels: Record<string, number>;
}

const CACHE_DIR = path.join(os.tmpdir(), 'vmm-gdbstub-asm-cache');

/**
 * Assembles `source` (AT&T syntax unless it starts with `.intel_syntax noprefix`) so that its
 * first byte sits at `origin`; returns the bytes and every label's absolute address.
 * Data directives in the same section are fine; all sections are laid out contiguously.
 */
export function assembleProgram(source: string, origin = 0x1000): AssembledProgram {
  const key = crypto.createHash('sha256').update(`${origin}\0${source}`).digest('hex');
  const cached = path.join(CACHE_DIR, key + '.json');
  if (fs.existsSync(cached)) {
    const j = JSON.parse(fs.readFileSync(cached, 'utf8')) as { code: string; labels: Record<string, number> };
    return { code: new Uint8Array(Buffer.from(j.code, 'base64')), labels: j.labels };
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmm-asm-'));
  try {
    const src = path.join(dir, 'a.s');
    fs.writeFileSync(src, source.endsWith('\n') ? source : source + '\n');
    const run = (cmd: string, args: string[]): string => {
      try {
        return execFileSync(cmd, args, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      } catch (e) {
        const err = e as { stderr?: string; message: string };
        throw new Error(`${cmd} failed: ${err.stderr ?? err.message}`);
      }
    };
    run('as', ['--64', '-o', 'a.o', 'a.s']);
    run('ld', ['-N', '-nostdlib', '-static', `-Ttext=0x${origin.toString(16)}`, '-e', `0x${origin.toString(16)}`, '-o', 'a.elf', 'a.o']);
    run('objcopy', ['-O', 'binary', 'a.elf', 'a.bin']);
    const code = new Uint8Array(fs.readFileSync(path.join(dir, 'a.bin')));
    const labels: Record<string, number> = {};
    for (const line of run('nm', ['a.elf']).split('\n')) {
      const m = /^([0-9a-f]+)\s+\S\s+(\S+)$/.exec(line.trim());
      if (m) labels[m[2]] = parseInt(m[1], 16);
    }
    fs.mkdirSync(CACHE_DIR, { recursive: true });
    const tmp = cached + '.' + process.pid + '.tmp';
    fs.writeFileSync(tmp, JSON.stringify({ code: Buffer.from(code).toString('base64'), labels }));
    fs.renameSync(tmp, cached);
    return { code, labels };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The flat bytes of `source` assembled at `origin`. */
export function assemble(source: string, origin = 0x1000): Uint8Array {
  return assembleProgram(source, origin).code;
}

export interface MakeCpuOptions {
  origin?: number;
  memSize?: number;
  phys?: PhysicalCpu;
}

/**
 * A Cpu in the guest-ABI initial state with `code` loaded at `origin` (default 0x1000),
 * RIP = origin and RSP = top of memory (default 1 MiB). `cpu.mem` and `cpu.phys` give
 * access to RAM and the physical debug registers.
 */
export function makeCpu(code: Uint8Array, opts: MakeCpuOptions = {}): Cpu {
  const origin = opts.origin ?? 0x1000;
  const mem = new GuestMemory(opts.memSize ?? 1 << 20);
  if (!mem.write(origin, code)) throw new Error('code does not fit in guest memory');
  const cpu = new Cpu(mem, opts.phys ?? new PhysicalCpu());
  cpu.setReg('rip', u64(origin));
  cpu.setGpr(4, u64(mem.size));
  return cpu;
}
