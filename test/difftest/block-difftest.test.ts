/**
 * Issue 10: the difftest with the block compiler on. The simulator runs compiled blocks
 * through Cpu.run with random budgets and is compared with the single-stepped native process
 * (and with the interpreter) at every stop: registers, defined flags, XMM, MXCSR, and memory.
 * This is the bounded run; `npm run difftest` runs the whole corpus this way too.
 */
import { expect } from 'chai';
import { blockDiffRun, BlockDiffResult } from './block-compare';
import { edgeCaseSpecs, faultSpecs, randomLoopSpecs, randomSpecs, workloadSpec } from './corpus';
import { KNOWN_FAILING } from './known-failing';
import { RunSpec } from './run-spec';
import { CpuClass, loadCpuClass } from './sim';
import { fpmathSpec, sseEdgeSpecs, sseFaultSpecs } from './sse-corpus';

const WORKLOAD_STEPS = 25000;
const FPMATH_STEPS = 20000;
/** Warm-up runs at most (until a run decodes nothing: every block then comes compiled from the code cache). */
const WARMUPS = 12;
const COUNTED = 'instructions completed inside compiled code (counted through block-compare.ts hookCompiledCode)';

describe('differential test with the block compiler on (compiled blocks against the real CPU)', function () {
  this.timeout(120000);
  let Cpu: CpuClass | undefined;

  before(function () {
    Cpu = loadCpuClass();
    if (!Cpu) this.skip();
  });

  async function check(ctx: Mocha.Context, spec: RunSpec, expectEnd: string[], warmups: number): Promise<BlockDiffResult> {
    const r = await blockDiffRun(spec, Cpu!, { threshold: 1, warmups, seed: 0xb10c0001n });
    const known = KNOWN_FAILING[spec.name];
    if (known && r.mismatch) {
      ctx.test!.title += ` (known failing: ${known})`;
      ctx.skip();
    }
    expect(r.mismatch, r.mismatch).to.equal(undefined);
    expect(expectEnd).to.include(r.end);
    expect(r.steps).to.be.greaterThan(0);
    return r;
  }

  it(`workload-O2: the first ${WORKLOAD_STEPS} instructions, mostly inside compiled blocks`, async function () {
    const r = await check(this, workloadSpec('workload-O2', WORKLOAD_STEPS), ['max'], 0);
    expect(r.compiledInsns, COUNTED).to.be.greaterThan(WORKLOAD_STEPS / 2);
    expect(r.stops).to.be.greaterThan(50);
  });

  it(`fpmath: the first ${FPMATH_STEPS} instructions, XMM and MXCSR compared too`, async function () {
    const r = await check(this, fpmathSpec(FPMATH_STEPS), ['max'], 0);
    expect(r.compiledInsns, COUNTED).to.be.greaterThan(FPMATH_STEPS / 4);
  });

  for (const spec of [...edgeCaseSpecs(1), ...sseEdgeSpecs(1), ...randomSpecs(2, 2500, 0x5eed0001n), ...randomLoopSpecs(2, 60, 30, 0x100b0001n)]) {
    it(`${spec.name.startsWith('random-loop') ? 'loops' : 'straight-line code'} run compiled (after warm-up runs): ${spec.name}`, async function () {
      const r = await check(this, spec, ['int3'], WARMUPS);
      if (spec.name === 'port-io') expect(r.console).to.equal('OK');
      // SSE instructions are call-outs that mostly end their block (MXCSR writes): little runs compiled there
      if (!spec.name.startsWith('sse-') && spec.name !== 'port-io') expect(r.compiledInsns, COUNTED).to.be.greaterThan(r.steps / 2);
    });
  }

  it('a fault inside a compiled block leaves exactly the native state at the faulting instruction', async function () {
    let inBlock = 0;
    for (const spec of [...faultSpecs(), ...sseFaultSpecs()]) {
      const r = await check(this, spec, ['fault'], WARMUPS);
      inBlock += r.compiledFaults;
    }
    // all but the 16-bit divide (whose block has nothing the compiler generates) fault inside one
    expect(inBlock, 'faults raised inside compiled blocks (counted as the instructions)').to.be.greaterThan(8);
  });
});
