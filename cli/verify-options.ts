import { BackendName } from '../vmm/api/vm-api';
import { DrSwitchMode } from '../vmm/api/vm-options';

/**
 * The agreement between the CLI (`vmm-gdbstub verify`, which parses and validates the flags)
 * and the verifier (verify/run-verify.ts), which implements
 *
 *     export async function runVerify(opts: VerifyOptions): Promise<number>
 *
 * returning the process exit status: 0 only if every `full` cell passes and every pre-fix
 * cell shows the failure it must show. It prints its own progress and table on stdout and
 * its diagnoses on stderr. A missing gdb is its error to report (with the install hint).
 *
 * verify/run-verify.ts may also export `VERIFY_SCENARIOS: readonly string[]`; when it does,
 * the CLI refuses --scenario names outside it as a usage error (exit 128) before calling.
 */
export interface VerifyOptions {
  /** --backend: the backends to run; all of them when the flag is absent. */
  backends: BackendName[];
  /** --dr-switch: the modes to run; every mode of vm-options.ts when absent. */
  drSwitch: DrSwitchMode[];
  /** --scenario: scenario names to run; undefined = every scenario. */
  scenarios?: string[];
  /** --json FILE: write the result table as JSON. */
  json?: string;
  /** --trace FILE: write a Chrome trace-event JSON timeline. */
  trace?: string;
  /** --jobs N (1-64): at most N cells in parallel; undefined = the verifier chooses. */
  jobs?: number;
  /** --wide: one table row per cell (expected, observed) instead of the compact grid. */
  wide?: boolean;
}

export type RunVerify = (opts: VerifyOptions) => Promise<number>;
