/**
 * The simulator side of the differential test: the project's Cpu on the same memory and
 * registers, producing the same records as tracer.c (one per retired instruction, REP
 * string instructions as one, IN/OUT emulated the same way, exceptions intercepted).
 */
import * as path from 'path';
import { CpuExit } from '../../vmm/cpu/cpu-exit';
import { GprIndex, GuestCpu } from '../../vmm/cpu/guest-cpu';
import { PhysicalCpu } from '../../vmm/cpu/physical-cpu';
import { FpuState } from '../../vmm/cpu/fpu-state';
import { GuestMemory } from '../../vmm/memory';
import { RunSpec } from './run-spec';
import { Kind, TraceRecord } from './trace-format';
import { isRepString } from './undefined-flags';

export type CpuClass = new (mem: GuestMemory, phys: PhysicalCpu) => GuestCpu;

/** The Cpu class (vmm/cpu/cpu.ts), or undefined while it does not exist on this branch. */
export function loadCpuClass(): CpuClass | undefined {
  const modPath = path.join(__dirname, '..', '..', 'vmm', 'cpu', 'cpu');
  try {
    const mod = require(modPath) as { Cpu?: CpuClass };
    return mod.Cpu;
  } catch {
    return undefined;
  }
}

/** Linux signal the native process gets for an exception vector (for comparing faults). */
export const SIGNAL_OF_VECTOR: Record<number, number> = { 0: 8, 1: 5, 3: 5, 4: 11, 5: 11, 6: 4, 12: 11, 13: 11, 14: 11, 16: 8, 17: 7, 19: 8 };
const MAX_REP_ITERATIONS = 1 << 24;

export class SimRunner {
  readonly cpu: GuestCpu;
  readonly mem: GuestMemory;
  private readonly code = new Uint8Array(16);
  /** Set when the simulator stopped in a way the native side cannot (a diagnosis). */
  problem: string | undefined;

  /** The x87/SSE state at the start (an FXSAVE image), for reset(). */
  private readonly fpuAtStart: Uint8Array;

  constructor(spec: RunSpec, Cpu: CpuClass) {
    this.mem = new GuestMemory(spec.memSize);
    for (const r of spec.regions) if (r.data) this.mem.write(r.address, r.data);
    this.cpu = new Cpu(this.mem, new PhysicalCpu());
    this.cpu.intercepts.exceptionBitmap = 0xffffffff;
    this.setStartRegisters(spec);
    // SSE on, as in a Linux process (CR4.OSFXSR | OSXMMEXCPT); XMM zero, MXCSR 0x1F80.
    const cr4 = this.cpu.getReg('cr4');
    this.cpu.setReg('cr4', { lo: (cr4.lo | 0x600) >>> 0, hi: cr4.hi });
    this.fpuAtStart = this.cpu.getFpuImage().slice();
  }

  /**
   * Back to the spec's start: registers, x87/SSE state and the regions' bytes (written
   * directly: the code is unchanged, so its decoded and compiled blocks stay, which is the
   * point of a warm-up run).
   */
  reset(spec: RunSpec): void {
    for (const r of spec.regions) {
      this.mem.bytes.fill(0, r.address, r.address + r.size);
      if (r.data) this.mem.bytes.set(r.data, r.address);
    }
    this.setStartRegisters(spec);
    this.cpu.setFpuImage(this.fpuAtStart);
    this.problem = undefined;
  }

