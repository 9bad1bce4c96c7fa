import { Cpu } from '../cpu/cpu';
import { GuestCpu, GprIndex, CpuStateReg } from '../cpu/guest-cpu';
import { loadImage } from '../loader/load';
import { STACK_SIZE, stackTop } from '../loader/stacks';
import { buildIdentityPageTables, pageTablesBase } from '../loader/page-tables';
import { PhysicalCpu } from '../cpu/physical-cpu';
import { GuestMemory } from '../memory';
import { LoadedImage } from '../loader/elf-types';
import { BootPlan, Flat32Cpu, canStartFlat32 } from '../loader/boot-plan';
import { U64, hex, u64ToNumber } from '../u64';
import { MSR_TSC } from '../x86/msr';
import { VmBackend, GuestDrIndex } from '../hypervisor/backend';
import { HostContext, KdbDetermined, createHostScenario } from '../hypervisor/host';
import { LeakDetector } from '../hypervisor/leak-detector';
import { SvmBackend } from '../hypervisor/svm/svm-backend';
import { ExitCounts } from '../hypervisor/exit';
import { Vcpu } from '../hypervisor/vcpu';
import { VmShared } from '../hypervisor/vm-shared';
import { MachineDevices, attachDevices, buildDevices } from './machine-devices';
import { DeviceBus } from '../devices/bus';
import { VmxBackend } from '../hypervisor/vmx/vmx-backend';
import { RegName, isRegName } from './registers';
import { TraceEvent, TraceSink } from './trace';
import { BackendName, Capability, DebugLeak, DebuggerSlot, VmApi, VmApiError, VmStats, VmStop } from './vm-api';
import { DR_SWITCH_MODES, HOST_SCENARIOS, HostScenario, VmOptions } from './vm-options';
import { checkCapability, checkDebuggerSlots, checkFpuImage, checkRegisterWrite } from './request-checks';

/** Builds the guest CPU of one vCPU (the real one is vmm/cpu/cpu.ts; tests pass fakes). */
export type GuestCpuFactory = (memory: GuestMemory, phys: PhysicalCpu, vcpu: number) => GuestCpu;

/** Guest instructions a vCPU runs before the next one gets its turn (round-robin). */
const ROUND_ROBIN_SLICE = 4096;

const GPR_ENCODING: Record<string, GprIndex> = {
  rax: 0, rcx: 1, rdx: 2, rbx: 3, rsp: 4, rbp: 5, rsi: 6, rdi: 7,
  r8: 8, r9: 9, r10: 10, r11: 11, r12: 12, r13: 13, r14: 14, r15: 15,
};
const DR_INDEX: Record<string, GuestDrIndex> = { dr0: 0, dr1: 1, dr2: 2, dr3: 3, dr6: 6, dr7: 7 };

/** The real guest CPU (vmm/cpu/cpu.ts). */
export const realGuestCpu: GuestCpuFactory = (memory, phys, vcpu) => {
  const cpu = new Cpu(memory, phys);
  cpu.vcpuIndex = vcpu; // MMIO devices (the xAPIC page) answer each vCPU with its own registers
  return cpu;
};

function validateOptions(o: VmOptions): void {
  if (o.backend !== 'vmx' && o.backend !== 'svm') throw new VmApiError(`unknown backend '${String(o.backend)}' (vmx or svm)`);
  if (!(DR_SWITCH_MODES as readonly string[]).includes(o.drSwitch)) {
    throw new VmApiError(`unknown --dr-switch '${String(o.drSwitch)}' (${DR_SWITCH_MODES.join(', ')})`);
  }
  if (!(HOST_SCENARIOS as readonly string[]).includes(o.hostScenario)) {
    throw new VmApiError(`unknown host scenario '${String(o.hostScenario)}' (${HOST_SCENARIOS.join(', ')})`);
  }
  if (!Number.isInteger(o.vcpus) || o.vcpus < 1 || o.vcpus > 64) throw new VmApiError(`--vcpus must be 1..64, not ${o.vcpus}`);
  if (!Number.isInteger(o.memMiB) || o.memMiB < 1 || o.memMiB > 4096) throw new VmApiError(`--mem must be 1..4096 MiB, not ${o.memMiB}`);
  if (!Number.isInteger(o.preemptEvery) || o.preemptEvery < 0) throw new VmApiError(`--preempt-every must be an integer >= 0, not ${o.preemptEvery}`);
  const nmiEvery = o.hostNmiEvery ?? 0;
  if (!Number.isInteger(nmiEvery) || nmiEvery < 0) throw new VmApiError(`--host-nmi-every must be an integer >= 0, not ${nmiEvery}`);
}

