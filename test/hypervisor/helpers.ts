import { Vm, createVm } from '../../vmm/api/create-vm';
import { DEFAULT_VM_OPTIONS, VmOptions } from '../../vmm/api/vm-options';
import { LoadedImage } from '../../vmm/loader/elf-types';
import { FakeCpu, FakeOp } from './fake-cpu';

export const EMPTY_IMAGE: LoadedImage = { entry: 0x100000, segments: [], symbols: new Map() };

export interface FakeVm { vm: Vm; cpus: FakeCpu[] }

/** A VM on fake CPUs; `script` is queued on vCPU 0. */
export function fakeVm(opts: Partial<VmOptions>, script: FakeOp[] = []): FakeVm {
  const cpus: FakeCpu[] = [];
  const vm = createVm(EMPTY_IMAGE, { ...DEFAULT_VM_OPTIONS, memMiB: 1, ...opts }, (_mem, phys) => {
    const c = new FakeCpu(phys);
    cpus.push(c);
    return c;
  });
  cpus[0].script.push(...script);
  return { vm, cpus };
}

export const u = (lo: number, hi = 0): { lo: number; hi: number } => ({ lo: lo >>> 0, hi: hi >>> 0 });

/** Ops: the guest sets a write watchpoint on `addr` (8 bytes) in slot 0 with L0. */
export function guestWatch(addr: number): FakeOp[] {
  return [
    { op: 'mov-to-dr', dr: 0, value: u(addr) },
    { op: 'mov-to-dr', dr: 7, value: u(0x400 | 1 | (0x9 << 16)) },
  ];
}

/** CPUID exits (handled by the hypervisor) followed by nothing. */
export function cpuidExits(n: number): FakeOp[] {
  return Array.from({ length: n }, () => ({ op: 'exit' as const, exit: { kind: 'cpuid' as const, length: 2 } }));
}

/** An I/O exit to an unattached port. */
export const ioExit: FakeOp = { op: 'exit', exit: { kind: 'io', length: 1, port: 0x80, size: 1, isIn: false, string: false, rep: false } };
