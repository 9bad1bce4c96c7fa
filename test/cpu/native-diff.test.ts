// The real CPU is the oracle: the same instruction snippets run natively (a static Linux
// executable built with as/ld) and in the simulator, from the same random register values
// and arithmetic flags; every GPR we load and the flags the SDM defines for the snippet
// must match.
import { expect } from 'chai';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as crypto from 'crypto';
import { assembleProgram, makeCpu } from '../helpers/asm';

interface Case { snippet: string; regs: bigint[]; flags: number; mask: number }

const ALL = 0x8d5, LOGIC = 0x8c5, CFOF = 0x801, NONE = 0;
const REGS = ['rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi'];

let seed = 12345;
function rnd(): number {
  seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
  return seed >>> 8;
}
const EDGE = [0n, 1n, 2n, 0x7fn, 0x80n, 0xffn, 0x7fffn, 0x8000n, 0xffffn, 0x7fffffffn, 0x80000000n, 0xffffffffn,
  0x7fffffffffffffffn, 0x8000000000000000n, 0xffffffffffffffffn, 0x100000000n, 0xfffffffffffffffen];
function val(): bigint {
  const r = rnd() % 4;
  if (r === 0) return EDGE[rnd() % EDGE.length];
  if (r === 1) return BigInt(rnd() % 300);
  return (BigInt(rnd()) << 40n) ^ (BigInt(rnd()) << 20n) ^ BigInt(rnd()) ^ (BigInt(rnd() & 0xff) << 56n);
}
const COUNTS = [0, 1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 255];

