/**
 * What the guest CPU reports when it stops running guest code: the generic "something
 * happened that the hypervisor intercepts" records. The VT-x and SVM backends map each to
 * their own exit reason / exit code and apply their hardware's side effects (VMCS vs VMCB
 * rules for DR6, DR7, pending debug exceptions, ...). The CPU itself knows nothing of either.
 *
 * Instruction-intercept exits are fault-like: RIP still points at the instruction, which has
 * not executed; `length` is its length so the hypervisor can emulate and skip it, then call
 * Cpu.completeEmulatedInstruction() so that traps it would raise (single-step, I/O
 * breakpoints) still happen.
 */
export type CpuExit =
  /** Budget given to Cpu.run() used up, at an instruction boundary. Not a VM exit. */
  | { kind: 'budget' }
  /**
   * An exception whose vector is set in the intercept bitmap. For #DB, `dr6` holds the
   * bits the exception would have set (B0-B3, BD, BS, BT); DR6 itself is NOT updated
   * (the SVM backend writes it, VT-x leaves it). `pendingDebug` is what the VT-x
   * "pending debug exceptions" field would hold. `instructionLength` for software
   * exceptions (int3, int n, icebp).
   */
  | {
      kind: 'exception';
      vector: number;
      errorCode: number | undefined;
      dr6: number;
      /** 'hw' exception, 'sw' int n, 'swexc' int3/into, 'priv' icebp */
      type: 'hw' | 'sw' | 'swexc' | 'priv';
      instructionLength: number;
    }
  | { kind: 'triple-fault'; reason: string }
  | { kind: 'hlt'; length: number }
  | { kind: 'cpuid'; length: number }
  /** VMCALL (VT-x) or VMMCALL (SVM), as `intercepts.hypercall` names. */
  | { kind: 'hypercall'; length: number }
  | { kind: 'rdmsr'; length: number }
  | { kind: 'wrmsr'; length: number }
  /** IN/OUT/INS/OUTS. `port`, `size` 1/2/4, `isIn`, string and rep flags. */
  | { kind: 'io'; length: number; port: number; size: 1 | 2 | 4; isIn: boolean; string: boolean; rep: boolean }
  /** MOV to/from DRn with the MOV-DR intercept on (before the #GP/#UD/GD checks). */
  | { kind: 'mov-dr'; length: number; dr: number; gpr: number; toDr: boolean }
  /** Monitor trap flag: after one instruction (or event delivery) completed. */
  | { kind: 'mtf' }
  /** An access outside guest RAM (no nested page): guest-physical address and access. */
  | { kind: 'npf'; address: number; write: boolean; fetch: boolean }
  /** An external interrupt arrived while interrupt exiting was on (host timer). */
  | { kind: 'extint' }
  /**
   * An event (interrupt, exception, NMI, INT n) was delivered with intercepts.eventDelivered
   * on: RIP is the handler's first instruction, not yet run, the frame is pushed. The
   * hypervisor's single step ends there, as an MTF exit after event delivery (SDM 25.5.2).
   */
  | { kind: 'event-delivered' }
  /** VT-x NMI-window exiting: NMI blocking (and STI / MOV-SS blocking) ended; nothing ran. */
  | { kind: 'nmi-window' }
  /** SVM IRET intercept: the IRET at RIP has not executed. */
  | { kind: 'iret'; length: number }
  /**
   * A host NMI arrived while the guest ran (VT-x "NMI exiting", SVM NMI intercept). The CPU
   * never makes this one: the hypervisor's run loop raises it at an instruction boundary.
   */
  | { kind: 'nmi' };

export type CpuExitKind = CpuExit['kind'];
