import { UsageError } from './exit-codes';

/** A flag value as yargs hands it over: repeated flags come as arrays, which we refuse. */
export type RawValue = string | number | boolean | Array<string | number | boolean> | undefined;

/** The single string given for --flag, or undefined when the flag is absent. */
export function singleString(flag: string, raw: unknown): string | undefined {
  if (raw === undefined) return undefined;
  if (Array.isArray(raw)) throw new UsageError(`--${flag} given more than once`);
  if (typeof raw === 'boolean') throw new UsageError(`--${flag} needs a value`);
  return String(raw);
}

/** A decimal integer in [min, max]. */
export function parseIntegerFlag(flag: string, raw: unknown, min: number, max: number, fallback: number): number {
  const text = singleString(flag, raw);
  if (text === undefined) return fallback;
  const t = text.trim();
  if (!/^[0-9]+$/.test(t)) {
    throw new UsageError(`--${flag} must be a whole number from ${min} to ${max}, not '${text}'`);
  }
  const n = Number(t);
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`--${flag} must be a whole number from ${min} to ${max}, not '${text}'`);
  }
  return n;
}

/** One of a fixed set of names. */
export function parseChoiceFlag<T extends string>(flag: string, raw: unknown, choices: readonly T[], fallback: T): T {
  const text = singleString(flag, raw);
  if (text === undefined) return fallback;
  if ((choices as readonly string[]).includes(text)) return text as T;
  throw new UsageError(`--${flag} must be one of ${choices.join(', ')}, not '${text}'`);
}

/** A comma-separated list of names (each may also be given by repeating the flag). */
export function parseChoiceList<T extends string>(flag: string, raw: unknown, choices: readonly T[]): T[] | undefined {
  if (raw === undefined) return undefined;
  const parts = (Array.isArray(raw) ? raw : [raw]).flatMap((v) => {
    if (typeof v === 'boolean') throw new UsageError(`--${flag} needs a value`);
    return String(v).split(',');
  });
  const out: T[] = [];
  for (const p of parts.map((s) => s.trim())) {
    if (!(choices as readonly string[]).includes(p)) {
      throw new UsageError(`--${flag} takes a comma-separated list of ${choices.join(', ')}, not '${p}'`);
    }
    if (!out.includes(p as T)) out.push(p as T);
  }
  return out;
}
