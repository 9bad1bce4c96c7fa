/**
 * Runs one matrix cell for real: stock gdb with the scenario's script, launching
 * `vmm-gdbstub serve --gdb stdio` itself (vmmcheck attach, VMMCHECK_TARGET=launch), and
 * `vmm-gdbstub run` for the guests that check themselves. The first failed check (or guest
 * FAIL line) is the cell's observation.
 */
import { spawn } from 'child_process';
import * as path from 'path';
import { Observation } from './expectations';
import { Cell } from './matrix';
import * as fs from 'fs';
import * as os from 'os';
import { kutCaseName, parseKutReport } from './kut-results';
import { GdbRun, GuestRun, KutRun, ScenarioRun, StatsRun } from './scenarios';
import { parseResultLines } from './vmmcheck-results';

export type CellRunner = (cell: Cell) => Promise<Observation>;

export interface CellRunnerContext {
  gdb: string;
  repoRoot: string;
  /** The node binary that runs bin/vmm-gdbstub.js. */
  node: string;
  /** Per-resume timeout inside gdb (vmmcheck's watchdog), seconds. */
  resumeTimeoutSeconds: number;
  /** Hard limit for one process (gdb with its serve, or run), milliseconds. */
  processTimeoutMs: number;
  /** When set, each run writes its VM trace to traceFile(cell, run index). */
  traceFile?: (cell: Cell, run: number) => string;
}

interface Finished {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Process groups of the cells still running, so that an interrupted verify can end them. */
const liveGroups = new Set<number>();

function killGroup(pid: number): void {
  try { process.kill(-pid, 'SIGKILL'); } catch { /* already gone */ }
}

/** Ends every cell process still running (verify interrupted or failing). */
export function killRunningCells(): void {
  for (const pid of liveGroups) killGroup(pid);
  liveGroups.clear();
}

/** Spawns in its own process group so that a timeout also ends gdb's serve child. */
function runProcess(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv,
  timeoutMs: number): Promise<Finished> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    if (child.pid !== undefined) liveGroups.add(child.pid);
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid as number);
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ status: null, signal: null, stdout, stderr: stderr + String(err), timedOut });
    });
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      // gdb's `target remote |` child normally ends with gdb; make sure nothing lingers.
      killGroup(child.pid as number);
      liveGroups.delete(child.pid as number);
      resolve({ status, signal, stdout, stderr, timedOut });
    });
  });
}

/** The last few meaningful lines of a stream, for a one-line diagnosis. */
function tail(text: string, lines = 2): string {
  return text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('warning: ')).slice(-lines).join(' | ');
}

/** A run's own VM flags; kvm has no host scenarios, so --host-scenario is dropped there. */
function forBackend(cell: Cell, args: readonly string[]): string[] {
  if (cell.backend !== 'kvm') return [...args];
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--host-scenario') i++;
    else out.push(args[i]);
  }
  return out;
}

function vmArgs(cell: Cell, ctx: CellRunnerContext, run: number): string[] {
  // kvm takes no --dr-switch (the host kernel switches the debug registers)
  const args = cell.backend === 'kvm' ? ['--backend', 'kvm'] : ['--backend', cell.backend, '--dr-switch', cell.mode];
  if (ctx.traceFile) args.push('--trace-vm', ctx.traceFile(cell, run));
  return args;
}

export function observeGdbRun(finished: Finished, seconds: number): Observation {
  const results = parseResultLines(finished.stdout);
  const failed = results.find((r) => !r.pass && r.check !== 'summary');
  if (failed) {
    return { pass: false, failure: failed.kind ?? 'failed', check: failed.name, detail: failed.message ?? '', seconds };
  }
  const summary = results.find((r) => r.check === 'summary');
  if (summary?.pass && finished.status === 0) {
    return { pass: true, detail: `${summary.total} checks passed`, seconds };
  }
  if (finished.timedOut) {
    return { pass: false, failure: 'timeout', check: 'gdb', detail: `gdb killed after ${Math.round(seconds)}s: ${tail(finished.stderr)}`, seconds };
  }
  // The script stopped before its end: gdb could not attach, serve died, a command failed.
  return {
    pass: false, failure: 'script-error', check: 'gdb',
    detail: `gdb exited with ${finished.status ?? finished.signal} before the script's end: ${tail(finished.stderr, 3) || tail(finished.stdout, 3)}`,
    seconds,
  };
}