/**
 * A VM: guest memory, one physical CPU shared by the vCPUs (one host CPU), the host with its
 * scenario, the leak detector, and a Vcpu (backend + run loop) per vCPU.
 */
export class Vm implements VmApi {
  readonly backend: BackendName;
  readonly vcpuCount: number;
  readonly memorySize: number;
  readonly hostScenario: HostScenario;
  readonly memory: GuestMemory;
  readonly phys = new PhysicalCpu(0);
  readonly host: HostContext;
  private readonly shared: VmShared;
  /** The VM's devices (guest ABI ports, and whatever buildDevices adds) and the bus they sit on. */
  readonly devices: MachineDevices;
  readonly bus: DeviceBus;
  private readonly vcpus: Vcpu[] = [];
  private readonly leakDetector = new LeakDetector();
  private traceSink: TraceSink | null = null;
  private rrNext = 0;

  /** The boot plan this VM was started with (Multiboot/PVH), for reset(). */
  private bootPlan: BootPlan | undefined;

  constructor(private readonly image: LoadedImage, readonly opts: VmOptions, private readonly factory: GuestCpuFactory) {
    validateOptions(opts);
    this.backend = opts.backend;
    this.vcpuCount = opts.vcpus;
    this.hostScenario = opts.hostScenario;
    this.memorySize = opts.memMiB * 1024 * 1024;
    if (this.memorySize < STACK_SIZE * opts.vcpus + 0x1000) throw new VmApiError(`--mem ${opts.memMiB} MiB is too small for ${opts.vcpus} vCPU stacks`);
    this.memory = new GuestMemory(this.memorySize);
    const reservedBase = pageTablesBase(this.memorySize, opts.vcpus);
    for (const seg of image.segments) {
      const end = seg.address + Math.max(seg.memSize, seg.data.length);
      if (seg.address < 0 || end > reservedBase) {
        throw new VmApiError(`segment at 0x${seg.address.toString(16)} does not fit below the vCPU stacks and page tables at 0x${reservedBase.toString(16)}`);
      }
    }
    loadImage(this.memory, image);
    // the guest ABI's identity map: real tables in reserved RAM (vmm/loader/page-tables.ts)
    const cr3 = buildIdentityPageTables(this.memory, reservedBase);

    this.host = new HostContext(this.phys);
    const scenario = createHostScenario(opts.hostScenario, this.host);
    const self = this;
    this.devices = buildDevices(opts, (i) => this.vcpus[i].cpu.instret, (i) => u64ToNumber(this.vcpus[i].cpu.readMsr(MSR_TSC) ?? { lo: 0, hi: 0 }));
    this.bus = attachDevices(this.devices, this.memory.mmio); // MMIO (the local APIC page) also into the MMU's map
    this.shared = {
      opts, memory: this.memory, phys: this.phys, host: this.host, scenario, leaks: this.leakDetector,
      bus: this.bus, timer: this.devices.timer, platform: this.devices.platform, exits: new ExitCounts(), transitions: 0, trace: null,
      now(): number { return self.instructions(); },
      wake(): boolean {
        let woke = false;
        for (const v of self.vcpus) if (v.reconsiderHalt()) woke = true;
        return woke;
      },
    };
    for (let i = 0; i < opts.vcpus; i++) {
      const cpu = factory(this.memory, this.phys, i);
      if (opts.jit === false && cpu instanceof Cpu) cpu.jitEnabled = false;
      const backend: VmBackend = opts.backend === 'vmx'
        ? new VmxBackend(cpu, this.phys, opts.drSwitch)
        : new SvmBackend(cpu, this.phys, opts.drSwitch);
      if (scenario instanceof KdbDetermined) scenario.hasDr6Step = backend.enterSteps.some((s) => s.name === 'load-guest-dr6');
      const top = stackTop(this.memorySize, i, opts.vcpus);
      cpu.setReg('rip', { lo: image.entry >>> 0, hi: Math.floor(image.entry / 0x100000000) });
      cpu.setReg('rflags', { lo: 2, hi: 0 });
      cpu.setReg('cr3', { lo: cr3 >>> 0, hi: Math.floor(cr3 / 4294967296) });
      cpu.setGpr(GPR_ENCODING.rsp, { lo: top >>> 0, hi: Math.floor(top / 0x100000000) });
      cpu.setGpr(GPR_ENCODING.rdi, { lo: i, hi: 0 });
      cpu.setGpr(GPR_ENCODING.rsi, { lo: opts.vcpus, hi: 0 });
      // The local APIC's TPR and the CPU's CR8 are one register.
      this.devices.platform.apics.apic(i).linkCr8(() => cpu.getReg('cr8').lo, (v) => cpu.setReg('cr8', { lo: v, hi: 0 }));
      this.vcpus.push(new Vcpu(i, cpu, backend, this.shared));
    }
  }

