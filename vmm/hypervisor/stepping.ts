/**
 * The client's single step with the guest's RFLAGS.TF (capability `rflags-tf`), hidden from
 * the guest: TF is set for one instruction and afterwards the guest gets its own TF back,
 * also in what the step pushed (PUSHF, an event frame). In an STI / MOV-SS shadow on VT-x the
 * step is taken with MTF instead.
 */
import { GprIndex, GuestCpu } from '../cpu/guest-cpu';
import { GuestMemory } from '../memory';
import { TF as RFLAGS_TF } from '../x86/rflags';
import { VmBackend } from './backend';

const RSP: GprIndex = 4;
const OPCODE_PUSHF = 0x9c;
const OPCODE_POPF = 0x9d;
const OPCODE_IRET = 0xcf;

export class TfStepper {
  /** A step is under way (TF or MTF set for it). */
  armed = false;
  /** The step runs with MTF instead of TF (VT-x, STI / MOV-SS shadow). */
  viaMtf = false;
  /** The guest's own TF when the step began. */
  guestTF = false;
  /** The instruction count when the step began. */
  instret = 0;
  private rsp = 0;
  private opcode = 0;
  /** The stepped instruction's bytes (every step reads them: no allocation). */
  private readonly insnBytes = new Uint8Array(15);

  constructor(private readonly cpu: GuestCpu, private readonly backend: VmBackend, private readonly memory: GuestMemory) {}

  /** True if the step is armed and an instruction has retired since. */
  done(): boolean {
    return this.armed && this.cpu.instret > this.instret;
  }

  arm(): void {
    const c = this.cpu;
    const rf = c.getReg('rflags');
    this.guestTF = (rf.lo & RFLAGS_TF) !== 0;
    this.rsp = c.getGpr(RSP).lo;
    this.opcode = this.opcodeAt(c.getReg('rip').lo);
    this.instret = c.instret;
    this.armed = true;
    if (this.backend.name === 'vmx' && this.backend.guestInterruptibility() !== 0 && !this.guestTF) {
      // In an STI / MOV-SS shadow VM entry requires pending-debug BS = TF (26.3.1.5), which
      // would re-raise the trap already reported: this one step is taken with MTF instead.
      this.viaMtf = true;
      this.backend.setMtf(true);
      return;
    }
    c.setReg('rflags', { lo: (rf.lo | RFLAGS_TF) >>> 0, hi: rf.hi });
  }

  /** The first opcode byte after legacy and REX prefixes. */
  private opcodeAt(rip: number): number {
    const bytes = this.readLinear(rip, 15, this.insnBytes);
    if (bytes === undefined) return 0;
    for (let i = 0; i < bytes.length; i++) {
      const b = bytes[i];
      const prefix = b === 0x66 || b === 0x67 || b === 0xf2 || b === 0xf3 || b === 0xf0 || b === 0x2e || b === 0x36 ||
        b === 0x3e || b === 0x26 || b === 0x64 || b === 0x65 || (b >= 0x40 && b <= 0x4f);
      if (!prefix) return b;
    }
    return 0;
  }

  /**
   * End of a step: give the guest its own TF back, also in what the step pushed. `mtfCap`:
   * the client's MTF capability. `afterEvent`: the step ended right after an event's
   * delivery, which cleared TF for the handler (the guest's own TF is in the frame only).
   */
  finish(mtfCap: boolean, afterEvent = false): void {
    const c = this.cpu;
    const mem = this.memory;
    const rf = c.getReg('rflags');
    const rsp = c.getGpr(RSP).lo;
    let guestTF = this.guestTF;
    if (this.opcode === OPCODE_POPF || this.opcode === OPCODE_IRET) {
      guestTF = (rf.lo & RFLAGS_TF) !== 0; // POPF / IRET loaded the guest's own image
    } else if (this.opcode === OPCODE_PUSHF) {
      this.fixPushedTF(rsp);
    }
    // An event delivered during the step pushed RFLAGS with our TF: a frame [rip, cs, rflags,
    // rsp, ss], maybe below an error code and what the handler's first instruction pushed;
    // recognised by the saved RSP and CS.
    const cs = c.getReg('cs').lo;
    for (let skip = 0; skip <= 64 && rsp + skip + 40 <= this.rsp + 16; skip += 8) {
      const frame = this.readLinear(rsp + skip, 40);
      if (frame === undefined) break;
      const f = new DataView(frame.buffer);
      if (f.getUint32(24, true) === this.rsp && f.getUint32(8, true) === cs && (f.getUint32(16, true) & RFLAGS_TF) !== 0) {
        this.fixPushedTF(rsp + skip + 16);
        break;
      }
    }
    if (afterEvent) guestTF = (rf.lo & RFLAGS_TF) !== 0;
    c.setReg('rflags', { lo: guestTF ? (rf.lo | RFLAGS_TF) >>> 0 : (rf.lo & ~RFLAGS_TF) >>> 0, hi: rf.hi });
    // A step that ended on a slice boundary left its BS trap pending: it was this step's.
    if (!this.guestTF) this.backend.clearPendingSingleStep();
    if (this.viaMtf) {
      this.viaMtf = false;
      this.backend.setMtf(mtfCap);
    }
    this.armed = false;
  }

  private fixPushedTF(addr: number): void {
    const b = this.readLinear(addr, 8);
    if (b === undefined) return;
    const v = new DataView(b.buffer);
    const lo = v.getUint32(0, true);
    v.setUint32(0, this.guestTF ? (lo | RFLAGS_TF) >>> 0 : (lo & ~RFLAGS_TF) >>> 0, true);
    this.writeLinear(addr, b);
  }

  /** Guest LINEAR memory through the vCPU's paging structures (no faults): undefined if unmapped. `into`: reused for the bytes. */
  private readLinear(addr: number, len: number, into?: Uint8Array): Uint8Array | undefined {
    const c = this.cpu;
    if (c.accessLinear === undefined) return this.memory.read(addr, len);
    const out = into ?? new Uint8Array(len);
    return c.accessLinear({ lo: addr >>> 0, hi: Math.floor(addr / 4294967296) >>> 0 }, out, false) ? out : undefined;
  }

  private writeLinear(addr: number, data: Uint8Array): boolean {
    const c = this.cpu;
    if (c.accessLinear === undefined) return this.memory.write(addr, data);
    return c.accessLinear({ lo: addr >>> 0, hi: Math.floor(addr / 4294967296) >>> 0 }, data, true);
  }
}