export function observeGuestRun(finished: Finished, seconds: number): Observation {
  const lines = finished.stdout.split('\n');
  const passes = lines.filter((l) => /^PASS\b/.test(l));
  const fails = lines.filter((l) => /^FAIL\b/.test(l));
  if (finished.timedOut) {
    return { pass: false, failure: 'timeout', check: 'run', detail: `run killed after ${Math.round(seconds)}s`, seconds };
  }
  if (finished.status === 0 && fails.length === 0 && passes.length > 0) {
    return { pass: true, detail: `${passes.length} guest checks passed`, seconds };
  }
  if (finished.status !== null && finished.status >= 128) {
    return { pass: false, failure: 'vm-error', check: 'run', detail: tail(finished.stderr, 1), seconds };
  }
  const first = fails[0];
  const name = first ? first.replace(/^FAIL\s+/, '').split(/[:\s]/)[0] : 'exit-status';
  return {
    pass: false, failure: 'guest-checks-failed', check: name,
    detail: `${fails.length} of ${fails.length + passes.length} guest checks failed, exit status ${finished.status}` +
      (first ? `: ${first}` : ''),
    seconds,
  };
}

/**
 * A kvm-unit-tests run: it passes when the test reported its SUMMARY with no FAIL and `run`
 * exited 0; otherwise every FAIL line is kept (the first names the check).
 */
export function observeKutRun(run: KutRun, finished: Finished, seconds: number): Observation {
  const at = `${run.file} (${run.label})`;
  if (finished.timedOut) {
    return { pass: false, failure: 'timeout', check: 'run', detail: `${at}: run killed after ${Math.round(seconds)}s`, seconds };
  }
  if (finished.status !== null && finished.status >= 128) {
    return { pass: false, failure: 'vm-error', check: 'run', detail: `${at}: ${tail(finished.stderr, 1)}`, seconds };
  }
  const report = parseKutReport(finished.stdout);
  const cases = report.passed.length + report.failed.length + report.skipped.length;
  const skipped = report.skipped.length > 0 ? `, ${report.skipped.length} skipped` : '';
  if (finished.status === 0 && report.failed.length === 0 && report.summary !== undefined) {
    return { pass: true, detail: `${at}: ${report.passed.length} cases passed${skipped}`, seconds };
  }
  if (report.failed.length === 0) {
    return {
      pass: false, failure: 'guest-checks-failed', check: 'exit-status', seconds,
      detail: `${at}: exit status ${finished.status}, ${report.summary === undefined ? 'no SUMMARY' : 'no FAIL line'} ` +
        `after ${cases} cases`,
    };
  }
  const names = report.failed.map(kutCaseName);
  return {
    pass: false, failure: 'guest-checks-failed', check: names[0], failedChecks: names,
    failLines: report.failed.map((l) => `${run.label}: FAIL: ${l}`),
    detail: `${at}: ${report.failed.length} of ${cases} cases FAIL: ${names.join('; ')}`,
    seconds,
  };
}

/** The fields of `run --json` that a stats run reads. */
interface RunJson {
  exitStatus?: number;
  hostWatchHits?: number;
  leaksDetected?: number;
  leaks?: { transition: number; vcpu: number; when: string; register: string; expected: string; actual: string; side: string }[];
}

export function observeStatsRun(run: StatsRun, finished: Finished, json: string | undefined, seconds: number): Observation {
  if (finished.timedOut) {
    return { pass: false, failure: 'timeout', check: 'run-stats', detail: `run killed after ${Math.round(seconds)}s`, seconds };
  }
  let report: RunJson;
  try {
    report = JSON.parse(json ?? '') as RunJson;
  } catch {
    return { pass: false, failure: finished.status !== null && finished.status >= 128 ? 'vm-error' : 'script-error',
      check: 'run-stats', detail: `no --json report (exit status ${finished.status}): ${tail(finished.stderr, 1)}`, seconds };
  }
  const leaks = report.leaksDetected ?? report.leaks?.length ?? 0;
  if (run.noLeaks && leaks > 0) {
    const l = report.leaks?.[0];
    return {
      pass: false, failure: 'leak', check: 'run-stats', seconds,
      detail: `${leaks} debug-state leak(s)` + (l ? `, first: transition ${l.transition} vCPU ${l.vcpu} at ${l.when}: ` +
        `${l.register} expected ${l.expected} actual ${l.actual} (${l.side} value leaked)` : ''),
    };
  }
  const hits = report.hostWatchHits ?? 0;
  if (run.hostWatchFires && hits === 0) {
    return { pass: false, failure: 'host-watch-disturbed', check: 'run-stats', detail: 'the host watchpoints never fired', seconds };
  }
  if (report.exitStatus !== 0) {
    return { pass: false, failure: 'guest-checks-failed', check: 'run-stats', detail: `guest exit status ${report.exitStatus}`, seconds };
  }
  return { pass: true, detail: `no leaks, ${hits} host watchpoint hits`, seconds };
}

