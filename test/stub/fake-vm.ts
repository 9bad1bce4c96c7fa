/**
 * A small VmApi for the stub's tests: registers in maps, memory in an array, and a tiny
 * interpreter for the handful of real x86 encodings the test programs use (so gdb's x/i
 * and stepi see real instructions). Debugger slots, TF stepping and int3 interception are
 * modelled at the VmApi level only.
 */
import { FakeFpuStates } from '../fake-fpu';
import { Capability, DebuggerSlot, DebugLeak, VmApi, VmApiError, VmStats, VmStop } from '../../vmm/api/vm-api';
import { REGISTER_NAMES, RegName } from '../../vmm/api/registers';
import { HostScenario } from '../../vmm/api/vm-options';
import { u64, U64, u64ToNumber, u64FromNumber } from '../../vmm/u64';

export const CODE = 0x100000;
export const COUNTER = 0x100100;
export const EXIT_CODE = 0x100020;
export const GUEST_INT3 = 0x100030;
/** Only read by the program (mov rax,[READER]). */
export const READER = 0x100108;

/**
 * 0x100000: inc qword [rip+0xf9]   (the counter at 0x100100)
 * 0x100007: mov rax,[rip+0xfa]     (reads 0x100108)
 * 0x10000e: nop; 0x10000f: jmp 0x100000
 * 0x100020: mov al,7; out 0xf4,al  (exit 7)
 * 0x100030: int3 (the guest's own); 0x100031: jmp 0x100000
 */
export const PROGRAM: Array<[number, number[]]> = [
  [CODE, [0x48, 0xff, 0x05, 0xf9, 0x00, 0x00, 0x00, 0x48, 0x8b, 0x05, 0xfa, 0x00, 0x00, 0x00, 0x90, 0xeb, 0xef]],
  [EXIT_CODE, [0xb0, 0x07, 0xe6, 0xf4]],
  [GUEST_INT3, [0xcc, 0xeb, 0xcd]],
];

interface VcpuState {
  regs: Map<RegName, U64>;
  caps: Set<Capability>;
  slots: Array<DebuggerSlot | null>;
  /** RF: the next instruction ignores an exec slot (after an exec-slot stop). */
  rf: boolean;
  halted: boolean;
}

export class FakeVm implements VmApi {
  readonly backend = 'vmx' as const;
  readonly memorySize = 0x200000;
  readonly hostScenario: HostScenario = 'idle';
  readonly mem = new Uint8Array(this.memorySize);
  readonly vcpus: VcpuState[] = [];
  /** int3s the guest itself took (executed with #BP not intercepted). */
  guestInt3s = 0;
  readonly slotWrites: Array<{ vcpu: number; slots: Array<DebuggerSlot | null> }> = [];
  instructions = 0;
  exits: Record<string, number> = { io: 0 };
  console = '';
  /** Pretend every instruction takes this long (busy wait), to test interrupt latency. */
  slowdownNs = 0;

  constructor(readonly vcpuCount = 1) {
    for (const [addr, bytes] of PROGRAM) this.mem.set(bytes, addr);
    for (let v = 0; v < vcpuCount; v++) {
      const regs = new Map<RegName, U64>();
      for (const n of REGISTER_NAMES) regs.set(n, u64(0));
      regs.set('rip', u64(CODE + v * 7)); // vCPU 1 starts at the nop after the inc
      regs.set('rflags', u64(2));
      regs.set('cs', u64(8));
      regs.set('ss', u64(0x10));
      regs.set('rsp', u64(0x1ff000 - v * 0x10000));
      regs.set('rdi', u64(v));
      regs.set('rsi', u64(vcpuCount));
      regs.set('dr6', u64(0xffff0ff0));
      regs.set('dr7', u64(0x400));
      this.vcpus.push({ regs, caps: new Set(), slots: [null, null, null, null], rf: false, halted: false });
    }
  }

