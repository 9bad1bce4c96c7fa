// Harness for the debug-architecture tests: a tiny 64-bit guest with an IDT whose handlers log
// every event (vector, error code, saved RIP and RFLAGS, DR6/DR7 read inside the #DB handler,
// RCX/RDI at entry) into guest memory, plus a minimal "hypervisor" loop that emulates the
// instructions that always exit (CPUID, RDMSR/WRMSR, IN/OUT, HLT) the way a VMM would, through
// GuestCpu.completeEmulatedInstruction, so that their traps (single-step, I/O breakpoints) happen.
import { GuestMemory } from '../../../vmm/memory';
import { PhysicalCpu } from '../../../vmm/cpu/physical-cpu';
import { GuestCpu } from '../../../vmm/cpu/guest-cpu';
import { Cpu } from '../../../vmm/cpu/cpu';
import { CpuExit } from '../../../vmm/cpu/cpu-exit';
import { U64, u64 } from '../../../vmm/u64';
import { assembleProgram } from '../../helpers/asm';

// ---- guest memory layout -------------------------------------------------------------------
export const MEM_SIZE = 1 << 20;
export const GDT_BASE = 0x1000;
export const IDT_BASE = 0x2000;
export const CFG_BASE = 0x8000; // harness variables, see CFG_* below
export const LOG_BASE = 0x40000; // event records (LOG_MAX * LOG_RECORD bytes)
export const LOG_RECORD = 128;
export const LOG_MAX = 512;
export const ORIGIN = 0x10000; // handler stubs, then the test body at `start`
export const DATA = 0x20000; // scratch data for tests
export const STACK_TOP = 0x7f000;

const CFG_COUNT = CFG_BASE + 0x00; // number of events logged
const CFG_ACTIONS = CFG_BASE + 0x08; // DB_* flags for the #DB handler
const CFG_MAX = CFG_BASE + 0x10; // runaway guard: after this many #DBs disarm DR7 and clear TF
const CFG_RESUME = CFG_BASE + 0x18; // if nonzero, #UD/#GP handlers return here instead of retrying
const CFG_HFLAGS = CFG_BASE + 0x20; // scratch: RFLAGS at handler entry

// #DB handler actions (bit flags in CFG_ACTIONS).
export const DB_CLEAR_DR6 = 1; // write 0 to DR6 after logging
export const DB_SET_RF = 2; // set RF in the saved RFLAGS (always)
export const DB_CLEAR_TF = 4; // clear TF in the saved RFLAGS
export const DB_SET_RF_IF_B = 8; // set RF only if DR6.B0-B3 has a bit (as kvm-unit-tests' handler)
export const DB_REARM_BTF = 16; // WRMSR IA32_DEBUGCTL = BTF (the CPU clears BTF on #DB)
export const UD_CLEAR_DE = 32; // #UD handler clears CR4.DE and retries (as kvm-unit-tests)

// Architectural constants used by the tests.
export const RF = 1 << 16;
export const TF = 1 << 8;
export const IF = 1 << 9;
export const DR6_INIT = 0xffff0ff0;
export const DR6_BS = 0x4000;
export const DR6_BD = 0x2000;
export const DR6_BT = 0x8000;
export const DR7_INIT = 0x400;
export const DR7_GD = 0x2000;
export const IA32_DEBUGCTL = 0x1d9;
export const DEBUGCTL_LBR = 1;
export const DEBUGCTL_BTF = 2;
export const CR4_DE = 1 << 3;
/** Vector of the external interrupt that OUT to RAISE_IRQ_PORT requests (see `run`). */
export const IRQ_VECTOR = 0x20;
export const RAISE_IRQ_PORT = 0x90;

export type RW = 'x' | 'w' | 'io' | 'rw';
export interface BreakpointSpec {
  n: number;
  rw: RW;
  len: 1 | 2 | 4 | 8;
  /** Enable with Ln (default) or Gn, or leave disabled. */
  enable?: 'L' | 'G' | 'none';
}

/** DR7 value for a set of breakpoints (bit 10 set, as DR7 reads). */
export function dr7(...bps: BreakpointSpec[]): number {
  let v = DR7_INIT;
  for (const b of bps) {
    const rw = { x: 0, w: 1, io: 2, rw: 3 }[b.rw];
    const len = { 1: 0, 2: 1, 8: 2, 4: 3 }[b.len];
    const en = b.enable ?? 'L';
    if (en === 'L') v |= 1 << (2 * b.n);
    if (en === 'G') v |= 2 << (2 * b.n);
    v |= (rw | (len << 2)) << (16 + 4 * b.n);
  }
  return v >>> 0;
}

