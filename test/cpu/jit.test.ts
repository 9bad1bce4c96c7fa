// The block compiler (vmm/cpu/jit) against the interpreter, the reference: the same program
// runs on two vCPUs, one compiling hot blocks and one interpreting every instruction, in the
// same slices (random budgets: preemption at arbitrary boundaries); after every slice the
// exit, RIP, RFLAGS, every GPR, the instruction count and guest memory must be identical.
import { expect } from 'chai';
import { assembleProgram } from '../helpers/asm';
import { Cpu } from '../../vmm/cpu/cpu';
import { CpuExit } from '../../vmm/cpu/cpu-exit';
import { GuestMemory } from '../../vmm/memory';
import { PhysicalCpu } from '../../vmm/cpu/physical-cpu';
import { GprIndex } from '../../vmm/cpu/guest-cpu';
import { u64 } from '../../vmm/u64';
import { jitStats } from '../../vmm/cpu/jit/block-jit';
import * as fs from 'fs';
import * as path from 'path';
import { createVm } from '../../vmm/api/create-vm';
import { DEFAULT_VM_OPTIONS } from '../../vmm/api/vm-options';
import { parseElf } from '../../vmm/loader/elf';
import { vmOptionsFromArgs } from '../../cli/vm-options-cli';

const ORIGIN = 0x10000;
const MEM = 1 << 20;

/** xorshift32, seeded: the same streams on every run. */
class Rng {
  constructor(private s: number) {}
  next(): number {
    let x = this.s;
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    this.s = x >>> 0;
    return this.s;
  }
  int(n: number): number { return this.next() % n; }
  pick<T>(a: readonly T[]): T { return a[this.int(a.length)]; }
}

function makeCpu(code: Uint8Array, jit: boolean, setup?: (c: Cpu) => void): Cpu {
  const mem = new GuestMemory(MEM);
  mem.write(ORIGIN, code);
  const cpu = new Cpu(mem, new PhysicalCpu());
  cpu.jitEnabled = jit;
  cpu.jitThreshold = 3; // compile after three entries (the default waits for hotter code)
  cpu.setReg('rip', u64(ORIGIN));
  cpu.setGpr(4, u64(MEM));
  // #DB, #PF, #GP, #UD exit to us (no IDT needed)
  cpu.intercepts.exceptionBitmap = (1 << 1) | (1 << 3) | (1 << 6) | (1 << 13) | (1 << 14);
  setup?.(cpu);
  return cpu;
}

function state(c: Cpu, e: CpuExit): string {
  const g: string[] = [];
  for (let i = 0; i < 16; i++) { const v = c.getGpr(i as GprIndex); g.push(`${v.hi.toString(16)}:${v.lo.toString(16)}`); }
  return `exit=${JSON.stringify(e)} rip=${c.rip.toString(16)} fl=${c.getFlags().toString(16)} n=${c.instret} ${g.join(' ')}`;
}

/**
 * Runs `code` on both vCPUs in slices of `budgets` (cycled) until `hlt`/an exception exit or
 * maxSlices; asserts equal state after every slice; returns the compiled vCPU.
 */
function lockstep(code: Uint8Array, budgets: readonly number[], opts: { maxSlices?: number; setup?: (c: Cpu) => void; onExit?: (c: Cpu, e: CpuExit) => boolean } = {}): { jit: Cpu; exits: CpuExit[] } {
  const a = makeCpu(code, false, opts.setup), b = makeCpu(code, true, opts.setup);
  const exits: CpuExit[] = [];
  for (let s = 0; s < (opts.maxSlices ?? 100000); s++) {
    const n = budgets[s % budgets.length];
    const ea = a.run(n), eb = b.run(n);
    const sa = state(a, ea), sb = state(b, eb);
    if (sa !== sb) expect(sb, `slice ${s} (budget ${n})`).to.equal(sa);
    if (Buffer.compare(a.mem.bytes, b.mem.bytes) !== 0) expect.fail(`memory differs after slice ${s}`);
    if (ea.kind !== 'budget') {
      exits.push(ea);
      if (ea.kind === 'hlt') break;
      if (!(opts.onExit?.(a, ea) && opts.onExit(b, eb))) break;
    }
  }
  return { jit: b, exits };
}

