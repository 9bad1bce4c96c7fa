import type { DeviceEffect } from '../devices/device';
import { U64 } from '../u64';
import { CpuExit } from './cpu-exit';
import { PhysicalCpu } from './physical-cpu';

/** Architectural registers of the guest other than the debug registers. */
export type GprIndex = 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 | 10 | 11 | 12 | 13 | 14 | 15; // rax rcx rdx rbx rsp rbp rsi rdi r8-r15 (encoding order)

export type CpuStateReg =
  | 'rip' | 'rflags'
  | 'cr0' | 'cr2' | 'cr3' | 'cr4' | 'cr8' | 'efer'
  | 'cs' | 'ss' | 'ds' | 'es' | 'fs' | 'gs'
  | 'fs_base' | 'gs_base' | 'kernel_gs_base'
  | 'idtr_base' | 'idtr_limit' | 'gdtr_base' | 'gdtr_limit'
  | 'tsc';

/** Event injected by the hypervisor at VM entry (VM-entry interruption info / EVENTINJ). */
export interface InjectedEvent {
  vector: number;
  type: 'extint' | 'nmi' | 'hw' | 'sw' | 'swexc' | 'priv';
  errorCode?: number;
  /** For software events: the instruction length, so the pushed RIP is past it. */
  instructionLength?: number;
}

/** Intercept controls the backend programs before it runs the guest (VMCS / VMCB). */
export interface CpuIntercepts {
  /** Bit n set: exception vector n causes an exit instead of IDT delivery. */
  exceptionBitmap: number;
  /** MOV DR causes a 'mov-dr' exit (VT-x MOV-DR exiting, SVM DR read/write intercepts). */
  movDr: boolean;
  /** Monitor trap flag (VT-x only). */
  mtf: boolean;
  /**
   * Exit 'event-delivered' right after an event's delivery. Hypervisor software, not a
   * VMCS/VMCB control: set by the hypervisor while its own (TF) single step is armed.
   */
  eventDelivered: boolean;
  /**
   * The hypercall instruction that exits: 'vmcall' in VMX non-root operation (always),
   * 'vmmcall' under SVM with its intercept on; null: both are #UD (no hypervisor).
   */
  hypercall: 'vmcall' | 'vmmcall' | null;
  /**
   * VT-x NMI-window exiting (with virtual NMIs): exit 'nmi-window' before any instruction
   * once there is no virtual-NMI blocking and no STI / MOV-SS blocking (SDM 26.7.6; the
   * processor may hold it during STI blocking, as this one does).
   */
  nmiWindow: boolean;
  /** SVM IRET intercept: exit 'iret' before an IRET executes (RIP at the IRET). */
  iret: boolean;
}

/**
 * The guest x86-64 CPU, running on a PhysicalCpu. Its breakpoint matching and MOV DR use
 * the physical debug registers (`phys`), which the hypervisor switches between host and
 * guest; everything else here is the guest's architectural state.
 */
export interface GuestCpu {
  phys: PhysicalCpu;
  readonly intercepts: CpuIntercepts;
  /** Instructions retired since creation (event deliveries do not count). */
  readonly instret: number;

  getGpr(i: GprIndex): U64;
  setGpr(i: GprIndex, v: U64): void;
  getReg(r: CpuStateReg): U64;
  setReg(r: CpuStateReg, v: U64): void;
  /** The x87/SSE state as a 512-byte 64-bit FXSAVE image; the setter takes a checked one. */
  getFpuImage(): Uint8Array;
  setFpuImage(image: Uint8Array): void;

  /**
   * VT-x "pending debug exceptions" (B0-3, BS, BD/enabled-bp bit 12 as in SDM Table 24-4):
   * read after an exit, written before an entry. The SVM backend leaves it 0.
   */
  pendingDebugExceptions: number;
  /** Interruptibility: STI and MOV-SS shadows (bit 0 STI, bit 1 MOV SS, as in the VMCS). */
  interruptibility: number;
  /**
   * NMI blocking: set by an NMI's delivery (also an injected one), cleared by IRET (SDM
   * 6.7.1). VT-x saves and loads it as interruptibility bit 3 (virtual-NMI blocking).
   */
  nmiBlocked: boolean;

  /** Deliver this event before the next instruction (VM-entry injection). */
  inject(ev: InjectedEvent): void;
  /** Virtual interrupt line: a pending external interrupt delivered when IF=1 and no shadow. */
  requestInterrupt(vector: number): void;
  /** Takes back the requested interrupt not yet delivered: its vector, or -1. */
  withdrawInterrupt(): number;
  readonly interruptPending: boolean;
  /**
   * Virtual NMI line: delivered through the IDT when NMIs are not blocked; delivering one
   * blocks them until the next IRET (SDM 6.7.1), so a nested NMI waits for the IRET.
   */
  requestNmi(): void;
  /** True while halted in HLT (woken by a deliverable interrupt). */
  halted: boolean;

  /** Run guest code until an intercept or until `budget` instructions retired. */
  run(budget: number): CpuExit;

  /**
   * What an MMIO device asked for during the last `run` (an exit, or a wake of halted vCPUs
   * after an IPI through the xAPIC page), cleared by the call. Absent: no MMIO devices.
   */
  takeDeviceEffect?(): DeviceEffect;

  /**
   * The hypervisor emulated the instruction of the last instruction-intercept exit: advance
   * RIP by `length`, retire it, and raise the traps it would raise (single-step from TF, I/O
   * breakpoints for `io` when CR4.DE=1 and a DR7 R/W=10 slot matches).
   */
  completeEmulatedInstruction(length: number, io?: { port: number; size: number }): void;

  /**
   * The debugger's view of LINEAR memory through this vCPU's current paging structures
   * (supervisor rights, no faults, no accessed/dirty updates, no data breakpoints). False
   * (nothing written) when any byte is unmapped or outside RAM. Absent: linear = physical.
   */
  accessLinear?(address: U64, data: Uint8Array, write: boolean): boolean;

  /**
   * A memory access the hypervisor makes for the guest's emulated instruction (string I/O):
   * translated at the guest's CPL with its A/D updates and data breakpoints (reported after
   * the instruction). Returns the fault instead of the access (CR2 set for a #PF); a write
   * changes nothing unless every byte can be written. Absent: linear = physical.
   */
  emulatedAccess?(address: U64, data: Uint8Array, write: boolean): EmulatedAccessFault | null;

  /**
   * RDMSR / WRMSR as the hypervisor emulates them (vmm/cpu/msr.ts, the one implementation):
   * the value, or undefined / false for #GP(0) (nothing changed).
   */
  readMsr(index: number): U64 | undefined;
  writeMsr(index: number, v: U64): boolean;
  /** writeMsr(TSC, readMsr(TSC) + ticks) without the records (every emulated exit does it). Absent: the caller does that. */
  advanceTsc?(ticks: number): void;
}

/** Why an emulated access failed: a guest exception to inject, or a nested-page fault. */
export type EmulatedAccessFault =
  | { kind: 'exception'; vector: number; errorCode: number }
  | { kind: 'npf'; address: number; write: boolean };