function gen(): Case[] {
  const cases: Case[] = [];
  const add = (snippet: string, mask: number, fix?: (r: bigint[]) => void): void => {
    for (let k = 0; k < 6; k++) {
      const regs = REGS.map(() => val());
      if (fix) fix(regs);
      cases.push({ snippet, regs, flags: rnd() & ALL, mask });
    }
  };
  const sizes: Array<[string, string, string]> = [['b', '%bl', '%al'], ['w', '%bx', '%ax'], ['l', '%ebx', '%eax'], ['q', '%rbx', '%rax']];
  for (const op of ['add', 'adc', 'sub', 'sbb', 'cmp']) {
    for (const [s, src, dst] of sizes) add(`${op}${s} ${src}, ${dst}`, ALL);
    add(`${op}q $-5, %rax`, ALL); add(`${op}l $0x7fffffff, %eax`, ALL); add(`${op}b $0x80, %al`, ALL);
    add(`${op}b %bh, %ah`, ALL); add(`${op}w $0x1234, %ax`, ALL);
    add(`${op}q %rbx, scratch(%rip)\n movq scratch(%rip), %rdi`, ALL);
  }
  for (const op of ['and', 'or', 'xor', 'test']) {
    for (const [s, src, dst] of sizes) add(`${op}${s} ${src}, ${dst}`, LOGIC);
    add(`${op}q $-0x80, %rax`, LOGIC);
  }
  for (const op of ['inc', 'dec', 'neg', 'not']) {
    for (const [s, , dst] of sizes) add(`${op}${s} ${dst}`, ALL);
  }
  // shifts and rotates by CL: the mask depends on the count
  for (const op of ['shl', 'shr', 'sar', 'rol', 'ror', 'rcl', 'rcr']) {
    for (const [s, , dst] of sizes) {
      for (let k = 0; k < 4; k++) {
        const count = COUNTS[rnd() % COUNTS.length];
        const bits = { b: 8, w: 16, l: 32, q: 64 }[s]!;
        const m = count & (s === 'q' ? 63 : 31);
        let mask: number;
        if (m === 0) mask = ALL;
        else if (op === 'shl' || op === 'shr' || op === 'sar') {
          mask = m === 1 ? LOGIC : 0x0c5;
          if (m >= bits && op !== 'sar') mask &= ~1;
        } else {
          const keep = ALL & ~CFOF;
          mask = keep | 1 | (m === 1 ? 0x800 : 0);
          if ((op === 'rcl' || op === 'rcr') && bits < 32) {
            const e = m % (bits + 1);
            mask = e === 0 ? ALL : keep | 1 | (e === 1 ? 0x800 : 0);
          }
        }
        const regs = REGS.map(() => val());
        regs[2] = BigInt(count) | (val() & ~0xffn);
        cases.push({ snippet: `${op}${s} %cl, ${dst}`, regs, flags: rnd() & ALL, mask });
      }
      add(`${op}${s} $1, ${dst}`, op.startsWith('r') ? (ALL & ~CFOF) | CFOF : LOGIC);
    }
  }
  for (const [op, s, src, dst, bits] of [['shld', 'q', '%rbx', '%rax', 64], ['shrd', 'q', '%rbx', '%rax', 64], ['shld', 'l', '%ebx', '%eax', 32], ['shrd', 'l', '%ebx', '%eax', 32], ['shld', 'w', '%bx', '%ax', 16], ['shrd', 'w', '%bx', '%ax', 16]] as Array<[string, string, string, string, number]>) {
    for (let k = 0; k < 8; k++) {
      let count = COUNTS[rnd() % COUNTS.length];
      if (bits === 16) count = count % 17;
      const m = count & (bits === 64 ? 63 : 31);
      const regs = REGS.map(() => val());
      regs[2] = BigInt(count);
      cases.push({ snippet: `${op}${s} %cl, ${src}, ${dst}`, regs, flags: rnd() & ALL, mask: m === 0 ? ALL : m === 1 ? LOGIC : 0x0c5 });
    }
  }
  for (const [s, src] of [['b', '%bl'], ['w', '%bx'], ['l', '%ebx'], ['q', '%rbx']]) {
    add(`mul${s} ${src}`, CFOF); add(`imul${s} ${src}`, CFOF);
  }
  add('imulq %rbx, %rax', CFOF); add('imull %ebx, %eax', CFOF); add('imulw %bx, %ax', CFOF);
  add('imulq $-7, %rbx, %rax', CFOF); add('imull $100000, %ebx, %eax', CFOF); add('imulw $-300, %bx, %ax', CFOF);
  // division without #DE: keep the high half below the divisor
  add('divq %rbx', NONE, (r) => { if (r[1] === 0n) r[1] = 3n; r[3] = r[3] % r[1]; });
  add('divl %ebx', NONE, (r) => { let d = r[1] & 0xffffffffn; if (d === 0n) { d = 7n; r[1] = 7n; } r[3] = (r[3] & 0xffffffffn) % d; });
  add('divw %bx', NONE, (r) => { let d = r[1] & 0xffffn; if (d === 0n) { d = 9n; r[1] = 9n; } r[3] = (r[3] & 0xffffn) % d; });
  add('divb %bl', NONE, (r) => { let d = r[1] & 0xffn; if (d === 0n) { d = 5n; r[1] = 5n; } r[0] = (r[0] & ~0xff00n) | (((r[0] >> 8n) & 0xffn) % d) << 8n; });
  add('cqto\nidivq %rbx', NONE, (r) => { if (r[1] === 0n || r[1] === 0xffffffffffffffffn) r[1] = 0xfffffffffffffff3n; });
  add('cltd\nidivl %ebx', NONE, (r) => { const d = r[1] & 0xffffffffn; if (d === 0n || d === 0xffffffffn) r[1] = 0x1234n; });
  add('cwtd\nidivw %bx', NONE, (r) => { const d = r[1] & 0xffffn; if (d === 0n || d === 0xffffn) r[1] = 0x77n; });
  for (const op of ['bt', 'bts', 'btr', 'btc']) {
    add(`${op}q %rbx, %rax`, 0x41); add(`${op}l %ebx, %eax`, 0x41); add(`${op}w %bx, %ax`, 0x41);
    add(`${op}q $37, %rax`, 0x41); add(`${op}l $5, %eax`, 0x41);
    add(`leaq scratch(%rip), %rsi\n andq $255, %rbx\n subq $64, %rbx\n ${op}q %rbx, 8(%rsi)\n movq 8(%rsi), %rdi\n movq (%rsi), %rcx\n xorl %esi, %esi`, 0x41);
  }
  add('bsfq %rbx, %rax', 0x40, (r) => { if (r[1] === 0n) r[1] = 0x100n; });
  add('bsrq %rbx, %rax', 0x40, (r) => { if (r[1] === 0n) r[1] = 0x100n; });
  add('bsfl %ebx, %eax', 0x40, (r) => { if ((r[1] & 0xffffffffn) === 0n) r[1] = 0x100n; });
  add('bsrw %bx, %ax', 0x40, (r) => { if ((r[1] & 0xffffn) === 0n) r[1] = 0x100n; });
  // F3 0F BC is TZCNT on a BMI1 host and BSF here (our CPUID has no BMI1): same result, other flags
  add('rep bsfq %rbx, %rax', 0, (r) => { if (r[1] === 0n) r[1] = 0x100n; });
  for (let cc = 0; cc < 16; cc++) {
    const n = ['o', 'no', 'b', 'ae', 'e', 'ne', 'be', 'a', 's', 'ns', 'p', 'np', 'l', 'ge', 'le', 'g'][cc];
    add(`set${n} %cl\n cmov${n}q %rdx, %rsi\n cmov${n}l %edx, %edi`, ALL);
    add(`cmpq %rbx, %rax\n set${n} %cl\n cmov${n}w %dx, %si`, ALL);
  }
  for (const s of ['movsbq %bl, %rax', 'movswl %bx, %eax', 'movslq %ebx, %rax', 'movzbl %bh, %eax', 'movzwq %bx, %rax',
    'movsbw %bl, %ax', 'movzbw %bl, %ax', 'cbtw', 'cwtl', 'cltq', 'cwtd', 'cltd', 'cqto', 'bswapq %rax', 'bswapl %ebx',
    'xchgq %rbx, %rax', 'xchgb %bl, %ah', 'lahf', 'sahf', 'movb %ah, %bl', 'movw %bx, %ax', 'movl %ebx, %eax',
    'leaq 5(%rax,%rbx,4), %rcx', 'leal -7(%rax,%rbx,8), %ecx', 'leaw 1(%rbx), %cx', 'movabsq $0x123456789abcdef0, %rsi',
    'stc', 'clc', 'cmc', 'pushq %rbx\n popq %rcx', 'pushfq\n popq %rcx\n andq $0xcd5, %rcx', 'xchgw %ax, %bx']) {
    add(s, s === 'sahf' ? ALL : ALL);
  }
  add('xaddq %rbx, %rax', ALL); add('xaddl %ebx, %eax', ALL); add('xaddb %bl, %al', ALL);
  add('cmpxchgq %rbx, %rcx', ALL); add('cmpxchgl %ebx, %ecx', ALL); add('cmpxchgb %bl, %cl', ALL);
  add('cmpxchgq %rbx, %rcx', ALL, (r) => { r[2] = r[0]; });
  add('cmpxchgl %ebx, %ecx', ALL, (r) => { r[2] = r[0]; });
  add('movq %rax, scratch(%rip)\n lock cmpxchgq %rbx, scratch(%rip)\n movq scratch(%rip), %rdi', ALL);
  // memory-operand forms (each ends by loading the scratch qword into RDI)
  const M = 'movq %rax, scratch(%rip)\n ';
  const R = '\n movq scratch(%rip), %rdi';
  for (const op of ['add', 'sub', 'and', 'or', 'xor', 'cmp', 'adc', 'sbb']) {
    add(`${M}${op}l $0x12345678, scratch(%rip)${R}`, op === 'and' || op === 'or' || op === 'xor' ? LOGIC : ALL);
    add(`${M}${op}q $-3, scratch(%rip)${R}`, op === 'and' || op === 'or' || op === 'xor' ? LOGIC : ALL);
    add(`${M}${op}l scratch(%rip), %ebx${R}`, op === 'and' || op === 'or' || op === 'xor' ? LOGIC : ALL);
    add(`${M}${op}q scratch+4(%rip), %rbx${R}`, op === 'and' || op === 'or' || op === 'xor' ? LOGIC : ALL);
    add(`${M}${op}b %bl, scratch+1(%rip)${R}`, op === 'and' || op === 'or' || op === 'xor' ? LOGIC : ALL);
    add(`${M}${op}w %bx, scratch+3(%rip)${R}`, op === 'and' || op === 'or' || op === 'xor' ? LOGIC : ALL);
  }
  for (const s2 of ['movsbq scratch+1(%rip), %rbx', 'movswl scratch+2(%rip), %ebx', 'movslq scratch+4(%rip), %rbx',
    'movzbl scratch+7(%rip), %ebx', 'movzwq scratch+5(%rip), %rbx', 'movb %bh, scratch+2(%rip)', 'movw %bx, scratch+1(%rip)',
    'movl %ebx, scratch+3(%rip)', 'movq %rbx, scratch+1(%rip)', 'movl $-1, scratch+4(%rip)', 'movq $-2, scratch(%rip)',
    'negl scratch(%rip)', 'notq scratch(%rip)', 'incw scratch+2(%rip)', 'decb scratch+7(%rip)', 'xaddl %ebx, scratch(%rip)',
    'lock xaddq %rbx, scratch(%rip)', 'xchgl %ebx, scratch+4(%rip)', 'shll $3, scratch(%rip)', 'sarq %cl, scratch(%rip)',
    'rorw $5, scratch+2(%rip)', 'btsq $40, scratch(%rip)', 'btrl %ebx, scratch(%rip)', 'sete scratch+3(%rip)',
    'cmovnel scratch(%rip), %ebx', 'cmovgq scratch(%rip), %rbx', 'imulq scratch(%rip), %rbx', 'imull $7, scratch(%rip), %ebx',
    'mulq scratch(%rip)', 'testl %ebx, scratch(%rip)', 'testb $0x81, scratch+7(%rip)', 'pushq scratch(%rip)\n popq %rsi',
    'leaq scratch(%rip), %rsi\n pushq %rbx\n popq 8(%rsi)\n xorl %esi, %esi', 'leaq scratch(%rip), %rsi\n movq %rbx, (%rsi,%rcx,1)\n xorl %esi, %esi']) {
    add(`${M}${s2}${R}`, s2.startsWith('imul') || s2.startsWith('mul') ? CFOF : s2.startsWith('bt') ? 0x41 : s2.startsWith('test') ? LOGIC : s2.startsWith('shl') || s2.startsWith('sar') || s2.startsWith('ror') ? 0x0 : ALL,
      s2.includes('(%rsi,%rcx,1)') ? (r) => { r[2] = r[2] & 7n; } : s2.startsWith('btrl %ebx') ? (r) => { r[1] = (r[1] & 31n) | 0x40n; } : undefined);
  }
  add('movq %rax, scratch(%rip)\n movq %rdx, 8+scratch(%rip)\n lock cmpxchg16b scratch(%rip)\n movq scratch(%rip), %rdi\n movq 8+scratch(%rip), %rsi', 0x40);
  add('lock cmpxchg16b scratch(%rip)\n movq scratch(%rip), %rdi\n movq 8+scratch(%rip), %rsi', 0x40);
  add('movl %eax, scratch(%rip)\n movl %edx, 4+scratch(%rip)\n cmpxchg8b scratch(%rip)\n movq scratch(%rip), %rdi', 0x40);
  add('cmpxchg8b scratch(%rip)\n movq scratch(%rip), %rdi', 0x40);
  // string instructions
  add('leaq scratch(%rip), %rsi\n leaq 32+scratch(%rip), %rdi\n andq $7, %rcx\n cld\n rep movsb\n movq 32+scratch(%rip), %rdx\n leaq scratch(%rip), %rbx\n subq %rbx, %rsi\n subq %rbx, %rdi\n xorl %ebx, %ebx', ALL);
  add('leaq 40+scratch(%rip), %rdi\n andq $3, %rcx\n std\n rep stosq\n cld\n movq 32+scratch(%rip), %rdx\n leaq scratch(%rip), %rbx\n subq %rbx, %rdi\n xorl %ebx, %ebx', ALL);
  add('movq %rax, scratch(%rip)\n movq %rbx, 8+scratch(%rip)\n leaq scratch(%rip), %rsi\n leaq 8+scratch(%rip), %rdi\n movq $8, %rcx\n repe cmpsb\n leaq scratch(%rip), %rbx\n subq %rbx, %rsi\n subq %rbx, %rdi\n xorl %ebx, %ebx', ALL);
  add('movq %rbx, scratch(%rip)\n leaq scratch(%rip), %rdi\n movq $8, %rcx\n repne scasb\n leaq scratch(%rip), %rbx\n subq %rbx, %rdi\n xorl %ebx, %ebx', ALL);
  add('movq %rbx, scratch(%rip)\n leaq scratch(%rip), %rsi\n lodsl\n lodsw\n leaq scratch(%rip), %rbx\n subq %rbx, %rsi\n xorl %ebx, %ebx', ALL);
  return cases;
}