  private cpu(v: number): VcpuState {
    const c = this.vcpus[v];
    if (!c) throw new VmApiError(`no vCPU ${v}`);
    return c;
  }

  getRegister(vcpu: number, reg: RegName): U64 {
    const r = this.cpu(vcpu).regs.get(reg);
    if (!r) throw new VmApiError(`no register ${reg}`);
    return { ...r };
  }

  setRegister(vcpu: number, reg: RegName, value: U64): void {
    if (reg === 'dr7' && value.hi !== 0) throw new VmApiError('dr7: reserved bits 63:32 must be zero');
    this.cpu(vcpu).regs.set(reg, u64(value.lo, value.hi));
  }

  private readonly fpu = new FakeFpuStates();

  getFpuState(vcpu: number): Uint8Array {
    this.cpu(vcpu);
    return this.fpu.get(vcpu);
  }

  setFpuState(vcpu: number, image: Uint8Array): void {
    this.cpu(vcpu);
    this.fpu.set(vcpu, image);
  }


  readMemory(address: number, length: number): Uint8Array | undefined {
    if (address < 0 || length < 0 || address + length > this.memorySize) return undefined;
    return this.mem.slice(address, address + length);
  }

  writeMemory(address: number, data: Uint8Array): boolean {
    if (address < 0 || address + data.length > this.memorySize) return false;
    this.mem.set(data, address);
    return true;
  }

  /** The fake guest has no paging: virtual = physical. */
  readVirtual(_vcpu: number, address: U64, length: number): Uint8Array | undefined {
    return address.hi === 0 ? this.readMemory(address.lo, length) : undefined;
  }

  writeVirtual(_vcpu: number, address: U64, data: Uint8Array): boolean {
    return address.hi === 0 && this.writeMemory(address.lo, data);
  }

  setCapability(vcpu: number, cap: Capability, on: boolean): void {
    if (cap === 'mtf') throw new VmApiError('mtf: not offered by the fake');
    const c = this.cpu(vcpu);
    if (on) c.caps.add(cap); else c.caps.delete(cap);
  }

  getCapability(vcpu: number, cap: Capability): boolean {
    return this.cpu(vcpu).caps.has(cap);
  }

  setDebuggerSlots(vcpu: number, slots: ReadonlyArray<DebuggerSlot | null>): void {
    const copy = slots.map((s) => (s ? { ...s, address: { ...s.address } } : null));
    this.cpu(vcpu).slots = copy;
    this.slotWrites.push({ vcpu, slots: copy });
  }

  private rip(v: number): number {
    return u64ToNumber(this.cpu(v).regs.get('rip')!);
  }

  private setRip(v: number, n: number): void {
    this.cpu(v).regs.set('rip', u64FromNumber(n));
  }

  run(vcpus: readonly number[], budget: number): VmStop {
    if (vcpus.length === 0) throw new VmApiError('run: no vCPUs');
    let left = budget;
    for (;;) {
      for (const v of vcpus) {
        const stop = this.step(v);
        if (stop) return stop;
        if (--left <= 0) return { kind: 'slice', vcpu: v };
      }
    }
  }

