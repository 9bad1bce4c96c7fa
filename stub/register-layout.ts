/**
 * The remote register numbering and `g` layout of our target.xml (document order, no
 * padding): core with x87, sse, segments, then our debug-register feature. gdb13-verified
 * section 1.2 is the table this follows.
 */
import { RegName } from '../vmm/api/registers';
import { FpuField, fpuFieldOf } from './fpu-registers';

export type RegSource =
  | { kind: 'vm'; name: RegName }           // read/written through VmApi
  | { kind: 'fpu'; field: FpuField };        // x87/SSE: a field of the vCPU's FXSAVE image

export interface RemoteReg {
  name: string;
  bits: number;
  /** gdb type / group attributes for target.xml. */
  type: string;
  group?: string;
  feature: 'core' | 'sse' | 'segments' | 'debug' | 'system';
  source: RegSource;
  offset: number; // byte offset in the g packet
  size: number;   // bytes
  /** Why gdb may read but not write it (P/G refuse it with this reason). */
  readOnly?: string;
}

const GPRS: RegName[] = ['rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rbp', 'rsp',
  'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15'];
const SEGS: RegName[] = ['cs', 'ss', 'ds', 'es', 'fs', 'gs'];
/**
 * Why cr0-cr8 and EFER are read-only through gdb: a write there changes the mode, paging or
 * interrupt priority under the guest's feet, and the consistency checks a MOV to CR / WRMSR
 * makes (#GP on reserved bits, PG without PE, LME with paging on...) are the CPU's to make.
 */
const CONTROL_READ_ONLY = 'control registers and EFER are read-only through the debugger; the guest sets them with MOV CR / WRMSR';

const X87_CONTROL = ['fctrl', 'fstat', 'ftag', 'fiseg', 'fioff', 'foseg', 'fooff', 'fop'];

function build(): RemoteReg[] {
  const regs: Omit<RemoteReg, 'offset' | 'size'>[] = [];
  const sh = (name: string): RegSource => {
    const field = fpuFieldOf(name);
    if (!field) throw new Error(`no FXSAVE field for ${name}`);
    return { kind: 'fpu', field };
  };
  for (const n of GPRS) {
    const type = n === 'rbp' || n === 'rsp' ? 'data_ptr' : 'int64';
    regs.push({ name: n, bits: 64, type, feature: 'core', source: { kind: 'vm', name: n } });
  }
  regs.push({ name: 'rip', bits: 64, type: 'code_ptr', feature: 'core', source: { kind: 'vm', name: 'rip' } });
  regs.push({ name: 'eflags', bits: 32, type: 'i386_eflags', feature: 'core', source: { kind: 'vm', name: 'rflags' } });
  for (const n of SEGS) regs.push({ name: n, bits: 32, type: 'int32', feature: 'core', source: { kind: 'vm', name: n } });
  for (let i = 0; i < 8; i++) regs.push({ name: `st${i}`, bits: 80, type: 'i387_ext', feature: 'core', source: sh(`st${i}`) });
  for (const n of X87_CONTROL) regs.push({ name: n, bits: 32, type: 'int', group: 'float', feature: 'core', source: sh(n) });
  for (let i = 0; i < 16; i++) regs.push({ name: `xmm${i}`, bits: 128, type: 'vec128', feature: 'sse', source: sh(`xmm${i}`) });
  regs.push({ name: 'mxcsr', bits: 32, type: 'i386_mxcsr', group: 'vector', feature: 'sse', source: sh('mxcsr') });
  regs.push({ name: 'fs_base', bits: 64, type: 'int', feature: 'segments', source: { kind: 'vm', name: 'fs_base' } });
  regs.push({ name: 'gs_base', bits: 64, type: 'int', feature: 'segments', source: { kind: 'vm', name: 'gs_base' } });
  for (const n of ['dr0', 'dr1', 'dr2', 'dr3', 'dr6', 'dr7', 'debugctl'] as RegName[]) {
    regs.push({ name: n, bits: 64, type: 'uint64', feature: 'debug', source: { kind: 'vm', name: n } });
  }
  // System registers under QEMU's gdbstub names, after the debug feature so that the remote
  // numbers of everything before them stay as they were (dr0 = 0x3b ... debugctl = 0x41).
  regs.push({ name: 'k_gs_base', bits: 64, type: 'int', feature: 'system', source: { kind: 'vm', name: 'kernel_gs_base' } });
  for (const n of ['cr0', 'cr2', 'cr3', 'cr4', 'cr8', 'efer'] as RegName[]) {
    regs.push({ name: n, bits: 64, type: 'uint64', feature: 'system', source: { kind: 'vm', name: n }, readOnly: CONTROL_READ_ONLY });
  }
  let offset = 0;
  return regs.map((r) => {
    const size = r.bits / 8;
    const full = { ...r, offset, size };
    offset += size;
    return full;
  });
}

export const REMOTE_REGS: readonly RemoteReg[] = build();
export const G_PACKET_BYTES = REMOTE_REGS.reduce((n, r) => n + r.size, 0);

export function regNumber(name: string): number {
  return REMOTE_REGS.findIndex((r) => r.name === name);
}

export const REGNO_RBP = regNumber('rbp');
export const REGNO_RSP = regNumber('rsp');
export const REGNO_RIP = regNumber('rip');
