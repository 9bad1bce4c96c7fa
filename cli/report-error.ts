import { CliError, EXIT } from './exit-codes';
import { Output } from './output';

/** Prints the one-line diagnosis of `e` and returns the exit status it stands for. */
export function reportError(tool: string, e: unknown, out: Output): number {
  if (e instanceof CliError) {
    out.stderr(`${tool}: ${e.message}${e.exitCode === EXIT.USAGE ? ' (see --help)' : ''}\n`);
    return e.exitCode;
  }
  // A bug: one line for the user, the stack only on request.
  const text = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  const stack = process.env['VMM_GDBSTUB_DEBUG'] && e instanceof Error && e.stack ? `\n${e.stack}` : ' (VMM_GDBSTUB_DEBUG=1 shows the stack)';
  out.stderr(`${tool}: internal error: ${text.replace(/\n/g, ' ')}${stack}\n`);
  return EXIT.INTERNAL;
}