const REGS64 = ['%rax', '%rcx', '%rdx', '%rsi', '%rdi', '%rbp', '%r8', '%r9', '%r10', '%r11', '%r12', '%r13', '%r14'];
const REGS32 = ['%eax', '%ecx', '%edx', '%esi', '%edi', '%ebp', '%r8d', '%r9d', '%r10d', '%r11d', '%r12d', '%r13d', '%r14d'];
const REGS16 = ['%ax', '%cx', '%dx', '%si', '%di', '%bp'];
const BYTE = ['%al', '%cl', '%dl', '%ah', '%ch', '%dh', '%bh'];
const CC = ['o', 'no', 'b', 'ae', 'e', 'ne', 'be', 'a', 's', 'ns', 'p', 'np', 'l', 'ge', 'le', 'g'];
const ALU = ['add', 'sub', 'and', 'or', 'xor', 'cmp', 'adc', 'sbb', 'test'];

function imm(r: Rng): string {
  return r.pick(['0', '1', '-1', '0x7f', '-0x80', '0x7fffffff', '-0x80000000', String(r.int(1000)), String(-(r.next() >>> 1))]);
}

/** One random instruction (AT&T) over data at (%rbx) (4 KiB); rbx, rsp, r15 stay intact. */
function randomInsn(r: Rng, label: () => string): string {
  const q = r.pick(REGS64), q2 = r.pick(REGS64), d = r.pick(REGS32), d2 = r.pick(REGS32);
  const mem = `${r.int(4088)}(%rbx)`;
  switch (r.int(34)) {
    case 0: return `${r.pick(ALU)} ${q}, ${q2}`;
    case 1: return `${r.pick(ALU)} ${d}, ${d2}`;
    case 2: { const op = r.pick(ALU); return `${op}q $${imm(r)}, ${q}`; }
    case 3: return `${r.pick(ALU)}l $${imm(r)}, ${d}`;
    case 4: return `${r.pick(ALU.slice(0, 8))} ${mem}, ${r.pick([q, d])}`;
    case 5: return `${r.pick(ALU.slice(0, 8))} ${r.pick([q, d])}, ${mem}`;
    case 6: return `${r.pick(['inc', 'dec', 'neg', 'not'])} ${r.pick([q, d, r.pick(REGS16), r.pick(BYTE.slice(0, 3))])}`;
    case 7: return r.int(2) ? `movq ${q}, ${mem}` : `movl ${d}, ${mem}`;
    case 8: return r.int(2) ? `mov ${mem}, ${q}` : `mov ${mem}, ${d}`;
    case 9: return `mov ${r.pick(BYTE)}, ${mem}`;
    case 10: { const op = r.pick(['movzbl', 'movzwl', 'movsbl', 'movswl', 'movsbq', 'movswq', 'movslq', 'movzbq']); return `${op} ${mem}, ${op.endsWith('q') ? q : d}`; }
    case 11: return `${r.pick(['movzbl', 'movsbl'])} ${r.pick(BYTE)}, ${r.pick(REGS32.slice(0, 6))}`;
    case 12: return `${r.pick(['movsbq', 'movzbq'])} ${r.pick(BYTE.slice(0, 3))}, ${q}`;
    case 13: return r.int(2) ? `movslq ${d}, ${q}` : `movswq ${r.pick(REGS16)}, ${q}`;
    case 14: return r.int(2) ? `mov ${q}, ${q2}` : `mov ${d}, ${d2}`;
    case 15: return r.int(2) ? `movabs $0x${(r.next()).toString(16)}${(r.next()).toString(16).padStart(8, '0')}, ${q}` : `mov $${imm(r)}, ${d}`;
    case 16: return `lea ${r.int(200) - 100}(${q},${q2},${r.pick([1, 2, 4, 8])}), ${r.pick([q, d])}`;
    case 17: return `lea ${r.int(200) - 100}(${q}), ${r.pick([q, d])}`;
    case 18: return `${r.pick(['shl', 'shr', 'sar', 'rol', 'ror', 'sal'])} $${r.int(70)}, ${r.pick([q, d])}`;
    case 19: return `${r.pick(['shl', 'shr', 'sar'])} ${r.pick([q, d, '%cl, ' + q, '%cl, ' + d])}`;
    case 20: return r.int(2) ? `imul ${q}, ${q2}` : `imul $${r.int(2000) - 1000}, ${d}, ${d2}`;
    case 21: return `set${r.pick(CC)} ${r.pick(BYTE)}`;
    case 22: return `cmov${r.pick(CC)} ${r.int(2) ? `${q}, ${q2}` : `${d}, ${d2}`}`;
    case 23: return `push ${q}\n  pop ${q2}`;
    case 24: { const l = label(); return `j${r.pick(CC)} ${l}\n  ${randomSimple(r)}\n${l}:`; }
    case 25: return r.pick(['pushf\n  pop %rax', 'clc', 'stc', 'cmc', 'cqto', 'cltq', 'nop', 'bswap ' + q, 'xchg ' + q + ', ' + q2]);
    case 26: return `mov ${mem}, ${r.pick(BYTE)}`;
    case 27: return `movq $${imm(r)}, ${mem}`;
    case 28: return `movl $${imm(r)}, ${mem}`;
    case 30: return `${r.pick(['add', 'sub', 'and', 'or', 'xor', 'cmp', 'adc'])}${r.pick(['q', 'l'])} $${imm(r)}, ${mem}`;
    case 31: return `test ${r.pick([q, d])}, ${mem}`;
    case 32: { const w = r.int(2); return `test${w ? 'q' : 'l'} $${imm(r)}, ${r.pick([mem, w ? q : d])}`; }
    case 33: return `${r.pick(['add', 'sub', 'and', 'or', 'xor', 'cmp'])} ${r.pick([q, d])}, ${mem}`;
    default: return `${r.pick(['add', 'sub', 'and', 'or', 'xor', 'cmp'])} $${imm(r)}, ${r.pick([q, d])}`.replace(/ \$(\S+), %r/, ' $$$1, %r');
  }
}

