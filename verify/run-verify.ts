/**
 * `vmm-gdbstub verify`: the matrix of backends x --dr-switch modes x scenarios, each cell a
 * stock gdb session (and the guest's own checks) against `serve`. The exit status is 0 only
 * if every `full` cell passes and every pre-fix cell shows the failure it must show.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Observation } from './expectations';
import { findGdb, MissingToolError } from './find-gdb';
import { CellRunner, gdbCellRunner, killRunningCells } from './gdb-cell-runner';
import { buildMatrix, Cell, KvmUnitTestsLocator, MatrixSelectionError } from './matrix';
import { runPool } from './pool';
import { formatCompactTable, shortVerdict } from './compact-table';
import { formatTable, summarize, tableJson, TableRow, toRow } from './table';
import { mergeTraceFiles } from './trace-writer';
import { VerifyOptions } from './verify-options';

export { VERIFY_SCENARIOS } from './scenarios';
export type { VerifyOptions } from './verify-options';

/** Exit statuses besides 0 (all cells as expected) and 1 (some cell not). */
export const VERIFY_EXIT = {
  FAILED: 1,
  USAGE: 128,
  /** A part that the run needs is missing from this build (as the CLI's INTERNAL). */
  NOT_IN_BUILD: 134,
  /** gdb (or another required tool) is not installed. */
  MISSING_TOOL: 137,
} as const;

export interface VerifyDeps {
  /** Runs one cell; the default drives the real gdb and serve. */
  runCell?: CellRunner;
  /** Where the table goes (default process.stdout). */
  stdout?: (text: string) => void;
  /** Where progress lines and diagnoses go (default process.stderr). */
  stderr?: (text: string) => void;
  findGdb?: () => string;
  repoRoot?: string;
  /** Progress as one line redrawn in place (default: stderr is a terminal). */
  stderrIsTty?: boolean;
  /** Finds the kvm-unit-tests binaries (default: $KVM_UNIT_TESTS_DIR or shared/kvm-unit-tests). */
  locateKvmUnitTests?: KvmUnitTestsLocator;
}

const REPO_ROOT = path.resolve(__dirname, '..', '..');

/** Whether `serve` and `run` accept --trace-vm FILE (the per-VM trace that --trace merges). */
export function serveSupportsTraceVm(repoRoot: string): boolean {
  const bin = path.join(repoRoot, 'bin', 'vmm-gdbstub.js');
  return ['serve', 'run'].every((command) => {
    const help = spawnSync(process.execPath, [bin, command, '--help'], { encoding: 'utf8' });
    return help.status === 0 && help.stdout.includes('--trace-vm');
  });
}

/**
 * Progress on stderr: on a terminal one line redrawn in place (a bar, the count and the last
 * cell with its short verdict); elsewhere (a log, a pipe) one line per cell.
 */
function progressLine(done: number, total: number, row: TableRow, tty: boolean): string {
  const width = String(total).length;
  const count = `${String(done).padStart(width)}/${total}`;
  if (!tty) {
    return `verify [${count}] ${row.backend} ${row.mode} ${row.scenario}: ` +
      `expected ${row.expected}, observed ${row.observed} -> ${row.verdict} (${row.seconds}s)\n`;
  }
  const bar = '#'.repeat(Math.round((20 * done) / total)).padEnd(20, '.');
  const text = `verify [${bar}] ${count} ${row.backend} ${row.mode} ${row.scenario}: ${shortVerdict(row)}`;
  return `\r${text.slice(0, 79).padEnd(79)}${done === total ? '\n' : ''}`;
}

/** A cell's cost in gdb-session units: a debug.flat run (25 cases, UART output) costs about two. */
function cellCost(cell: Cell): number {
  return cell.scenario.runs(cell.backend).reduce((sum, run) => sum + (run.kind === 'kut' ? 2 : 1), 0);
}

