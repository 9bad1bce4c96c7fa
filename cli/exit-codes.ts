/**
 * Exit statuses of `vmm-gdbstub` and `vmmctl` (documented in README.md, "Exit codes").
 * 0-127 is the guest's own exit status (port 0xF4 value & 0x7F); every error the tool
 * itself diagnoses is 128 or more, so a script can tell the two apart.
 */
export const EXIT = {
  /** A bad command line: unknown flag, bad value, missing argument. Nothing was started. */
  USAGE: 128,
  /** The guest file could not be read or is not a loadable ELF for this VM. */
  BAD_ELF: 129,
  /** The guest triple-faulted (an exception with no usable handler). */
  TRIPLE_FAULT: 130,
  /** The guest accessed memory outside guest RAM (nested-page fault). */
  OUTSIDE_MEMORY: 131,
  /** Every vCPU halted with nothing that could wake it. */
  ALL_HALTED: 132,
  /** A VM entry failed its checks. */
  ENTRY_FAILED: 133,
  /** A bug in vmm-gdbstub itself, or a part of it missing from this build. */
  INTERNAL: 134,
  /** A name or address is already in use (--name of a running VM, the gdb port). */
  IN_USE: 135,
  /** vmmctl: no VM of that name is running. */
  NO_SUCH_VM: 136,
  /** --backend kvm, hostcheck, difftest --against kvm: no usable /dev/kvm (or addon, or as/ld). */
  KVM_UNAVAILABLE: 137,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** An error the CLI reports as one line on stderr, ending the process with `exitCode`. */
export class CliError extends Error {
  constructor(message: string, readonly exitCode: number) {
    super(message);
  }
}

export class UsageError extends CliError {
  constructor(message: string) {
    super(message, EXIT.USAGE);
  }
}
