/**
 * What a matrix cell must show, what it showed, and the verdict. A cell proves something
 * either way: on `full` the scenario must pass; on a pre-fix mode it must fail in the
 * specific way that mode breaks it (the verifier proves it can see the bug).
 */

export type Expectation =
  | { kind: 'pass'; why?: string }
  /** Must fail with one of these failures: a kind ("missed-hits") or "check:kind". */
  | { kind: 'detect'; failures: string[]; why: string }
  | { kind: 'n/a'; why: string };

export interface Observation {
  pass: boolean;
  /** The failure kind of the first failed check (missed-hits, register-mismatch, ...). */
  failure?: string;
  /** The name of the first failed check. */
  check?: string;
  /** Every failed check, when the run reports more than the first (kvm-unit-tests cases). */
  failedChecks?: string[];
  /** What the failed checks printed, one line each (kvm-unit-tests' FAIL lines). */
  failLines?: string[];
  /** One line: what was seen (the failed check's message, or a summary of the pass). */
  detail: string;
  seconds: number;
}

export type Verdict = 'ok' | 'FAIL' | 'n/a';

export function pass(why?: string): Expectation {
  return why === undefined ? { kind: 'pass' } : { kind: 'pass', why };
}

export function detect(why: string, ...failures: string[]): Expectation {
  return { kind: 'detect', failures, why };
}

export function notApplicable(why: string): Expectation {
  return { kind: 'n/a', why };
}

export function expectationText(e: Expectation): string {
  if (e.kind === 'pass') return 'pass';
  if (e.kind === 'n/a') return 'n/a';
  return `detect ${e.failures.join('|')}`;
}

/**
 * The observation in a few words: `pass`, or `fail KIND (CHECK)`, where CHECK is the failed
 * check the expectation names when the run has it (else the first), with the count of the
 * others when the run reports several.
 */
export function observationText(o: Observation | undefined, e?: Expectation): string {
  if (o === undefined) return '-';
  if (o.pass) return 'pass';
  const named = e?.kind === 'detect' ? failedChecks(o).find((c) => e.failures.includes(`${c}:${o.failure}`)) : undefined;
  const shown = named ?? o.check;
  const others = (o.failedChecks?.length ?? 0) - 1;
  return `fail ${o.failure ?? 'unknown'}${shown ? ` (${shown}${others > 0 ? `, +${others} more` : ''})` : ''}`;
}

function failedChecks(o: Observation): string[] {
  return o.check === undefined ? o.failedChecks ?? [] : [o.check, ...o.failedChecks ?? []];
}

/**
 * Whether a failure matches an expected failure name: "kind", or "check:kind" where check is
 * the first failed check or any other the run reports as failed.
 */
function failureMatches(o: Observation, expected: string): boolean {
  if (o.failure === undefined) return false;
  if (expected === o.failure) return true;
  return failedChecks(o).some((check) => expected === `${check}:${o.failure}`);
}

export function judge(e: Expectation, o: Observation | undefined): Verdict {
  if (e.kind === 'n/a') return 'n/a';
  if (o === undefined) return 'FAIL';
  if (e.kind === 'pass') return o.pass ? 'ok' : 'FAIL';
  return !o.pass && e.failures.some((f) => failureMatches(o, f)) ? 'ok' : 'FAIL';
}