function randomSimple(r: Rng): string {
  return `${r.pick(['add', 'sub', 'xor'])} ${r.pick(REGS64)}, ${r.pick(REGS64)}`;
}

/** Random values for every register the random programs use. */
function randomInit(r: Rng): string {
  return REGS64.map((q) => `movabs $0x${r.next().toString(16)}${r.next().toString(16).padStart(8, '0')}, ${q}`).join('\n  ');
}

/**
 * The random programs' frame: RBX at a data page, registers from `init`, `loop` run
 * `iterations` times (R15D counts), HLT, then `after` (functions) and the data page.
 */
function loopProgram(init: string, loop: string[], iterations: number, after = ''): string {
  return `
  lea data(%rip), %rbx
  mov $${iterations}, %r15d
  ${init}
top:
  ${loop.join('\n  ')}
  dec %r15d
  jnz top
  hlt
${after}  .balign 4096
data:
  .fill 4096, 1, 0x5a
`;
}

/** A loop of random instructions run `iterations` times (hot: compiled after the threshold). */
function randomProgram(seed: number, len: number, iterations: number): string {
  const r = new Rng(seed);
  let n = 0;
  const label = (): string => `L${n++}`;
  const init = randomInit(r);
  const body: string[] = [];
  for (let k = 0; k < len; k++) body.push(randomInsn(r, label));
  return loopProgram(init, body, iterations);
}

const BUDGETS = [1, 3, 1000, 7, 64, 10000, 2, 333, 100000, 5, 31];

