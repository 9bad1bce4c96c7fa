/**
 * Differential cases that currently fail because of a CPU bug reported in
 * /work/brief/cpu-bugs.md (the cpu helper fixes them). Name -> reference. A listed case
 * that passes again is reported so the entry can be removed.
 */
export const KNOWN_FAILING: Record<string, string> = {};
