/**
 * The kvm backend: the same guest images, guest ABI and VmApi as the simulated VMs, on the
 * host's real /dev/kvm (no in-kernel irqchip; userspace does the ABI's ports, timer and HLT).
 *
 * VmApi is synchronous: run() starts the vCPU threads, waits at most the slice (budget
 * guest instructions taken as nanoseconds, at most MAX_SLICE_MS) for exits, handles the ones
 * the hypervisor handles and restarts those vCPUs, and at the end kicks every vCPU out of
 * KVM_RUN to an instruction boundary and completes pending I/O. Between two run() calls no
 * vCPU is in KVM_RUN, so every other call sees a stopped, consistent vCPU; node's event loop
 * is never blocked longer than a slice.
 *
 * Differences from the simulated backends (README "kvm"): guest instructions are not
 * counted; the timer period is host time (1 ns per guest instruction, at least
 * MIN_TIMER_MS); CPUID, MSR and most exits are handled inside the host kernel and are not
 * seen here; --preempt-every is the host's own scheduling; the host kernel switches the
 * debug registers (there is no --dr-switch).
 */
import { PORT_CONSOLE } from '../devices/debug-console';
import { PORT_EXIT } from '../devices/exit-port';
import { PORT_TIMER } from '../devices/guest-timer';
import { LoadedImage } from '../loader/elf-types';
import { STACK_SIZE, stackAreaBase, stackTop } from '../loader/stacks';
import { U64, hex, u64 } from '../u64';
import { DR6_BS, DR6_RESERVED1, DR7_RESERVED1, dr7EncodeSlot, dr7GlobalEnable, dr7LocalEnable } from '../x86/debug-regs';
import { MSR_DEBUGCTL, MSR_KERNEL_GS_BASE } from '../x86/msr';
import { RF as RFLAGS_RF } from '../x86/rflags';
import { RegName, isRegName } from '../api/registers';
import { checkCapability, checkDebuggerSlots, checkFpuImage, checkRegisterWrite } from '../api/request-checks';
import {
  BackendName, Capability, DebugLeak, DebuggerSlot, VmApi, VmApiError, VmStats, VmStop,
} from '../api/vm-api';
import { HostScenario, VmOptions } from '../api/vm-options';
import { KvmBinding } from './binding';
import { KvmDevice, findCpuidEntry, openKvmDevice } from './kvm-device';
import { KvmVcpu } from './kvm-vcpu';
import { kvmOptionProblems } from './kvm-options';
import { BOOT_AREA_BASE, BOOT_AREA_SIZE, buildBootArea, setLongModeSregs } from './long-mode';
import {
  DEBUGREGS_DR6, DEBUGREGS_DR7, GUEST_DEBUG_DEBUGREG, KVM_DEBUGREGS_SIZE, KVM_GUEST_DEBUG_SIZE, KVM_REGS_ORDER,
  KVM_REGS_SIZE, KVM_SREGS_SIZE, KVM_TRANSLATION_SIZE, KVM_XSAVE_SIZE, TRANSLATION_PHYSICAL, TRANSLATION_VALID, fxsaveIntoXsave, xsaveToFxsave, KvmRegName, SregControl, SregSegment, controlOffset, getU64, segmentOffset,
  setNumber64, setU64, getNumber64,
} from './structs';

/** Guest instructions per millisecond assumed for budgets and timer periods (1 ns each). */
export const INSTRUCTIONS_PER_MS = 1_000_000;
/**
 * The shortest slice: a kick that lands before the vCPU thread has entered the guest runs
 * nothing at all, so a tiny budget would never make progress.
 */
const MIN_SLICE_MS = 0.2;
/** The longest a run() call keeps node's event loop waiting. */
const MAX_SLICE_MS = 20;
/** The shortest timer period on kvm: each tick costs a kick and an exit to userspace. */
export const MIN_TIMER_MS = 1;
const DRAIN_TIMEOUT_MS = 2000;
/**
 * Periods a tick waits before it is delivered at an exit the guest did not make (kick,
 * debug): host time overstates guest progress (a slow nested guest runs ~1 instruction/us),
 * so a tick there comes much earlier, in instructions, than on our CPU.
 */
const LATE_TICK_PERIODS = 10;


const SEGMENT_REGS: Partial<Record<RegName, SregSegment>> = { cs: 'cs', ss: 'ss', ds: 'ds', es: 'es', fs: 'fs', gs: 'gs' };
const CONTROL_REGS: Partial<Record<RegName, SregControl>> = { cr0: 'cr0', cr2: 'cr2', cr3: 'cr3', cr4: 'cr4', cr8: 'cr8', efer: 'efer' };
const DR_SLOT: Partial<Record<RegName, number>> = { dr0: 0, dr1: 8, dr2: 16, dr3: 24, dr6: DEBUGREGS_DR6, dr7: DEBUGREGS_DR7 };

/** _IO(KVMIO, 0x9a): not among the addon's exported constants, so spelled out. */
const KVM_NMI = 0xae9a;

export class KvmVm implements VmApi {
  readonly backend: BackendName = 'kvm';
  readonly vcpuCount: number;
  readonly memorySize: number;
  readonly hostScenario: HostScenario = 'idle';
  /** Guest RAM: the very bytes KVM maps into the guest (no copies). */
  readonly ram: Uint8Array;
  private readonly dev: KvmDevice;
  private readonly b: KvmBinding;
  private readonly vmFd: number;
  private readonly vcpus: KvmVcpu[] = [];
  private readonly byHandle = new Map<number, KvmVcpu>();
  private readonly exits: Record<string, number> = {};
  private kvmRuns = 0;
  private console = '';
  private finalStop: VmStop | null = null;
  private closed = false;
  private lastVcpu = 0;
  /** The last KVM_EXIT_DEBUG as KVM reported it (hostcheck shows its DR6 as evidence). */
  lastDebugExit: { vcpu: number; exception: number; pc: number; dr6: number; dr7: number } | null = null;
  // keeps the boot area's mapping alive as long as the VM
  private readonly bootArea: ArrayBuffer;
  private readonly ramBuffer: ArrayBuffer;

