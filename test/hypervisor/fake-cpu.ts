import { CpuExit } from '../../vmm/cpu/cpu-exit';
import { CpuIntercepts, CpuStateReg, GprIndex, GuestCpu, InjectedEvent } from '../../vmm/cpu/guest-cpu';
import { PhysicalCpu } from '../../vmm/cpu/physical-cpu';
import { U64 } from '../../vmm/u64';
import { DR7_RW_ACCESS, DR7_RW_WRITE, dr7SlotEnabled, dr7SlotLen, dr7SlotRw } from '../../vmm/x86/debug-regs';

/** One scripted guest "instruction" of the fake CPU. */
export type FakeOp =
  | { op: 'nop' }
  /** An exit of the given kind (instruction intercepts are not retired until completed). */
  | { op: 'exit'; exit: CpuExit }
  /** MOV DRn, value: exits when MOV DR is intercepted, else writes the physical register. */
  | { op: 'mov-to-dr'; dr: number; value: U64 }
  /** MOV reg, DRn into `gpr`. */
  | { op: 'mov-from-dr'; dr: number; gpr: GprIndex }
  /** A guest data write: matched against the physical DR0-3/DR7 like the real CPU. */
  | { op: 'store'; address: number; len: number }
  /** Run arbitrary code (host-visible side effects in tests). */
  | { op: 'fn'; fn: (cpu: FakeCpu) => void };

/**
 * A small GuestCpu for the hypervisor's tests: runs a script of FakeOps, then (when the
 * script is empty) an endless CPUID loop. Breakpoint matching and MOV DR use the physical
 * CPU, as the real CPU does; guest-delivered #DBs are counted, not executed.
 */
export class FakeCpu implements GuestCpu {
  readonly intercepts: CpuIntercepts = { exceptionBitmap: 0, movDr: false, mtf: false, eventDelivered: false, hypercall: null, nmiWindow: false, iret: false };
  instret = 0;
  pendingDebugExceptions = 0;
  interruptibility = 0;
  nmiBlocked = false;
  halted = false;
  interruptPending = false;
  readonly gpr: U64[] = Array.from({ length: 16 }, () => ({ lo: 0, hi: 0 }));
  readonly regs = new Map<CpuStateReg, U64>();
  readonly script: FakeOp[] = [];
  readonly injected: InjectedEvent[] = [];
  readonly requested: number[] = [];
  /** #DBs delivered through the guest IDT (not intercepted), with DR6 as the handler saw it. */
  readonly guestDbs: number[] = [];
  /** Instructions to run per cpuid when the script is empty; 0 = return budget instead. */
  idleCpuid = true;

  constructor(public phys: PhysicalCpu) {
    this.regs.set('rip', { lo: 0x100000, hi: 0 });
    this.regs.set('rflags', { lo: 2, hi: 0 });
  }

  getGpr(i: GprIndex): U64 { return { ...this.gpr[i] }; }
  setGpr(i: GprIndex, v: U64): void { this.gpr[i] = { lo: v.lo >>> 0, hi: v.hi >>> 0 }; }
  getReg(r: CpuStateReg): U64 { return { ...(this.regs.get(r) ?? { lo: 0, hi: 0 }) }; }
  setReg(r: CpuStateReg, v: U64): void { this.regs.set(r, { lo: v.lo >>> 0, hi: v.hi >>> 0 }); }
  private fpuImage = new Uint8Array(512);
  getFpuImage(): Uint8Array { return this.fpuImage.slice(); }
  setFpuImage(image: Uint8Array): void { this.fpuImage = image.slice(); }

  inject(ev: InjectedEvent): void {
    this.injected.push(ev);
    if (ev.vector === 1) this.guestDbs.push(this.phys.drLo[6]);
  }
  requestNmi(): void { this.requested.push(2); }
  withdrawInterrupt(): number { const v = this.interruptPending ? this.requested[this.requested.length - 1] : -1; this.interruptPending = false; return v; }
  requestInterrupt(vector: number): void { this.requested.push(vector); this.interruptPending = true; }

  private retire(): void {
    this.instret++;
    const rip = this.getReg('rip');
    this.setReg('rip', { lo: rip.lo + 1, hi: rip.hi });
  }

  /** The MSRs as registers (no checks): enough for the hypervisor's RDMSR/WRMSR exits. */
  private static readonly MSR_REGS: ReadonlyMap<number, CpuStateReg> = new Map<number, CpuStateReg>([
    [0x10, 'tsc'], [0xc0000080, 'efer'], [0xc0000100, 'fs_base'], [0xc0000101, 'gs_base'], [0xc0000102, 'kernel_gs_base'],
  ]);
  readMsr(index: number): U64 | undefined {
    const r = FakeCpu.MSR_REGS.get(index >>> 0);
    return r === undefined ? undefined : this.getReg(r);
  }
  writeMsr(index: number, v: U64): boolean {
    const r = FakeCpu.MSR_REGS.get(index >>> 0);
    if (r === undefined) return false;
    this.setReg(r, v);
    return true;
  }

  completeEmulatedInstruction(length: number): void {
    this.instret++;
    const rip = this.getReg('rip');
    this.setReg('rip', { lo: rip.lo + length, hi: rip.hi });
  }

  /** B bits for a data write at [address, address+len) against the physical registers. */
  private matchWrite(address: number, len: number): { hit: number; enabled: boolean } {
    const p = this.phys;
    let hit = 0;
    let enabled = false;
    for (let n = 0; n < 4; n++) {
      const rw = dr7SlotRw(p.drLo[7], n);
      if (rw !== DR7_RW_WRITE && rw !== DR7_RW_ACCESS) continue;
      const size = dr7SlotLen(p.drLo[7], n);
      if (p.drHi[n] !== 0) continue;
      const start = (p.drLo[n] & ~(size - 1)) >>> 0;
      if (address < start + size && start < address + len) {
        hit |= 1 << n;
        if (dr7SlotEnabled(p.drLo[7], n)) enabled = true;
      }
    }
    return { hit, enabled };
  }

  run(budget: number): CpuExit {
    this.interruptPending = false;
    for (let i = 0; i < budget; i++) {
      const op = this.script.shift();
      if (op === undefined) {
        if (!this.idleCpuid) { this.instret += budget - i; return { kind: 'budget' }; }
        return { kind: 'cpuid', length: 2 };
      }
      switch (op.op) {
        case 'nop': this.retire(); break;
        case 'fn': op.fn(this); this.retire(); break;
        case 'exit': return op.exit;
        case 'mov-to-dr':
          if (this.intercepts.movDr) {
            this.setGpr(0, op.value);
            return { kind: 'mov-dr', length: 3, dr: op.dr, gpr: 0, toDr: true };
          }
          this.phys.setDr(op.dr, op.value);
          this.retire();
          break;
        case 'mov-from-dr':
          if (this.intercepts.movDr) return { kind: 'mov-dr', length: 3, dr: op.dr, gpr: op.gpr, toDr: false };
          this.setGpr(op.gpr, this.phys.getDr(op.dr));
          this.retire();
          break;
        case 'store': {
          this.retire();
          const m = this.matchWrite(op.address, op.len);
          if (!m.enabled) break;
          if ((this.intercepts.exceptionBitmap & 2) !== 0) {
            return { kind: 'exception', vector: 1, errorCode: undefined, dr6: m.hit, type: 'hw', instructionLength: 0 };
          }
          this.phys.drLo[6] = ((this.phys.drLo[6] | 0xffff0ff0) & ~0xf) | m.hit;
          this.guestDbs.push(this.phys.drLo[6]);
          break;
        }
      }
    }
    return { kind: 'budget' };
  }
}
