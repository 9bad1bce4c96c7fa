/** Records of the native tracer (tracer.c) and the simulator runner, in one shape. */
export const enum Kind {
  Step = 0,
  Out = 1,
  In = 2,
  Int3 = 3,
  Fault = 4,
  Exit = 5,
  Max = 6,
  Dump = 7,
}

export const RECORD_WORDS = 53;
export const RECORD_BYTES = RECORD_WORDS * 8;
export const REG_NAMES = ['rax', 'rcx', 'rdx', 'rbx', 'rsp', 'rbp', 'rsi', 'rdi', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'rip', 'rflags'] as const;

/**
 * One record: kind, aux, then 18 registers (16 GPRs in encoding order, RIP, RFLAGS) as
 * lo/hi 32-bit halves: regs[2*i] = lo, regs[2*i+1] = hi; then XMM0-15 (4 dwords each) and
 * MXCSR.
 */
export interface TraceRecord {
  kind: Kind;
  /** OUT: port | size << 16 | value << 32 (as lo/hi); FAULT: signal; EXIT: value; DUMP: size. */
  auxLo: number;
  auxHi: number;
  regs: Uint32Array;
  /** XMM0-15 as 64 dwords (register r lane k at 4*r+k). */
  xmm: Uint32Array;
  mxcsr: number;
  /** For DUMP records: the bytes. */
  data?: Uint8Array;
}

export function hex64(lo: number, hi: number): string {
  return '0x' + (hi >>> 0).toString(16).padStart(8, '0') + (lo >>> 0).toString(16).padStart(8, '0');
}

/** Incremental parser of the tracer's byte stream. */
export class TraceParser {
  private buf: Buffer = Buffer.alloc(0);
  private pendingDump: { size: number; rec: TraceRecord } | undefined;

  push(chunk: Buffer): TraceRecord[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: TraceRecord[] = [];
    let off = 0;
    for (;;) {
      if (this.pendingDump) {
        const padded = (this.pendingDump.size + 7) & ~7;
        if (this.buf.length - off < padded) break;
        this.pendingDump.rec.data = new Uint8Array(this.buf.subarray(off, off + this.pendingDump.size));
        out.push(this.pendingDump.rec);
        off += padded;
        this.pendingDump = undefined;
        continue;
      }
      if (this.buf.length - off < RECORD_BYTES) break;
      const rec = this.decode(off);
      off += RECORD_BYTES;
      if (rec.kind === Kind.Dump) this.pendingDump = { size: rec.auxLo, rec };
      else out.push(rec);
    }
    this.buf = this.buf.subarray(off);
    return out;
  }

  private decode(off: number): TraceRecord {
    const b = this.buf;
    const regs = new Uint32Array(36);
    for (let i = 0; i < 36; i++) regs[i] = b.readUInt32LE(off + 16 + 4 * i);
    const xmm = new Uint32Array(64);
    for (let i = 0; i < 64; i++) xmm[i] = b.readUInt32LE(off + 160 + 4 * i);
    const mxcsr = b.readUInt32LE(off + 416);
    return { kind: b.readUInt32LE(off) as Kind, auxLo: b.readUInt32LE(off + 8), auxHi: b.readUInt32LE(off + 12), regs, xmm, mxcsr };
  }
}
