/**
 * The differential corpus: the workload guest images (whole programs, OUT emulated on both
 * sides) and generated edge cases (flags, shift counts, division, sign extension, string
 * instructions), each a flat code blob ending in int3.
 */
import { execFileSync } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseElf } from '../../vmm/loader/elf';
import { RunSpec } from './run-spec';

export const MEM_SIZE = 64 * 1024 * 1024;
const STACK_TOP = MEM_SIZE;
const STACK_SIZE = 0x10000;
const CODE_BASE = 0x100000;
const DATA_BASE = 0x300000;
const DATA_SIZE = 0x1000;
const GUESTS = path.join(__dirname, '..', '..', '..', 'guests');

/** A workload guest image run from its entry, as the guest ABI starts vCPU 0 of 1. */
export function workloadSpec(name: string, maxSteps?: number): RunSpec {
  const img = parseElf(new Uint8Array(fs.readFileSync(path.join(GUESTS, `${name}.elf`))), MEM_SIZE);
  return {
    name,
    regions: [...img.segments.map((s) => ({ address: s.address, size: s.memSize, data: s.data })), { address: STACK_TOP - STACK_SIZE, size: STACK_SIZE }],
    regs: { rip: img.entry, rsp: STACK_TOP, rdi: 0, rsi: 1 },
    maxSteps,
    // Writable data and the stack are compared at the end.
    dumps: [...img.segments.filter((s) => s.flags & 2).map((s) => ({ address: s.address, size: s.memSize })), { address: STACK_TOP - STACK_SIZE, size: STACK_SIZE }],
    memSize: MEM_SIZE,
  };
}