  constructor(image: LoadedImage, readonly opts: VmOptions) {
    const problems = kvmOptionProblems(opts);
    if (problems.length > 0) throw new VmApiError(problems[0]);
    if (!Number.isInteger(opts.vcpus) || opts.vcpus < 1 || opts.vcpus > 64) throw new VmApiError(`--vcpus must be 1..64, not ${opts.vcpus}`);
    if (!Number.isInteger(opts.memMiB) || opts.memMiB < 1 || opts.memMiB > 2048) throw new VmApiError(`--mem must be 1..2048 MiB, not ${opts.memMiB}`);
    this.vcpuCount = opts.vcpus;
    this.memorySize = opts.memMiB * 1024 * 1024;
    if (this.memorySize < STACK_SIZE * opts.vcpus + 0x1000) throw new VmApiError(`--mem ${opts.memMiB} MiB is too small for ${opts.vcpus} vCPU stacks`);
    const stackBase = stackAreaBase(this.memorySize, opts.vcpus);
    for (const seg of image.segments) {
      const end = seg.address + Math.max(seg.memSize, seg.data.length);
      if (seg.address < 0 || end > stackBase) {
        throw new VmApiError(`segment at 0x${seg.address.toString(16)} does not fit below the vCPU stacks at 0x${stackBase.toString(16)}`);
      }
    }
    this.dev = openKvmDevice();
    this.b = this.dev.binding;
    const c = this.b.constants;
    this.checkLayout();
    this.vmFd = this.b.ioctl(this.dev.fd, c.KVM_CREATE_VM, 0);
    if (this.vmFd < 0) throw new VmApiError(`KVM_CREATE_VM failed (errno ${-this.vmFd})`);
    try {
      this.ramBuffer = this.b.mapAnonymous(this.memorySize);
      this.ram = new Uint8Array(this.ramBuffer);
      this.bootArea = this.b.mapAnonymous(BOOT_AREA_SIZE);
      buildBootArea(new DataView(this.bootArea), this.dev.gigabytePages);
      this.check(this.b.setMemoryRegion(this.vmFd, 0, 0, this.ramBuffer), 'KVM_SET_USER_MEMORY_REGION (RAM)');
      this.check(this.b.setMemoryRegion(this.vmFd, 1, BOOT_AREA_BASE, this.bootArea), 'KVM_SET_USER_MEMORY_REGION (boot area)');
      for (const seg of image.segments) {
        this.ram.fill(0, seg.address, seg.address + seg.memSize);
        this.ram.set(seg.data, seg.address);
      }
      for (let i = 0; i < opts.vcpus; i++) this.vcpus.push(this.createVcpu(i, image.entry));
    } catch (e) {
      this.close();
      throw e;
    }
  }

  /** The struct layouts in structs.ts must be those of the header the addon was built with. */
  private checkLayout(): void {
    const c = this.b.constants;
    const expect: Array<[string, number, number]> = [
      ['kvm_regs', c.sizeof_kvm_regs, KVM_REGS_SIZE], ['kvm_sregs', c.sizeof_kvm_sregs, KVM_SREGS_SIZE],
      ['kvm_debugregs', c.sizeof_kvm_debugregs, KVM_DEBUGREGS_SIZE], ['kvm_guest_debug', c.sizeof_kvm_guest_debug, KVM_GUEST_DEBUG_SIZE],
      ['kvm_sregs.cr0', c.off_sregs_cr0, controlOffset('cr0')], ['kvm_debugregs.dr7', c.off_debugregs_dr7, DEBUGREGS_DR7],
      ['kvm_guest_debug.debugreg', c.off_guest_debug_debugreg, GUEST_DEBUG_DEBUGREG],
      ['kvm_xsave', c.sizeof_kvm_xsave, KVM_XSAVE_SIZE], ['kvm_translation', c.sizeof_kvm_translation, KVM_TRANSLATION_SIZE],
    ];
    for (const [what, real, ours] of expect) {
      if (real !== ours) throw new VmApiError(`kvm: struct ${what} is ${real} in <linux/kvm.h>, ${ours} here`);
    }
  }

  private check(r: number, what: string): void {
    if (r < 0) throw new VmApiError(`${what} failed (errno ${-r})`);
  }

  private createVcpu(i: number, entry: number): KvmVcpu {
    const c = this.b.constants;
    const fd = this.b.ioctl(this.vmFd, c.KVM_CREATE_VCPU, i);
    this.check(fd, 'KVM_CREATE_VCPU');
    this.setCpuid(fd, i);
    const { index, run } = this.b.addVcpu(fd, this.dev.vcpuMmapSize);
    const v = new KvmVcpu(i, fd, index, run, this.b);
    this.byHandle.set(index, v);
    const sregs = new Uint8Array(KVM_SREGS_SIZE);
    this.check(this.b.ioctl(fd, c.KVM_GET_SREGS, sregs), 'KVM_GET_SREGS');
    setLongModeSregs(new DataView(sregs.buffer));
    this.check(this.b.ioctl(fd, c.KVM_SET_SREGS, sregs), 'KVM_SET_SREGS');
    const regs = new Uint8Array(KVM_REGS_SIZE);
    const rv = new DataView(regs.buffer);
    const reg = (n: KvmRegName, value: number): void => setNumber64(rv, 8 * KVM_REGS_ORDER.indexOf(n), value);
    reg('rip', entry);
    reg('rflags', 2);
    reg('rsp', stackTop(this.memorySize, i, this.vcpuCount));
    reg('rdi', i);
    reg('rsi', this.vcpuCount);
    this.check(this.b.ioctl(fd, c.KVM_SET_REGS, regs), 'KVM_SET_REGS');
    const dr = new Uint8Array(KVM_DEBUGREGS_SIZE);
    const dv = new DataView(dr.buffer);
    setNumber64(dv, DEBUGREGS_DR6, DR6_RESERVED1);
    setNumber64(dv, DEBUGREGS_DR7, 0x400);
    this.check(this.b.ioctl(fd, c.KVM_SET_DEBUGREGS, dr), 'KVM_SET_DEBUGREGS');
    return v;
  }