export interface DebugEvent {
  vector: number;
  errorCode: number;
  rip: number;
  rflags: number;
  /** DR6 as read by `mov %dr6` in the #DB handler (0 for other vectors). */
  dr6: number;
  /** DR7 as read in the #DB handler (0 for other vectors). */
  dr7: number;
  rcx: number;
  rdi: number;
  /** RFLAGS inside the handler, at its first instructions. */
  handlerFlags: number;
}

export interface RunResult {
  /** The exit that ended the run ('hlt' at the end of a test body, or what the test waits for). */
  stop: CpuExit;
  /** Exits the harness emulated on the way (cpuid, io, msr). */
  serviced: CpuExit[];
  events: DebugEvent[];
}

export interface RunOptions {
  budget?: number;
  /** Stop on the first exit of these kinds instead of emulating it. */
  stopOn?: CpuExit['kind'][];
  /** Wake a HLT this many times with IRQ_VECTOR (as a timer would) instead of stopping. */
  wakeHltWithIrq?: number;
}

// Handler stubs: each pushes a dummy error code where the CPU pushes none, then its vector.
const STUBS = `
  .text
  .globl _origin
_origin:
  jmp start
  .balign 16
vec_de: push $0; push $0; jmp h_common
vec_db: push $0; push $1; jmp h_common
vec_nmi: push $0; push $2; jmp h_common
vec_bp: push $0; push $3; jmp h_common
vec_ud: push $0; push $6; jmp h_common
vec_df: push $8; jmp h_common
vec_gp: push $13; jmp h_common
vec_pf: push $14; jmp h_common
vec_irq: push $0; push $${IRQ_VECTOR}; jmp h_common
vec_21: push $0; push $0x21; jmp h_common
h_common:
  pushfq
  popq ${CFG_HFLAGS}
  push %rax
  push %rbx
  push %rcx
  push %rdx
  /* frame: 32 vector, 40 error, 48 rip, 56 cs, 64 rflags, 72 rsp, 80 ss; 16 saved rcx */
  mov ${CFG_COUNT}, %rbx
  cmp $${LOG_MAX}, %rbx
  jae 9f
  mov %rbx, %rax
  shl $7, %rax
  add $${LOG_BASE}, %rax
  mov ${CFG_HFLAGS}, %rcx; mov %rcx, 64(%rax)
  mov 32(%rsp), %rcx; mov %rcx, 0(%rax)
  mov 40(%rsp), %rcx; mov %rcx, 8(%rax)
  mov 48(%rsp), %rcx; mov %rcx, 16(%rax)
  mov 64(%rsp), %rcx; mov %rcx, 24(%rax)
  mov 8(%rsp), %rcx; mov %rcx, 48(%rax)
  mov %rdi, 56(%rax)
  cmpq $1, 32(%rsp)
  jne 9f
  mov %dr6, %rcx; mov %rcx, 32(%rax)
  mov %dr7, %rcx; mov %rcx, 40(%rax)
9:
  inc %rbx
  mov %rbx, ${CFG_COUNT}
  mov ${CFG_ACTIONS}, %rdx
  cmpq $1, 32(%rsp)
  je h_db_actions
  cmpq $6, 32(%rsp)
  jne 1f
  test $${UD_CLEAR_DE}, %dl
  jz 1f
  mov %cr4, %rax; and $~${CR4_DE}, %rax; mov %rax, %cr4
  jmp h_done
1:
  cmpq $6, 32(%rsp); je 2f
  cmpq $13, 32(%rsp); je 2f
  jmp h_done
2:
  mov ${CFG_RESUME}, %rax
  test %rax, %rax
  jz h_done
  mov %rax, 48(%rsp)
  jmp h_done
h_db_actions:
  test $${DB_SET_RF_IF_B}, %dl
  jz 1f
  mov %dr6, %rax
  test $0xf, %al
  jz 1f
  orl $${RF}, 64(%rsp)
1:
  test $${DB_CLEAR_DR6}, %dl
  jz 1f
  xor %eax, %eax; mov %rax, %dr6
1:
  test $${DB_SET_RF}, %dl
  jz 1f
  orl $${RF}, 64(%rsp)
1:
  test $${DB_CLEAR_TF}, %dl
  jz 1f
  andl $~${TF}, 64(%rsp)
1:
  test $${DB_REARM_BTF}, %dl
  jz 1f
  mov $${IA32_DEBUGCTL}, %ecx; mov $${DEBUGCTL_BTF}, %eax; xor %edx, %edx; wrmsr
1:
  cmp ${CFG_MAX}, %rbx
  jb h_done
  mov $${DR7_INIT}, %eax; mov %rax, %dr7
  andl $~${TF}, 64(%rsp)
h_done:
  pop %rdx
  pop %rcx
  pop %rbx
  pop %rax
  add $16, %rsp
  iretq
`;

