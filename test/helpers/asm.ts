// Test helper: assemble x86-64 source with GNU as/ld into a flat binary at a given origin.
// One module for every test that assembles code; results are cached by content hash.
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
const memo = new Map<string, AssembledProgram>();

/**
 * Assembles `source` (AT&T syntax unless it starts with `.intel_syntax noprefix`) so that its
 * first byte sits at `origin`; returns the bytes and every label's absolute address.
 * Data directives in the same section are fine; all sections are laid out contiguously.
 * Cached in memory and on disk by content hash, so reruns spawn nothing.
 */
export function assembleProgram(source: string, origin = 0x1000): AssembledProgram {
  const key = crypto.createHash('sha256').update(`v2\0${origin}\0${source}`).digest('hex');
  const hit = memo.get(key);
  if (hit) return hit;
  const cached = path.join(CACHE_DIR, key + '.json');
  let prog: AssembledProgram | undefined;
  if (fs.existsSync(cached)) {
    const j = JSON.parse(fs.readFileSync(cached, 'utf8')) as { code: string; labels: Record<string, number> };
    prog = { code: new Uint8Array(Buffer.from(j.code, 'base64')), labels: j.labels };
  } else {
    prog = assembleUncached(source, origin);
    fs.mkdirSync(CACHE_DIR, { recursive: true });
    const tmp = cached + '.' + process.pid + '.tmp';
    fs.writeFileSync(tmp, JSON.stringify({ code: Buffer.from(prog.code).toString('base64'), labels: prog.labels }));
    fs.renameSync(tmp, cached);
  }
  memo.set(key, prog);
  return prog;
}

/**
 * One `as` process; a program whose .text needs no relocation is already its flat image.
 * Only programs with absolute label references or data sections pay for ld, objcopy and nm.
 */
function assembleUncached(source: string, origin: number): AssembledProgram {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmm-asm-'));
  try {
    const run = (cmd: string, args: string[], input?: string): string => {
      try {
        return execFileSync(cmd, args, { cwd: dir, encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
      } catch (e) {
        const err = e as { stderr?: string; message: string };
        throw new Error(`${cmd} failed: ${err.stderr ?? err.message}`);
      }
    };
    run('as', ['--64', '-o', 'a.o'], source.endsWith('\n') ? source : source + '\n');
    const flat = flatten(new Uint8Array(fs.readFileSync(path.join(dir, 'a.o'))), origin);
    if (flat !== undefined) return flat;
    run('ld', ['-N', '-nostdlib', '-static', `-Ttext=0x${origin.toString(16)}`, '-e', `0x${origin.toString(16)}`, '-o', 'a.elf', 'a.o']);
    run('objcopy', ['-O', 'binary', 'a.elf', 'a.bin']);
    const code = new Uint8Array(fs.readFileSync(path.join(dir, 'a.bin')));
    const labels: Record<string, number> = {};
    for (const line of run('nm', ['a.elf']).split('\n')) {
      const m = /^([0-9a-f]+)\s+\S\s+(\S+)$/.exec(line.trim());
      if (m) labels[m[2]] = parseInt(m[1], 16);
    }
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

/**
 * The .text bytes and labels of an ELF64 relocatable object, or undefined when it needs the
 * linker (relocations in .text, or other non-empty data sections).
 */
function flatten(elf: Uint8Array, origin: number): AssembledProgram | undefined {
  const v = new DataView(elf.buffer, elf.byteOffset, elf.byteLength);
  const num = (off: number) => Number(v.getBigUint64(off, true));
  const shoff = num(0x28);
  const shentsize = v.getUint16(0x3a, true);
  const shnum = v.getUint16(0x3c, true);
  const shstrndx = v.getUint16(0x3e, true);
  const sec = (i: number) => {
    const b = shoff + i * shentsize;
    return {
      name: v.getUint32(b, true), type: v.getUint32(b + 4, true), offset: num(b + 0x18), size: num(b + 0x20),
      link: v.getUint32(b + 0x28, true), info: v.getUint32(b + 0x2c, true),
    };
  };
  const cstr = (off: number) => {
    let end = off;
    while (elf[end] !== 0) end++;
    return Buffer.from(elf.subarray(off, end)).toString('latin1');
  };
  const shstr = sec(shstrndx);
  let text = -1;
  let symtab = -1;
  for (let i = 0; i < shnum; i++) {
    const s = sec(i);
    const name = cstr(shstr.offset + s.name);
    if (name === '.text') text = i;
    if (s.type === 2) symtab = i;
    if ((name === '.data' || name === '.bss' || name === '.rodata') && s.size !== 0) return undefined;
  }
  if (text < 0 || symtab < 0) return undefined;
  for (let i = 0; i < shnum; i++) {
    const s = sec(i);
    if ((s.type === 4 || s.type === 9) && s.size !== 0) return undefined;
  }
  const t = sec(text);
  const code = elf.slice(t.offset, t.offset + t.size);
  const st = sec(symtab);
  const strtab = sec(st.link);
  const labels: Record<string, number> = {};
  for (let off = st.offset; off < st.offset + st.size; off += 24) {
    const nameOff = v.getUint32(off, true);
    const type = elf[off + 4] & 0xf;
    const shndx = v.getUint16(off + 6, true);
    if (nameOff === 0 || shndx !== text || (type !== 0 && type !== 2)) continue;
    labels[cstr(strtab.offset + nameOff)] = origin + num(off + 8);
  }
  return { code, labels };
}