  /** KVM's supported CPUID, with this vCPU's APIC ID in leaf 1 (as our CPUID does). */
  private setCpuid(fd: number, i: number): void {
    const table = this.dev.supportedCpuid.slice();
    const leaf1 = findCpuidEntry(table, this.b, 1, 0);
    if (leaf1) {
      const dv = new DataView(table.buffer);
      dv.setUint32(leaf1.offset + 16, ((leaf1.ebx & 0x00ffffff) | ((i & 0xff) << 24)) >>> 0, true);
    }
    this.check(this.b.ioctl(fd, this.b.constants.KVM_SET_CPUID2, table), 'KVM_SET_CPUID2');
  }

  private vcpu(i: number): KvmVcpu {
    if (this.closed) throw new VmApiError('the VM is closed');
    if (!Number.isInteger(i) || i < 0 || i >= this.vcpus.length) throw new VmApiError(`no vCPU ${i} (this VM has ${this.vcpus.length})`);
    return this.vcpus[i];
  }

  // ---- registers ----------------------------------------------------------------------

  private getStruct(v: KvmVcpu, request: string, size: number): DataView {
    const buf = new Uint8Array(size);
    this.check(this.b.ioctl(v.fd, this.b.constants[request], buf), request);
    return new DataView(buf.buffer);
  }

  private setStruct(v: KvmVcpu, request: string, dv: DataView): number {
    return this.b.ioctl(v.fd, this.b.constants[request], new Uint8Array(dv.buffer));
  }

  private msr(v: KvmVcpu, index: number, value?: U64): U64 {
    const buf = new DataView(new ArrayBuffer(8 + 16));
    buf.setUint32(0, 1, true);
    buf.setUint32(8, index, true);
    if (value !== undefined) setU64(buf, 16, value);
    const r = this.b.ioctl(v.fd, this.b.constants[value === undefined ? 'KVM_GET_MSRS' : 'KVM_SET_MSRS'], new Uint8Array(buf.buffer));
    if (r !== 1) throw new VmApiError(`MSR 0x${index.toString(16)}: KVM refused (${r})`);
    return getU64(buf, 16);
  }

  getRegister(vcpu: number, reg: RegName): U64 {
    const v = this.vcpu(vcpu);
    if (!isRegName(reg)) throw new VmApiError(`unknown register '${String(reg)}'`);
    const gi = (KVM_REGS_ORDER as readonly string[]).indexOf(reg);
    if (gi >= 0) {
      return getU64(this.getStruct(v, 'KVM_GET_REGS', KVM_REGS_SIZE), 8 * gi);
    }
    const seg = SEGMENT_REGS[reg];
    if (seg) return u64(this.getStruct(v, 'KVM_GET_SREGS', KVM_SREGS_SIZE).getUint16(segmentOffset(seg) + 12, true));
    if (reg === 'fs_base' || reg === 'gs_base') {
      return getU64(this.getStruct(v, 'KVM_GET_SREGS', KVM_SREGS_SIZE), segmentOffset(reg === 'fs_base' ? 'fs' : 'gs'));
    }
    const cr = CONTROL_REGS[reg];
    if (cr) return getU64(this.getStruct(v, 'KVM_GET_SREGS', KVM_SREGS_SIZE), controlOffset(cr));
    const dr = DR_SLOT[reg];
    if (dr !== undefined) return getU64(this.getStruct(v, 'KVM_GET_DEBUGREGS', KVM_DEBUGREGS_SIZE), dr);
    if (reg === 'debugctl') return this.msr(v, MSR_DEBUGCTL);
    if (reg === 'kernel_gs_base') return this.msr(v, MSR_KERNEL_GS_BASE);
    throw new VmApiError(`register ${reg} is not available on kvm`);
  }

  getFpuState(vcpu: number): Uint8Array {
    return xsaveToFxsave(this.getXsave(this.vcpu(vcpu)));
  }

  setFpuState(vcpu: number, image: Uint8Array): void {
    const v = this.vcpu(vcpu);
    checkFpuImage(image);
    const x = this.getXsave(v);
    fxsaveIntoXsave(x, image);
    this.check(this.b.ioctl(v.fd, this.b.constants.KVM_SET_XSAVE, x), 'KVM_SET_XSAVE');
  }

  private getXsave(v: KvmVcpu): Uint8Array {
    const x = new Uint8Array(KVM_XSAVE_SIZE);
    this.check(this.b.ioctl(v.fd, this.b.constants.KVM_GET_XSAVE, x), 'KVM_GET_XSAVE');
    return x;
  }

  setRegister(vcpu: number, reg: RegName, value: U64): void {
    const v = this.vcpu(vcpu);
    checkRegisterWrite(reg, value);
    const gi = (KVM_REGS_ORDER as readonly string[]).indexOf(reg);
    if (gi >= 0) {
      if (reg === 'rflags' && (value.hi !== 0 || (value.lo & 2) === 0)) throw new VmApiError('rflags: bit 1 must be 1 and bits 63:22 0');
      const dv = this.getStruct(v, 'KVM_GET_REGS', KVM_REGS_SIZE);
      setU64(dv, 8 * gi, value);
      this.check(this.setStruct(v, 'KVM_SET_REGS', dv), 'KVM_SET_REGS');
      if (reg === 'rip') v.rfAt = null;
      if (reg === 'rflags' && v.halt === 'forever' && (value.lo & 0x200) !== 0 && v.timer) v.halt = 'timer';
      return;
    }
    const seg = SEGMENT_REGS[reg];
    const cr = CONTROL_REGS[reg];
    if (seg || cr || reg === 'fs_base' || reg === 'gs_base') {
      const dv = this.getStruct(v, 'KVM_GET_SREGS', KVM_SREGS_SIZE);
      if (seg) {
        if (value.hi !== 0 || value.lo > 0xffff) throw new VmApiError(`${reg}: a selector is 16 bits`);
        dv.setUint16(segmentOffset(seg) + 12, value.lo, true);
      } else if (cr) setU64(dv, controlOffset(cr), value);
      else setU64(dv, segmentOffset(reg === 'fs_base' ? 'fs' : 'gs'), value);
      const r = this.setStruct(v, 'KVM_SET_SREGS', dv);
      if (r < 0) throw new VmApiError(`${reg}: KVM refused the value (errno ${-r})`);
      return;
    }
    const dr = DR_SLOT[reg];
    if (dr !== undefined) {
      const dv = this.getStruct(v, 'KVM_GET_DEBUGREGS', KVM_DEBUGREGS_SIZE);
      setU64(dv, dr, value);
      const r = this.setStruct(v, 'KVM_SET_DEBUGREGS', dv);
      if (r < 0) throw new VmApiError(`${reg}: KVM refused the value (errno ${-r}; DR6/DR7 bits 63:32 must be 0)`);
      return;
    }
    if (reg === 'debugctl') { this.msr(v, MSR_DEBUGCTL, value); return; }
    if (reg === 'kernel_gs_base') { this.msr(v, MSR_KERNEL_GS_BASE, value); return; }
    throw new VmApiError(`register ${reg} is not available on kvm`);
  }

