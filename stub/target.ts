/**
 * The target adapter: everything the protocol handlers need, expressed over VmApi only.
 * Registers (x87/SSE ones as fields of the vCPU's FXSAVE image), memory with software breakpoints hidden,
 * the debugger's debug-register slots, and capability bookkeeping. It outlives a gdb
 * session: detach() puts the VM back as it was without the debugger.
 */
import { u64, U64 } from '../vmm/u64';
import { DebuggerSlot, VmApi, VmApiError } from '../vmm/api/vm-api';
import {
  DregSlot, DregState, emptyDregState, insertRegion, removeRegion, SlotType,
} from './dregs';
import { bytesToHex } from './protocol/hex';
import { ReplyParts } from './protocol/reply-writer';
import { G_PACKET_BYTES, REMOTE_REGS, RemoteReg } from './register-layout';
import { readFpuField, writeFpuField } from './fpu-registers';

const INT3 = 0xcc;

export type HwInsertResult = 'ok' | 'no-room' | 'invalid';

function u64ToLe(v: U64, size: number): Uint8Array {
  const b = new Uint8Array(size);
  const lo = v.lo >>> 0;
  const hi = v.hi >>> 0;
  for (let i = 0; i < size; i++) b[i] = i < 4 ? (lo >>> (8 * i)) & 0xff : (hi >>> (8 * (i - 4))) & 0xff;
  return b;
}

