// A fast assembler front end for the debug-architecture suite: ONE `as` process per program
// (test/helpers/asm.ts runs as+ld+objcopy+nm, four processes, which made this suite of ~110
// programs take well over 15 s on a loaded 2-core machine). The program is position-bound
// by construction: everything sits in .text and only PC-relative references to labels are
// allowed (GNU as resolves those itself), so the .o's .text bytes are already the flat image;
// labels are read from the .o's symbol table and offset by `origin`. Results are cached in
// memory and on disk (by content hash), so reruns spawn nothing.
import { execFileSync } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

export interface AssembledProgram {
  code: Uint8Array;
  labels: Record<string, number>;
}

const CACHE_DIR = path.join(os.tmpdir(), 'vmm-gdbstub-dbgtests-asm');
const memo = new Map<string, AssembledProgram>();

export function assembleProgram(source: string, origin: number): AssembledProgram {
  const key = crypto.createHash('sha256').update(`v1\0${origin}\0${source}`).digest('hex');
  const hit = memo.get(key);
  if (hit) return hit;
  const cacheFile = path.join(CACHE_DIR, key + '.json');
  let prog: AssembledProgram | undefined;
  try {
    const j = JSON.parse(fs.readFileSync(cacheFile, 'utf8')) as { code: string; labels: Record<string, number> };
    prog = { code: new Uint8Array(Buffer.from(j.code, 'base64')), labels: j.labels };
  } catch {
    prog = undefined;
  }
  if (!prog) {
    prog = assembleUncached(source, origin);
    try {
      fs.mkdirSync(CACHE_DIR, { recursive: true });
      const tmp = `${cacheFile}.${process.pid}.tmp`;
      fs.writeFileSync(tmp, JSON.stringify({ code: Buffer.from(prog.code).toString('base64'), labels: prog.labels }));
      fs.renameSync(tmp, cacheFile);
    } catch {
      // The cache is an optimisation only.
    }
  }
  memo.set(key, prog);
  return prog;
}

function assembleUncached(source: string, origin: number): AssembledProgram {
  const obj = path.join(os.tmpdir(), `dbgtests-${process.pid}-${crypto.randomBytes(6).toString('hex')}.o`);
  try {
    try {
      execFileSync('as', ['--64', '-o', obj], { input: source + '\n', stdio: ['pipe', 'pipe', 'pipe'] });
    } catch (e) {
      throw new Error(`as: ${String((e as { stderr?: Buffer }).stderr ?? e)}`);
    }
    return flatten(new Uint8Array(fs.readFileSync(obj)), origin);
  } finally {
    fs.rmSync(obj, { force: true });
  }
}

/** The .text bytes and labels of an ELF64 relocatable object; refuses relocations. */
function flatten(elf: Uint8Array, origin: number): AssembledProgram {
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
    if ((name === '.data' || name === '.bss') && s.size !== 0) throw new Error('asm: put everything in .text');
  }
  if (text < 0 || symtab < 0) throw new Error('asm: no .text or symbol table');
  for (let i = 0; i < shnum; i++) {
    const s = sec(i);
    if ((s.type === 4 || s.type === 9) && s.info === text && s.size !== 0) {
      throw new Error('asm: relocations in .text (use PC-relative label references and numeric addresses)');
    }
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
