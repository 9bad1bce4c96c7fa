/**
 * The real CPU is the oracle (issue 2 section 7): the same code runs natively under ptrace
 * single-step and in the simulator; every GPR, RIP, XMM register, MXCSR and the defined
 * flags must agree after every instruction. This is the bounded run; `npm run difftest` runs everything.
 */
import { expect } from 'chai';
import { DiffResult, diffRun } from './compare';
import { edgeCaseSpecs, faultSpecs, randomLoopSpecs, randomSpecs, workloadSpec } from './corpus';
import { KNOWN_FAILING } from './known-failing';
import { RunSpec } from './run-spec';
import { fpmathSpec, sseEdgeSpecs, sseFaultSpecs } from './sse-corpus';
import { CpuClass, loadCpuClass } from './sim';

const WORKLOAD_STEPS = 25000;
const FPMATH_STEPS = 30000;

describe('differential test against the real CPU (ptrace single-step)', function () {
  this.timeout(120000);
  let Cpu: CpuClass | undefined;

  before(function () {
    Cpu = loadCpuClass();
    if (!Cpu) this.skip(); // vmm/cpu/cpu.ts not on this branch yet
  });

  async function check(ctx: Mocha.Context, spec: RunSpec, expectEnd: string[]): Promise<DiffResult> {
    const r = await diffRun(spec, Cpu!);
    const known = KNOWN_FAILING[spec.name];
    if (known && r.mismatch) {
      ctx.test!.title += ` (known failing: ${known})`;
      ctx.skip();
    }
    if (known) console.warn(`difftest: ${spec.name} passes now; remove it from known-failing.ts (${known})`);
    expect(r.mismatch, r.mismatch).to.equal(undefined);
    expect(expectEnd).to.include(r.end);
    expect(r.steps).to.be.greaterThan(0);
    return r;
  }

  for (const name of ['workload-O2', 'workload-O0']) {
    it(`${name}: the first ${WORKLOAD_STEPS} instructions`, async function () {
      await check(this, workloadSpec(name, WORKLOAD_STEPS), ['max']);
    });
  }

  it(`fpmath (default gcc flags: SSE2, doubles): the first ${FPMATH_STEPS} instructions, XMM and MXCSR compared too`, async function () {
    await check(this, fpmathSpec(FPMATH_STEPS), ['max']);
  });

  for (const spec of sseEdgeSpecs(1)) {
    it(`SSE/SSE2 edge cases: ${spec.name}`, async function () {
      await check(this, spec, ['int3']);
    });
  }

  for (const spec of edgeCaseSpecs(1)) {
    it(`edge cases: ${spec.name}`, async function () {
      const r = await check(this, spec, ['int3']);
      if (spec.name === 'port-io') expect(r.console).to.equal('OK');
    });
  }

  for (const spec of [...randomSpecs(2, 2500, 0x5eed0001n), ...randomLoopSpecs(1, 60, 30, 0x100b0001n)]) {
    it(`random instruction sequence: ${spec.name}`, async function () {
      await check(this, spec, ['int3']);
    });
  }

  for (const spec of [...faultSpecs(), ...sseFaultSpecs()]) {
    it(`faulting instruction: ${spec.name}`, async function () {
      await check(this, spec, ['fault']);
    });
  }
});