  // ---- memory -------------------------------------------------------------------------

  private contains(address: number, length: number): boolean {
    return Number.isInteger(address) && Number.isInteger(length) && address >= 0 && length >= 0 && address + length <= this.memorySize;
  }

  readMemory(address: number, length: number): Uint8Array | undefined {
    if (this.closed || !this.contains(address, length)) return undefined;
    return this.ram.slice(address, address + length);
  }

  writeMemory(address: number, data: Uint8Array): boolean {
    if (this.closed || !this.contains(address, data.length)) return false;
    this.ram.set(data, address);
    return true;
  }

  /**
   * Guest-virtual memory through the vCPU's current paging (KVM_TRANSLATE walks its page
   * tables, as the CPU would, with no fault and no A/D update), page by page; undefined /
   * false (nothing written) when any page is unmapped or outside RAM.
   */
  readVirtual(vcpu: number, address: U64, length: number): Uint8Array | undefined {
    const pieces = this.translateRange(vcpu, address, length);
    if (!pieces) return undefined;
    const out = new Uint8Array(length);
    for (const p of pieces) out.set(this.ram.subarray(p.physical, p.physical + p.length), p.offset);
    return out;
  }

  writeVirtual(vcpu: number, address: U64, data: Uint8Array): boolean {
    const pieces = this.translateRange(vcpu, address, data.length);
    if (!pieces) return false;
    for (const p of pieces) this.ram.set(data.subarray(p.offset, p.offset + p.length), p.physical);
    return true;
  }

  /** The RAM pieces of [address, address+length): one per page touched, or undefined. */
  private translateRange(vcpu: number, address: U64, length: number): Array<{ offset: number; physical: number; length: number }> | undefined {
    const v = this.vcpu(vcpu);
    if (this.closed || !Number.isInteger(length) || length < 0) return undefined;
    const pieces: Array<{ offset: number; physical: number; length: number }> = [];
    let lo = address.lo >>> 0;
    let hi = address.hi >>> 0;
    for (let offset = 0; offset < length;) {
      const inPage = Math.min(length - offset, 4096 - (lo & 0xfff));
      const physical = this.translate(v, u64(lo, hi));
      if (physical === undefined || !this.contains(physical, inPage)) return undefined;
      pieces.push({ offset, physical, length: inPage });
      offset += inPage;
      const next = lo + inPage;
      lo = next >>> 0;
      if (next > 0xffffffff) hi = (hi + 1) >>> 0;
    }
    return pieces;
  }

  private translate(v: KvmVcpu, linear: U64): number | undefined {
    const t = new DataView(new ArrayBuffer(KVM_TRANSLATION_SIZE));
    setU64(t, 0, linear);
    if (this.b.ioctl(v.fd, this.b.constants.KVM_TRANSLATE, new Uint8Array(t.buffer)) < 0) return undefined;
    if (t.getUint8(TRANSLATION_VALID) === 0) return undefined;
    const pa = getU64(t, TRANSLATION_PHYSICAL);
    return pa.hi === 0 ? pa.lo >>> 0 : undefined;
  }

  // ---- debugger -----------------------------------------------------------------------

  setCapability(vcpu: number, cap: Capability, on: boolean): void {
    const v = this.vcpu(vcpu);
    checkCapability(cap);
    switch (cap) {
      case 'mtf':
        if (on) throw new VmApiError('mtf: not on kvm (steps use KVM_GUESTDBG_SINGLESTEP: rflags-tf)');
        return;
      case 'intercept-db': v.debug.interceptDb = on; break;
      case 'intercept-bp': v.debug.swBreakpoints = on; break;
      case 'rflags-tf': v.debug.singleStep = on; break;
    }
    v.debugDirty = true;
  }

  getCapability(vcpu: number, cap: Capability): boolean {
    const v = this.vcpu(vcpu);
    checkCapability(cap);
    switch (cap) {
      case 'mtf': return false;
      case 'intercept-db': return v.debug.interceptDb;
      case 'intercept-bp': return v.debug.swBreakpoints;
      case 'rflags-tf': return v.debug.singleStep;
    }
  }

  setDebuggerSlots(vcpu: number, slots: ReadonlyArray<DebuggerSlot | null>): void {
    const v = this.vcpu(vcpu);
    checkDebuggerSlots(slots);
    for (let i = 0; i < 4; i++) v.debug.slots[i] = slots[i] ?? null;
    v.debugDirty = true;
  }

  /** KVM_SET_GUEST_DEBUG from the debugger's request (extra: e.g. KVM_GUESTDBG_INJECT_DB). */
  private applyGuestDebug(v: KvmVcpu, extra = 0): void {
    const c = this.b.constants;
    const d = v.debug;
    const hw = v.activeSlotMask() !== 0;
    let control = 0;
    if (d.swBreakpoints) control |= c.KVM_GUESTDBG_USE_SW_BP;
    if (d.singleStep) control |= c.KVM_GUESTDBG_SINGLESTEP;
    if (hw) control |= c.KVM_GUESTDBG_USE_HW_BP;
    if (control !== 0 || extra !== 0) control |= c.KVM_GUESTDBG_ENABLE;
    const buf = new DataView(new ArrayBuffer(KVM_GUEST_DEBUG_SIZE));
    buf.setUint32(0, (control | extra) >>> 0, true);
    let dr7 = DR7_RESERVED1;
    if (hw) {
      d.slots.forEach((s, i) => {
        if (s === null) return;
        setU64(buf, GUEST_DEBUG_DEBUGREG + 8 * i, s.address);
        dr7 |= dr7GlobalEnable(i) | dr7LocalEnable(i) | dr7EncodeSlot(i, s.type, s.len);
      });
    }
    setNumber64(buf, GUEST_DEBUG_DEBUGREG + 8 * 7, dr7 >>> 0);
    this.check(this.b.ioctl(v.fd, c.KVM_SET_GUEST_DEBUG, new Uint8Array(buf.buffer)), 'KVM_SET_GUEST_DEBUG');
    v.guestDebugControl = control;
    v.guestDebugRegs.set(new Uint8Array(buf.buffer, GUEST_DEBUG_DEBUGREG, 64));
    v.debugDirty = false;
  }