function leToU64(b: Uint8Array): U64 {
  let lo = 0;
  let hi = 0;
  for (let i = 0; i < Math.min(b.length, 8); i++) {
    if (i < 4) lo |= b[i] << (8 * i);
    else hi |= b[i] << (8 * (i - 4));
  }
  return u64(lo, hi);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A 64-bit bigint address as halves. */
function toU64(a: bigint): U64 {
  return u64(Number(a & 0xffffffffn), Number((a >> 32n) & 0xffffffffn));
}

export class VmTarget {
  /** gdb's software breakpoints: virtual address -> the original byte under the int3 and the vCPU whose mapping it used. */
  private readonly swBreakpoints = new Map<bigint, { byte: number; vcpu: number }>();
  /** gdb's hardware requests (for idempotent Z/z): key "type:addr:len". */
  private readonly hwRequests = new Set<string>();
  private dregs: DregState = emptyDregState();
  private readonly stepping = new Set<number>();

  /** How a step is made: the guest's TF (both backends) or VT-x's monitor trap flag. */
  readonly stepCap: 'rflags-tf' | 'mtf';

  constructor(readonly vm: VmApi, stepMethod: 'tf' | 'mtf' = 'tf') {
    this.stepCap = stepMethod === 'mtf' && vm.backend === 'vmx' ? 'mtf' : 'rflags-tf';
  }

  get vcpuCount(): number {
    return this.vm.vcpuCount;
  }

  // ---- registers ---------------------------------------------------------------------

  readRegister(vcpu: number, regno: number): Uint8Array | undefined {
    const r = REMOTE_REGS[regno];
    if (!r || !this.validVcpu(vcpu)) return undefined;
    return this.readReg(vcpu, r);
  }

  /** A register as gdb's hex (little-endian) into a reply being built: the stop reply's path. False if there is none. */
  putRegisterHex(out: ReplyParts, vcpu: number, regno: number): boolean {
    const r = REMOTE_REGS[regno];
    if (!r || !this.validVcpu(vcpu)) return false;
    if (r.source.kind === 'fpu') {
      out.putText(bytesToHex(this.readReg(vcpu, r)));
      return true;
    }
    const v = this.vm.getRegister(vcpu, r.source.name);
    out.putHexLe32(v.lo);
    if (r.size === 8) out.putHexLe32(v.hi);
    return true;
  }

  private readReg(vcpu: number, r: RemoteReg): Uint8Array {
    if (r.source.kind === 'fpu') {
      const out = new Uint8Array(r.size);
      readFpuField(this.vm.getFpuState(vcpu), r.source.field, out, 0, r.size);
      return out;
    }
    return u64ToLe(this.vm.getRegister(vcpu, r.source.name), r.size);
  }

  readAllRegisters(vcpu: number): Uint8Array {
    const out = new Uint8Array(G_PACKET_BYTES);
    const fpu = this.vm.getFpuState(vcpu);
    for (const r of REMOTE_REGS) {
      if (r.source.kind === 'fpu') {
        readFpuField(fpu, r.source.field, out, r.offset, r.size);
        continue;
      }
      const v = this.vm.getRegister(vcpu, r.source.name);
      const o = r.offset;
      const lo = v.lo >>> 0;
      out[o] = lo & 0xff; out[o + 1] = (lo >>> 8) & 0xff; out[o + 2] = (lo >>> 16) & 0xff; out[o + 3] = lo >>> 24;
      if (r.size === 8) {
        const hi = v.hi >>> 0;
        out[o + 4] = hi & 0xff; out[o + 5] = (hi >>> 8) & 0xff; out[o + 6] = (hi >>> 16) & 0xff; out[o + 7] = hi >>> 24;
      }
    }
    return out;
  }

  /**
   * P: undefined when written; else why not (a wrong number or size, or a value the VM
   * refuses), and then nothing changed.
   */
  writeRegister(vcpu: number, regno: number, value: Uint8Array): string | undefined {
    const r = REMOTE_REGS[regno];
    if (!r || !this.validVcpu(vcpu)) return `no register ${regno.toString(16)}`;
    if (value.length !== r.size) return `${r.name} is ${r.size} bytes, not ${value.length}`;
    return this.writeRegs(vcpu, [[r, value]], true);
  }

  /**
   * G: a block of any register-boundary length (gdb may send all of it). All or nothing:
   * when the VM refuses one value, the registers written before it get their old values back.
   */
  writeAllRegisters(vcpu: number, block: Uint8Array): string | undefined {
    if (!this.validVcpu(vcpu)) return `no vCPU ${vcpu}`;
    const regs = REMOTE_REGS.filter((r) => r.offset + r.size <= block.length);
    const end = regs.length === 0 ? 0 : regs[regs.length - 1].offset + regs[regs.length - 1].size;
    if (end !== block.length) return `a G block of ${block.length} bytes ends inside a register`;
    // Only registers whose value changes are written: a G that round-trips g has no effect.
    return this.writeRegs(vcpu, regs.map((r) => [r, block.subarray(r.offset, r.offset + r.size)]), false);
  }

  private writeRegs(vcpu: number, writes: Array<[RemoteReg, Uint8Array]>, always: boolean): string | undefined {
    const done: Array<[RemoteReg, Uint8Array]> = [];
    for (const [r, value] of writes) {
      const old = this.readReg(vcpu, r);
      if (!always && sameBytes(old, value)) continue;
      const refused = this.writeReg(vcpu, r, value);
      if (refused !== undefined) {
        for (const [dr, dv] of done.reverse()) this.writeReg(vcpu, dr, dv);
        return refused;
      }
      done.push([r, old]);
    }
    return undefined;
  }

  private writeReg(vcpu: number, r: RemoteReg, value: Uint8Array): string | undefined {
    if (r.source.kind === 'fpu') {
      const image = this.vm.getFpuState(vcpu);
      writeFpuField(image, r.source.field, value);
      try {
        this.vm.setFpuState(vcpu, image);
      } catch (e) {
        if (!(e instanceof VmApiError)) throw e;
        return e.message.startsWith(r.name) ? e.message : `${r.name}: ${e.message}`;
      }
      return undefined;
    }
    if (r.readOnly) return `${r.name}: ${r.readOnly}`;
    let v = leToU64(value);
    if (r.size === 4) {
      // eflags and selectors are 32 bits wide in gdb's view; keep the VM's upper half
      const cur = this.vm.getRegister(vcpu, r.source.name);
      v = u64(v.lo, cur.hi);
    }
    try {
      this.vm.setRegister(vcpu, r.source.name, v);
    } catch (e) {
      if (!(e instanceof VmApiError)) throw e;
      return e.message.startsWith(r.source.name) ? e.message : `${r.name}: ${e.message}`;
    }
    return undefined;
  }

  getPc(vcpu: number): bigint {
    const v = this.vm.getRegister(vcpu, 'rip');
    return (BigInt(v.hi >>> 0) << 32n) | BigInt(v.lo >>> 0);
  }

  setPc(vcpu: number, pc: bigint): void {
    this.vm.setRegister(vcpu, 'rip', u64(Number(pc & 0xffffffffn), Number((pc >> 32n) & 0xffffffffn)));
  }

  // ---- memory ------------------------------------------------------------------------
  // gdb sees VIRTUAL memory: addresses are translated through the paging structures of the
  // vCPU gdb has selected (Hg), as QEMU's gdbstub does. An unmapped byte is an error reply.

  /** m: reads what the guest would see without gdb's int3s. */
  readMemory(vcpu: number, address: bigint, length: number): Uint8Array | undefined {
    if (length === 0) return new Uint8Array(0);
    if (address < 0n || address + BigInt(length) > 1n << 64n) return undefined;
    const data = this.vm.readVirtual(vcpu, toU64(address), length);
    if (!data) return undefined;
    if (this.swBreakpoints.size === 0) return data;
    const out = Uint8Array.from(data);
    for (const [bp, orig] of this.swBreakpoints) {
      if (bp >= address && bp < address + BigInt(length)) out[Number(bp - address)] = orig.byte;
    }
    return out;
  }

  /** M/X: writes under a gdb breakpoint update the saved byte and keep the int3 in place. */
  writeMemory(vcpu: number, address: bigint, data: Uint8Array): boolean {
    if (address < 0n || address + BigInt(data.length) > 1n << 64n) return false;
    if (data.length === 0) return true;
    const out = Uint8Array.from(data);
    const saved: Array<[bigint, number]> = [];
    for (const bp of this.swBreakpoints.keys()) {
      if (bp >= address && bp < address + BigInt(out.length)) {
        const k = Number(bp - address);
        saved.push([bp, out[k]]);
        out[k] = INT3;
      }
    }
    if (!this.vm.writeVirtual(vcpu, toU64(address), out)) return false;
    for (const [bp, byte] of saved) this.swBreakpoints.get(bp)!.byte = byte;
    return true;
  }

  // ---- software breakpoints (Z0) -----------------------------------------------------

  insertSwBreakpoint(vcpu: number, address: bigint): boolean {
    if (address < 0n || address >= 1n << 64n) return false;
    if (this.swBreakpoints.has(address)) return true; // idempotent
    const a = toU64(address);
    const orig = this.vm.readVirtual(vcpu, a, 1);
    if (!orig || !this.vm.writeVirtual(vcpu, a, Uint8Array.of(INT3))) return false;
    this.swBreakpoints.set(address, { byte: orig[0], vcpu });
    if (this.swBreakpoints.size === 1) this.setAllCaps('intercept-bp', true);
    return true;
  }

  removeSwBreakpoint(_vcpu: number, address: bigint): boolean {
    const bp = this.swBreakpoints.get(address);
    if (bp === undefined) return address >= 0n && address < 1n << 64n; // idempotent
    // restored through the vCPU that inserted it (its mapping of the address)
    if (!this.vm.writeVirtual(bp.vcpu, toU64(address), Uint8Array.of(bp.byte))) return false;
    this.swBreakpoints.delete(address);
    if (this.swBreakpoints.size === 0) this.setAllCaps('intercept-bp', false);
    return true;
  }

  isSwBreakpoint(address: bigint): boolean {
    return this.swBreakpoints.has(address);
  }

  // ---- hardware breakpoints and watchpoints (Z1, Z2, Z4) -----------------------------

  insertHw(type: SlotType, address: bigint, len: number): HwInsertResult {
    const key = `${type}:${address}:${len}`;
    if (this.hwRequests.has(key)) return 'ok';
    const next = insertRegion(this.dregs, type, address, len);
    if (!next) return type === 'exec' && len !== 1 ? 'invalid' : 'no-room';
    this.commitSlots(next);
    this.hwRequests.add(key);
    return 'ok';
  }

  removeHw(type: SlotType, address: bigint, len: number): boolean {
    const key = `${type}:${address}:${len}`;
    if (!this.hwRequests.has(key)) return true; // idempotent
    const next = removeRegion(this.dregs, type, address, len);
    if (!next) return false;
    this.commitSlots(next);
    this.hwRequests.delete(key);
    return true;
  }

  get slots(): DregState {
    return this.dregs;
  }

  slot(i: number): DregSlot | null {
    return this.dregs[i] ?? null;
  }

  private commitSlots(next: DregState): void {
    const vmSlots: Array<DebuggerSlot | null> = next.map((s) => s === null ? null : {
      address: u64(Number(s.address & 0xffffffffn), Number(s.address >> 32n)),
      type: s.type,
      len: s.len,
    });
    for (let v = 0; v < this.vm.vcpuCount; v++) this.vm.setDebuggerSlots(v, vmSlots);
    this.dregs = next;
    for (let v = 0; v < this.vm.vcpuCount; v++) this.updateInterceptDb(v);
  }

  private slotsInUse(): boolean {
    return this.dregs.some((s) => s !== null);
  }

  // ---- stepping ----------------------------------------------------------------------

  setStepping(vcpu: number, on: boolean): void {
    if (on === this.stepping.has(vcpu)) return;
    if (on) this.stepping.add(vcpu);
    else this.stepping.delete(vcpu);
    this.vm.setCapability(vcpu, this.stepCap, on);
    this.updateInterceptDb(vcpu);
  }

  isStepping(vcpu: number): boolean {
    return this.stepping.has(vcpu);
  }

  clearStepping(): void {
    if (this.stepping.size === 0) return;
    for (const v of [...this.stepping]) this.setStepping(v, false);
  }

  /** Exactly `vcpus` step: the others stop stepping first (a no-op when nothing changes). */
  stepOnly(vcpus: readonly number[]): void {
    if (this.stepping.size > 0) {
      for (const v of [...this.stepping]) if (!vcpus.includes(v)) this.setStepping(v, false);
    }
    for (const v of vcpus) this.setStepping(v, true);
  }

  private updateInterceptDb(vcpu: number): void {
    const want = this.slotsInUse() || (this.stepCap === 'rflags-tf' && this.stepping.has(vcpu));
    if (this.vm.getCapability(vcpu, 'intercept-db') !== want) this.vm.setCapability(vcpu, 'intercept-db', want);
  }

  private setAllCaps(cap: 'intercept-bp', on: boolean): void {
    for (let v = 0; v < this.vm.vcpuCount; v++) this.vm.setCapability(v, cap, on);
  }

  // ---- system reset ------------------------------------------------------------------

  /**
   * After VmApi.reset: stepping off, the
   * debugger's slots loaded into the new vCPUs again, and each int3 written again where its
   * address is mapped in the boot state (the byte under it read anew); one that is not
   * (e.g. a higher-half address before the kernel's paging) is dropped. Returns the number dropped.
   */
  afterReset(): number {
    this.stepping.clear();
    this.commitSlots(this.dregs);
    let dropped = 0;
    for (const [address, bp] of [...this.swBreakpoints]) {
      const a = toU64(address);
      const orig = this.vm.readVirtual(bp.vcpu, a, 1);
      if (orig && this.vm.writeVirtual(bp.vcpu, a, Uint8Array.of(INT3))) bp.byte = orig[0];
      else { this.swBreakpoints.delete(address); dropped++; }
    }
    this.setAllCaps('intercept-bp', this.swBreakpoints.size > 0);
    return dropped;
  }

  // ---- session end -------------------------------------------------------------------

  /** Removes everything the debugger put into the VM; the guest's own state stays. */
  detach(): void {
    for (const a of [...this.swBreakpoints.keys()]) this.removeSwBreakpoint(0, a);
    this.swBreakpoints.clear();
    this.hwRequests.clear();
    if (this.slotsInUse()) this.commitSlots(emptyDregState());
    this.clearStepping();
    for (let v = 0; v < this.vm.vcpuCount; v++) {
      if (this.vm.getCapability(v, 'intercept-bp')) this.vm.setCapability(v, 'intercept-bp', false);
      if (this.vm.getCapability(v, 'intercept-db')) this.vm.setCapability(v, 'intercept-db', false);
    }
  }

  validVcpu(vcpu: number): boolean {
    return Number.isInteger(vcpu) && vcpu >= 0 && vcpu < this.vm.vcpuCount;
  }
}
