import { BackendName } from '../vmm-types';
import { CpuExit } from '../cpu/cpu-exit';
import { GuestCpu, InjectedEvent } from '../cpu/guest-cpu';
import { U64 } from '../u64';
import { DrStep, DrSwitchRegs } from './dr-switch';
import { GenericExit } from './exit';

/** Debug registers of the register interface that the backend stores (vm_reg_name DR0-3, DR6, DR7). */
export type GuestDrIndex = 0 | 1 | 2 | 3 | 6 | 7;

/**
 * One hardware-virtualization backend, as bhyve's vmm_ops: VT-x (VmxBackend) and SVM
 * (SvmBackend) implement it. "Hardware" methods do exactly what VM entry / VMRUN and VM exit
 * / #VMEXIT do; the others are the hypervisor software of vmx.c / svm.c.
 */
export interface VmBackend {
  readonly name: BackendName;
  readonly cpu: GuestCpu;
  /** vmxctx / svm_regctx debug fields. */
  readonly drRegs: DrSwitchRegs;
  /** The DR switch around the hardware entry / after the hardware exit, for this mode. */
  readonly enterSteps: readonly DrStep[];
  readonly leaveSteps: readonly DrStep[];

  /** Software, right before the entry (SVM: compute VMCB clean bits from the dirty set). */
  prepareEntry(): void;
  /** Hardware VM entry / VMRUN: checks, guest-state load. Returns null or why it failed (host state is then in place). */
  hardwareEntry(): string | null;
  /** Hardware exit, part 1: exit information and guest-state save. Fills `out`. */
  saveGuestState(cpuExit: CpuExit, out: GenericExit): void;
  /** Hardware exit, part 2: host-state load (VT-x: DR7=400H, DEBUGCTL=0, RFLAGS=2). */
  loadHostState(): void;

  /** vm_get_register / vm_set_register for the guest debug registers (backend storage). */
  getGuestDr(n: GuestDrIndex): U64;
  setGuestDr(n: GuestDrIndex, v: U64): void;
  getGuestDebugctl(): U64;
  /** False when the value has reserved bits set (the caller injects #GP / reports an error). */
  setGuestDebugctl(v: U64): boolean;

  setExceptionIntercept(vector: number, on: boolean): void;
  /** MOV-DR exiting (VT-x) / DR0-7 read and write intercepts (SVM). */
  setDrIntercept(on: boolean): void;
  /** STI / MOV-SS blocking (bits 0, 1) the next entry will load. */
  guestInterruptibility(): number;
  /** Monitor trap flag; false when the backend has none (SVM). */
  setMtf(on: boolean): boolean;
  /**
   * The hypervisor emulated the intercepted instruction (GuestCpu.completeEmulatedInstruction
   * done): clear STI/MOV-SS blocking for the next entry and (VT-x) carry the traps the
   * instruction raised into the pending-debug-exceptions field (SDM 32.2.1), as bhyve does
   * when it advances RIP.
   */
  afterEmulation(): void;
  /** Debug traps an emulated instruction raised (B0-B3, BS): pending for delivery at the next entry. */
  addPendingDebugTraps(bits: number): void;
  /** Drop a pending single-step trap (BS): the client's step it belonged to is over. */
  clearPendingSingleStep(): void;
  /**
   * Virtual NMIs (vmx_inject_nmi / svm_inj_interrupts): whether an NMI injected at the next
   * entry would be taken now: no STI / MOV-SS shadow (and on VT-x no virtual-NMI blocking),
   * no other event in the injection field, no debug trap pending. The SVM hypervisor tracks
   * NMI blocking itself (vmm/hypervisor/nmi.ts).
   */
  nmiInjectable(): boolean;
  /** VT-x: virtual-NMI blocking (interruptibility bit 3) the next entry loads; SVM: false (not hardware state). */
  guestNmiBlocked(): boolean;
  /** VT-x NMI-window exiting; false when the backend has none (SVM). */
  setNmiWindowExiting(on: boolean): boolean;
  /** VT-x: clear blocking by NMI (interruptibility bit 3) for the next entry (INIT); SVM: nothing to clear. */
  clearNmiBlocking(): void;
  /** SVM IRET intercept; false when the backend has none (VT-x). */
  setIretIntercept(on: boolean): boolean;
  /** Event injection at the next entry (VM-entry interruption information / EVENTINJ). */
  injectEvent(ev: InjectedEvent): void;
  /** Describe the raw hardware structure for `monitor`/vmmctl. */
  describe(): string;
}