describe('block compiler (vmm/cpu/jit) vs the interpreter', function () {
  this.timeout(120000);

  it('random instruction streams: same state, count and memory after every slice', function () {
    const before = jitStats.compiled;
    for (let seed = 1; seed <= 60; seed++) {
      const src = randomProgram(seed * 7919, 12 + (seed % 20), 150);
      const code = assembleProgram(src, ORIGIN).code;
      const { exits } = lockstep(code, BUDGETS.slice(seed % 5).concat(BUDGETS.slice(0, seed % 5)));
      expect(exits.length, `seed ${seed}`).to.be.greaterThan(0);
    }
    expect(jitStats.compiled - before, 'blocks compiled').to.be.greaterThan(30);
  });

  it('random streams with a data breakpoint on their data: the checking path (#DB after the access) agrees', function () {
    let traps = 0;
    for (let seed = 1; seed <= 12; seed++) {
      const src = randomProgram(seed * 15485863, 16 + (seed % 10), 100);
      const prog = assembleProgram(src, ORIGIN);
      // DR0: read/write, 8 bytes, on the slot of a data offset the stream uses
      const offsets = [...src.matchAll(/(\d+)\(%rbx\)/g)].map((m) => Number(m[1]));
      if (offsets.length === 0) continue;
      const slot = offsets[seed % offsets.length] & ~7;
      const arm = (c: Cpu): void => { c.phys.setDr(0, u64(prog.labels['data'] + slot)); c.phys.setDr(7, u64(0x400 | 1 | (0xb << 16))); };
      const { exits } = lockstep(prog.code, BUDGETS, { setup: arm, maxSlices: 3000, onExit: (c, e) => e.kind === 'exception' && e.vector === 1 });
      traps += exits.filter((e) => e.kind === 'exception').length;
    }
    expect(traps, '#DB exits').to.be.greaterThan(20);
  });

  it('budgets that end slices inside compiled blocks keep the count exact (preemption)', function () {
    const code = assembleProgram(randomProgram(4242, 25, 400), ORIGIN).code;
    for (const b of [[1], [2], [5], [13], [97], [1000]]) lockstep(code, b);
  });

  it('self-modifying code: a store into the running block, and into the next iteration', function () {
    const src = `
  mov $300, %r15d
  xor %eax, %eax
top:
  add $1, %eax
patch:
  mov $5, %ecx
  add %ecx, %eax
  lea patch+1(%rip), %rdx
  mov %eax, (%rdx)
  movb $0x90, nopnext(%rip)
nopnext:
  nop
  dec %r15d
  jnz top
  hlt
`;
    const { jit } = lockstep(assembleProgram(src, ORIGIN).code, [1000000]);
    expect(jit.decodes).to.be.greaterThan(300);
    lockstep(assembleProgram(src, ORIGIN).code, [1, 17, 300]);
  });

  it('a store beside the code (same page, other lines) changes nothing and stays fast', function () {
    const src = `
  mov $5000, %r15d
top:
  add %r15, %rax
  mov %rax, var(%rip)
  mov var(%rip), %rsi
  add %rsi, %rbx
  dec %r15d
  jnz top
  hlt
  .balign 64
var: .quad 0
`;
    const { jit } = lockstep(assembleProgram(src, ORIGIN).code, [100000]);
    expect(jit.decodes).to.be.lessThan(40);
  });

  it('an instruction breakpoint in the middle of a hot block stops before that instruction', function () {
    const src = `
  mov $200, %r15d
top:
  add $1, %rax
  add $2, %rcx
mid:
  add $3, %rdx
  dec %r15d
  jnz top
  hlt
`;
    const prog = assembleProgram(src, ORIGIN);
    // now the same with the breakpoint armed after the block became hot
    let armed = 0;
    const arm = (c: Cpu): void => { c.phys.setDr(0, u64(prog.labels['mid'])); c.phys.setDr(7, u64(0x401)); };
    const a = makeCpu(prog.code, false), b = makeCpu(prog.code, true);
    for (const c of [a, b]) c.run(300); // hot, compiled
    arm(a); arm(b);
    for (let k = 0; k < 300; k++) {
      const ea = a.run(100000), eb = b.run(100000);
      expect(state(b, eb)).to.equal(state(a, ea));
      if (ea.kind === 'hlt') break;
      expect(ea.kind).to.equal('exception');
      expect(a.rip).to.equal(prog.labels['mid']);
      armed++;
      for (const c of [a, b]) c.setReg('rflags', u64(c.getFlags() | 0x10000));
    }
    expect(armed).to.be.greaterThan(100);
  });

  it('a data breakpoint hit by a store in the middle of a hot block traps right after it', function () {
    const src = `
  mov $300, %r15d
  lea data(%rip), %rbx
top:
  add $1, %rax
  mov %rax, 8(%rbx)
  add $2, %rcx
  mov %rcx, 16(%rbx)
  add %rcx, %rdx
  dec %r15d
  jnz top
  hlt
  .balign 4096
data: .fill 64, 1, 0
`;
    const prog = assembleProgram(src, ORIGIN);
    const a = makeCpu(prog.code, false), b = makeCpu(prog.code, true);
    for (const c of [a, b]) c.run(500);
    // DR1 = data+16, write, 8 bytes, L1
    for (const c of [a, b]) { c.phys.setDr(1, u64(prog.labels['data'] + 16)); c.phys.setDr(7, u64(0x400 | (1 << 2) | (0xd << 20))); }
    let traps = 0;
    for (let k = 0; k < 400; k++) {
      const ea = a.run(100000), eb = b.run(100000);
      expect(state(b, eb)).to.equal(state(a, ea));
      if (ea.kind === 'hlt') break;
      expect(ea.kind).to.equal('exception');
      traps++;
    }
    expect(traps).to.be.greaterThan(200);
  });

  it('TF single-steps through hot code one instruction at a time, as the interpreter does', function () {
    const src = `
  mov $100, %r15d
top:
  add $1, %rax
  imul %rax, %rcx
  dec %r15d
  jnz top
  pushf
  orq $0x100, (%rsp)
  popf
  add $1, %rax
  add $1, %rax
  hlt
`;
    const { exits } = lockstep(assembleProgram(src, ORIGIN).code, [100000], {
      onExit: (_c, e) => e.kind === 'exception' && e.vector === 1,
    });
    expect(exits.filter((e) => e.kind === 'exception').length).to.be.greaterThan(1);
  });

  it('page faults inside a compiled block report the faulting instruction exactly', function () {
    const src = `
  mov $400, %r15d
  lea data(%rip), %rbx
top:
  add $8, %rsi
  and $0xffff8, %rsi
  mov (%rbx,%rsi), %rax
  add %rax, %rcx
  dec %r15d
  jnz top
  hlt
  .balign 4096
data: .fill 64, 1, 1
`;
    // memory ends at 1 MiB: reads past it are nested-page faults (npf exits) on both
    lockstep(assembleProgram(src, ORIGIN).code, [100000, 3], { onExit: (c, e) => { if (e.kind !== 'npf') return false; c.setGpr(6, u64(0)); return true; }, maxSlices: 200 });
  });

  it('--no-jit: the VM option reaches every vCPU, which then compiles nothing', function () {
    expect(vmOptionsFromArgs({ 'no-jit': true }).jit).to.equal(false);
    expect(vmOptionsFromArgs({}).jit).to.equal(undefined);
    const elf = path.join(__dirname, '..', '..', '..', 'guests', 'counter.elf');
    const image = parseElf(new Uint8Array(fs.readFileSync(elf)), 4 << 20, 1);
    const cpus: Cpu[] = [];
    const vm = createVm(image, { ...DEFAULT_VM_OPTIONS, memMiB: 4, vcpus: 2, jit: false }, (mem, phys) => {
      const c = new Cpu(mem, phys);
      cpus.push(c);
      return c;
    });
    expect(cpus.length).to.equal(2);
    for (const c of cpus) expect(c.jitEnabled).to.equal(false);
    const before = jitStats.compiled;
    vm.run([0], 200000);
    expect(jitStats.compiled).to.equal(before);
    // and a Cpu with it on compiles the same loop
    const code = assembleProgram(randomProgram(77, 10, 2000), ORIGIN).code;
    const on = makeCpu(code, true), off = makeCpu(code, false);
    const b0 = jitStats.compiled;
    off.run(100000);
    expect(jitStats.compiled).to.equal(b0);
    on.run(100000);
    expect(jitStats.compiled).to.be.greaterThan(b0);
  });

  it('an armed instruction breakpoint elsewhere leaves hot code compiled; it still fires exactly', function () {
    const src = `
  mov $3000, %r15d
top:
  add $1, %rax
  imul %rax, %rcx
  dec %r15d
  jnz top
after:
  add $1, %rdx
  hlt
`;
    const prog = assembleProgram(src, ORIGIN);
    const arm = (c: Cpu): void => { c.phys.setDr(2, u64(prog.labels['after'])); c.phys.setDr(7, u64(0x400 | (1 << 4))); };
    const before = jitStats.compiled;
    const { exits, jit } = lockstep(prog.code, [100000, 77], {
      setup: arm,
      onExit: (c, e) => {
        if (e.kind !== 'exception' || e.vector !== 1) return false;
        c.setReg('rflags', u64(c.getFlags() | 0x10000));
        return true;
      },
    });
    expect(jitStats.compiled, 'the loop was compiled').to.be.greaterThan(before);
    const db = exits.filter((e) => e.kind === 'exception');
    expect(db.length).to.equal(1);
    expect(exits[exits.length - 1].kind).to.equal('hlt');
    expect(jit.instret).to.equal(1 + 3000 * 4 + 1); // HLT exits before it retires
  });
});

