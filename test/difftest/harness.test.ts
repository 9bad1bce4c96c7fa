/**
 * The differential harness itself: it must catch a simulator that gets a register, a
 * defined flag or memory wrong, and must not complain about flags the SDM leaves undefined.
 */
import { expect } from 'chai';
import { CpuExit } from '../../vmm/cpu/cpu-exit';
import { blockDiffRun, CompiledCpu, hookCompiledCode } from './block-compare';
import { diffRun } from './compare';
import { blobSpec } from './corpus';
import { CpuClass, loadCpuClass } from './sim';
import { AF, CF, OF, SF, ZF, PF, readFlags, undefinedFlags, writtenFlags } from './undefined-flags';

/** A Cpu that misbehaves once, after its `nth` instruction, in the way `spoil` says. */
function faultyCpu(Base: CpuClass, nth: number, spoil: (cpu: InstanceType<CpuClass>) => void): CpuClass {
  return class extends (Base as unknown as new (...a: ConstructorParameters<CpuClass>) => InstanceType<CpuClass>) {
    private retired = 0;
    run(budget: number): CpuExit {
      const exit = super.run(budget);
      if (exit.kind === 'budget' && ++this.retired === nth) spoil(this);
      return exit;
    }
  } as unknown as CpuClass;
}

const BODY = ['mov $0x300000, %ebx', 'mov $5, %eax', 'add $3, %eax', 'mov %eax, 8(%rbx)', 'xor %ecx, %ecx', 'and $1, %eax', 'nop'].join('\n');