function hex(v: bigint): string { return '0x' + v.toString(16); }

function source(cases: Case[], native: boolean): string {
  let s = '.text\n.globl _start\n_start:\n';
  cases.forEach((c, n) => {
    s += `# case ${n}\n`;
    c.regs.forEach((v, k) => { s += `movabsq $${hex(v)}, %${REGS[k]}\n`; });
    s += `movq %rax, %r8\n pushq $${c.flags}\n popfq\n movq %r8, %rax\n`;
    s += 'movq $0x1122334455667788, %r9\n movq %r9, scratch(%rip)\n movq %r9, 8+scratch(%rip)\n movq %r9, 32+scratch(%rip)\n movq %r9, 40+scratch(%rip)\n';
    s += 'movq %rax, %r8\n pushq $0\n popfq\n';
    s += `pushq $${c.flags}\n popfq\n movq %r8, %rax\n`;
    s += c.snippet + '\n';
    s += 'pushfq\n popq %r8\n';
    REGS.forEach((r, k) => { s += `movq %${r}, out+${n * 64 + k * 8}(%rip)\n`; });
    s += `movq %r8, out+${n * 64 + 48}(%rip)\n`;
  });
  if (native) s += 'movq $1, %rax\n movq $1, %rdi\n leaq out(%rip), %rsi\n movq $' + cases.length * 64 + ', %rdx\n syscall\n movq $60, %rax\n xorq %rdi, %rdi\n syscall\n';
  else s += 'hlt\n';
  s += `.data\n.balign 16\nscratch: .fill 64, 1, 0\nout: .fill ${cases.length * 64}, 1, 0\n`;
  return s;
}