export function gdbCellRunner(ctx: CellRunnerContext): CellRunner {
  async function runOne(cell: Cell, run: ScenarioRun, index: number): Promise<Observation> {
    const started = Date.now();
    if (run.kind === 'stats') {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmm-verify-run-'));
      const jsonFile = path.join(dir, 'report.json');
      const finished = await runProcess(ctx.node,
        [path.join(ctx.repoRoot, 'bin', 'vmm-gdbstub.js'), 'run', path.join('guests', run.guest),
          ...vmArgs(cell, ctx, index), ...forBackend(cell, run.args), '--json', jsonFile],
        ctx.repoRoot, process.env, ctx.processTimeoutMs);
      const json = fs.existsSync(jsonFile) ? fs.readFileSync(jsonFile, 'utf8') : undefined;
      fs.rmSync(dir, { recursive: true, force: true });
      return observeStatsRun(run, finished, json, (Date.now() - started) / 1000);
    }
    if (run.kind === 'kut') {
      if (cell.kvmUnitTestsDir === undefined) {
        return { pass: false, failure: 'script-error', check: 'run', detail: `no folder with ${run.file}`, seconds: 0 };
      }
      const finished = await runProcess(ctx.node,
        [path.join(ctx.repoRoot, 'bin', 'vmm-gdbstub.js'), 'run', path.join(cell.kvmUnitTestsDir, run.file),
          ...vmArgs(cell, ctx, index), ...forBackend(cell, run.args)],
        ctx.repoRoot, process.env, ctx.processTimeoutMs);
      return observeKutRun(run, finished, (Date.now() - started) / 1000);
    }
    if (run.kind === 'guest') {
      const guest = run as GuestRun;
      const finished = await runProcess(ctx.node,
        [path.join(ctx.repoRoot, 'bin', 'vmm-gdbstub.js'), 'run', path.join('guests', guest.guest),
          ...vmArgs(cell, ctx, index), ...forBackend(cell, guest.args)],
        ctx.repoRoot, process.env, ctx.processTimeoutMs);
      return observeGuestRun(finished, (Date.now() - started) / 1000);
    }
    const script = run as GdbRun;
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      VMMCHECK_TARGET: 'launch',
      VMMCHECK_NODE: ctx.node,
      VMMCHECK_SERVE_ARGS: vmArgs(cell, ctx, index).join(' '),
      VMMCHECK_TIMEOUT: String(ctx.resumeTimeoutSeconds),
      VMMCHECK_ON_FAIL: 'exit',
      // Unique per run: cells run in parallel, and vmmctl finds the VM by this name.
      VMMCHECK_VM_NAME: `verify-${process.pid}-${cell.index}-${index}`,
    };
    const finished = await runProcess(ctx.gdb,
      ['-nx', '-batch', '-x', path.join('gdb-scripts', script.script), path.join('guests', script.guest)],
      ctx.repoRoot, env, ctx.processTimeoutMs);
    return observeGdbRun(finished, (Date.now() - started) / 1000);
  }

  return async (cell) => {
    const runs = cell.scenario.runs(cell.backend);
    let seconds = 0;
    const details: string[] = [];
    for (let i = 0; i < runs.length; i++) {
      const observation = await runOne(cell, runs[i], i);
      seconds += observation.seconds;
      if (!observation.pass) return { ...observation, seconds };
      details.push(observation.detail);
    }
    return { pass: true, detail: details.join('; '), seconds };
  };
}
