/**
 * Per-vCPU stacks of the guest ABI: the top of guest RAM is reserved, one 64 KiB stack per
 * vCPU, vCPU 0 topmost. RSP at entry is the top of that vCPU's stack (16-byte aligned).
 */
export const STACK_SIZE = 0x10000;

/** Bytes reserved at the top of RAM for the stacks of `vcpus` vCPUs. */
export function stackAreaSize(vcpus: number): number {
  return STACK_SIZE * vcpus;
}

/** Lowest address of the stack area (everything from here to memSize is stacks). */
export function stackAreaBase(memSize: number, vcpus: number): number {
  return alignDown16(memSize) - stackAreaSize(vcpus);
}

/** Initial RSP of vCPU `vcpu` (0-based) out of `vcpus`. */
export function stackTop(memSize: number, vcpu: number, vcpus: number): number {
  if (!Number.isInteger(vcpu) || vcpu < 0 || vcpu >= vcpus) {
    throw new RangeError(`vCPU index ${vcpu} out of range 0..${vcpus - 1}`);
  }
  const top = alignDown16(memSize) - STACK_SIZE * vcpu;
  if (top - STACK_SIZE < 0) throw new RangeError(`guest memory too small for ${vcpus} stacks`);
  return top;
}

function alignDown16(x: number): number {
  return x - (x % 16);
}
