/**
 * The argument checks every VmApi implementation makes on a client's request, in one place
 * so that the simulated VM and the kvm backend refuse the same requests with the same words.
 */
import { U64 } from '../u64';
import { RegName, isRegName } from './registers';
import { Capability, DebuggerSlot, VmApiError } from './vm-api';

const CAPABILITIES: readonly Capability[] = ['intercept-db', 'intercept-bp', 'mtf', 'rflags-tf'];
const SLOT_TYPES: readonly string[] = ['exec', 'write', 'io', 'access'];

export function checkCapability(cap: Capability): void {
  if (!CAPABILITIES.includes(cap)) throw new VmApiError(`unknown capability '${String(cap)}'`);
}

/** At most four slots; each with a known type, a length of 1/2/4/8 (exec: 1), aligned. */
export function checkDebuggerSlots(slots: ReadonlyArray<DebuggerSlot | null>): void {
  if (slots.length > 4) throw new VmApiError('at most 4 debugger slots');
  for (const s of slots) {
    if (s === null || s === undefined) continue;
    if (!SLOT_TYPES.includes(s.type)) throw new VmApiError(`bad slot type '${String(s.type)}'`);
    if (![1, 2, 4, 8].includes(s.len)) throw new VmApiError(`bad slot length ${String(s.len)}`);
    if (s.type === 'exec' && s.len !== 1) throw new VmApiError('exec slots have length 1');
    if (s.address.lo % s.len !== 0) throw new VmApiError(`slot address not aligned to its length ${s.len}`);
  }
}

/** A known register name and a value of two 32-bit halves. */
export function checkRegisterWrite(reg: RegName, value: U64): void {
  if (!isRegName(reg)) throw new VmApiError(`unknown register '${String(reg)}'`);
  if (!Number.isInteger(value.lo) || !Number.isInteger(value.hi) || value.lo < 0 || value.hi < 0 ||
      value.lo > 0xffffffff || value.hi > 0xffffffff) {
    throw new VmApiError(`bad value for ${reg}`);
  }
}

/** The FXSAVE image size of VmApi.getFpuState/setFpuState. */
export const FPU_IMAGE_BYTES = 512;
/** The writable MXCSR bits (FXRSTOR's rule: any other bit set is refused). */
const MXCSR_WRITABLE = 0xffff;

/** An FXSAVE image of 512 bytes whose MXCSR sets no reserved bit. */
export function checkFpuImage(image: Uint8Array): void {
  if (!(image instanceof Uint8Array) || image.length !== FPU_IMAGE_BYTES) {
    throw new VmApiError(`an FPU state is a ${FPU_IMAGE_BYTES}-byte FXSAVE image, not ${image instanceof Uint8Array ? image.length : typeof image} bytes`);
  }
  const mx = new DataView(image.buffer, image.byteOffset, image.byteLength).getUint32(24, true);
  if ((mx & ~MXCSR_WRITABLE) !== 0) throw new VmApiError(`mxcsr: reserved bits set (0x${(mx >>> 0).toString(16)})`);
}