  /** Copies a boot plan into RAM and starts the vCPUs as the protocol says (before the first run). */
  applyBootPlan(plan: BootPlan): void {
    this.bootPlan = plan;
    for (const v of this.vcpus) {
      if (!canStartFlat32(v.cpu)) {
        throw new VmApiError(`a ${plan.protocol === 'pvh' ? 'PVH' : 'Multiboot'} kernel starts in 32-bit protected mode, which this build's CPU does not have`);
      }
    }
    for (const b of plan.blobs) {
      const bytes = new Uint8Array(b.memSize);
      bytes.set(b.data);
      if (!this.memory.write(b.address, bytes)) throw new VmApiError(`boot data at 0x${b.address.toString(16)} does not fit in guest RAM`);
    }
    this.vcpus.forEach((v, i) => {
      if (i === 0) (v.cpu as GuestCpu & Flat32Cpu).startFlat32(plan.bsp);
      else v.waitForSipi();
    });
  }

  /**
   * Back to the boot state (QEMU's system_reset): RAM, vCPUs, devices, host side and counters
   * are built again from the same image, options and boot plan; this object stays the one the
   * stub and the CLI hold, and the trace sink stays attached.
   */
  reset(): void {
    const fresh = new Vm(this.image, this.opts, this.factory);
    if (this.bootPlan) fresh.applyBootPlan(this.bootPlan);
    const sink = this.traceSink;
    // every field of the fresh VM (its closures refer to the same objects, now shared)
    Object.assign(this, fresh);
    this.setTraceSink(sink);
  }

  /** Guest instructions retired by all vCPUs: the trace clock. */
  instructions(): number {
    let n = 0;
    for (const v of this.vcpus) n += v.cpu.instret;
    return n;
  }

  /** Chrome-trace events (phases, exits, #DBs, DR writes, leaks); null to stop. */
  setTraceSink(sink: TraceSink | null): void {
    this.traceSink = sink;
    this.shared.trace = sink;
    this.host.onWrite = sink === null ? null : (n: number, lo: number, hi: number): void => {
      sink({ type: 'dr-write', ts: this.instructions(), vcpu: -1, register: `dr${n}`, value: hex(lo, hi), by: 'host' });
    };
    this.leakDetector.onLeak = sink === null ? null : (leak: DebugLeak): void => {
      const ev: TraceEvent = { type: 'leak', ts: this.instructions(), vcpu: leak.vcpu, leak };
      sink(ev);
    };
  }

