/**
 * The x87/SSE register file of one vCPU: XMM0-15, MXCSR, the x87 control/status/tag words
 * and the eight 80-bit ST registers (kept as bytes, in FXSAVE layout: the simulator has no
 * x87 arithmetic, only the state that FNINIT/FXSAVE/FXRSTOR/XSAVE/XRSTOR move), and XCR0.
 *
 * XMM registers live in one buffer seen through typed arrays of every lane width (a
 * little-endian host, as the rest of the CPU assumes). Slots 16-18 are scratch registers
 * for memory operands and results, so that every operation works on slot indices.
 */

/** MXCSR after reset/FNINIT-independent: all exceptions masked, round to nearest. */
export const MXCSR_DEFAULT = 0x1f80;
/** Writable MXCSR bits (FZ, RC, masks, DAZ, flags); others #GP on LDMXCSR/FXRSTOR/XRSTOR. */
export const MXCSR_MASK = 0xffff;
/** Scratch XMM slots: SRC holds a memory source operand, TMP a result being built. */
export const XMM_SRC = 16;
export const XMM_TMP = 17;
export const XMM_TMP2 = 18;
const SLOTS = 19;

/** XCR0 bits this CPU supports: x87 (bit 0) and SSE (bit 1). */
export const XCR0_SUPPORTED = 3;

export class FpuState {
  readonly buf = new ArrayBuffer(SLOTS * 16);
  readonly u8 = new Uint8Array(this.buf);
  readonly i8 = new Int8Array(this.buf);
  readonly u16 = new Uint16Array(this.buf);
  readonly i16 = new Int16Array(this.buf);
  readonly u32 = new Uint32Array(this.buf);
  readonly i32 = new Int32Array(this.buf);
  readonly f32 = new Float32Array(this.buf);
  readonly f64 = new Float64Array(this.buf);

  mxcsr = MXCSR_DEFAULT;
  fcw = 0x37f;
  fsw = 0;
  /** Abridged tag word (FXSAVE form): bit i set = ST register i is valid. */
  ftw = 0;
  fop = 0;
  fipLo = 0; fipHi = 0;
  fdpLo = 0; fdpHi = 0;
  /** ST0-7 (physical R0-R7) as 80-bit values, 16 bytes apart (FXSAVE bytes 32-159). */
  readonly st = new Uint8Array(128);
  xcr0 = 1;

  /** FNINIT: the x87 part only (MXCSR and XMM are untouched). */
  fninit(): void {
    this.fcw = 0x37f;
    this.fsw = 0;
    this.ftw = 0;
    this.fop = 0;
    this.fipLo = this.fipHi = this.fdpLo = this.fdpHi = 0;
  }

  /** Power-on/INIT state: x87 as FNINIT leaves it but FCW 0x40, MXCSR 0x1F80, XMM zero. */
  reset(): void {
    this.fninit();
    this.fcw = 0x40;
    this.st.fill(0);
    this.u8.fill(0);
    this.mxcsr = MXCSR_DEFAULT;
    this.xcr0 = 1;
  }

  /** Lane 0..3 of XMM register r as a 32-bit value. */
  xmmDword(r: number, lane: number): number {
    return this.u32[r * 4 + lane];
  }
}