/** Assembles AT&T `source` at CODE_BASE into flat bytes (cached in the temp dir). */
export function assembleBlob(source: string): Uint8Array {
  const hash = crypto.createHash('sha256').update(source).digest('hex').slice(0, 24);
  const cache = path.join(os.tmpdir(), `vmm-gdbstub-difftest-${hash}.bin`);
  if (fs.existsSync(cache)) return new Uint8Array(fs.readFileSync(cache));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'difftest-asm-'));
  try {
    fs.writeFileSync(path.join(dir, 'a.s'), source + '\n');
    const run = (cmd: string, args: string[]) => {
      try {
        execFileSync(cmd, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
      } catch (e) {
        throw new Error(`${cmd} failed: ${(e as { stderr?: Buffer }).stderr?.toString() ?? String(e)}`);
      }
    };
    run('as', ['--64', '-o', 'a.o', 'a.s']);
    run('ld', ['-N', '-nostdlib', '-static', `-Ttext=0x${CODE_BASE.toString(16)}`, '-e', `0x${CODE_BASE.toString(16)}`, '-o', 'a.elf', 'a.o']);
    run('objcopy', ['-O', 'binary', '-j', '.text', 'a.elf', 'a.bin']);
    const bytes = new Uint8Array(fs.readFileSync(path.join(dir, 'a.bin')));
    fs.writeFileSync(cache + `.${process.pid}`, bytes);
    fs.renameSync(cache + `.${process.pid}`, cache);
    return bytes;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function dataPattern(): Uint8Array {
  const d = new Uint8Array(DATA_SIZE);
  let x = 0x9e3779b9;
  for (let i = 0; i < d.length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    d[i] = x >>> 24;
  }
  // Equal runs for REPE CMPS, a terminator for REPNE SCAS.
  d.copyWithin(0x400, 0x000, 0x40);
  d[0x420] ^= 0x55;
  return d;
}

/** A blob spec: `body` (AT&T) then int3; data region and stack mapped; memory compared. */
export function blobSpec(name: string, body: string, maxSteps?: number): RunSpec {
  const code = assembleBlob(`.text\n${body}\nint3\n`);
  return {
    name,
    regions: [
      { address: CODE_BASE, size: Math.max(code.length, 16), data: code },
      { address: DATA_BASE, size: DATA_SIZE, data: dataPattern() },
      { address: STACK_TOP - STACK_SIZE, size: STACK_SIZE },
    ],
    regs: { rip: CODE_BASE, rsp: STACK_TOP - 0x100 },
    maxSteps,
    dumps: [{ address: DATA_BASE, size: DATA_SIZE }],
    memSize: MEM_SIZE,
  };
}

const EDGE_VALUES: bigint[] = [
  0n, 1n, 2n, 0x7fn, 0x80n, 0xffn, 0x100n, 0x7fffn, 0x8000n, 0xffffn, 0x7fffffffn, 0x80000000n, 0xffffffffn,
  0x100000000n, 0x7fffffffffffffffn, 0x8000000000000000n, 0xffffffffffffffffn, 0x123456789abcdef0n, 0xfedcba9876543210n,
];

/** xorshift64: the generated corpora are the same from run to run. */
export class Rng {
  constructor(private s: bigint) {}
  next(): bigint {
    let x = this.s;
    x ^= (x << 13n) & 0xffffffffffffffffn;
    x ^= x >> 7n;
    x ^= (x << 17n) & 0xffffffffffffffffn;
    this.s = x;
    return x;
  }
  int(n: number): number {
    return Number(this.next() % BigInt(n));
  }
  pick<T>(a: T[]): T {
    return a[this.int(a.length)];
  }
}

const SIZES = [
  { s: 'b', a: '%al', b: '%bl', c: '%cl', d: '%dl' },
  { s: 'w', a: '%ax', b: '%bx', c: '%cx', d: '%dx' },
  { s: 'l', a: '%eax', b: '%ebx', c: '%ecx', d: '%edx' },
  { s: 'q', a: '%rax', b: '%rbx', c: '%rcx', d: '%rdx' },
];

const hex = (v: bigint) => '0x' + v.toString(16);

/** Values for one case: edge values and random ones, `n` pairs. */
function pairs(rng: Rng, n: number): Array<[bigint, bigint]> {
  const out: Array<[bigint, bigint]> = [];
  for (let i = 0; i < n; i++) {
    const a = i % 3 === 2 ? rng.next() : rng.pick(EDGE_VALUES);
    const b = i % 4 === 3 ? rng.next() : rng.pick(EDGE_VALUES);
    out.push([a, b]);
  }
  return out;
}

/** The generated edge-case blobs; `scale` multiplies the number of cases (1 = bounded run). */
export function edgeCaseSpecs(scale: number): RunSpec[] {
  const rng = new Rng(0x2545f4914f6cdd1dn);
  const specs: RunSpec[] = [];
  const n = (k: number) => Math.max(1, Math.round(k * scale));

  // Binary ALU operations, every size, carry in both states.
  const alu: string[] = [];
  for (const op of ['add', 'adc', 'sub', 'sbb', 'and', 'or', 'xor', 'cmp', 'test']) {
    for (const z of SIZES) {
      for (const [a, b] of pairs(rng, n(6))) {
        alu.push(`movabs $${hex(a)}, %rax`, `movabs $${hex(b)}, %rbx`, rng.next() & 1n ? 'stc' : 'clc', `${op}${z.s} ${z.b}, ${z.a}`);
      }
      alu.push(`${op}${z.s} $0x7f, ${z.a}`);
    }
  }
  for (const op of ['inc', 'dec', 'neg', 'not']) {
    for (const z of SIZES) for (const [a] of pairs(rng, n(5))) alu.push(`movabs $${hex(a)}, %rax`, 'stc', `${op}${z.s} ${z.a}`);
  }
  specs.push(blobSpec('alu', alu.join('\n')));

  // Shifts and rotates: counts 0, 1, size-1, size, 63, 64 and more via CL, 1 and imm8 forms.
  const sh: string[] = [];
  const counts = [0, 1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 255];
  for (const op of ['shl', 'shr', 'sar', 'rol', 'ror', 'rcl', 'rcr']) {
    for (const z of SIZES) {
      for (const c of counts) {
        if (n(1) < 2 && rng.next() % 3n === 0n && c !== 0 && c !== 1 && c !== 63 && c !== 64) continue;
        const v = rng.pick(EDGE_VALUES.slice(9)) ^ rng.next();
        sh.push(`movabs $${hex(v)}, %rax`, `mov $${c}, %ecx`, rng.next() & 1n ? 'stc' : 'clc', `${op}${z.s} %cl, ${z.a}`);
      }
      sh.push(`movabs $${hex(rng.next())}, %rax`, `${op}${z.s} ${z.a}`, `${op}${z.s} $3, ${z.a}`, `${op}${z.s} $1, ${z.a}`);
    }
  }
  for (const op of ['shld', 'shrd']) {
    for (const z of SIZES.slice(1)) {
      for (const c of [0, 1, 2, 15, 16, 31, 32, 63, 64]) {
        if (z.s === 'w' && c > 16) continue; // count > 16: result undefined for 16-bit operands
        sh.push(`movabs $${hex(rng.next())}, %rax`, `movabs $${hex(rng.next())}, %rbx`, `mov $${c}, %ecx`, `${op}${z.s} %cl, ${z.b}, ${z.a}`);
      }
      sh.push(`${op}${z.s} $5, ${z.b}, ${z.a}`);
    }
  }
  specs.push(blobSpec('shifts', sh.join('\n')));

  // Multiply and divide (non-faulting; the faulting ones are separate blobs below).
  const md: string[] = [];
  for (const z of SIZES) {
    for (const [a, b] of pairs(rng, n(8))) {
      md.push(`movabs $${hex(a)}, %rax`, `movabs $${hex(b)}, %rbx`, `mul${z.s} ${z.b}`);
      md.push(`movabs $${hex(a)}, %rax`, `movabs $${hex(b)}, %rbx`, `imul${z.s} ${z.b}`);
      if (z.s !== 'b') md.push(`movabs $${hex(a)}, %rax`, `imul${z.s} ${z.b}, ${z.a}`, `imul${z.s} $-3, ${z.b}, ${z.a}`, `imul${z.s} $0x1234, ${z.b}, ${z.a}`);
    }
    const divisors = [1n, 2n, 3n, 7n, 10n, 0x7fn, 0xffn, 0x7fffn, 0xffffffffn, 0x7fffffffffffffffn, 0xffffffffffffffffn, 0xfffffffffffffffdn];
    for (const dv of divisors) {
      const a = rng.next();
      // Unsigned: high half zero, so the quotient fits.
      md.push(`movabs $${hex(a)}, %rax`, 'xor %edx, %edx', `movabs $${hex(dv)}, %rbx`);
      if (z.s === 'b') md.push('movzbl %al, %eax', `test %bl, %bl`, `jz 1f`, `divb %bl`, '1:');
      else md.push(`test ${z.b}, ${z.b}`, 'jz 1f', `div${z.s} ${z.b}`, '1:');
      // Signed: sign-extended dividend, divisor != 0 and not -1 with the most negative value.
      md.push(`movabs $${hex(rng.next())}, %rax`, `movabs $${hex(dv)}, %rbx`);
      if (z.s === 'b') md.push('movsbw %al, %ax', 'cmp $0, %bl', 'je 2f', 'cmp $-1, %bl', 'je 2f', 'idivb %bl', '2:');
      else {
        const ext = { w: 'cwtd', l: 'cltd', q: 'cqto' }[z.s];
        md.push(`shr $2, ${z.a}`, ext!, `test ${z.b}, ${z.b}`, 'jz 2f', `idiv${z.s} ${z.b}`, '2:');
      }
    }
  }
  specs.push(blobSpec('muldiv', md.join('\n')));

  // Sign/zero extension, bit instructions, setcc/cmovcc, exchange, lea.
  const ext: string[] = [];
  for (const v of EDGE_VALUES) {
    ext.push(`movabs $${hex(v)}, %rbx`, 'movsbq %bl, %rax', 'movswq %bx, %rcx', 'movslq %ebx, %rdx', 'movzbl %bl, %esi', 'movzwl %bx, %edi',
      'movsbl %bl, %r8d', 'movswl %bx, %r9d', 'movsbw %bl, %r10w', 'mov %rbx, %rax', 'cbtw', 'cwtl', 'cltq', 'cwtd', 'cltd', 'cqto');
    ext.push('mov %rbx, %rax', 'bswap %rax', 'bswap %ebx', `bt $${Number(v & 63n)}, %rax`, 'bts %rcx, %rax', 'btr $5, %eax', 'btc %cx, %ax');
    // BSF/BSR of zero leave the destination undefined: only nonzero sources.
    if (v !== 0n) ext.push(`movabs $${hex(v)}, %rbx`, 'bsf %rbx, %rax', 'bsr %rbx, %rcx');
    if ((v & 0xffffffffn) !== 0n) ext.push('bsf %ebx, %edx');
    if ((v & 0xffffn) !== 0n) ext.push('bsr %bx, %si');
    ext.push(`movabs $${hex(v)}, %rax`, `movabs $${hex(rng.next())}, %rbx`, 'cmp %rbx, %rax');
    for (const cc of ['o', 'no', 'b', 'ae', 'e', 'ne', 'be', 'a', 's', 'ns', 'p', 'np', 'l', 'ge', 'le', 'g']) ext.push(`set${cc} %cl`, `cmov${cc} %rbx, %rdx`, `cmov${cc}l %eax, %esi`);
    ext.push('xadd %rbx, %rax', 'cmpxchg %rcx, %rdx', 'lock xaddl %eax, 0x300010', 'lock cmpxchgq %rbx, 0x300018', 'xchg %rax, %rbx', 'xchgw %ax, %cx',
      'lea 0x10(%rax,%rbx,4), %rdx', 'lea -1(%eax,%ebx,8), %esi', 'neg %rax', 'sbb %rdx, %rdx', 'adc $0, %rcx');
  }
  specs.push(blobSpec('extend-bits', ext.join('\n')));

  // String instructions in both directions, all sizes, with and without REP.
  const str: string[] = [];
  const base = DATA_BASE;
  for (const dir of ['cld', 'std']) {
    for (const z of SIZES) {
      for (const count of [0, 1, 5, 37]) {
        const src = dir === 'cld' ? base + 0x100 : base + 0x1f8;
        const dst = dir === 'cld' ? base + 0x800 : base + 0xbf8;
        str.push(dir, `mov $${src}, %esi`, `mov $${dst}, %edi`, `mov $${count}, %ecx`, `rep movs${z.s}`);
        str.push(`mov $${dst}, %edi`, `mov $${count}, %ecx`, `movabs $${hex(rng.next())}, %rax`, `rep stos${z.s}`);
        const cmpSrc = dir === 'cld' ? base : base + 0x3f8;
        str.push(`mov $${cmpSrc}, %esi`, `mov $${cmpSrc + 0x400}, %edi`, `mov $${count + 40}, %ecx`, `repe cmps${z.s}`);
        str.push(`mov $${base + 0x400}, %edi`, `mov $${count + 60}, %ecx`, 'mov $0x55, %eax', `repne scas${z.s}`);
        str.push(`mov $${src}, %esi`, `lods${z.s}`, `lods${z.s}`, `mov $${dst}, %edi`, `stos${z.s}`, `movs${z.s}`, `cmps${z.s}`, `scas${z.s}`);
      }
    }
  }
  str.push('cld');
  specs.push(blobSpec('strings', str.join('\n')));

  // Stack, calls and flags through memory.
  specs.push(blobSpec('stack', [
    'push $-5', 'pushq $0x7fffffff', 'push %rsp', 'pop %rax', 'pop %rbx', 'pop %rcx', 'stc', 'lahf', // not PUSHF: IF and TF differ natively
    'call 1f', 'jmp 2f', '1: mov (%rsp), %rsi', 'ret', '2: pushq $0x300020', 'call *(%rsp)', 'pop %rdi',
    'lea 3f(%rip), %rax', 'push %rax', 'ret', '3: push %rbp', 'mov %rsp, %rbp', 'sub $0x20, %rsp', 'leave', 'pushw $7', 'popw %ax',
    'pushq 0x300000', 'popq 0x300008', 'lea 4f(%rip), %rax', 'push %rbx', 'push %rax', 'ret $8', '4: nop',
  ].join('\n')));
  specs[specs.length - 1].regions[1].data![0x20] = 0xc3; // a ret at 0x300020

  // Conditional jumps (short and near forms, taken and not), indirect jumps and calls, and
  // every NOP form gcc and the assembler pad with, ENDBR64, PAUSE, fences.
  const ctl: string[] = ['xor %r8d, %r8d'];
  for (const [a, b] of pairs(rng, n(6))) {
    ctl.push(`movabs $${hex(a)}, %rax`, `movabs $${hex(b)}, %rbx`, 'cmp %rbx, %rax');
    for (const cc of CCS) ctl.push(`j${cc} 1f`, 'inc %r8', '1:', `{disp32} j${cc} 2f`, 'add $2, %r8', '2:');
  }
  ctl.push('lea 3f(%rip), %rax', 'jmp *%rax', 'ud2', '3: lea 4f(%rip), %rcx', 'mov %rcx, 0x300040', 'jmp *0x300040', 'ud2',
    '4: lea 5f(%rip), %rdx', 'mov %rdx, 0x300048', 'call *0x300048', 'jmp 6f', '5: ret', '6: lea 5b(%rip), %rsi', 'call *%rsi',
    'nop', 'xchg %ax, %ax', 'nopl (%rax)', 'nopl 0(%rax)', 'nopl 0(%rax,%rax,1)', 'nopw 0(%rax,%rax,1)', 'nopl 0x100(%rax)',
    'nopl 0x100(%rax,%rax,1)', 'nopw 0x100(%rax,%rax,1)', 'cs nopw 0x100(%rax,%rax,1)',
    '.byte 0x66, 0x66, 0x2e, 0x0f, 0x1f, 0x84, 0, 0, 0, 0, 0', 'endbr64', 'pause', 'lfence', 'mfence', 'sfence', 'nop %eax', 'nopw %ax');
  specs.push(blobSpec('control-nops', ctl.join('\n')));

  // Port I/O, emulated identically on both sides (IN reads all ones, OUT 0xE9 is console).
  specs.push(blobSpec('port-io', [
    'movabs $0x1122334455667788, %rax', 'in $0x80, %al', 'mov $0x80, %edx', 'in %dx, %ax', 'movabs $0x1122334455667788, %rax',
    'inl $0x84, %eax', 'out %al, $0x80', 'out %ax, %dx', 'out %eax, %dx', 'mov $0xe9, %dx', 'mov $0x4f, %al', 'out %al, %dx',
    'mov $0x4b, %al', 'out %al, $0xe9',
  ].join('\n')));

  return specs;
}

/** Blobs whose last instruction faults natively (#DE): both sides must fault there. */
export function faultSpecs(): RunSpec[] {
  return [
    blobSpec('div-by-zero-64', 'mov $5, %eax\nxor %edx, %edx\nxor %ebx, %ebx\ndivq %rbx'),
    blobSpec('div-by-zero-8', 'mov $5, %eax\nxor %ebx, %ebx\ndivb %bl'),
    blobSpec('idiv-min-by-minus-1', 'movabs $0x8000000000000000, %rax\ncqto\nmov $-1, %rbx\nidivq %rbx'),
    blobSpec('div-quotient-overflow-32', 'mov $1, %edx\nmov $0, %eax\nmov $1, %ebx\ndivl %ebx'),
    blobSpec('idiv-quotient-overflow-16', 'mov $0x4000, %dx\nmov $0, %ax\nmov $2, %bx\nidivw %bx'),
    blobSpec('ud2', 'nop\nud2'),
  ];
}

const REGS64 = ['%rax', '%rbx', '%rcx', '%rdx', '%rsi', '%rdi', '%rbp', '%r8', '%r9', '%r10', '%r11', '%r12', '%r13', '%r14'];

/** The name of a register (64-bit name) at `size` bits. */
function sized(reg: string, size: number): string {
  const n = reg.slice(1);
  if (/^r\d+$/.test(n)) return '%' + n + ({ 8: 'b', 16: 'w', 32: 'd', 64: '' } as Record<number, string>)[size];
  const base = n.slice(1); // ax, bx, si, bp...
  if (size === 64) return reg;
  if (size === 32) return '%e' + base;
  if (size === 16) return '%' + base;
  return '%' + ({ ax: 'al', bx: 'bl', cx: 'cl', dx: 'dl', si: 'sil', di: 'dil', bp: 'bpl' } as Record<string, string>)[base];
}

const SUFFIX: Record<number, string> = { 8: 'b', 16: 'w', 32: 'l', 64: 'q' };
const CCS = ['o', 'no', 'b', 'ae', 'e', 'ne', 'be', 'a', 's', 'ns', 'p', 'np', 'l', 'ge', 'le', 'g'];

/**
 * One random case at a time (a few lines): ALU, shifts, multiply, bit and extension
 * instructions, memory operands in the data region (R15 holds its base), over R14 and below.
 */
function randomCases(rng: Rng): { next: (lines: string[]) => void; r: (k: number) => number } {
  const r = (k: number) => Number(rng.next() % BigInt(k));
  const reg = () => REGS64[r(REGS64.length)];
  const mem = (size: number) => `${8 * r(200) + (size < 64 ? r(8) & ~(size / 8 - 1) : 0)}(%r15)`;
  const imm = (size: number) => {
    const v = rng.pick(EDGE_VALUES) ^ (r(2) ? rng.next() : 0n);
    const bits = size === 64 ? 32 : size;
    return BigInt.asIntN(bits, v).toString();
  };
  const next = (lines: string[]) => {
    const size = [8, 16, 32, 64][r(4)];
    const s = SUFFIX[size];
    const a = sized(reg(), size);
    const b = sized(reg(), size);
    switch (r(15)) {
      case 0:
      case 1: {
        const op = ['add', 'adc', 'sub', 'sbb', 'and', 'or', 'xor', 'cmp', 'test'][r(9)];
        const form = r(4);
        if (form === 0) lines.push(`${op}${s} ${b}, ${a}`);
        else if (form === 1) lines.push(`${op}${s} $${imm(size)}, ${a}`);
        else if (form === 2) lines.push(`${op}${s} ${b}, ${mem(size)}`);
        else lines.push(op === 'test' ? `${op}${s} ${b}, ${mem(size)}` : `${op}${s} ${mem(size)}, ${a}`);
        break;
      }
      case 2:
        lines.push(`${['inc', 'dec', 'neg', 'not'][r(4)]}${s} ${r(3) ? a : mem(size)}`);
        break;
      case 3: {
        const op = ['shl', 'shr', 'sar', 'rol', 'ror', 'rcl', 'rcr'][r(7)];
        const form = r(3);
        const dst = r(4) ? a : mem(size);
        if (form === 0) lines.push(`mov $${r(2) ? r(70) : r(256)}, %cl`, `${op}${s} %cl, ${dst === '%cl' ? '%al' : dst}`);
        else if (form === 1) lines.push(`${op}${s} $${r(size)}, ${dst}`);
        else lines.push(`${op}${s} ${dst}`);
        break;
      }
      case 4:
        if (size === 8) lines.push(`${['mul', 'imul'][r(2)]}b ${b}`);
        else if (r(2)) lines.push(`${['mul', 'imul'][r(2)]}${s} ${b}`);
        else lines.push(r(2) ? `imul${s} ${b}, ${a}` : `imul${s} $${imm(size === 64 ? 32 : size)}, ${b}, ${a}`);
        break;
      case 5: {
        const dst64 = reg();
        const wide = r(2) === 1;
        const from = [8, 16, 32][r(3)];
        if (from === 32) lines.push(`movslq ${sized(reg(), 32)}, ${dst64}`);
        else lines.push(`mov${r(2) ? 's' : 'z'}${SUFFIX[from]}${wide ? 'q' : 'l'} ${sized(reg(), from)}, ${sized(dst64, wide ? 64 : 32)}`);
        break;
      }
      case 6: {
        const cc = CCS[r(16)];
        lines.push(r(2) ? `set${cc} ${sized(reg(), 8)}` : `cmov${cc}${size === 8 ? 'q' : s} ${sized(reg(), size === 8 ? 64 : size)}, ${sized(reg(), size === 8 ? 64 : size)}`);
        break;
      }
      case 7: {
        if (size === 8) break;
        const op = ['bt', 'bts', 'btr', 'btc'][r(4)];
        lines.push(r(2) ? `${op}${s} $${r(size)}, ${a}` : `${op}${s} ${b}, ${a}`);
        break;
      }
      case 8: {
        if (size === 8) break;
        const src = sized(reg(), size);
        lines.push(`or${s} $1, ${src}`, `${['bsf', 'bsr'][r(2)]}${s} ${src}, ${a}`); // source != 0
        break;
      }
      case 9:
        lines.push(r(2) ? `xchg${s} ${b}, ${a}` : r(2) ? `xadd${s} ${b}, ${a}` : `cmpxchg${s} ${b}, ${r(2) ? a : mem(size)}`);
        break;
      case 10:
        if (size >= 32) lines.push(`lea${s} ${r(200) - 100}(${sized(reg(), 64)},${sized(reg(), 64)},${[1, 2, 4, 8][r(4)]}), ${a}`);
        if (size >= 32) lines.push(`bswap ${a}`);
        break;
      case 11: {
        if (size === 8) break;
        const op = ['shld', 'shrd'][r(2)];
        const count = size === 16 ? r(17) : r(size);
        // 16-bit operands with a count above 16 have an undefined result: never generated.
        if (r(2)) lines.push(`${op}${s} $${count}, ${b}, ${a}`);
        else lines.push(`mov $${count}, %cl`, `${op}${s} %cl, ${b === sized('%rcx', size) ? sized('%rdx', size) : b}, ${a === sized('%rcx', size) ? sized('%rax', size) : a}`);
        break;
      }
      case 12:
        lines.push(`mov${s} ${r(2) ? b : '$' + imm(size)}, ${mem(size)}`, `mov${s} ${mem(size)}, ${a}`);
        break;
      case 13: {
        // Memory forms gcc emits: multiply, setcc, cmov, xchg/xadd, bit strings, push/pop.
        const m = mem(size === 8 ? 64 : size);
        const sz = size === 8 ? 64 : size;
        const t = sized(reg(), sz);
        switch (r(8)) {
          case 0: lines.push(`${['mul', 'imul'][r(2)]}${SUFFIX[sz]} ${m}`); break;
          case 1: lines.push(`imul${SUFFIX[sz]} ${m}, ${t}`); break;
          case 2: lines.push(`set${CCS[r(16)]} ${mem(8)}`, `cmov${CCS[r(16)]}${SUFFIX[sz === 16 ? 16 : sz]} ${m}, ${t}`); break;
          case 3: lines.push(`${r(2) ? 'xchg' : 'lock xadd'}${SUFFIX[sz]} ${t}, ${m}`); break;
          case 4: {
            // Register bit offsets address the bit string beyond the operand (SDM BT).
            const off = sized(reg(), sz);
            lines.push(`mov${SUFFIX[sz]} $${r(1024) - 256}, ${off}`, `${['bt', 'bts', 'btr', 'btc'][r(4)]}${SUFFIX[sz]} ${off}, 0x800(%r15)`);
            break;
          }
          case 5: lines.push(`${['bt', 'bts', 'btr', 'btc'][r(4)]}${SUFFIX[sz]} $${r(256)}, ${m}`); break;
          case 6: {
            const w = r(2) ? 'q' : 'w';
            lines.push(`push${w} ${r(2) ? mem(w === 'q' ? 64 : 16) : '$' + imm(16)}`, `pop${w} ${mem(w === 'q' ? 64 : 16)}`);
            break;
          }
          default: {
            // The legacy high-byte registers (no REX prefix possible).
            const hb = ['%ah', '%bh', '%ch', '%dh'];
            const lb = ['%al', '%bl', '%cl', '%dl'];
            const x = hb[r(4)];
            const y = [...hb, ...lb][r(8)];
            lines.push(`${['add', 'sub', 'xor', 'adc', 'cmp', 'mov'][r(6)]}b ${y}, ${x}`, `movzbl ${x}, %e${'abcd'[r(4)]}x`, `movsbw ${hb[r(4)]}, %${'abcd'[r(4)]}x`);
          }
        }
        break;
      }
      default:
        lines.push(['cbtw', 'cwtl', 'cltq', 'cwtd', 'cltd', 'cqto', 'stc', 'clc', 'cmc', 'lahf', 'sahf'][r(11)]);
    }
  };
  return { next, r };
}

/**
 * Random instruction sequences over random register values: ALU, shifts, multiply, bit
 * and extension instructions, memory operands in the data region (R15 holds its base).
 */
export function randomSpecs(count: number, length: number, seed: bigint): RunSpec[] {
  const rng = new Rng(seed | 1n);
  const { next, r } = randomCases(rng);
  const specs: RunSpec[] = [];
  for (let p = 0; p < count; p++) {
    const lines: string[] = [`mov $${DATA_BASE}, %r15`];
    for (const x of REGS64) lines.push(`movabs $${hex(r(3) ? rng.next() : rng.pick(EDGE_VALUES))}, ${x}`);
    while (lines.length < length) next(lines);
    specs.push(blobSpec(`random-${p}`, lines.join('\n')));
  }
  return specs;
}

/**
 * Random loops: random cases with conditional branches (a CMP or TEST, then Jcc over the
 * next case) in a body run `iterations` times (a counter in the data region's last quadword):
 * with the block compiler on, blocks loop on themselves and exit with flags pending into
 * blocks that read them. The branches read only flags their CMP/TEST just defined.
 */
export function randomLoopSpecs(count: number, bodyCases: number, iterations: number, seed: bigint): RunSpec[] {
  const rng = new Rng(seed | 1n);
  const { next, r } = randomCases(rng);
  const specs: RunSpec[] = [];
  const counter = DATA_BASE + DATA_SIZE - 8;
  for (let p = 0; p < count; p++) {
    const lines: string[] = [`mov $${DATA_BASE}, %r15`, `movq $${iterations}, ${counter}`];
    for (const x of REGS64) lines.push(`movabs $${hex(r(3) ? rng.next() : rng.pick(EDGE_VALUES))}, ${x}`);
    lines.push('0:');
    for (let k = 0; k < bodyCases; k++) {
      if (r(4) === 0) {
        const size = [8, 16, 32, 64][r(4)];
        const a = sized(REGS64[r(REGS64.length)], size);
        const b = sized(REGS64[r(REGS64.length)], size);
        lines.push(`${r(2) ? 'cmp' : 'test'}${SUFFIX[size]} ${b}, ${a}`, `j${CCS[r(16)]} ${k}f`);
        next(lines);
        lines.push(`${k}:`);
      } else next(lines);
    }
    lines.push(`decq ${counter}`, 'jnz 0b');
    specs.push(blobSpec(`random-loop-${p}`, lines.join('\n')));
  }
  return specs;
}
