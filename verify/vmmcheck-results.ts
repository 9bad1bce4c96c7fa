/** The machine-readable result lines that gdb-scripts/vmmcheck.py prints. */

export const RESULT_PREFIX = 'VMMCHECK ';

/** One check's result (the JSON after the prefix). */
export interface VmmcheckResult {
  check: string;
  name: string;
  pass: boolean;
  /** Why it failed: wrong-stop, wrong-value, wrong-location, missed-hits, timeout, ... */
  kind: string | null;
  message?: string;
  expected?: unknown;
  observed?: unknown;
  total?: number;
  failed?: string[];
}

/** Every result line in a gdb transcript, in order; other lines are ignored. */
export function parseResultLines(transcript: string): VmmcheckResult[] {
  const results: VmmcheckResult[] = [];
  for (const line of transcript.split('\n')) {
    if (!line.startsWith(RESULT_PREFIX)) continue;
    try {
      const parsed = JSON.parse(line.slice(RESULT_PREFIX.length)) as VmmcheckResult;
      if (typeof parsed.check === 'string' && typeof parsed.pass === 'boolean') results.push(parsed);
    } catch {
      // A line cut short by a killed gdb: not a result.
    }
  }
  return results;
}