  // ---- running ------------------------------------------------------------------------

  private now(): number {
    return performance.now();
  }

  run(vcpus: readonly number[], budget: number): VmStop {
    if (vcpus.length === 0) throw new VmApiError('no vCPU to run');
    const list = vcpus.map((i) => this.vcpu(i));
    if (!Number.isFinite(budget) || budget < 1) throw new VmApiError(`bad budget ${budget}`);
    if (this.finalStop !== null) return this.finalStop;
    for (const v of list) {
      if (v.pendingStop !== null) {
        const s = v.pendingStop;
        v.pendingStop = null;
        return this.note(s);
      }
    }
    for (const v of list) {
      const over = this.stepOverBreakpoint(v);
      if (over !== null) return this.note(over);
    }
    const deadline = this.now() + Math.max(MIN_SLICE_MS, Math.min(MAX_SLICE_MS, budget / INSTRUCTIONS_PER_MS));
    let stop: VmStop | null = null;
    try {
      for (;;) {
        const t = this.now();
        for (const v of list) {
          this.tickTimer(v, t);
          if (v.state !== 'running' && v.halt === 'no') this.start(v, v.completeForStep);
        }
        if (list.every((v) => v.halt === 'forever')) { stop = { kind: 'all-halted', vcpu: list[list.length - 1].index }; break; }
        if (t >= deadline) break;
        const back = this.b.waitAny(Math.max(0, Math.min(deadline, this.nextTimerDue(list)) - t));
        if (back === null) {
          // a running vCPU's timer is due: bring it out so that the tick can be injected
          const t2 = this.now();
          for (const v of list) {
            if (v.state === 'running' && v.timer && v.pendingVector === null && v.timer.dueMs <= this.guestClock(v, t2)) this.kick(v);
          }
          continue;
        }
        stop = this.onExit(this.vcpuOfHandle(back[0]), back[1]);
        if (stop !== null) break;
      }
    } finally {
      stop = this.stopAll(stop);
    }
    return this.note(stop ?? { kind: 'slice', vcpu: list[list.length - 1].index });
  }

  /**
   * Resuming at the instruction breakpoint that just stopped the vCPU: RFLAGS.RF is set
   * (start()), and the instruction is also stepped once with that slot off, because a host
   * that ignores RF on VM entry (this project's nested hosts do) would stop there forever.
   * The client's own step, if it asked for one, is this step.
   */
  private stepOverBreakpoint(v: KvmVcpu): VmStop | null {
    if (v.rfAt === null || v.halt !== 'no') return null;
    const rip = getNumber64(this.getStruct(v, 'KVM_GET_REGS', KVM_REGS_SIZE), 8 * KVM_REGS_ORDER.indexOf('rip'));
    if (rip !== v.rfAt) { v.rfAt = null; return null; }
    const saved = { slots: [...v.debug.slots], singleStep: v.debug.singleStep };
    v.debug.slots = v.debug.slots.map((s) => (s !== null && s.type === 'exec' && s.address.lo === rip % 0x100000000 ? null : s));
    v.debug.singleStep = true;
    v.debugDirty = true;
    let stop: VmStop | null = null;
    try {
      this.start(v);
      const back = this.b.waitAny(DRAIN_TIMEOUT_MS);
      if (back === null) throw new VmApiError('kvm: a vCPU did not come back from one step');
      stop = this.onExit(this.vcpuOfHandle(back[0]), back[1]);
    } finally {
      v.debug.slots = saved.slots;
      v.debug.singleStep = saved.singleStep;
      v.debugDirty = true;
      v.rfAt = null;
      stop = this.stopAll(stop);
    }
    if (stop !== null && stop.kind === 'debug' && stop.step && !saved.singleStep) {
      // our hidden step; report only a data slot that hit on the way
      const hits = stop.slotsHit & v.activeSlotMask();
      return hits !== 0 ? { ...stop, slotsHit: hits, step: false } : null;
    }
    return stop;
  }

  private note(stop: VmStop): VmStop {
    this.lastVcpu = stop.vcpu;
    if (['exit', 'triple-fault', 'npf', 'entry-failed'].includes(stop.kind)) this.finalStop = stop;
    return stop;
  }

  private vcpuOfHandle(handle: number): KvmVcpu {
    const v = this.byHandle.get(handle);
    if (!v) throw new VmApiError(`kvm: a vCPU thread of another VM came back (${handle})`);
    return v;
  }

  /** Kicks every running vCPU, handles what they bring back, completes pending I/O. */
  private stopAll(first: VmStop | null): VmStop | null {
    let stop = first;
    const keep = (v: KvmVcpu, s: VmStop | null): void => {
      if (s === null) return;
      if (stop === null) stop = s;
      else if (s !== stop) v.pendingStop = s;
    };
    for (let round = 0; round < 3; round++) {
      for (const v of this.vcpus) if (v.state === 'running') this.kick(v);
      while (this.vcpus.some((v) => v.state === 'running')) {
        const back = this.b.waitAny(DRAIN_TIMEOUT_MS);
        if (back === null) throw new VmApiError('kvm: a vCPU did not leave KVM_RUN');
        const v = this.vcpuOfHandle(back[0]);
        keep(v, this.onExit(v, back[1]));
      }
      // An I/O instruction is complete (RIP past it, IN's data in RAX) only after one more
      // KVM_RUN: do it with immediate_exit so that nothing else runs.
      const pending = this.vcpus.filter((v) => v.state === 'io-pending' && v.pendingStop === null);
      if (pending.length === 0) break;
      for (const v of pending) this.start(v, true);
    }
    return stop;
  }

