/**
 * Register names of the vmm's register interface (as bhyve's enum vm_reg_name). The debug
 * registers here are the guest VIEW: what the guest wrote and reads back with MOV DR
 * (../shared/CONTRACT.md, "Debug-register views").
 */
export const GPR_NAMES = [
  'rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rbp', 'rsp',
  'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15',
] as const;

export const REGISTER_NAMES = [
  ...GPR_NAMES,
  'rip', 'rflags',
  'cs', 'ss', 'ds', 'es', 'fs', 'gs',
  'fs_base', 'gs_base', 'kernel_gs_base',
  'cr0', 'cr2', 'cr3', 'cr4', 'cr8', 'efer',
  'dr0', 'dr1', 'dr2', 'dr3', 'dr6', 'dr7', 'debugctl',
] as const;

export type RegName = (typeof REGISTER_NAMES)[number];

export function isRegName(s: string): s is RegName {
  return (REGISTER_NAMES as readonly string[]).includes(s);
}