  private vcpu(i: number): Vcpu {
    if (!Number.isInteger(i) || i < 0 || i >= this.vcpus.length) {
      throw new VmApiError(`no vCPU ${i} (this VM has ${this.vcpus.length})`);
    }
    return this.vcpus[i];
  }

  /** The backend of a vCPU, for tests and for the monitor (VMCS / VMCB by field). */
  backendOf(vcpu: number): VmBackend {
    return this.vcpu(vcpu).backend;
  }

  getRegister(vcpu: number, reg: RegName): U64 {
    const v = this.vcpu(vcpu);
    if (!isRegName(reg)) throw new VmApiError(`unknown register '${String(reg)}'`);
    const gpr = GPR_ENCODING[reg];
    if (gpr !== undefined) return v.cpu.getGpr(gpr);
    const dr = DR_INDEX[reg];
    if (dr !== undefined) return v.getGuestDr(dr);
    if (reg === 'debugctl') return v.getGuestDebugctl();
    return v.cpu.getReg(reg as CpuStateReg);
  }

  setRegister(vcpu: number, reg: RegName, value: U64): void {
    const v = this.vcpu(vcpu);
    checkRegisterWrite(reg, value);
    const gpr = GPR_ENCODING[reg];
    if (gpr !== undefined) { v.cpu.setGpr(gpr, value); return; }
    const dr = DR_INDEX[reg];
    if (dr !== undefined) {
      try { v.setGuestDr(dr, value); } catch (e) { throw new VmApiError((e as Error).message); }
      return;
    }
    if (reg === 'debugctl') {
      if (!v.setGuestDebugctl(value, 'client')) throw new VmApiError('debugctl: reserved bits set');
      return;
    }
    if (reg === 'rflags' && (value.hi !== 0 || (value.lo & 2) === 0)) throw new VmApiError('rflags: bit 1 must be 1 and bits 63:22 0');
    v.cpu.setReg(reg as CpuStateReg, value);
    if (reg === 'rflags') v.reconsiderHalt();
  }

  getFpuState(vcpu: number): Uint8Array {
    return this.vcpu(vcpu).cpu.getFpuImage();
  }

  setFpuState(vcpu: number, image: Uint8Array): void {
    const v = this.vcpu(vcpu);
    checkFpuImage(image);
    v.cpu.setFpuImage(image);
  }

  readMemory(address: number, length: number): Uint8Array | undefined {
    if (!Number.isInteger(length) || length < 0) return undefined;
    return this.memory.read(address, length);
  }

  writeMemory(address: number, data: Uint8Array): boolean {
    return this.memory.write(address, data);
  }

  describeLocalApic(vcpu: number): string {
    const v = this.vcpu(vcpu);
    return this.devices.platform.apics.apic(vcpu).describe(u64ToNumber(v.cpu.readMsr(MSR_TSC) ?? { lo: 0, hi: 0 }));
  }

  readVirtual(vcpu: number, address: U64, length: number): Uint8Array | undefined {
    const c = this.vcpu(vcpu).cpu;
    if (!Number.isInteger(length) || length < 0) return undefined;
    if (c.accessLinear === undefined) return address.hi === 0 ? this.memory.read(address.lo, length) : undefined;
    const out = new Uint8Array(length);
    return c.accessLinear(address, out, false) ? out : undefined;
  }

  writeVirtual(vcpu: number, address: U64, data: Uint8Array): boolean {
    const c = this.vcpu(vcpu).cpu;
    if (c.accessLinear === undefined) return address.hi === 0 && this.memory.write(address.lo, data);
    return c.accessLinear(address, data, true);
  }

  setCapability(vcpu: number, cap: Capability, on: boolean): void {
    const v = this.vcpu(vcpu);
    checkCapability(cap);
    try { v.setCapability(cap, on); } catch (e) { throw new VmApiError((e as Error).message); }
  }

