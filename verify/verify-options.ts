/**
 * The options of `vmm-gdbstub verify`: the CLI's VerifyOptions (cli/verify-options.ts), the
 * agreement between the command line and runVerify.
 */
import { BackendName } from '../vmm/api/vm-api';

export type { VerifyOptions } from '../cli/verify-options';
export type VerifyBackend = BackendName;
