/** The verify table: one row per cell, as text for people and as JSON for tools. */
import { Cell } from './matrix';
import { expectationText, judge, Observation, observationText, Verdict } from './expectations';

export interface TableRow {
  backend: string;
  mode: string;
  scenario: string;
  expected: string;
  observed: string;
  verdict: Verdict;
  /** Why the expectation is what it is (n/a reason, the failure the mode must cause). */
  why: string;
  /** What was seen: the failed check's message, or a summary of the passing run. */
  detail: string;
  seconds: number;
  /** The FAIL lines of a kvm-unit-tests run, each prefixed with the run's label (JSON only). */
  failLines?: string[];
}

export function toRow(cell: Cell, observation: Observation | undefined): TableRow {
  const e = cell.expected;
  return {
    backend: cell.backend,
    mode: cell.mode,
    scenario: cell.scenario.name,
    expected: expectationText(e),
    observed: e.kind === 'n/a' ? 'not run' : observationText(observation, e),
    verdict: judge(e, observation),
    why: e.kind === 'pass' ? e.why ?? '' : e.why,
    detail: observation?.detail ?? '',
    seconds: Math.round((observation?.seconds ?? 0) * 10) / 10,
    ...(observation?.failLines === undefined ? {} : { failLines: observation.failLines }),
  };
}

const COLUMNS: (keyof TableRow)[] = ['backend', 'mode', 'scenario', 'expected', 'observed', 'verdict'];

export function formatTable(rows: readonly TableRow[]): string {
  const cells = rows.map((row) => COLUMNS.map((c) => String(row[c])));
  const widths = COLUMNS.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i].length)));
  const line = (values: string[]) => values.map((v, i) => v.padEnd(widths[i])).join('  ').trimEnd();
  const out = [line(COLUMNS.map(String)), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)];
  return [...out, ...failedCells(rows)].join('\n') + '\n';
}

/** The lines under a table that list the cells that did not show what they must. */
export function failedCells(rows: readonly TableRow[]): string[] {
  const failed = rows.filter((r) => r.verdict === 'FAIL');
  if (failed.length === 0) return [];
  return ['', 'Cells that did not show what they must:', ...failed.map((r) =>
    `  ${r.backend} ${r.mode} ${r.scenario}: expected ${r.expected}${r.why ? ` (${r.why})` : ''}; observed ${r.observed}: ${r.detail}`)];
}

export interface TableSummary {
  ok: number;
  failed: number;
  notApplicable: number;
}

export function summarize(rows: readonly TableRow[]): TableSummary {
  return {
    ok: rows.filter((r) => r.verdict === 'ok').length,
    failed: rows.filter((r) => r.verdict === 'FAIL').length,
    notApplicable: rows.filter((r) => r.verdict === 'n/a').length,
  };
}

export function tableJson(rows: readonly TableRow[], seconds: number): string {
  return JSON.stringify({ summary: { ...summarize(rows), seconds: Math.round(seconds * 10) / 10 }, rows }, null, 2) + '\n';
}
