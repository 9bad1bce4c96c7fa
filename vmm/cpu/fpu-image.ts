/**
 * The legacy (FXSAVE) image of the x87/SSE state, built in one scratch buffer: what FXSAVE,
 * FXRSTOR, XSAVE and XRSTOR move to and from guest memory, and what the vmm's register
 * interface hands out as a vCPU's FPU state (VmApi.getFpuState, the layout KVM_GET_FPU and
 * gdb's x87/SSE registers map onto).
 */
import { FpuState, MXCSR_MASK } from './fpu-state';

/** FXSAVE writes bytes 0-415 (416-511 are reserved or available to software). */
export const FXSAVE_BYTES = 416;
/** The legacy region of the FXSAVE/XSAVE area. */
export const FXSAVE_AREA_BYTES = 512;
/** The XSAVE area for x87|SSE: the 512-byte legacy region and the 64-byte header. */
export const XSAVE_AREA_BYTES = 576;

/** The scratch image the instructions fill and read (one per process: never re-entered). */
export const image = new Uint8Array(XSAVE_AREA_BYTES);
export const imageView = new DataView(image.buffer);

export function saveX87(f: FpuState, rexW: boolean): void {
  const v = imageView;
  v.setUint16(0, f.fcw, true);
  v.setUint16(2, f.fsw, true);
  image[4] = f.ftw;
  v.setUint16(6, f.fop, true);
  v.setUint32(8, f.fipLo, true);
  v.setUint32(12, rexW ? f.fipHi : 0, true); // without REX.W: FCS and reserved (0 in 64-bit mode)
  v.setUint32(16, f.fdpLo, true);
  v.setUint32(20, rexW ? f.fdpHi : 0, true);
  image.set(f.st, 32);
}
export function saveSse(f: FpuState): void {
  imageView.setUint32(24, f.mxcsr, true);
  imageView.setUint32(28, MXCSR_MASK, true);
  image.set(f.u8.subarray(0, 256), 160);
}
export function loadX87(f: FpuState, rexW: boolean): void {
  const v = imageView;
  f.fcw = v.getUint16(0, true);
  f.fsw = v.getUint16(2, true);
  f.ftw = image[4];
  f.fop = v.getUint16(6, true) & 0x7ff;
  f.fipLo = v.getUint32(8, true);
  f.fipHi = rexW ? v.getUint32(12, true) : 0;
  f.fdpLo = v.getUint32(16, true);
  f.fdpHi = rexW ? v.getUint32(20, true) : 0;
  for (let k = 0; k < 8; k++) { // 10 bytes per register; the padding is not state
    for (let b = 0; b < 10; b++) f.st[k * 16 + b] = image[32 + k * 16 + b];
  }
}
export function loadSse(f: FpuState): void {
  f.u8.set(image.subarray(160, 416), 0);
}
export function initX87(f: FpuState): void {
  f.fninit();
  f.st.fill(0);
}

/** The 64-bit (REX.W) FXSAVE image of `f`, 512 bytes, bytes 416-511 zero. */
export function fxsaveImage(f: FpuState): Uint8Array {
  image.fill(0, 0, FXSAVE_AREA_BYTES);
  saveX87(f, true);
  saveSse(f);
  return image.slice(0, FXSAVE_AREA_BYTES);
}

/** Loads a 64-bit FXSAVE image (512 bytes, MXCSR already checked) into `f` as FXRSTOR with REX.W. */
export function loadFxsaveImage(f: FpuState, img: Uint8Array): void {
  image.set(img.subarray(0, FXSAVE_BYTES), 0);
  loadX87(f, true);
  loadSse(f);
  f.mxcsr = imageView.getUint32(24, true);
}
