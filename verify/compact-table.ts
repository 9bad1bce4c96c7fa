/**
 * The default verify table, for a person on an 80-column terminal: per backend, scenarios
 * down and --dr-switch modes across, one short verdict a cell; a mode column with nothing
 * to run on that backend is left out. `--wide` prints the one-row-per-cell table instead.
 */
import { failedCells, TableRow } from './table';

/** Column headings: the modes, shortened (the legend under the table spells them out). */
const SHORT_MODE: Record<string, string> = {
  'full': 'full',
  'none': 'none',
  'no-guest-dr0-3': 'dr0-3',
  'no-guest-dr6': 'dr6',
  'no-host-dr7-debugctl': 'dr7dbg',
  'no-tf-guard': 'tf',
  'no-svm-dirty': 'svmdirty',
};

/** pass: the fix works; caught: the pre-fix mode shows its bug; FAIL: not as expected; -: n/a. */
export function shortVerdict(row: TableRow): string {
  if (row.verdict === 'n/a') return '-';
  if (row.verdict === 'FAIL') return 'FAIL';
  return row.expected === 'pass' ? 'pass' : 'caught';
}

function unique<T>(values: T[]): T[] {
  return [...new Set(values)];
}

export function formatCompactTable(rows: readonly TableRow[]): string {
  const out: string[] = [];
  const scenarioWidth = Math.max(8, ...rows.map((r) => r.scenario.length));
  for (const backend of unique(rows.map((r) => r.backend))) {
    const mine = rows.filter((r) => r.backend === backend);
    const modes = unique(mine.map((r) => r.mode)).filter((m) => mine.some((r) => r.mode === m && r.verdict !== 'n/a'));
    if (modes.length === 0) continue;
    const heads = modes.map((m) => SHORT_MODE[m] ?? m);
    const widths = heads.map((h) => Math.max(6, h.length));
    const line = (first: string, cells: string[]): string =>
      [first.padEnd(scenarioWidth), ...cells.map((c, i) => c.padEnd(widths[i]))].join('  ').trimEnd();
    if (out.length > 0) out.push('');
    out.push(line(backend, heads));
    for (const scenario of unique(mine.map((r) => r.scenario))) {
      out.push(line(scenario, modes.map((m) => {
        const row = mine.find((r) => r.mode === m && r.scenario === scenario);
        return row ? shortVerdict(row) : '';
      })));
    }
  }
  const shown = unique(rows.filter((r) => r.verdict !== 'n/a').map((r) => r.mode)).filter((m) => SHORT_MODE[m] !== m);
  out.push('', 'pass: the fix works; caught: the pre-fix mode shows its failure;',
    'FAIL: not as it must be (listed below); -: n/a, the part plays no role there');
  if (shown.length > 0) out.push(...wrap(['modes:', ...shown.map((m, i) => `${SHORT_MODE[m]} = ${m}${i < shown.length - 1 ? ',' : ''}`)], 80));
  out.push('--wide: one row per cell with the expected and observed failure.');
  return [...out, ...failedCells(rows)].join('\n') + '\n';
}

/** Words (which may hold spaces) into lines of at most `width`, continued lines indented. */
function wrap(words: string[], width: number): string[] {
  const lines: string[] = [];
  let cur = '';
  for (const word of words) {
    if (cur && cur.length + 1 + word.length > width) {
      lines.push(cur);
      cur = '  ' + word;
    } else cur = cur ? `${cur} ${word}` : word;
  }
  if (cur) lines.push(cur);
  return lines;
}