describe('differential harness', function () {
  this.timeout(30000);
  let Cpu: CpuClass | undefined;
  before(function () {
    Cpu = loadCpuClass();
    if (!Cpu) this.skip();
  });

  it('agrees with the real CPU on a correct run', async () => {
    const r = await diffRun(blobSpec('harness-ok', BODY), Cpu!);
    expect(r.mismatch).to.equal(undefined);
    expect(r.steps).to.equal(7);
    expect(r.end).to.equal('int3');
  });

  it('reports a wrong register at the instruction that produced it', async () => {
    const bad = faultyCpu(Cpu!, 3, (c) => c.setGpr(0, { lo: 9, hi: 0 }));
    const r = await diffRun(blobSpec('harness-reg', BODY), bad);
    expect(r.mismatch).to.match(/after instruction #3 at 0x0+10000a \[83c003/);
    expect(r.mismatch).to.match(/rax native=0x0+8 sim=0x0+9/);
  });

  it('reports a wrong defined flag', async () => {
    const bad = faultyCpu(Cpu!, 3, (c) => c.setReg('rflags', { lo: c.getReg('rflags').lo ^ ZF, hi: 0 }));
    const r = await diffRun(blobSpec('harness-flag', BODY), bad);
    expect(r.mismatch).to.match(/after instruction #3 .*rflags/);
  });

  it('ignores a flag the SDM leaves undefined (AF after AND) and carries the native value on', async () => {
    const bad = faultyCpu(Cpu!, 6, (c) => c.setReg('rflags', { lo: c.getReg('rflags').lo ^ AF, hi: 0 }));
    const r = await diffRun(blobSpec('harness-undef', BODY), bad);
    expect(r.mismatch).to.equal(undefined);
  });

  it('reports memory that differs at the end', async () => {
    const bad = faultyCpu(Cpu!, 4, (c) => {
      (c as unknown as { mem: { bytes: Uint8Array } }).mem.bytes[0x300009] ^= 1;
    });
    const r = await diffRun(blobSpec('harness-mem', BODY), bad);
    expect(r.mismatch).to.match(/memory at 0x300009/);
  });

  it('knows which flags are undefined (SDM instruction pages)', () => {
    const b = (...x: number[]) => Uint8Array.from([...x, 0, 0, 0, 0]);
    expect(undefinedFlags(b(0x21, 0xc8), 0)).to.equal(AF); // and %ecx,%eax
    expect(undefinedFlags(b(0x48, 0xf7, 0xe3), 0)).to.equal(SF | ZF | AF | PF); // mul %rbx
    expect(undefinedFlags(b(0x48, 0xf7, 0xf3), 0)).to.equal(CF | OF | SF | ZF | AF | PF); // div %rbx
    expect(undefinedFlags(b(0x48, 0xd3, 0xe0), 0)).to.equal(0); // shl %cl,%rax with CL=0
    expect(undefinedFlags(b(0x48, 0xd3, 0xe0), 1)).to.equal(AF); // count 1: OF defined
    expect(undefinedFlags(b(0x48, 0xd3, 0xe0), 64)).to.equal(0); // 64 & 63 = 0
    expect(undefinedFlags(b(0xd2, 0xe0), 9)).to.equal(AF | OF | CF); // shl %cl,%al, count >= 8
    expect(undefinedFlags(b(0x48, 0xc1, 0xc0, 0x05), 0)).to.equal(OF); // rol $5,%rax
    expect(undefinedFlags(b(0x48, 0x0f, 0xbc, 0xc3), 0)).to.equal(CF | OF | SF | AF | PF); // bsf
    expect(undefinedFlags(b(0x48, 0x01, 0xd8), 0)).to.equal(0); // add
  });

  it('knows which flags an instruction writes and reads (the block mode tracks undefined flags with them)', () => {
    const b = (...x: number[]) => Uint8Array.from([...x, 0, 0, 0, 0]);
    const ARITH = CF | PF | AF | ZF | SF | OF;
    expect(writtenFlags(b(0x48, 0x01, 0xd8), 0)).to.equal(ARITH); // add
    expect(writtenFlags(b(0x48, 0xff, 0xc0), 0)).to.equal(ARITH & ~CF); // inc %rax
    expect(writtenFlags(b(0x48, 0x89, 0xd8), 0)).to.equal(0); // mov
    expect(writtenFlags(b(0x48, 0xd3, 0xe0), 0)).to.equal(0); // shl %cl,%rax, CL=0
    expect(writtenFlags(b(0x48, 0xc1, 0xc0, 0x05), 0)).to.equal(CF | OF); // rol $5
    expect(writtenFlags(b(0xf9), 0)).to.equal(CF); // stc
    expect(readFlags(b(0x48, 0x11, 0xd8))).to.equal(CF); // adc
    expect(readFlags(b(0x70, 0x00))).to.equal(OF); // jo
    expect(readFlags(b(0x0f, 0x9f, 0xc0))).to.equal(ZF | SF | OF); // setg
    expect(readFlags(b(0x9f))).to.equal(SF | ZF | AF | PF | CF); // lahf
    expect(readFlags(b(0x48, 0x01, 0xd8))).to.equal(0); // add
  });
});

describe('differential harness, block mode (the compiler on)', function () {
  this.timeout(30000);
  let Cpu: CpuClass | undefined;
  before(function () {
    Cpu = loadCpuClass();
    if (!Cpu) this.skip();
  });

  /** Compiled code that misbehaves as `spoil` says, while `fn` runs. */
  async function withFaultyCompiler<T>(spoil: (c: CompiledCpu, threw: boolean) => void, fn: () => Promise<T>): Promise<T> {
    const undo = hookCompiledCode((f) => (c, ...rest) => {
      try {
        const next = f(c, ...rest);
        spoil(c, false);
        return next;
      } catch (x) {
        spoil(c, true);
        throw x;
      }
    });
    expect(undo, 'vmm/cpu/jit/block-jit exports compileBlock or compileRegion').to.not.equal(null);
    try {
      return await fn();
    } finally {
      undo?.();
    }
  }

  const LOOP = ['mov $0x300000, %ebx', 'mov $50, %ecx', '1: add $3, %eax', 'mov %eax, 8(%rbx)', 'xor %edx, %eax', 'dec %ecx', 'jnz 1b'].join('\n');

  it('agrees with the real CPU and the interpreter on a correct run, inside compiled blocks', async () => {
    const r = await blockDiffRun(blobSpec('block-ok', LOOP), Cpu!, { threshold: 1, warmups: 12, seed: 1n });
    expect(r.mismatch).to.equal(undefined);
    expect(r.steps).to.equal(2 + 5 * 50);
    // counted through hookCompiledCode: if this fails, the compiler hands out its functions in
    // another way, and block-compare.ts's hook must follow it
    expect(r.compiledInsns, 'instructions completed inside compiled blocks').to.be.greaterThan(200);
  });

  it('reports a register that compiled code gets wrong', async () => {
    const r = await withFaultyCompiler((c, threw) => { if (!threw) c.rl[2] ^= 0x100; },
      () => blockDiffRun(blobSpec('block-bad-reg', LOOP), Cpu!, { threshold: 1, warmups: 12, seed: 1n }));
    expect(r.mismatch).to.match(/against the interpreter: r[a-z0-9]+ interpreter=0x[0-9a-f]+ sim=0x[0-9a-f]+/);
  });

  it('reports a fault inside a compiled block that leaves a wrong state', async () => {
    const spec = blobSpec('block-bad-fault', 'mov $5, %eax\nxor %edx, %edx\nxor %ebx, %ebx\ndivq %rbx');
    const r = await withFaultyCompiler((c, threw) => { if (threw) c.rl[0] ^= 1; }, () => blockDiffRun(spec, Cpu!, { threshold: 1, warmups: 12, seed: 1n }));
    expect(r.compiledFaults).to.equal(1);
    expect(r.mismatch).to.match(/rax/);
  });
});
