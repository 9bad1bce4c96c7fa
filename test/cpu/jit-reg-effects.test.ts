// The register-effects table (vmm/cpu/jit/reg-effects.ts) against the interpreter's handlers:
// compiled blocks pass only the listed registers through CpuCore around a listed handler, so
// a handler that read an unlisted register would see a stale value and one that wrote an
// unlisted register would be undone. Each instruction runs twice from the same state except
// for different random values in the registers it lists neither as read nor as written: all
// it writes must come out the same, and the registers not listed as written unchanged.
import { expect } from 'chai';
import { assemble, makeCpu } from '../helpers/asm';
import { Cpu } from '../../vmm/cpu/cpu';
import { GprIndex } from '../../vmm/cpu/guest-cpu';
import { Insn } from '../../vmm/cpu/insn';
import { decode } from '../../vmm/cpu/decoder';
import { regEffects } from '../../vmm/cpu/jit/reg-effects';

const ORIGIN = 0x1000;
const DATA = 0x8000;

const INSNS = [
  // group 1 and TEST at every size, register and memory forms
  'add %ecx, %ebx', 'adc %rcx, %rbx', 'sbb $7, %esi', 'cmp %cx, %dx', 'sub %ah, %bh', 'xor %al, %ch', 'and $0x55, %dil',
  'or %r9w, (%rbx)', 'cmpb $3, 1(%rbx,%rsi,2)', 'sub (%rbx), %r10w', 'test %ah, %cl', 'testw $0x8001, %dx', 'test %r8, %r9',
  'add %r11b, %r12b', 'adcw $-1, %r13w',
  'inc %ah', 'decw %r8w', 'not %bl', 'neg %r14d', 'negq (%rbx)', 'notw %si',
  'mov %ah, %dl', 'mov %cx, %r15w', 'mov %bl, (%rbx,%rcx)', 'movw $0x1234, %di', 'movb $9, %bh', 'mov (%rbx), %ch',
  'movzbl %ah, %ecx', 'movzwq %dx, %r8', 'movsbw %cl, %si', 'movslq %edi, %rax', 'movsbq (%rbx), %rdx',
  'cmovne %cx, %dx', 'cmovg (%rbx), %r9', 'sete %ah', 'setb %r10b', 'setg (%rbx)',
  'mulb %bh', 'mulw %cx', 'mull %esi', 'mulq %r8', 'imulb %dl', 'imulw (%rbx)', 'imulq %rcx',
  'divb %cl', 'divw %si', 'divl %ecx', 'divq %r9', 'idivb %cl', 'idivw %si', 'idivl %ecx', 'idivq %r9',
  'imul %cx, %dx', 'imul $-3, %r8w, %r9w', 'imul (%rbx), %rsi',
  'shl %cl, %ah', 'sar %cl, %r8w', 'shr %cl, %esi', 'rol %cl, %rdx', 'rcr $3, %bx', 'shl $1, %dil', 'sarq %cl, (%rbx)',
  'shld %cl, %bx, %dx', 'shrd $5, %rsi, %rdi', 'shldw %cl, %ax, (%rbx)',
  'bt %cx, %dx', 'bts %rsi, %rdi', 'btrw $3, %r8w', 'btcl %ecx, (%rbx)',
  'bsf %cx, %dx', 'bsr %rsi, %rdi', 'bsfq (%rbx), %r8',
  'bswap %edx', 'bswap %r9', 'cbw', 'cwde', 'cdqe', 'cwd', 'cdq', 'cqo',
];

/** xorshift32: the same values on every run. */
function makeRng(seed: number): () => number {
  let s = seed;
  return () => { s ^= s << 13; s ^= s >>> 17; s ^= s << 5; return s >>> 0; };
}

/** A CPU about to run `code` with registers from `value(r)`; RBX points at data, RCX holds a small count. */
function cpuWith(code: Uint8Array, value: (r: number) => [number, number]): Cpu {
  const cpu = makeCpu(code, { origin: ORIGIN });
  cpu.jitEnabled = false;
  for (let r = 0; r < 16; r++) {
    if (r === 4) continue;
    const [lo, hi] = value(r);
    cpu.setGpr(r as GprIndex, { lo, hi });
  }
  return cpu;
}

function snapshot(cpu: Cpu, data: number): { gprs: string[]; rest: string } {
  const gprs: string[] = [];
  for (let r = 0; r < 16; r++) { const v = cpu.getGpr(r as GprIndex); gprs.push(`${v.hi.toString(16)}:${v.lo.toString(16)}`); }
  const mem = Array.from(cpu.mem.bytes.subarray(data, data + 64)).join(',');
  return { gprs, rest: `rip=${cpu.rip} flags=${cpu.getFlags().toString(16)} mem=${mem}` };
}

describe('cpu: jit register effects of the handlers compiled blocks call with only their registers', () => {
  for (const text of INSNS) {
    it(text, () => {
      const code = assemble(`${text}\nhlt\n`, ORIGIN);
      const insn = new Insn();
      decode(padded(code), 0x10000, ORIGIN, insn);
      const fx = regEffects(insn);
      expect(fx, 'listed in reg-effects.ts').to.not.equal(null);
      const writes = new Set(fx!.writes), passed = new Set([...fx!.reads, ...writes]);
      const rnd = makeRng(0x1234567 + text.length);
      // the listed reads' values: RBX points at data, RSI a small index and divisor, RCX a count of 32-63 (also a divisor), RDX:RAX a dividend below 1024
      const base: [number, number][] = [];
      for (let r = 0; r < 16; r++) base.push([rnd(), rnd()]);
      base[3] = [DATA, 0];
      base[1] = [(rnd() & 0x1f) | 0x20, 0];
      base[2] = [0, 0];
      base[0] = [rnd() & 0x3ff, rnd()];
      base[6] = [(rnd() & 0x7) | 8, 0];
      let compared = 0;
      for (let trial = 0; trial < 8; trial++) {
        const other = makeRng(0x9e3779b9 + trial * 7919);
        const start: [number, number][] = base.map((v, r) => (passed.has(r) || r === 3 ? v : [other(), other()]));
        const a = cpuWith(code, (r) => base[r]);
        const b = cpuWith(code, (r) => start[r]);
        for (const cpu of [a, b]) cpu.mem.bytes.fill(0x5a, DATA, DATA + 64);
        const ea = a.run(1), eb = b.run(1);
        expect(eb, 'exit').to.deep.equal(ea);
        if (ea.kind !== 'budget') continue; // a #DE (divide overflow) in both: nothing written
        compared++;
        const sa = snapshot(a, DATA), sb = snapshot(b, DATA);
        expect(sb.rest, 'RIP, flags and memory').to.equal(sa.rest);
        for (const r of writes) expect(sb.gprs[r], `written register ${r}`).to.equal(sa.gprs[r]);
        for (let r = 0; r < 16; r++) {
          if (writes.has(r) || r === 4) continue;
          const [lo, hi] = start[r];
          expect(sb.gprs[r], `register ${r} is not listed as written`).to.equal(`${(hi >>> 0).toString(16)}:${(lo >>> 0).toString(16)}`);
        }
      }
      expect(compared, 'trials that ran the instruction').to.be.greaterThan(0);
    });
  }
});

/** The code in a buffer of 64 KiB at ORIGIN, as the decoder reads guest memory. */
function padded(code: Uint8Array): Uint8Array {
  const buf = new Uint8Array(0x10000);
  buf.set(code, ORIGIN);
  return buf;
}
