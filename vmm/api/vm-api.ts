import { U64 } from '../u64';
import { RegName } from './registers';
import type { HostScenario } from './vm-options';

/** vmx / svm: our simulated hardware; kvm: the host's real /dev/kvm (vmm/kvm). */
export type BackendName = 'vmx' | 'svm' | 'kvm';

/** One debugger-owned hardware breakpoint slot (the effective-state layer). */
export interface DebuggerSlot {
  address: U64;
  /** 'exec' = R/W 00 (len must be 1), 'write' = 01, 'io' = 10, 'access' = 11. */
  type: 'exec' | 'write' | 'io' | 'access';
  len: 1 | 2 | 4 | 8;
}

/** Capabilities a client may turn on per vCPU (as bhyve's vm_cap_type). */
export type Capability =
  | 'intercept-db'   // #DB exits to the client instead of the guest IDT
  | 'intercept-bp'   // #BP (int3) exits to the client
  | 'mtf'            // VT-x monitor trap flag stepping (vmx only)
  | 'rflags-tf';     // step with the guest's RFLAGS.TF, hidden from the guest

/**
 * Why a run stopped, as the client sees it (as bhyve's VM_EXITCODE_*). Exits the hypervisor
 * handles itself (I/O, CPUID, HLT with a timer, preemption, ...) never reach the client.
 */
export type VmStop =
  | { kind: 'slice'; vcpu: number }                 // budget used up; nothing happened
  | {
      kind: 'debug'; vcpu: number;
      /** Debugger slots (0-3, the client's numbering) that hit. */
      slotsHit: number;
      /** The client's single step completed. */
      step: boolean;
    }
  | { kind: 'breakpoint'; vcpu: number; rip: U64 } // int3 with intercept-bp; RIP at the int3
  | { kind: 'mtf'; vcpu: number }
  | { kind: 'exit'; vcpu: number; status: number }  // guest wrote port 0xF4
  | { kind: 'triple-fault'; vcpu: number; reason: string }
  | { kind: 'npf'; vcpu: number; address: number; write: boolean }
  | { kind: 'all-halted'; vcpu: number }            // every vCPU halted with nothing to wake it
  | { kind: 'entry-failed'; vcpu: number; reason: string };

export interface DebugLeak {
  transition: number;
  vcpu: number;
  register: string;     // 'dr0'..'dr7', 'debugctl', 'tf'
  expected: string;     // hex
  actual: string;       // hex
  side: 'guest' | 'host'; // which side's value leaked into the other context
  when: 'entry' | 'exit';
}

export interface VmStats {
  instructions: number;
  exits: Record<string, number>;
  transitions: number;
  leaks: number;
  hostWatchHits: number;
}

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

  /** Guest-physical = guest-linear. Undefined / false when any byte is outside RAM. */
  readMemory(address: number, length: number): Uint8Array | undefined;
  writeMemory(address: number, data: Uint8Array): boolean;

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
  /** Human-readable state of a vCPU for qThreadExtraInfo ('running', 'halted', ...). */
  vcpuState(vcpu: number): string;
  stats(): VmStats;
  leaks(): readonly DebugLeak[];
  /** The console output so far (port 0xE9), drained. */
  takeConsoleOutput(): string;
}

export class VmApiError extends Error {}
