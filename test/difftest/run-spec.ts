/** What one differential run executes: the same memory and registers on both sides. */
export const REG_ARG_NAMES = ['rax', 'rcx', 'rdx', 'rbx', 'rsp', 'rbp', 'rsi', 'rdi', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'rip', 'rflags'] as const;
export type RegName = (typeof REG_ARG_NAMES)[number];

export interface Region {
  address: number;
  size: number;
  /** Initial bytes (the rest is zero). */
  data?: Uint8Array;
}

export interface RunSpec {
  name: string;
  regions: Region[];
  regs: Partial<Record<RegName, bigint | number>>;
  /** Stop after this many retired instructions (both sides). */
  maxSteps?: number;
  /** Memory compared at the end. */
  dumps?: Array<{ address: number; size: number }>;
  /** Guest RAM size for the simulator (must cover every region). */
  memSize: number;
}
