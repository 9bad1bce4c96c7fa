/**
 * A small VmApi for testing the CLI and the control socket without the real VM: registers
 * in a table, a "guest" that is a script of what each slice does. It keeps the rules the
 * CLI depends on (guest-view DR6/DR7 bits 63:32 refused as MOV DR would, vCPU numbers
 * checked, console drained once) and nothing else.
 */
import { FakeFpuStates } from '../fake-fpu';
import * as fs from 'node:fs';
import { U64, u64, u64Equal, u64ToNumber } from '../../vmm/u64';
import { REGISTER_NAMES, RegName } from '../../vmm/api/registers';
import {
  BackendName, Capability, DebugLeak, DebuggerSlot, VmApi, VmApiError, VmStats, VmStop,
} from '../../vmm/api/vm-api';
import { VmOptions } from '../../vmm/api/vm-options';
import { ElfError, LoadedImage } from '../../vmm/loader/elf-types';
import { CliDeps } from '../../cli/modules';

/** What the fake guest does when run: called once per slice, returns the stop. */
export type FakeGuest = (vm: FakeVm, budget: number) => VmStop;

export class FakeVm implements VmApi {
  readonly backend: BackendName;
  readonly vcpuCount: number;
  readonly memorySize: number;
  readonly hostScenario: VmOptions['hostScenario'];
  readonly regs: Array<Map<RegName, U64>>;
  console = '';
  instructions = 0;
  exits: Record<string, number> = {};
  leakList: DebugLeak[] = [];
  slices = 0;
  traceSink: ((event: unknown) => void) | null = null;
  readonly setLog: Array<{ vcpu: number; reg: RegName; value: U64 }> = [];
  private readonly caps = new Set<string>();

  constructor(readonly options: VmOptions, readonly guest: FakeGuest, entry = 0x100000) {
    this.backend = options.backend;
    this.vcpuCount = options.vcpus;
    this.memorySize = options.memMiB * 1024 * 1024;
    this.hostScenario = options.hostScenario;
    this.regs = Array.from({ length: this.vcpuCount }, (_, i) => {
      const m = new Map<RegName, U64>();
      for (const r of REGISTER_NAMES) m.set(r, u64(0));
      m.set('rip', u64(entry));
      m.set('rflags', u64(2));
      m.set('dr6', u64(0xffff0ff0));
      m.set('dr7', u64(0x400));
      m.set('rdi', u64(i));
      m.set('rsi', u64(this.vcpuCount));
      return m;
    });
  }

  private check(vcpu: number): Map<RegName, U64> {
    const r = this.regs[vcpu];
    if (!Number.isInteger(vcpu) || r === undefined) throw new VmApiError(`no vCPU ${vcpu}`);
    return r;
  }

  getRegister(vcpu: number, reg: RegName): U64 {
    const v = this.check(vcpu).get(reg);
    if (v === undefined) throw new VmApiError(`no register ${reg}`);
    return { ...v };
  }

  setRegister(vcpu: number, reg: RegName, value: U64): void {
    const r = this.check(vcpu);
    if ((reg === 'dr6' || reg === 'dr7') && value.hi !== 0) {
      throw new VmApiError(`${reg} bits 63:32 must be zero`);
    }
    r.set(reg, { ...value });
    this.setLog.push({ vcpu, reg, value: { ...value } });
  }

  private readonly fpu = new FakeFpuStates();

  getFpuState(vcpu: number): Uint8Array {
    this.check(vcpu);
    return this.fpu.get(vcpu);
  }

  setFpuState(vcpu: number, image: Uint8Array): void {
    this.check(vcpu);
    this.fpu.set(vcpu, image);
  }


  reg(vcpu: number, reg: RegName): number {
    return u64ToNumber(this.getRegister(vcpu, reg));
  }

  readMemory(): Uint8Array | undefined { return undefined; }
  writeMemory(): boolean { return false; }
  readVirtual(): Uint8Array | undefined { return undefined; }
  writeVirtual(): boolean { return false; }
  setCapability(vcpu: number, cap: Capability, on: boolean): void {
    this.check(vcpu);
    if (on) this.caps.add(`${vcpu}:${cap}`); else this.caps.delete(`${vcpu}:${cap}`);
  }
  getCapability(vcpu: number, cap: Capability): boolean { return this.caps.has(`${vcpu}:${cap}`); }
  setDebuggerSlots(vcpu: number, _slots: ReadonlyArray<DebuggerSlot | null>): void { this.check(vcpu); }

