/**
 * Runs one RunSpec natively (tracer.c under ptrace) and in the simulator, in lockstep, and
 * compares every GPR, RIP and the defined flags after every instruction.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { runNative } from './native';
import { RunSpec } from './run-spec';
import { CpuClass, SimRunner } from './sim';
import { hex64, Kind, REG_NAMES, TraceRecord } from './trace-format';
import { COMPARED, undefinedFlags } from './undefined-flags';

export interface DiffResult {
  name: string;
  /** Records compared (instructions retired, IN/OUT included). */
  steps: number;
  /** First difference, with the instruction and both register files; undefined if none. */
  mismatch?: string;
  /** Bytes the code wrote to port 0xE9 (identical on both sides when there is no mismatch). */
  console: string;
  /** How the native run ended (Kind name). */
  end: string;
}

const KIND_NAMES = ['step', 'out', 'in', 'int3', 'fault', 'exit', 'max', 'dump'];
/** MXCSR bits compared: all (rounding control, FZ, DAZ, masks and the six flags). */
const MXCSR_COMPARED = 0xffff;

function xmmHex(x: Uint32Array, r: number): string {
  return hex64(x[4 * r + 2], x[4 * r + 3]) + hex64(x[4 * r], x[4 * r + 1]).slice(2);
}

function describe(r: TraceRecord): string {
  const parts: string[] = [];
  for (let i = 0; i < 18; i++) parts.push(`${REG_NAMES[i]}=${hex64(r.regs[2 * i], r.regs[2 * i + 1])}`);
  parts.push(`mxcsr=${r.mxcsr.toString(16)}`);
  for (let x = 0; x < 16; x++) if (r.xmm[4 * x] | r.xmm[4 * x + 1] | r.xmm[4 * x + 2] | r.xmm[4 * x + 3]) parts.push(`xmm${x}=${xmmHex(r.xmm, x)}`);
  return `${KIND_NAMES[r.kind] ?? r.kind} aux=${hex64(r.auxLo, r.auxHi)} ${parts.join(' ')}`;
}

/** Differences between a native and a simulator record, or '' if they agree. */
export function diffRecords(nat: TraceRecord, sim: TraceRecord, flagMask: number): string {
  const out: string[] = [];
  if (nat.kind !== sim.kind) out.push(`kind native=${KIND_NAMES[nat.kind]} sim=${KIND_NAMES[sim.kind]}`);
  if ((nat.kind === Kind.Out || nat.kind === Kind.Exit || nat.kind === Kind.Fault) && nat.kind === sim.kind) {
    if (nat.auxLo !== sim.auxLo || nat.auxHi !== sim.auxHi) out.push(`aux native=${hex64(nat.auxLo, nat.auxHi)} sim=${hex64(sim.auxLo, sim.auxHi)}`);
  }
  for (let i = 0; i < 17; i++) {
    if (nat.regs[2 * i] !== sim.regs[2 * i] || nat.regs[2 * i + 1] !== sim.regs[2 * i + 1]) {
      out.push(`${REG_NAMES[i]} native=${hex64(nat.regs[2 * i], nat.regs[2 * i + 1])} sim=${hex64(sim.regs[2 * i], sim.regs[2 * i + 1])}`);
    }
  }
  const nf = nat.regs[34] & flagMask;
  const sf = sim.regs[34] & flagMask;
  if (nf !== sf) out.push(`rflags&${flagMask.toString(16)} native=${nf.toString(16)} sim=${sf.toString(16)}`);
  for (let r = 0; r < 16; r++) {
    const k = 4 * r;
    if (nat.xmm[k] !== sim.xmm[k] || nat.xmm[k + 1] !== sim.xmm[k + 1] || nat.xmm[k + 2] !== sim.xmm[k + 2] || nat.xmm[k + 3] !== sim.xmm[k + 3]) {
      out.push(`xmm${r} native=${xmmHex(nat.xmm, r)} sim=${xmmHex(sim.xmm, r)}`);
    }
  }
  if ((nat.mxcsr & MXCSR_COMPARED) !== (sim.mxcsr & MXCSR_COMPARED)) {
    out.push(`mxcsr&${MXCSR_COMPARED.toString(16)} native=${nat.mxcsr.toString(16)} sim=${sim.mxcsr.toString(16)}`);
  }
  return out.join(', ');
}

/** Runs `spec` on both sides; stops at the first mismatch. */
export async function diffRun(spec: RunSpec, Cpu: CpuClass): Promise<DiffResult> {
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'difftest-'));
  const native = runNative(spec, workDir);
  const sim = new SimRunner(spec, Cpu);
  const result: DiffResult = { name: spec.name, steps: 0, console: '', end: 'none' };
  let prev: TraceRecord | undefined;
  let dumpIndex = 0;
  try {
    for await (const nat of native.records) {
      if (nat.kind === Kind.Dump) {
        const addr = spec.dumps?.[dumpIndex++]?.address ?? -1;
        const mine = sim.mem.bytes.subarray(addr, addr + nat.auxLo);
        const bad = nat.data ? nat.data.findIndex((b, i) => b !== mine[i]) : 0;
        if (bad >= 0 && !result.mismatch) {
          result.mismatch = `memory at 0x${(addr + bad).toString(16)}: native=0x${nat.data?.[bad]?.toString(16)} sim=0x${mine[bad]?.toString(16)}`;
        }
        continue;
      }
      if (nat.kind === Kind.Max || nat.kind === Kind.Int3 && sim.codeAtRip()[0] === 0xcc) {
        result.end = KIND_NAMES[nat.kind];
        if (nat.kind === Kind.Int3) {
          const d = diffRecords(nat, sim.next(), COMPARED);
          if (d) result.mismatch = `at the final int3: ${d}`;
        }
        continue; // dumps may follow
      }
      if (result.mismatch) break;
      const code = sim.codeAtRip().slice();
      const rip = sim.cpu.getReg('rip');
      const rcx = sim.cpu.getGpr(1);
      const s = sim.next();
      const undef = undefinedFlags(code, rcx.lo);
      const d = diffRecords(nat, s, COMPARED & ~undef);
      if (undef) {
        // Undefined flags are not compared; take the native values so that later
        // instructions that only pass them along (or read them) are compared fairly.
        const fl = sim.cpu.getReg('rflags');
        sim.cpu.setReg('rflags', { lo: ((fl.lo & ~undef) | (nat.regs[34] & undef)) >>> 0, hi: fl.hi });
      }
      if (d || sim.problem) {
        result.mismatch =
          `${spec.name}: after instruction #${result.steps + 1} at ${hex64(rip.lo, rip.hi)} ` +
          `[${Buffer.from(code).toString('hex')}]: ${d}${sim.problem ? ' (' + sim.problem + ')' : ''}\n` +
          `  before: ${prev ? describe(prev) : '(initial state)'}\n  native: ${describe(nat)}\n  sim:    ${describe(s)}`;
        result.end = KIND_NAMES[nat.kind];
        break;
      }
      if (nat.kind === Kind.Out && (nat.auxLo & 0xffff) === 0xe9) result.console += String.fromCharCode(nat.auxHi & 0xff);
      if (nat.kind === Kind.Fault || nat.kind === Kind.Exit) {
        result.end = KIND_NAMES[nat.kind];
        continue;
      }
      result.steps++;
      prev = nat;
    }
  } finally {
    native.stop();
    fs.rmSync(workDir, { recursive: true, force: true });
  }
  if (result.end === 'none' && !result.mismatch) result.mismatch = `${spec.name}: native tracer ended early: ${native.stderr().trim()}`;
  return result;
}