const VECTOR_STUBS: Array<[number, string]> = [
  [0, 'vec_de'], [1, 'vec_db'], [2, 'vec_nmi'], [3, 'vec_bp'], [6, 'vec_ud'], [8, 'vec_df'],
  [13, 'vec_gp'], [14, 'vec_pf'], [IRQ_VECTOR, 'vec_irq'], [0x21, 'vec_21'],
];

export function hex(n: number): string {
  return '0x' + (n >>> 0).toString(16);
}

/** A one-vCPU guest with the logging IDT, running one test body. */
export class DebugMachine {
  readonly mem = new GuestMemory(MEM_SIZE);
  readonly phys = new PhysicalCpu();
  readonly cpu: GuestCpu;
  labels: Record<string, number> = {};

  constructor() {
    this.cpu = new Cpu(this.mem, this.phys);
  }

  /**
   * Assembles the handler stubs plus `body` (which must define `start` and normally ends in
   * `hlt`), loads it, builds GDT and IDT, and puts the CPU at `start` in 64-bit mode, CPL 0,
   * RFLAGS = 2, CR4.DE = 0, DR6/DR7 at their reset values.
   */
  load(body: string): this {
    const prog = assembleProgram(STUBS + '\n' + body, ORIGIN);
    this.labels = prog.labels;
    this.write(ORIGIN, prog.code);
    // GDT: null, 0x08 64-bit code, 0x10 data.
    this.write64(GDT_BASE + 0, 0, 0);
    this.write64(GDT_BASE + 8, 0x0000ffff, 0x00af9a00);
    this.write64(GDT_BASE + 16, 0x0000ffff, 0x00cf9200);
    for (const [vec, name] of VECTOR_STUBS) this.setGate(vec, this.sym(name));
    this.setCfg(CFG_COUNT, 0);
    this.setCfg(CFG_ACTIONS, 0);
    this.setCfg(CFG_MAX, 16);
    this.setCfg(CFG_RESUME, 0);
    const c = this.cpu;
    c.setReg('gdtr_base', u64(GDT_BASE));
    c.setReg('gdtr_limit', u64(23));
    c.setReg('idtr_base', u64(IDT_BASE));
    c.setReg('idtr_limit', u64(256 * 16 - 1));
    c.setReg('cs', u64(8));
    for (const s of ['ss', 'ds', 'es'] as const) c.setReg(s, u64(0x10));
    c.setReg('rip', u64(this.sym('start')));
    c.setReg('rflags', u64(2));
    c.setGpr(4, u64(STACK_TOP));
    return this;
  }

  sym(name: string): number {
    const a = this.labels[name];
    if (a === undefined) throw new Error(`no label ${name}`);
    return a;
  }

  /** #DB handler behaviour (DB_* flags) and the runaway guard. */
  dbActions(flags: number, maxDb = 16): this {
    this.setCfg(CFG_ACTIONS, flags);
    this.setCfg(CFG_MAX, maxDb);
    return this;
  }

  /** #UD and #GP handlers return to this label instead of retrying the instruction. */
  resumeFaultsAt(label: string): this {
    this.setCfg(CFG_RESUME, this.sym(label));
    return this;
  }

  setDr(n: number, lo: number, hi = 0): this {
    this.phys.setDr(n, u64(lo, hi));
    return this;
  }

  dr(n: number): number {
    return this.phys.getDr(n).lo >>> 0;
  }

  drHi(n: number): number {
    return this.phys.getDr(n).hi >>> 0;
  }

  setGpr(i: Parameters<GuestCpu['setGpr']>[0], lo: number, hi = 0): this {
    this.cpu.setGpr(i, u64(lo, hi));
    return this;
  }

  gpr(i: Parameters<GuestCpu['getGpr']>[0]): U64 {
    return this.cpu.getGpr(i);
  }

  reg(r: Parameters<GuestCpu['getReg']>[0]): number {
    return this.cpu.getReg(r).lo >>> 0;
  }

  setCr4(v: number): this {
    this.cpu.setReg('cr4', u64(v));
    return this;
  }

  setRflags(v: number): this {
    this.cpu.setReg('rflags', u64(v));
    return this;
  }

  /** Number of events the handlers saw (may exceed LOG_MAX). */
  eventCount(): number {
    return this.read32(CFG_COUNT);
  }

  /** The event log written by the guest's handlers. */
  events(): DebugEvent[] {
    const n = Math.min(this.read32(CFG_COUNT), LOG_MAX);
    const out: DebugEvent[] = [];
    for (let i = 0; i < n; i++) {
      const r = LOG_BASE + i * LOG_RECORD;
      out.push({
        vector: this.read32(r), errorCode: this.read32(r + 8), rip: this.read32(r + 16),
        rflags: this.read32(r + 24), dr6: this.read32(r + 32), dr7: this.read32(r + 40),
        rcx: this.read32(r + 48), rdi: this.read32(r + 56), handlerFlags: this.read32(r + 64),
      });
    }
    return out;
  }