  /** Executes one instruction of vCPU v; a stop when the client must see something. */
  private step(v: number): VmStop | undefined {
    const c = this.cpu(v);
    const rip = this.rip(v);
    if (this.slowdownNs > 0) {
      const end = process.hrtime.bigint() + BigInt(this.slowdownNs);
      while (process.hrtime.bigint() < end) { /* busy */ }
    }
    // instruction breakpoints (fault-like: before the instruction), unless RF
    if (!c.rf) {
      let hit = 0;
      c.slots.forEach((s, i) => { if (s && s.type === 'exec' && u64ToNumber(s.address) === rip) hit |= 1 << i; });
      if (hit) {
        c.rf = true;
        return { kind: 'debug', vcpu: v, slotsHit: hit, step: false };
      }
    }
    c.rf = false;
    const op = this.mem[rip];
    let next = rip;
    let wrote: [number, number] | undefined;
    let read: [number, number] | undefined;
    if (op === 0xcc) {
      if (c.caps.has('intercept-bp')) return { kind: 'breakpoint', vcpu: v, rip: u64FromNumber(rip) };
      this.guestInt3s++;
      next = rip + 1; // the fake's "guest handler" returns right after the int3
    } else if (op === 0x90) next = rip + 1;
    else if (op === 0xeb) next = rip + 2 + ((this.mem[rip + 1] << 24) >> 24);
    else if (op === 0x48 && this.mem[rip + 1] === 0xff && this.mem[rip + 2] === 0x05) {
      const disp = this.mem[rip + 3] | (this.mem[rip + 4] << 8) | (this.mem[rip + 5] << 16) | (this.mem[rip + 6] << 24);
      next = rip + 7;
      const a = next + disp;
      let carry = 1;
      for (let i = 0; i < 8 && carry; i++) {
        const s = this.mem[a + i] + carry;
        this.mem[a + i] = s & 0xff;
        carry = s >> 8;
      }
      wrote = [a, 8];
    } else if (op === 0x48 && this.mem[rip + 1] === 0x8b && this.mem[rip + 2] === 0x05) {
      const disp = this.mem[rip + 3] | (this.mem[rip + 4] << 8) | (this.mem[rip + 5] << 16) | (this.mem[rip + 6] << 24);
      next = rip + 7;
      const a = next + disp;
      const lo = this.mem[a] | (this.mem[a + 1] << 8) | (this.mem[a + 2] << 16) | (this.mem[a + 3] << 24);
      c.regs.set('rax', u64(lo, this.mem[a + 4] | (this.mem[a + 5] << 8) | (this.mem[a + 6] << 16) | (this.mem[a + 7] << 24)));
      read = [a, 8];
    } else if (op === 0xb0) {
      this.cpu(v).regs.set('rax', u64(this.mem[rip + 1]));
      next = rip + 2;
    } else if (op === 0xe6) {
      next = rip + 2;
      this.exits.io++;
      if (this.mem[rip + 1] === 0xf4) {
        this.setRip(v, next);
        this.instructions++;
        return { kind: 'exit', vcpu: v, status: this.getRegister(v, 'rax').lo & 0x7f };
      }
      if (this.mem[rip + 1] === 0xe9) this.console += String.fromCharCode(this.getRegister(v, 'rax').lo & 0xff);
    } else {
      return { kind: 'triple-fault', vcpu: v, reason: `#UD at 0x${rip.toString(16)}` };
    }
    this.setRip(v, next);
    this.instructions++;
    let hit = 0;
    for (const [range, types] of [[wrote, ['write', 'access']], [read, ['access']]] as const) {
      if (!range) continue;
      const [a, n] = range;
      c.slots.forEach((s, i) => {
        if (!s || !(types as readonly string[]).includes(s.type)) return;
        const sa = u64ToNumber(s.address);
        if (sa < a + n && a < sa + s.len) hit |= 1 << i;
      });
    }
    const step = c.caps.has('rflags-tf') && c.caps.has('intercept-db');
    if (hit || step) return { kind: 'debug', vcpu: v, slotsHit: hit, step };
    return undefined;
  }

  describeDebugState(vcpu: number): string {
    const c = this.cpu(vcpu);
    return `guest dr7=0x${c.regs.get('dr7')!.lo.toString(16)} (fake)`;
  }

  vcpuState(vcpu: number): string {
    return this.cpu(vcpu).halted ? 'halted' : 'running';
  }

  stats(): VmStats {
    return { instructions: this.instructions, exits: { ...this.exits }, transitions: 0, leaks: 0, hostWatchHits: 0 };
  }

  leaks(): readonly DebugLeak[] {
    return [];
  }

  takeConsoleOutput(): string {
    const s = this.console;
    this.console = '';
    return s;
  }
}