  getCapability(vcpu: number, cap: Capability): boolean {
    const v = this.vcpu(vcpu);
    checkCapability(cap);
    return v.getCapability(cap);
  }

  setDebuggerSlots(vcpu: number, slots: ReadonlyArray<DebuggerSlot | null>): void {
    const v = this.vcpu(vcpu);
    checkDebuggerSlots(slots);
    v.setDebuggerSlots(slots);
  }

  run(vcpus: readonly number[], budget: number): VmStop {
    if (vcpus.length === 0) throw new VmApiError('no vCPU to run');
    const list = vcpus.map((i) => this.vcpu(i));
    if (!Number.isFinite(budget) || budget < 1) throw new VmApiError(`bad budget ${budget}`);
    for (const v of this.vcpus) if (v.finalStop !== null) return v.finalStop;
    let left = Math.floor(budget);
    while (left > 0) {
      if (list.every((v) => v.state === 'halted')) return { kind: 'all-halted', vcpu: list[list.length - 1].index };
      const v = list[this.rrNext++ % list.length];
      if (v.state === 'halted') continue;
      const before = v.cpu.instret;
      // one vCPU: no turns to take (its slices would only end blocks mid-way, costing exits and decodes)
      const stop = v.runSlice(list.length === 1 ? left : Math.min(left, ROUND_ROBIN_SLICE));
      left -= Math.max(1, v.cpu.instret - before);
      if (stop !== null) return stop;
    }
    return { kind: 'slice', vcpu: list[(this.rrNext + list.length - 1) % list.length].index };
  }

  describeDebugState(vcpu: number): string {
    return this.vcpu(vcpu).describeDebugState();
  }

  injectNmi(vcpu: number): void {
    this.vcpu(vcpu).injectNmi();
  }

  raiseHostNmi(vcpu: number): void {
    this.vcpu(vcpu).raiseHostNmi();
  }

  vcpuState(vcpu: number): string {
    const v = this.vcpu(vcpu);
    if (v.state === 'stopped') return 'stopped';
    if (this.devices.platform.apics.apics[vcpu].waitingForSipi) return 'wait-for-sipi';
    return v.state === 'halted' ? 'halted' : 'running';
  }

  stats(): VmStats {
    return {
      instructions: this.instructions(),
      exits: this.shared.exits.record(),
      transitions: this.shared.transitions,
      leaks: this.leakDetector.count,
      hostWatchHits: this.host.watchHits,
      hostNmis: { handled: this.host.nmisHandled, sawForeignDebugState: this.host.nmisSawForeignDebugState },
    };
  }

  leaks(): readonly DebugLeak[] {
    return this.leakDetector.leaks;
  }

  takeConsoleOutput(): string {
    return this.devices.console.take();
  }

  serialInput(bytes: Uint8Array): void {
    if (this.devices.platform.uart.feed(bytes)) for (const v of this.vcpus) v.reconsiderHalt();
  }

  serialInputPending(): number {
    return this.devices.platform.uart.pendingInput;
  }

  /** Accesses to ports nothing is attached to (reads all ones, writes dropped). */
  otherPortAccesses(): number {
    return this.bus.unclaimedPortAccesses;
  }
}

/** Create a VM for a loaded image (see vmm/loader/elf.ts parseElf). `factory` defaults to the real guest CPU. */
export function createVm(image: LoadedImage, opts: VmOptions, factory: GuestCpuFactory = realGuestCpu): Vm {
  return new Vm(image, opts, factory);
}

/**
 * A VM booting a Multiboot or PVH kernel (vmm/loader/load-kernel.ts): the plan's blobs in
 * RAM, the BSP at the 32-bit entry, the APs waiting for INIT-SIPI-SIPI.
 */
export function createVmFromPlan(plan: BootPlan, opts: VmOptions, factory: GuestCpuFactory = realGuestCpu): Vm {
  const vm = new Vm({ entry: 0, segments: [], symbols: plan.symbols }, opts, factory);
  vm.applyBootPlan(plan);
  return vm;
}