  /**
   * Runs until HLT (or a stop kind / an exit the harness does not emulate), emulating CPUID,
   * RDMSR/WRMSR (IA32_DEBUGCTL goes to the physical CPU) and I/O as a VMM would.
   */
  run(opts: RunOptions = {}): RunResult {
    let budget = opts.budget ?? 20000;
    let wakes = opts.wakeHltWithIrq ?? 0;
    const serviced: CpuExit[] = [];
    const stopOn = opts.stopOn ?? [];
    for (let guard = 0; guard < 1000; guard++) {
      const before = this.cpu.instret;
      const exit = this.cpu.run(budget);
      budget -= this.cpu.instret - before;
      if (stopOn.includes(exit.kind)) return { stop: exit, serviced, events: this.events() };
      switch (exit.kind) {
        case 'cpuid':
          for (const r of [0, 1, 2, 3] as const) this.cpu.setGpr(r, u64(0));
          serviced.push(exit);
          this.cpu.completeEmulatedInstruction(exit.length);
          continue;
        case 'rdmsr': {
          const ecx = this.cpu.getGpr(1).lo >>> 0;
          const v = ecx === IA32_DEBUGCTL ? this.phys.getDebugctl() : u64(0);
          this.cpu.setGpr(0, u64(v.lo));
          this.cpu.setGpr(2, u64(v.hi));
          serviced.push(exit);
          this.cpu.completeEmulatedInstruction(exit.length);
          continue;
        }
        case 'wrmsr': {
          const ecx = this.cpu.getGpr(1).lo >>> 0;
          if (ecx === IA32_DEBUGCTL) this.phys.setDebugctl(u64(this.cpu.getGpr(0).lo, this.cpu.getGpr(2).lo));
          serviced.push(exit);
          this.cpu.completeEmulatedInstruction(exit.length);
          continue;
        }
        case 'io':
          if (exit.string) return { stop: exit, serviced, events: this.events() };
          if (exit.isIn) {
            const rax = this.cpu.getGpr(0);
            const ones = exit.size === 4 ? 0xffffffff : exit.size === 2 ? 0xffff : 0xff;
            const lo = exit.size === 4 ? ones : ((rax.lo & ~ones) | ones) >>> 0;
            this.cpu.setGpr(0, u64(lo, exit.size === 4 ? 0 : rax.hi));
          } else if (exit.port === RAISE_IRQ_PORT) {
            this.cpu.requestInterrupt(IRQ_VECTOR);
          }
          serviced.push(exit);
          this.cpu.completeEmulatedInstruction(exit.length, { port: exit.port, size: exit.size });
          continue;
        case 'hlt':
          if (wakes > 0) {
            wakes--;
            serviced.push(exit);
            this.cpu.completeEmulatedInstruction(exit.length);
            this.cpu.halted = true;
            this.cpu.requestInterrupt(IRQ_VECTOR);
            continue;
          }
          return { stop: exit, serviced, events: this.events() };
        default:
          return { stop: exit, serviced, events: this.events() };
      }
    }
    throw new Error('harness: too many exits');
  }

  private setGate(vector: number, handler: number): void {
    const a = IDT_BASE + vector * 16;
    // 64-bit interrupt gate (type 14), present, DPL 0, selector 0x08, IST 0.
    const lo = (0x0008 << 16) | (handler & 0xffff);
    const hi = (handler & 0xffff0000) | 0x8e00;
    this.write64(a, lo >>> 0, hi >>> 0);
    this.write64(a + 8, 0, 0);
  }

  private setCfg(addr: number, v: number): void {
    this.write64(addr, v >>> 0, 0);
  }

  private write(addr: number, bytes: Uint8Array): void {
    if (!this.mem.write(addr, bytes)) throw new Error(`cannot write ${hex(addr)}`);
  }

  write64(addr: number, lo: number, hi: number): void {
    this.mem.view.setUint32(addr, lo >>> 0, true);
    this.mem.view.setUint32(addr + 4, hi >>> 0, true);
  }

  read32(addr: number): number {
    return this.mem.view.getUint32(addr, true);
  }

  read64(addr: number): U64 {
    return { lo: this.mem.view.getUint32(addr, true), hi: this.mem.view.getUint32(addr + 4, true) };
  }
}

/** A compact, readable form of the event log for assertion messages. */
export function describeEvents(evs: DebugEvent[]): string {
  return evs
    .map((e) => `v${e.vector}@${hex(e.rip)} fl=${hex(e.rflags)} dr6=${hex(e.dr6)}`)
    .join('; ');
}
