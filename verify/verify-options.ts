/**
 * The options of `vmm-gdbstub verify`, as the CLI passes them to runVerify. Kept identical to
 * the CLI's VerifyOptions (cli/verify-options.ts on branch `cli`) so either can be passed.
 */
export type VerifyBackend = 'vmx' | 'svm';

export interface VerifyOptions {
  /** --backend: the backends to run; all of them when empty. */
  backends: VerifyBackend[];
  /** --dr-switch: the modes to run; every mode of vm-options.ts when empty. */
  drSwitch: string[];
  /** --scenario: scenario names to run; undefined or empty = every scenario. */
  scenarios?: string[];
  /** --json FILE: write the result table as JSON. */
  json?: string;
  /** --trace FILE: write a Chrome trace-event JSON timeline. */
  trace?: string;
  /** --jobs N: cells run in parallel at most (default: the number of CPUs). */
  jobs?: number;
}