  /**
   * A pending tick goes in at an exit where the guest can take it (IF=1, no STI/MOV-SS
   * shadow): an HLT (the guest waits for it), or another (I/O, our kick, a debug exit) once the tick
   * has waited LATE_TICK_PERIODS periods (a guest spinning with IF=1). Not at any kick: host time is a rough guest
   * clock, and a kick right after the previous tick's IRET (IF=1 again before the guest's
   * CLI) would give a second tick where our CPU, counting instructions, gives none. And no
   * interrupt-window exits: one that opens between STI and HLT would deliver the tick
   * before the HLT, which then waits for another.
   */
  private tickDeliverable(v: KvmVcpu): boolean {
    if (!v.readyForInterrupt() || !v.ifFlag()) return false;
    if (!v.lastExitWasKick) return true;
    // single-stepped, a step is one instruction: only an HLT takes a tick (a tick pending from
    // before the steps would otherwise land at whichever step first has IF=1)
    if (v.debug.singleStep) return false;
    return v.timer !== null && v.guestMs - v.pendingSinceMs >= LATE_TICK_PERIODS * v.timer.periodMs;
  }

  private kick(v: KvmVcpu): void {
    v.kickMs ??= this.now();
    this.b.kick(v.handle);
  }

  private start(v: KvmVcpu, immediate = false): void {
    if (v.debugDirty) this.applyGuestDebug(v);
    if (v.rfAt !== null && !immediate) {
      const dv = this.getStruct(v, 'KVM_GET_REGS', KVM_REGS_SIZE);
      if (getNumber64(dv, 8 * KVM_REGS_ORDER.indexOf('rip')) === v.rfAt) {
        const o = 8 * KVM_REGS_ORDER.indexOf('rflags');
        dv.setUint32(o, dv.getUint32(o, true) | RFLAGS_RF, true);
        this.check(this.setStruct(v, 'KVM_SET_REGS', dv), 'KVM_SET_REGS');
      }
      v.rfAt = null;
    }
    if (v.pendingVector !== null && !immediate && this.tickDeliverable(v)) {
      const irq = new Uint32Array([v.pendingVector]);
      this.check(this.b.ioctl(v.fd, this.b.constants.KVM_INTERRUPT, irq), 'KVM_INTERRUPT');
      v.pendingVector = null;
    }
    // where a step starts (haltUnderStep: was the stepped instruction an HLT?)
    v.stepFrom = v.debug.singleStep && !immediate
      ? getNumber64(this.getStruct(v, 'KVM_GET_REGS', KVM_REGS_SIZE), 8 * KVM_REGS_ORDER.indexOf('rip')) : -1;
    v.runStartMs = this.now();
    this.b.start(v.handle, immediate ? 1 : 0);
    v.state = 'running';
    this.kvmRuns++;
  }

  private count(reason: string): void {
    this.exits[reason] = (this.exits[reason] ?? 0) + 1;
  }

  /** The vCPU's guest clock now (see KvmVcpu.guestMs). */
  private guestClock(v: KvmVcpu, t: number): number {
    return v.guestMs + (v.state === 'running' ? t - v.runStartMs : 0);
  }

  private tickTimer(v: KvmVcpu, t: number): void {
    const timer = v.timer;
    if (!timer) return;
    // A vCPU halted for the timer skips ahead to its next tick, as HLT does on our CPU.
    if (v.halt === 'timer' && v.state !== 'running' && v.guestMs < timer.dueMs) v.guestMs = timer.dueMs;
    const clock = this.guestClock(v, t);
    if (timer.dueMs > clock) return;
    if (v.pendingVector === null) { // a tick while one is pending is dropped
      v.pendingVector = timer.vector;
      v.pendingSinceMs = clock;
    }
    timer.dueMs = clock + timer.periodMs;
    if (v.halt === 'timer' && v.state !== 'running') v.halt = 'no';
  }

  /** Host time at which the next tick of a running vCPU falls due (to kick it then). */
  private nextTimerDue(list: readonly KvmVcpu[]): number {
    let due = Infinity;
    for (const v of list) {
      if (!v.timer || v.pendingVector !== null) continue;
      if (v.state === 'running') due = Math.min(due, v.runStartMs + (v.timer.dueMs - v.guestMs));
      else if (v.halt === 'timer') due = 0;
    }
    return due;
  }