  /** The stub's event hand-back (VmApi on branch stub); the CLI never calls it. */
  injectException(vcpu: number, vector: number): void {
    this.check(vcpu);
    if (vector !== 1 && vector !== 3) throw new VmApiError(`cannot inject vector ${vector}`);
  }

  run(vcpus: readonly number[], budget: number): VmStop {
    this.slices++;
    this.traceSink?.({ type: 'exit', ts: this.instructions, vcpu: 0, reason: 'slice', backendReason: 'fake' });
    return this.guest(this, budget);
  }

  /** As the real Vm's: where trace events go (null = off). */
  setTraceSink(sink: ((event: unknown) => void) | null): void {
    this.traceSink = sink;
  }

  describeDebugState(vcpu: number): string {
    const r = this.check(vcpu);
    return `vCPU ${vcpu} guest dr7=0x${(r.get('dr7') as U64).lo.toString(16)}`;
  }
  vcpuState(): string { return 'running'; }
  stats(): VmStats {
    return { instructions: this.instructions, exits: { ...this.exits }, transitions: this.slices * 2, leaks: this.leakList.length, hostWatchHits: 0 };
  }
  leaks(): readonly DebugLeak[] { return this.leakList; }
  takeConsoleOutput(): string {
    const s = this.console;
    this.console = '';
    return s;
  }

  countExit(reason: string): void {
    this.exits[reason] = (this.exits[reason] ?? 0) + 1;
  }
}

/** Prints `text`, then retires instructions until `total`, then exits with `status`. */
export function exitAfter(total: number, status: number, text = 'hello from the fake guest\n'): FakeGuest {
  return (vm, budget) => {
    if (vm.instructions === 0) { vm.console += text; vm.countExit('io'); }
    const n = Math.min(budget, total - vm.instructions);
    vm.instructions += n;
    if (vm.instructions >= total) { vm.countExit('io'); return { kind: 'exit', vcpu: 0, status }; }
    vm.countExit('external-interrupt');
    return { kind: 'slice', vcpu: 0 };
  };
}

/** Loops until the guest-view DR7 of vCPU 0 equals `dr7`, then exits with `status`. */
export function untilDr7(dr7: number, status: number): FakeGuest {
  return (vm, budget) => {
    vm.instructions += Math.min(budget, 1000);
    if (u64Equal(vm.getRegister(0, 'dr7'), u64(dr7))) {
      vm.console += `dr7 is 0x${dr7.toString(16)}\n`;
      return { kind: 'exit', vcpu: 0, status };
    }
    return { kind: 'slice', vcpu: 0 };
  };
}

/** Stops with `stop` at the first slice. */
export function stopsWith(stop: VmStop): FakeGuest {
  return (vm) => { vm.instructions += 10; return stop; };
}

/** CliDeps building FakeVms; `created` records every VM made (none for a bad command line). */
export function fakeDeps(guest: FakeGuest): CliDeps & { created: FakeVm[] } {
  const created: FakeVm[] = [];
  return {
    created,
    parseElf: () => (bytes: Uint8Array, memSize: number): LoadedImage => {
      if (bytes.length < 4 || bytes[0] !== 0x7f || bytes[1] !== 0x45 || bytes[2] !== 0x4c || bytes[3] !== 0x46) {
        throw new ElfError('not an ELF file (bad magic)');
      }
      if (memSize < 1024 * 1024) throw new ElfError('guest memory too small');
      return { entry: 0x100000, segments: [], symbols: new Map() };
    },
    createVm: () => (image: LoadedImage, opts: VmOptions): VmApi => {
      const vm = new FakeVm(opts, guest, image.entry);
      created.push(vm);
      return vm;
    },
    startGdbServer: () => { throw new Error('startGdbServer not faked'); },
    // Events as JSON lines, then 'closed': enough to see that the CLI wires and closes it.
    traceVmToFile: () => (vm, file, label) => {
      fs.writeFileSync(file, `label ${label}\n`);
      vm.setTraceSink((ev: never) => fs.appendFileSync(file, JSON.stringify(ev) + '\n'));
      return () => { vm.setTraceSink(null); fs.appendFileSync(file, 'closed\n'); };
    },
    runVerify: () => { throw new Error('runVerify not faked'); },
  };
}
