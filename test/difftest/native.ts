/** The native side of the differential test: builds tracer.c once and streams its records. */
import { execFileSync, spawn } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { RunSpec, REG_ARG_NAMES } from './run-spec';
import { TraceParser, TraceRecord } from './trace-format';

const SOURCE_DIR = path.join(__dirname, '..', '..', '..', 'test', 'difftest');

/** Path of the compiled tracer (cached in the temp dir by source hash). */
export function tracerBinary(): string {
  const src = path.join(SOURCE_DIR, 'tracer.c');
  const text = fs.readFileSync(src);
  const hash = crypto.createHash('sha256').update(text).digest('hex').slice(0, 16);
  const bin = path.join(os.tmpdir(), `vmm-gdbstub-tracer-${hash}`);
  if (!fs.existsSync(bin)) {
    const tmp = `${bin}.${process.pid}.tmp`;
    execFileSync('gcc', ['-O2', '-Wall', '-o', tmp, src], { stdio: ['ignore', 'pipe', 'pipe'] });
    fs.renameSync(tmp, bin);
  }
  return bin;
}

export interface NativeRun {
  records: AsyncIterable<TraceRecord>;
  stop(): void;
  stderr(): string;
}

/** Starts the tracer on `spec`; records arrive as the native process single-steps. */
export function runNative(spec: RunSpec, workDir: string): NativeRun {
  const args: string[] = [];
  spec.regions.forEach((r, i) => {
    let arg = `${r.address.toString(16)}:${r.size.toString(16)}`;
    if (r.data && r.data.length) {
      const file = path.join(workDir, `region${i}.bin`);
      fs.writeFileSync(file, r.data);
      arg += `:${file}`;
    }
    args.push('--map', arg);
  });
  for (const name of REG_ARG_NAMES) {
    const v = spec.regs[name];
    if (v !== undefined) args.push('--reg', `${name}=${BigInt.asUintN(64, BigInt(v)).toString(16)}`);
  }
  if (spec.maxSteps !== undefined) args.push('--max', String(spec.maxSteps));
  for (const d of spec.dumps ?? []) args.push('--dump', `${d.address.toString(16)}:${d.size.toString(16)}`);
  const child = spawn(tracerBinary(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const parser = new TraceParser();
  async function* records(): AsyncGenerator<TraceRecord> {
    for await (const chunk of child.stdout) {
      for (const r of parser.push(chunk as Buffer)) yield r;
    }
  }
  return {
    records: records(),
    stop: () => {
      if (child.exitCode === null) child.kill('SIGKILL');
    },
    stderr: () => err,
  };
}