  /** Handles one return from KVM_RUN; a stop for the client, or null (then it may go on). */
  private onExit(v: KvmVcpu, result: number): VmStop | null {
    const c = this.b.constants;
    const ranMs = v.state === 'running' ? Math.max(0, Math.min(this.now(), v.kickMs ?? Infinity) - v.runStartMs) : 0;
    // A single step is one instruction of guest time, whatever the round trip cost.
    const oneStep = result >= 0 && v.exitReason() === c.KVM_EXIT_DEBUG && (v.run.getUint32(c.off_run_debug_dr6, true) & DR6_BS) !== 0;
    v.guestMs += oneStep ? 1 / INSTRUCTIONS_PER_MS : ranMs;
    v.kickMs = null;
    v.state = 'idle';
    // ticks go in at once only at the guest's own HLT exits (see tickDeliverable)
    v.lastExitWasKick = result < 0 || v.exitReason() !== c.KVM_EXIT_HLT;
    if (result === -c.EINTR) {
      this.count('slice');
      if (v.completeForStep) {
        // the I/O instruction is complete and nothing else ran: that is the step
        v.completeForStep = false;
        return { kind: 'debug', vcpu: v.index, slotsHit: 0, step: true };
      }
      return null;
    }
    v.completeForStep = false;
    if (result < 0) return { kind: 'entry-failed', vcpu: v.index, reason: `KVM_RUN failed (errno ${-result})` };
    const reason = v.exitReason();
    const run = v.run;
    switch (reason) {
      case c.KVM_EXIT_IO: {
        this.count('io');
        v.state = 'io-pending';
        const stop = this.onIo(v);
        if (stop === null && v.state === 'io-pending' && v.debug.singleStep) v.completeForStep = true;
        return stop;
      }
      case c.KVM_EXIT_HLT: {
        if (v.debug.singleStep && v.stepFrom >= 0) {
          // Stepped, this host's KVM ends the step over an HLT with a step exit and reports
          // that HLT again at the end of a later step (an IRETQ's): that later exit is
          // the step, not a second HLT.
          const rip = getNumber64(this.getStruct(v, 'KVM_GET_REGS', KVM_REGS_SIZE), 8 * KVM_REGS_ORDER.indexOf('rip'));
          if (v.stepFrom !== rip - 1) {
            this.count('hlt-after-step');
            return { kind: 'debug', vcpu: v.index, slotsHit: 0, step: true };
          }
        }
        this.count('hlt');
        if (v.pendingVector !== null && v.ifFlag()) v.halt = 'no';
        else v.halt = v.ifFlag() && v.timer ? 'timer' : 'forever';
        return null;
      }
      case c.KVM_EXIT_IRQ_WINDOW_OPEN:
        this.count('irq-window');
        return null;
      case c.KVM_EXIT_MMIO: {
        this.count('mmio');
        const address = getNumber64(run, c.off_run_mmio_phys_addr);
        return { kind: 'npf', vcpu: v.index, address, write: run.getUint8(c.off_run_mmio_is_write) !== 0 };
      }
      case c.KVM_EXIT_SHUTDOWN:
        this.count('shutdown');
        return { kind: 'triple-fault', vcpu: v.index, reason: 'triple fault: KVM_EXIT_SHUTDOWN (an exception with no usable handler)' };
      case c.KVM_EXIT_FAIL_ENTRY:
        this.count('fail-entry');
        return { kind: 'entry-failed', vcpu: v.index, reason: `KVM_EXIT_FAIL_ENTRY, hardware reason 0x${getNumber64(run, c.off_run_fail_entry_reason).toString(16)}` };
      case c.KVM_EXIT_INTERNAL_ERROR: {
        const int3 = this.int3ThatFailed(v);
        if (int3 !== null) return int3;
        this.count('internal-error');
        return { kind: 'entry-failed', vcpu: v.index, reason: `KVM_EXIT_INTERNAL_ERROR, suberror ${run.getUint32(c.off_run_internal_suberror, true)}` };
      }
      case c.KVM_EXIT_DEBUG:
        this.count('debug');
        return this.onDebug(v);
      case c.KVM_EXIT_INTR:
        this.count('slice');
        return null;
      default:
        this.count(`exit-${reason}`);
        return { kind: 'entry-failed', vcpu: v.index, reason: `unexpected KVM exit reason ${reason}` };
    }
  }

  /**
   * Some hosts cannot execute INT3 in a guest at all: KVM_RUN ends in an emulation failure
   * (KVM_EXIT_INTERNAL_ERROR, suberror 1) with RIP at the INT3, debugger or not. When the
   * debugger asked for int3 exits and the byte at RIP is an INT3, that is its breakpoint;
   * counted as `int3-emulation-failure` so that nobody mistakes it for KVM_EXIT_DEBUG.
   */
  private int3ThatFailed(v: KvmVcpu): VmStop | null {
    const c = this.b.constants;
    if (!v.debug.swBreakpoints || v.run.getUint32(c.off_run_internal_suberror, true) !== 1) return null;
    const rip = getU64(this.getStruct(v, 'KVM_GET_REGS', KVM_REGS_SIZE), 8 * KVM_REGS_ORDER.indexOf('rip'));
    if (rip.hi !== 0 || rip.lo >= this.memorySize || this.ram[rip.lo] !== 0xcc) return null;
    this.count('int3-emulation-failure');
    return { kind: 'breakpoint', vcpu: v.index, rip };
  }

  private onIo(v: KvmVcpu): VmStop | null {
    const c = this.b.constants;
    const run = v.run;
    const out = run.getUint8(c.off_run_io_direction) === 1;
    const size = run.getUint8(c.off_run_io_size);
    const port = run.getUint16(c.off_run_io_port, true);
    const count = run.getUint32(c.off_run_io_count, true);
    const data = getNumber64(run, c.off_run_io_data_offset);
    if (!out) {
      // nothing is attached to any port: reads return all ones
      for (let i = 0; i < size * count; i++) run.setUint8(data + i, 0xff);
      this.count('io-other');
      return null;
    }
    for (let k = 0; k < count; k++) {
      const at = data + k * size;
      const value = size === 4 ? run.getUint32(at, true) : size === 2 ? run.getUint16(at, true) : run.getUint8(at);
      switch (port) {
        case PORT_CONSOLE:
          this.console += String.fromCharCode(value & 0xff);
          break;
        case PORT_EXIT:
          v.state = 'idle'; // the VM ends here: the OUT is never completed
          return { kind: 'exit', vcpu: v.index, status: value & 0x7f };
        case PORT_TIMER: {
          if (size !== 4) { this.count('io-other'); break; }
          const period = value >>> 8;
          v.timer = period === 0 ? null : {
            vector: value & 0xff,
            periodMs: Math.max(MIN_TIMER_MS, period / INSTRUCTIONS_PER_MS),
            dueMs: 0,
          };
          if (v.timer) v.timer.dueMs = v.guestMs + v.timer.periodMs;
          break;
        }
        default:
          this.count('io-other');
      }
    }
    return null;
  }

  private onDebug(v: KvmVcpu): VmStop | null {
    const c = this.b.constants;
    const run = v.run;
    const exception = run.getUint32(c.off_run_debug_exception, true);
    const pc = getNumber64(run, c.off_run_debug_pc);
    if (exception === 3) {
      if (v.debug.swBreakpoints) return { kind: 'breakpoint', vcpu: v.index, rip: u64(pc % 0x100000000, Math.floor(pc / 0x100000000)) };
      return this.reflect(v, 0, c.KVM_GUESTDBG_INJECT_BP);
    }
    const dr6 = run.getUint32(c.off_run_debug_dr6, true);
    this.lastDebugExit = { vcpu: v.index, exception, pc, dr6, dr7: run.getUint32(c.off_run_debug_dr7, true) };
    const slotsHit = dr6 & 0xf & v.activeSlotMask();
    const step = (dr6 & DR6_BS) !== 0 && v.debug.singleStep;
    if (slotsHit === 0 && !step) return this.reflect(v, dr6, c.KVM_GUESTDBG_INJECT_DB);
    if (v.debug.slots.some((s, i) => s !== null && s.type === 'exec' && (slotsHit & (1 << i)) !== 0)) v.rfAt = pc;
    if (step) this.haltUnderStep(v, pc);
    return { kind: 'debug', vcpu: v.index, slotsHit, step };
  }

