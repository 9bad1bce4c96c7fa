import yargs, { Argv } from 'yargs';
import { UsageError } from './exit-codes';

/**
 * A yargs parser configured the same way for both tools: strict (unknown flags and
 * commands are errors), no process.exit from yargs (we pick the exit status), flags kept
 * exactly as spelled (no camelCase aliases, no dot-notation objects, numbers left as
 * strings for our own checks), and a failure turned into a one-line UsageError.
 */
export function makeParser(argv: readonly string[], scriptName: string): Argv {
  return yargs([...argv])
    .scriptName(scriptName)
    .parserConfiguration({
      'camel-case-expansion': false,
      'dot-notation': false,
      'parse-numbers': false,
      'parse-positional-numbers': false,
      'boolean-negation': false,
      'duplicate-arguments-array': true,
      'greedy-arrays': false,
    })
    .strict()
    .exitProcess(false)
    .help('help')
    .alias('help', 'h')
    .version(false)
    .wrap(Math.min(100, process.stdout.columns || 100))
    .fail((msg: string | null | undefined, err: Error | undefined) => {
      if (err instanceof UsageError) throw err;
      // yargs' own validation errors (YError) are usage errors; anything else is a bug.
      if (err && err.name === 'YError') throw new UsageError(oneLine(err.message));
      if (err) throw err;
      // yargs checks the positional arguments before the flags: in `run --bogus x.elf` the
      // unknown flag took x.elf as its value. Let yargs go on to report that flag; a guest
      // that is really missing is refused by the command itself.
      if (/^(Not enough non-option arguments|Missing required argument: guest$)/.test(msg ?? '')) return;
      throw new UsageError(oneLine(msg ?? 'bad command line'));
    });
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, '; ').trim();
}

/**
 * yargs reads `--stats=yes` as false without a word; a switch given a value is refused
 * instead. `isSwitch` says which flag names are switches.
 */
export function refuseSwitchValues(argv: readonly string[], isSwitch: (flag: string) => boolean): void {
  for (const a of argv) {
    if (a === '--') return;
    const m = /^--([^=]+)=/.exec(a);
    if (m && isSwitch(m[1])) throw new UsageError(`--${m[1]} takes no value`);
  }
}