export async function runVerify(opts: VerifyOptions, deps: VerifyDeps = {}): Promise<number> {
  const out = deps.stdout ?? ((t: string) => { process.stdout.write(t); });
  const err = deps.stderr ?? ((t: string) => { process.stderr.write(t); });
  const started = Date.now();

  let cells: Cell[];
  try {
    cells = buildMatrix(opts, deps.locateKvmUnitTests);
  } catch (e) {
    if (e instanceof MatrixSelectionError) {
      err(`vmm-gdbstub verify: ${e.message}\n`);
      return VERIFY_EXIT.USAGE;
    }
    throw e;
  }

  const repoRoot = deps.repoRoot ?? REPO_ROOT;
  if (opts.trace && deps.runCell === undefined && !serveSupportsTraceVm(repoRoot)) {
    err('vmm-gdbstub verify: --trace needs `serve --trace-vm FILE` and `run --trace-vm FILE`, which this build lacks\n');
    return VERIFY_EXIT.NOT_IN_BUILD;
  }
  const traceDir = opts.trace ? fs.mkdtempSync(path.join(os.tmpdir(), 'vmm-verify-trace-')) : undefined;
  const traceFiles: { file: string; label: string; pid: number }[] = [];
  let runCell = deps.runCell;
  if (runCell === undefined) {
    let gdb: string;
    try {
      gdb = (deps.findGdb ?? findGdb)();
    } catch (e) {
      if (e instanceof MissingToolError) {
        err(`vmm-gdbstub verify: ${e.message}\n`);
        return VERIFY_EXIT.MISSING_TOOL;
      }
      throw e;
    }
    runCell = gdbCellRunner({
      gdb,
      repoRoot,
      node: process.execPath,
      resumeTimeoutSeconds: 20,
      processTimeoutMs: 90_000,
      ...(traceDir === undefined ? {} : {
        traceFile: (cell: Cell, run: number) => {
          const file = path.join(traceDir, `cell-${cell.index}-run-${run}.json`);
          traceFiles.push({ file, label: `${cell.backend} ${cell.mode} ${cell.scenario.name} #${run}`, pid: traceFiles.length + 1 });
          return file;
        },
      }),
    });
  }

  // A scenario whose kvm-unit-tests binary is missing is left out (n/a), with one line why.
  for (const name of new Set(cells.filter((c) => c.missing !== undefined).map((c) => c.scenario.name))) {
    const cell = cells.find((c) => c.scenario.name === name && c.missing !== undefined) as Cell;
    err(`vmm-gdbstub verify: ${name} left out (n/a): ${cell.missing}; ` +
      `set KVM_UNIT_TESTS_DIR to the folder with kvm-unit-tests' ${cell.scenario.kvmUnitTest}\n`);
  }
  const runnable = cells.filter((c) => c.expected.kind !== 'n/a');
  // A cell spends much of its time waiting on gdb <-> serve round trips: two per CPU keep the
  // CPUs busy (measured on 2 cores: 15 s with 2 jobs, 11 s with 4-6).
  const jobs = opts.jobs ?? Math.min(8, 2 * Math.max(1, os.cpus().length));
  err(`vmm-gdbstub verify: ${runnable.length} cells to run (${cells.length - runnable.length} n/a), ${jobs} at a time\n`);
  const observations = new Map<number, Observation>();
  let done = 0;
  // The cells run in process groups of their own: if verify is interrupted, end them too.
  const onSignal = (signal: NodeJS.Signals) => {
    killRunningCells();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    process.kill(process.pid, signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', killRunningCells);
  try {
    // The longest cells first (a stable sort: table order otherwise), so that they do not start
    // last and leave the other lanes idle at the end.
    const byLength = [...runnable].sort((a, b) => cellCost(b) - cellCost(a));
    await runPool(byLength, jobs, async (cell) => {
      let observation: Observation;
      try {
        observation = await (runCell as CellRunner)(cell);
      } catch (e) {
        observation = { pass: false, failure: 'runner-error', check: 'verify', detail: String(e), seconds: 0 };
      }
      observations.set(cell.index, observation);
      done++;
      err(progressLine(done, runnable.length, toRow(cell, observation), deps.stderrIsTty ?? (deps.stderr === undefined && process.stderr.isTTY === true)));
    });
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    process.removeListener('exit', killRunningCells);
  }

  const rows = cells.map((cell) => toRow(cell, observations.get(cell.index)));
  const seconds = (Date.now() - started) / 1000;
  out(opts.wide ? formatTable(rows) : formatCompactTable(rows));
  const summary = summarize(rows);
  out(`\n${summary.ok} as expected, ${summary.failed} not, ${summary.notApplicable} n/a; ${seconds.toFixed(1)}s\n`);
  if (opts.json) fs.writeFileSync(opts.json, tableJson(rows, seconds));
  if (opts.trace && traceDir) {
    const events = mergeTraceFiles(traceFiles.filter((t) => fs.existsSync(t.file)), opts.trace);
    err(`vmm-gdbstub verify: trace with ${events} events written to ${opts.trace}\n`);
    fs.rmSync(traceDir, { recursive: true, force: true });
  }
  return summary.failed === 0 ? 0 : VERIFY_EXIT.FAILED;
}
