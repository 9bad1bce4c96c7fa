import { U64 } from '../u64';
import { RegName } from './registers';
import type { BackendName, Capability, DebugLeak, DebuggerSlot, HostScenario, VmStats, VmStop } from '../vmm-types';

export type { BackendName, Capability, DebugLeak, DebuggerSlot, VmStats, VmStop } from '../vmm-types';

/**
 * The vmm's public interface: the only thing the gdb stub and vmmctl use (as bhyve's gdb
 * stub and bhyvectl use libvmmapi). vCPUs are numbered from 0. Every call is made while
 * the vCPUs are stopped at an instruction boundary. Errors are thrown as VmApiError.
 */
export interface VmApi {
  readonly backend: BackendName;
  readonly vcpuCount: number;
  readonly memorySize: number;
  /** The host scenario this VM was created with (--host-scenario), for the stub's `monitor host`. */
  readonly hostScenario?: HostScenario;

  getRegister(vcpu: number, reg: RegName): U64;
  setRegister(vcpu: number, reg: RegName, value: U64): void;

  /**
   * The x87/SSE state of a vCPU as the 512-byte 64-bit FXSAVE image (FCW at 0, FSW at 2, the
   * abridged tag byte at 4, FOP, FIP, FDP, MXCSR at 24, ST0-7 from 32, XMM0-15 from 160),
   * the legacy region of what KVM_GET_XSAVE gives. setFpuState loads one as FXRSTOR would, or throws VmApiError
   * (wrong size, reserved MXCSR bits) and changes nothing.
   */
  getFpuState(vcpu: number): Uint8Array;
  setFpuState(vcpu: number, image: Uint8Array): void;

  /** Guest-PHYSICAL memory. Undefined / false when any byte is outside RAM. */
  readMemory(address: number, length: number): Uint8Array | undefined;
  writeMemory(address: number, data: Uint8Array): boolean;

  /**
   * Guest-VIRTUAL (linear) memory as vCPU `vcpu` sees it now: translated through its current
   * paging structures with supervisor rights, as QEMU's gdbstub does. No faults, no
   * accessed/dirty updates, no data breakpoints. Undefined / false (nothing written) when any
   * byte is unmapped or outside RAM.
   */
  readVirtual(vcpu: number, address: U64, length: number): Uint8Array | undefined;
  writeVirtual(vcpu: number, address: U64, data: Uint8Array): boolean;

  setCapability(vcpu: number, cap: Capability, on: boolean): void;
  getCapability(vcpu: number, cap: Capability): boolean;

  /** The debugger's slots for a vCPU (index = client slot 0-3; null = free). */
  setDebuggerSlots(vcpu: number, slots: ReadonlyArray<DebuggerSlot | null>): void;

  /**
   * Run the given vCPUs (round-robin) for up to `budget` guest instructions in total, or until
   * one of them stops. Returns the first stop; the others stay at an instruction boundary.
   */
  run(vcpus: readonly number[], budget: number): VmStop;

  /** Debug-state report for `monitor dr` / vmmctl: guest view, effective, physical. */
  describeDebugState(vcpu: number): string;
  /** Restarts the VM from its boot state (RAM reloaded, vCPUs at the entry); absent: not supported. */
  reset?(): void;
  /** `info lapic`-style summary of a vCPU's local APIC (absent: this VM has none to show). */
  describeLocalApic?(vcpu: number): string;
  /**
   * An NMI for the guest on vCPU `vcpu` (KVM_NMI; the gdb stub's `monitor nmi`): the
   * hypervisor injects it when the guest can take one (not in its NMI handler). Absent: not
   * supported by this VM.
   */
  injectNmi?(vcpu: number): void;
  /**
   * A host NMI while vCPU `vcpu` runs its guest (a watchdog, perf, another CPU's NMI IPI):
   * it arrives after the guest's next instruction, causes an NMI exit that the host handles,
   * and the guest goes on as if nothing happened. Absent: not supported by this VM.
   */
  raiseHostNmi?(vcpu: number): void;
  /** Human-readable state of a vCPU for qThreadExtraInfo ('running', 'halted', 'wait-for-sipi' (an AP before its SIPI), ...). */
  vcpuState(vcpu: number): string;
  stats(): VmStats;
  leaks(): readonly DebugLeak[];
  /** The console output so far (port 0xE9), drained. */
  takeConsoleOutput(): string;
  /**
   * Bytes typed into COM1 (the 16550's receive side), queued on the line until the guest
   * reads them; a vCPU halted for the UART's interrupt wakes. Absent: this VM has no UART.
   */
  serialInput?(bytes: Uint8Array): void;
  /** Host bytes sent with serialInput that the guest has not taken into its UART yet. */
  serialInputPending?(): number;
}

export class VmApiError extends Error {}
