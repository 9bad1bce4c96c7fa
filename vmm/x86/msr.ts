/**
 * Model-specific registers this machine implements (SDM Vol. 4), with the bits a WRMSR may
 * set. Pure facts: the CPU (vmm/cpu/msr.ts) implements them, the hypervisor emulates
 * RDMSR/WRMSR through it and virtualizes IA32_DEBUGCTL.
 */
export const MSR_TSC = 0x10;
export const MSR_DEBUGCTL = 0x1d9;
export const MSR_EFER = 0xc0000080;
export const MSR_FS_BASE = 0xc0000100;
export const MSR_GS_BASE = 0xc0000101;
export const MSR_KERNEL_GS_BASE = 0xc0000102;
/** SYSCALL/SYSRET: selectors, 64-bit and compatibility-mode targets, the RFLAGS mask. */
export const MSR_STAR = 0xc0000081;
export const MSR_LSTAR = 0xc0000082;
export const MSR_CSTAR = 0xc0000083;
export const MSR_FMASK = 0xc0000084;
/** IA32_TSC_AUX: the 32-bit value RDTSCP returns in ECX and RDPID in its register. */
export const MSR_TSC_AUX = 0xc0000103;

/** IA32_DEBUGCTL (SDM 17.4.1) bit 0: last-branch record. */
export const DEBUGCTL_LBR = 1 << 0;
/** IA32_DEBUGCTL bit 1: single-step on branches. */
export const DEBUGCTL_BTF = 1 << 1;
/**
 * IA32_DEBUGCTL bits a WRMSR may set: LBR, BTF, TR, BTS, BTINT, BTS_OFF_OS, BTS_OFF_USR,
 * FREEZE_LBRS_ON_PMI, FREEZE_PERFMON_ON_PMI, FREEZE_WHILE_SMM, RTM (bits 0, 1, 6-12, 14, 15).
 * Bits 2-5 and 13 are reserved on this model: a write of 1 there is #GP(0), and VM entry
 * fails on a guest value with them set.
 */
export const DEBUGCTL_WRITABLE = 0xdfc3;

/** IA32_EFER bits: SCE (SYSCALL), LME, LMA (read-only: set by the processor), NXE. */
export const EFER_SCE = 1 << 0;
export const EFER_LME = 1 << 8;
export const EFER_LMA = 1 << 10;
export const EFER_NXE = 1 << 11;