/**
 * A loop that calls random functions on its page (direct and indirect calls, returns, jumps
 * across blocks, branches between them): compiled regions of several blocks.
 */
function randomCallProgram(seed: number, funcs: number, iterations: number): string {
  const r = new Rng(seed);
  let n = 0;
  const label = (): string => `L${n++}`;
  const init = randomInit(r);
  const body = (len: number): string => Array.from({ length: len }, () => randomInsn(r, label)).join('\n  ');
  const calls: string[] = [];
  for (let f = 0; f < funcs; f++) {
    calls.push(body(1 + r.int(4)));
    calls.push(r.int(2) ? `call f${f}` : `lea f${f}(%rip), %rax\n  call *%rax`);
  }
  const fns: string[] = [];
  for (let f = 0; f < funcs; f++) {
    const skip = label();
    fns.push(`f${f}:\n  ${body(2 + r.int(5))}\n  jmp ${skip}\n  ${randomSimple(r)}\n${skip}:\n  ${body(1 + r.int(3))}\n  ret`);
  }
  return loopProgram(init, calls, iterations, fns.join('\n') + '\n');
}

describe('block compiler: regions of several blocks (direct chaining inside one page)', function () {
  this.timeout(120000);

  it('a data breakpoint on the return-address slot traps right after each CALL, indirect CALL and RET of a hot region', function () {
    const src = `
  mov $300, %r15d
  lea f(%rip), %r14
top:
  call f
  call *%r14
  add %rax, %rdx
  dec %r15d
  jnz top
  hlt
f:
  add $1, %rax
  ret
`;
    const prog = assembleProgram(src, ORIGIN);
    const a = makeCpu(prog.code, false), b = makeCpu(prog.code, true);
    for (const c of [a, b]) c.run(600);
    // DR0 = the slot below the stack top (RSP = MEM at the loop), read/write, 8 bytes, L0
    for (const c of [a, b]) { c.phys.setDr(0, u64(MEM - 8)); c.phys.setDr(7, u64(0x400 | 1 | (3 << 16) | (2 << 18))); }
    let traps = 0;
    for (let k = 0; k < 2000; k++) {
      const ea = a.run(100000), eb = b.run(100000);
      expect(state(b, eb), `stop ${k}`).to.equal(state(a, ea));
      if (ea.kind === 'hlt') break;
      expect(ea.kind).to.equal('exception');
      traps++;
    }
    // four accesses per pass (two pushes, two return-address reads), from pass 151 on
    expect(traps).to.be.greaterThan(500);
  });

  it('random calls, returns, jumps and branches between blocks: same state, count and memory after every slice', function () {
    const before = { ...jitStats };
    for (let seed = 1; seed <= 30; seed++) {
      const code = assembleProgram(randomCallProgram(seed * 104729, 1 + (seed % 4), 120), ORIGIN).code;
      const { exits } = lockstep(code, BUDGETS.slice(seed % 7).concat(BUDGETS.slice(0, seed % 7)));
      expect(exits.length, `seed ${seed}`).to.be.greaterThan(0);
    }
    const compiled = jitStats.compiled - before.compiled, blocks = jitStats.regionBlocks - before.regionBlocks;
    expect(compiled, 'regions compiled').to.be.greaterThan(30);
    expect(blocks / compiled, 'blocks per region').to.be.greaterThan(1.5);
    // hot blocks that another region holds ran there (from their own block number), not compiled again
    expect(jitStats.memberEntries - before.memberEntries, 'blocks entered inside another region').to.be.greaterThan(10);
  });

  it('a store into another block of the running region drops it; the next pass runs the new code', function () {
    const src = `
  mov $400, %r15d
  xor %eax, %eax
top:
  add $1, %eax
  call f
  lea patch+1(%rip), %rdx
  mov %eax, (%rdx)
  dec %r15d
  jnz top
  hlt
f:
  add $3, %ecx
patch:
  mov $5, %esi
  add %esi, %ecx
  ret
`;
    const code = assembleProgram(src, ORIGIN).code;
    const { jit } = lockstep(code, [1000000]);
    expect(jit.getGpr(1).lo, 'ecx: 3 + the patched immediate each time').to.equal(400 * 3 + 400 * 401 / 2 - 400 + 5);
    lockstep(code, [1, 7, 100, 33]);
  });

  it('a hot region does not run on into a page whose translation changed (PTE rewritten, INVLPG)', function () {
    // 4-level tables at 0xf0000: 0-1 MiB identity-mapped in 4 KiB pages. After 300 calls of
    // g (page 0x11000), its PTE is pointed at page 0x12000 (another g) and INVLPG'd.
    const PML4 = 0xf0000, PDPT = 0xf1000, PD = 0xf2000, PT = 0xf3000;
    const src = `
  mov $600, %r15d
top:
  call g
  cmp $300, %r15d
  jne 1f
  movq $0x12003, ${PT + 0x11 * 8}
  invlpg 0x11000
1:
  dec %r15d
  jnz top
  hlt
  .balign 0x1000
g:
  add $1, %rax
  ret
  .balign 0x1000
g2:
  add $1000, %rax
  ret
`;
    const prog = assembleProgram(src, ORIGIN);
    expect(prog.labels['g']).to.equal(0x11000);
    const setup = (c: Cpu): void => {
      const q = (a: number, v: number): void => { c.mem.view.setUint32(a, v, true); c.mem.view.setUint32(a + 4, 0, true); };
      q(PML4, PDPT | 3); q(PDPT, PD | 3); q(PD, PT | 3);
      for (let i = 0; i < 256; i++) q(PT + i * 8, (i << 12) | 3);
      c.setReg('cr3', u64(PML4));
    };
    for (const budgets of [[1000000], [1, 5, 99], [250]]) {
      const { jit } = lockstep(prog.code, budgets, { setup });
      expect(jit.getGpr(0).lo, 'g ran 301 times, then the other g 299 times').to.equal(301 + 299 * 1000);
    }
  });

  it('a region compiled before is taken early by a new vCPU only where the same bytes are decoded', function () {
    const src = (k: number): string => `
  mov $300, %r15d
top:
  add $1, %rax
  call f
  dec %r15d
  jnz top
  hlt
f:
  add $${k}, %rcx
  jmp 1f
  ud2
1:
  imul $3, %rcx, %rdx
  ret
`;
    const same = assembleProgram(src(5), ORIGIN).code, other = assembleProgram(src(7), ORIGIN).code;
    lockstep(same, [100000]); // compiled once (threshold 3 in these tests)
    const hits = jitStats.factoryHits;
    // a vCPU with the default threshold (500 entries, never reached here) takes it after 16
    const { jit } = lockstep(same, [100000], { setup: (c) => { c.jitThreshold = 500; } });
    expect(jitStats.factoryHits, 'the same code again: the region function reused').to.be.greaterThan(hits);
    expect(jit.getGpr(1).lo).to.equal(300 * 5);
    // the callee's immediate differs: its block's bytes differ, so nothing compiled for the first program runs
    const h2 = jitStats.factoryHits;
    const { jit: j2 } = lockstep(other, [100000, 3, 17], { setup: (c) => { c.jitThreshold = 500; } });
    expect(jitStats.factoryHits, 'nothing reused').to.equal(h2);
    expect(j2.getGpr(1).lo).to.equal(300 * 7);
  });

  it('an instruction breakpoint armed on a block inside a hot region stops there, every time', function () {
    const src = `
  mov $400, %r15d
top:
  add $1, %rax
  call f
  dec %r15d
  jnz top
  hlt
f:
  add $2, %rcx
  jmp there
  ud2
there:
  add $3, %rdx
  ret
`;
    const prog = assembleProgram(src, ORIGIN);
    const a = makeCpu(prog.code, false), b = makeCpu(prog.code, true);
    const before = jitStats.regionBlocks - jitStats.compiled;
    for (const c of [a, b]) expect(c.run(600).kind).to.equal('budget'); // hot, compiled
    expect(jitStats.regionBlocks - jitStats.compiled, 'regions of more than one block').to.be.greaterThan(before);
    const at = prog.labels['there']; // the block after the jmp
    for (const c of [a, b]) { c.phys.setDr(0, u64(at)); c.phys.setDr(7, u64(0x401)); }
    let stops = 0;
    for (let k = 0; k < 500; k++) {
      const ea = a.run(100000), eb = b.run(100000);
      expect(state(b, eb)).to.equal(state(a, ea));
      if (ea.kind === 'hlt') break;
      expect(ea.kind).to.equal('exception');
      expect(a.rip).to.equal(at);
      stops++;
      for (const c of [a, b]) c.setReg('rflags', u64(c.getFlags() | 0x10000));
    }
    expect(stops).to.be.greaterThan(200);
  });
});