  private setStartRegisters(spec: RunSpec): void {
    for (let i = 0; i < 16; i++) this.cpu.setGpr(i as GprIndex, { lo: 0, hi: 0 });
    const order = ['rax', 'rcx', 'rdx', 'rbx', 'rsp', 'rbp', 'rsi', 'rdi', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15'] as const;
    order.forEach((name, i) => {
      const v = spec.regs[name];
      if (v !== undefined) this.cpu.setGpr(i as GprIndex, split(v));
    });
    this.cpu.setReg('rip', split(spec.regs.rip ?? 0));
    // The guest ABI starts with IF=0; the native process always has IF=1 (not compared).
    this.cpu.setReg('rflags', split(BigInt(spec.regs.rflags ?? 0) | 2n));
  }

  /** The simulator's x87/SSE registers (the Cpu is a CpuCore). */
  fpu(): FpuState | undefined {
    return (this.cpu as unknown as { fpu?: FpuState }).fpu;
  }

  /** Bytes at RIP (zeros past the end of RAM). */
  codeAtRip(): Uint8Array {
    const rip = this.cpu.getReg('rip');
    const a = rip.hi === 0 ? rip.lo : -1;
    this.code.fill(0);
    for (let i = 0; i < 16; i++) if (a >= 0 && a + i < this.mem.size) this.code[i] = this.mem.bytes[a + i];
    return this.code;
  }

  /** Runs one instruction (all iterations of a REP string one) and returns its record. */
  next(): TraceRecord {
    const rip0 = this.cpu.getReg('rip');
    const code = this.codeAtRip();
    if (code[0] === 0xcc) return this.record(Kind.Int3);
    const rep = isRepString(code);
    for (let iter = 0; iter < MAX_REP_ITERATIONS; iter++) {
      const exit: CpuExit = this.cpu.run(1);
      switch (exit.kind) {
        case 'budget': {
          const rip = this.cpu.getReg('rip');
          if (rep && rip.lo === rip0.lo && rip.hi === rip0.hi) continue;
          return this.record(Kind.Step);
        }
        case 'io':
          return this.emulateIo(exit);
        case 'exception':
          return this.record(Kind.Fault, SIGNAL_OF_VECTOR[exit.vector] ?? 1000 + exit.vector);
        default:
          this.problem = `simulator stopped with a '${exit.kind}' exit: ${JSON.stringify(exit)}`;
          return this.record(Kind.Fault, 2000);
      }
    }
    this.problem = 'REP string instruction did not finish';
    return this.record(Kind.Fault, 2001);
  }

  /** IN/OUT as tracer.c does (the I/O exit's instruction completed, but OUT 0xF4: the end). */
  emulateIo(exit: Extract<CpuExit, { kind: 'io' }>): TraceRecord {
    const mask = exit.size === 4 ? 0xffffffff : exit.size === 2 ? 0xffff : 0xff;
    const rax = this.cpu.getGpr(0);
    if (exit.string) {
      this.problem = 'string I/O is not part of the differential corpus';
      return this.record(Kind.Fault, 2002);
    }
    if (!exit.isIn && exit.port === 0xf4) return this.record(Kind.Exit, (rax.lo & mask) >>> 0);
    if (exit.isIn) {
      this.cpu.setGpr(0, exit.size === 4 ? { lo: 0xffffffff, hi: 0 } : { lo: (rax.lo | mask) >>> 0, hi: rax.hi });
    }
    this.cpu.completeEmulatedInstruction(exit.length, { port: exit.port, size: exit.size });
    const aux = exit.port | (exit.size << 16);
    return exit.isIn ? this.record(Kind.In, aux) : this.record(Kind.Out, aux, (rax.lo & mask) >>> 0);
  }

  /** The simulator's registers as a trace record. */
  record(kind: Kind, auxLo = 0, auxHi = 0): TraceRecord {
    const regs = new Uint32Array(36);
    for (let i = 0; i < 16; i++) {
      const v = this.cpu.getGpr(i as GprIndex);
      regs[2 * i] = v.lo;
      regs[2 * i + 1] = v.hi;
    }
    const rip = this.cpu.getReg('rip');
    const fl = this.cpu.getReg('rflags');
    regs[32] = rip.lo;
    regs[33] = rip.hi;
    regs[34] = fl.lo;
    regs[35] = fl.hi;
    const f = this.fpu();
    const xmm = f ? f.u32.slice(0, 64) : new Uint32Array(64);
    return { kind, auxLo, auxHi, regs, xmm, mxcsr: f ? f.mxcsr : 0x1f80 };
  }
}

function split(v: bigint | number): { lo: number; hi: number } {
  const b = BigInt.asUintN(64, BigInt(v));
  return { lo: Number(b & 0xffffffffn), hi: Number(b >> 32n) };
}
