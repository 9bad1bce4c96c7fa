/**
 * The report of a kvm-unit-tests binary: one `PASS: `, `FAIL: ` or `SKIP: ` line per case,
 * then `SUMMARY: N tests[, M unexpected failures]`. A case is named by its report text
 * without what it observed, so that the name is the same whatever the run saw.
 */

export interface KutReport {
  passed: string[];
  /** The FAIL lines as printed (without "FAIL: "): what each failed case saw. */
  failed: string[];
  skipped: string[];
  /** The SUMMARY line's text, or undefined when the test did not get that far. */
  summary?: string;
}

export function parseKutReport(stdout: string): KutReport {
  const report: KutReport = { passed: [], failed: [], skipped: [] };
  for (const raw of stdout.split('\n')) {
    const line = raw.trimEnd();
    const m = /^(PASS|FAIL|SKIP|SUMMARY): (.*)$/.exec(line);
    if (!m) continue;
    if (m[1] === 'PASS') report.passed.push(m[2]);
    else if (m[1] === 'FAIL') report.failed.push(m[2]);
    else if (m[1] === 'SKIP') report.skipped.push(m[2]);
    else report.summary = m[2];
  }
  return report;
}

/**
 * A case's name from its report text: debug.c's breakpoint cases print
 * "Wanted #DB on ADDR w/ DR6 = X, got N #DBs, ..." (named "Wanted #DB w/ DR6 = X": the
 * address depends on the build); other cases print a name, sometimes followed by
 * " = value" or ", val = ..." (cut off).
 */
export function kutCaseName(text: string): string {
  const wanted = /^Wanted #DB on \S+ w\/ DR6 = (0x[0-9a-fA-F]+)/.exec(text);
  if (wanted) return `Wanted #DB w/ DR6 = ${wanted[1]}`;
  const cut = text.search(/ = |, /);
  return cut > 0 ? text.slice(0, cut) : text;
}