function runNative(src: string, count: number): Buffer {
  const key = crypto.createHash('sha256').update(src).digest('hex');
  const cache = path.join(os.tmpdir(), 'vmm-gdbstub-asm-cache', 'native-' + key);
  if (fs.existsSync(cache)) return fs.readFileSync(cache);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmm-native-'));
  try {
    fs.writeFileSync(path.join(dir, 'a.s'), src);
    execFileSync('as', ['--64', '-o', 'a.o', 'a.s'], { cwd: dir });
    execFileSync('ld', ['-static', '-o', 'a.out', 'a.o'], { cwd: dir });
    const out = execFileSync(path.join(dir, 'a.out'), { maxBuffer: 64 << 20 });
    expect(out.length).to.equal(count * 64);
    fs.mkdirSync(path.dirname(cache), { recursive: true });
    fs.writeFileSync(cache, out);
    return out;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('cpu: differential test against the real CPU (native execution)', function () {
  this.timeout(120000);
  const cases = gen();
  it(`${cases.length} generated cases: GPRs and SDM-defined flags match native execution`, () => {
    const native = runNative(source(cases, true), cases.length);
    const prog = assembleProgram(source(cases, false), 0x1000);
    const cpu = makeCpu(prog.code, { origin: 0x1000, memSize: 4 << 20 });
    const e = cpu.run(50_000_000);
    expect(e.kind, JSON.stringify(e)).to.equal('hlt');
    const out = prog.labels.out;
    const sim = Buffer.from(cpu.mem.bytes.buffer, out, cases.length * 64);
    const failures: string[] = [];
    cases.forEach((c, n) => {
      for (let k = 0; k < 7; k++) {
        let a = native.readBigUInt64LE(n * 64 + k * 8), b = sim.readBigUInt64LE(n * 64 + k * 8);
        if (k === 6) { a &= BigInt(c.mask); b &= BigInt(c.mask); }
        if (a !== b) {
          failures.push(`case ${n} [${c.snippet.replace(/\n/g, ';')}] regs=${c.regs.map(hex).join(',')} flags=${hex(BigInt(c.flags))}: ${k === 6 ? 'rflags' : REGS[k]} native ${hex(a)} sim ${hex(b)}`);
          break;
        }
      }
    });
    expect(failures.slice(0, 25).join('\n'), `${failures.length} mismatches`).to.equal('');
  });
});