  /**
   * Single-stepped, KVM completes an HLT as a step without halting. Our CPU halts there
   * until the timer's next tick, which is delivered before the next instruction: do the same
   * (skip the guest clock to the tick, take it at this exit) so that stepping through
   * STI; HLT takes one tick, as on vmx and svm.
   */
  private haltUnderStep(v: KvmVcpu, pc: number): void {
    if (!v.timer || v.stepFrom !== pc - 1 || pc > this.memorySize || this.ram[pc - 1] !== 0xf4 || !v.ifFlag()) return;
    if (v.guestMs < v.timer.dueMs) v.guestMs = v.timer.dueMs;
    this.tickTimer(v, this.now());
    v.lastExitWasKick = false;
  }

  /** A #DB / #BP that is the guest's own: give it to the guest (with its DR6 bits). */
  private reflect(v: KvmVcpu, dr6: number, inject: number): null {
    if (inject === this.b.constants.KVM_GUESTDBG_INJECT_DB) {
      const regs = this.getStruct(v, 'KVM_GET_DEBUGREGS', KVM_DEBUGREGS_SIZE);
      const old = regs.getUint32(DEBUGREGS_DR6, true);
      regs.setUint32(DEBUGREGS_DR6, ((old & ~0xf) | (dr6 & 0xe00f)) >>> 0, true);
      this.setStruct(v, 'KVM_SET_DEBUGREGS', regs);
    }
    this.applyGuestDebug(v, inject);
    v.debugDirty = true; // the next start sets the plain control word again
    return null;
  }

  // ---- reports ------------------------------------------------------------------------

  describeDebugState(vcpu: number): string {
    const v = this.vcpu(vcpu);
    const g = this.getStruct(v, 'KVM_GET_DEBUGREGS', KVM_DEBUGREGS_SIZE);
    const d = (dv: DataView, off: number): string => hex(dv.getUint32(off, true), dv.getUint32(off + 4, true));
    const gd = new DataView(v.guestDebugRegs.buffer);
    const c = this.b.constants;
    if (v.debugDirty) this.applyGuestDebug(v);
    const flags = [
      ['ENABLE', c.KVM_GUESTDBG_ENABLE], ['SINGLESTEP', c.KVM_GUESTDBG_SINGLESTEP],
      ['USE_SW_BP', c.KVM_GUESTDBG_USE_SW_BP], ['USE_HW_BP', c.KVM_GUESTDBG_USE_HW_BP],
    ].filter(([, bit]) => (v.guestDebugControl & (bit as number)) !== 0).map(([n]) => n);
    const hw = (v.guestDebugControl & c.KVM_GUESTDBG_USE_HW_BP) !== 0;
    const lines = [
      `vCPU ${v.index} (kvm, ${hw ? 'debugger via KVM_SET_GUEST_DEBUG' : 'guest only'})`,
      `guest view:  dr0=${d(g, 0)} dr1=${d(g, 8)} dr2=${d(g, 16)} dr3=${d(g, 24)} dr6=${d(g, DEBUGREGS_DR6)} dr7=${d(g, DEBUGREGS_DR7)} (KVM_GET_DEBUGREGS)`,
      `debugger:    control=${flags.length ? flags.join('|') : '0'} dr0=${d(gd, 0)} dr1=${d(gd, 8)} dr2=${d(gd, 16)} dr3=${d(gd, 24)} dr7=${d(gd, 56)} (KVM_SET_GUEST_DEBUG)`,
      `effective:   ${hw ? "the debugger's DR0-3/DR7 (KVM loads them instead of the guest's while USE_HW_BP is on)" : "the guest's DR0-3/DR7"}`,
      'slots:       ' + v.debug.slots.map((s, i) => `${i}=${s === null ? 'free' : `debugger${i}`}`).join(' '),
    ];
    v.debug.slots.forEach((s, j) => {
      if (s !== null) lines.push(`debugger slot ${j}: ${s.type} len ${s.len} at ${hex(s.address.lo, s.address.hi)}`);
    });
    lines.push('hardware:    /dev/kvm: the host kernel switches the physical debug registers at VM entry and exit');
    return lines.join('\n');
  }

  vcpuState(vcpu: number): string {
    const v = this.vcpu(vcpu);
    return v.halt === 'no' ? 'running' : 'halted';
  }

  /**
   * KVM_NMI: queues an NMI on the vCPU (this VM has no in-kernel irqchip, so the ioctl is the
   * NMI line itself); KVM injects it when the guest can take one. A vCPU halted in our HLT
   * handling runs again to take it.
   */
  injectNmi(vcpu: number): void {
    const v = this.vcpu(vcpu);
    this.check(this.b.ioctl(v.fd, KVM_NMI, 0), 'KVM_NMI');
    v.halt = 'no';
  }

  stats(): VmStats {
    return { instructions: 0, exits: { ...this.exits }, transitions: 2 * this.kvmRuns, leaks: 0, hostWatchHits: 0 };
  }

  leaks(): readonly DebugLeak[] {
    return [];
  }

  takeConsoleOutput(): string {
    const s = this.console;
    this.console = '';
    return s;
  }

  /** Ends the VM: stops the vCPU threads and closes the fds (the RAM goes with the buffer). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const v of this.vcpus) {
      this.b.removeVcpu(v.handle);
      this.byHandle.delete(v.handle);
      this.b.close(v.fd);
    }
    if (this.vmFd >= 0) this.b.close(this.vmFd);
  }
}

/** createVm for --backend kvm (the same signature as vmm/api/create-vm.ts createVm). */
export function createKvmVm(image: LoadedImage, opts: VmOptions): KvmVm {
  return new KvmVm(image, opts);
}
