import { PhysicalCpu } from '../cpu/physical-cpu';
import { HostScenario } from '../vmm-types';
import { DR6_BS, DR6_RESERVED1, dr7SlotEnabled, dr7SlotLen, dr7SlotRw } from '../x86/debug-regs';
import { DrStep, StepObserver } from './dr-switch';
import { GenericExitKind } from './exit';
import { DebugState } from './guest-debug-state';

/** Host kernel addresses (canonical, upper half) as 32-bit halves. */
const HOST_HI = 0xffffffff;
/** Stale host DR0-3 values every scenario starts with (a previous debug session's). */
const STALE_HOST_DR = [0x80a01000, 0x80a02000, 0x80a03000, 0x80a04000];
/** Host data the exit handlers write: the per-vCPU exit counters (8 bytes each). */
export const HOST_EXIT_COUNTERS_LO = 0x81200000;
/** Host data the host-watch thread also watches: the exit-reason field (4 bytes each). */
export const HOST_LAST_EXIT_LO = 0x81200800;

/**
 * The host: what it owns of the physical debug state (the leak detector compares against
 * this after every return to the host) and what it does with it. Every deliberate host
 * write goes through here so that ownership follows it.
 */
export class HostContext {
  readonly owned = new DebugState();
  ownedTF = false;
  /** True while physical DR6 holds a guest's content (after its load, before the host's restore). */
  dr6HoldsGuest = false;
  watchHits = 0;
  singleStepTraps = 0;
  breakpointHits = 0;
  /** Host NMIs handled (NMI exits), and how many of them found debug registers that were not the host's. */
  nmisHandled = 0;
  nmisSawForeignDebugState = 0;
  /** Told of every deliberate host write of a debug register (the VM's trace). */
  onWrite: ((n: number, lo: number, hi: number) => void) | null = null;

  constructor(readonly phys: PhysicalCpu) {
    for (let n = 0; n < 4; n++) this.write(n, STALE_HOST_DR[n], HOST_HI);
    this.write(6, DR6_RESERVED1, 0);
    this.write(7, 0x400, 0);
  }

  /** A host kernel write of DRn (context switch, debugger). */
  write(n: number, lo: number, hi: number): void {
    this.phys.drLo[n] = lo >>> 0;
    this.phys.drHi[n] = hi >>> 0;
    this.phys.generation++;
    this.owned.lo[n] = lo >>> 0;
    this.owned.hi[n] = hi >>> 0;
    if (n === 6) this.dr6HoldsGuest = false;
    if (this.onWrite !== null) this.onWrite(n, lo >>> 0, hi >>> 0);
  }

  /**
   * The host's NMI handler, run after an NMI exit (bhyve's vmx_exit_handle_nmi, after the DR
   * restore): a handler that uses the debug registers (a watchdog's backtrace, kdb) must find
   * the host's. `foreign`: the registers that hold something else (the guest's, under `none`).
   */
  handleNmi(foreign: readonly string[]): void {
    this.nmisHandled++;
    if (foreign.length > 0) this.nmisSawForeignDebugState++;
  }

  setTF(on: boolean): void {
    this.phys.hostTF = on;
    this.ownedTF = on;
  }

  /** The hardware sets DR6 bits for a host #DB; the host's own DR6 when it holds the host's. */
  private hostDebugException(bits: number): void {
    this.phys.drLo[6] = (this.phys.drLo[6] | bits) >>> 0;
    this.phys.generation++;
    if (!this.dr6HoldsGuest) this.owned.lo[6] = this.phys.drLo[6];
  }

  /** A single-step trap after a host instruction (step) executed with TF=1. */
  singleStepTrapIfTF(): void {
    if (!this.phys.hostTF) return;
    this.singleStepTraps++;
    this.hostDebugException(DR6_BS);
  }

  /** A host data write of `len` bytes at host address (lo, HOST_HI): data breakpoints. */
  touchData(lo: number, len: number): void {
    const p = this.phys;
    const dr7 = p.drLo[7];
    if ((dr7 & 0xff) === 0) return;
    let bits = 0;
    for (let n = 0; n < 4; n++) {
      if (!dr7SlotEnabled(dr7, n)) continue;
      const rw = dr7SlotRw(dr7, n);
      if (rw !== 1 && rw !== 3) continue;
      if (p.drHi[n] !== HOST_HI) continue;
      const size = dr7SlotLen(dr7, n);
      const start = (p.drLo[n] & ~(size - 1)) >>> 0;
      if (lo < start + size && start < lo + len) bits |= 1 << n;
    }
    if (bits !== 0) {
      this.watchHits++;
      this.hostDebugException(bits);
    }
  }
}

/** What a host scenario does around VM transitions (StepObserver: between DR-switch steps). */
export interface HostScenarioRunner {
  /** Null when the scenario never acts between steps (the executor then skips the calls). */
  readonly stepObserver: StepObserver | null;
  beforeEnterPath(): void;
  beforeHardwareEntry(): void;
  afterHardwareExit(): void;
  /** In the host, after the leave path: exit handling (context switches, data the handlers touch). */
  exitHandling(vcpu: number, kind: GenericExitKind): void;
  endOfIteration(): void;
}

class IdleHost implements HostScenarioRunner {
  readonly stepObserver = null;
  beforeEnterPath(): void { /* never touches its debug registers */ }
  beforeHardwareEntry(): void { /* idle */ }
  afterHardwareExit(): void { /* idle */ }
  exitHandling(): void { /* idle */ }
  endOfIteration(): void { /* idle */ }
}

/**
 * `host-watch`: the vCPU thread is debugged on the host: write watchpoints on the exit
 * counters its exit handlers update. The host kernel loads the thread's debug registers
 * when it switches the thread in: at the start and after every preemption or I/O exit.
 */
class HostWatch implements HostScenarioRunner {
  readonly stepObserver = null;
  constructor(private readonly host: HostContext) { this.switchIn(); }

  /** PCB debug registers: DR0 = exit counter (write, 8 bytes), DR1 = last-exit field (write, 4 bytes). */
  private switchIn(): void {
    const h = this.host;
    h.write(0, HOST_EXIT_COUNTERS_LO, HOST_HI);
    h.write(1, HOST_LAST_EXIT_LO, HOST_HI);
    h.write(2, 0x81300000, HOST_HI);
    h.write(3, 0x81301000, HOST_HI);
    // L0, L1; RW0 = 01 LEN0 = 10 (8 bytes); RW1 = 01 LEN1 = 11 (4 bytes).
    h.write(7, 0x400 | 0x1 | 0x4 | (0x9 << 16) | (0xd << 20), 0);
  }

  beforeEnterPath(): void { /* nothing */ }
  beforeHardwareEntry(): void { /* nothing */ }
  afterHardwareExit(): void { /* nothing */ }

  exitHandling(vcpu: number, kind: GenericExitKind): void {
    if (kind === 'extint' || kind === 'io') {
      // Switched out (DR7 cleared for a thread without debug registers) and back in.
      this.host.write(7, 0x400, 0);
      this.switchIn();
    }
    // The exit handler's bookkeeping: vmexit counter and the last-exit field.
    const vc = vcpu & 0xff;
    this.host.touchData(HOST_EXIT_COUNTERS_LO + 8 * vc, 8);
    this.host.touchData(HOST_LAST_EXIT_LO + 4 * vc, 4);
  }

  endOfIteration(): void { /* nothing */ }
}

/**
 * `kdb-step`: a host kernel debugger single-steps the VM-entry path: TF is set from the start
 * of each entry path; every host step then takes a single-step trap (DR6.BS) until the
 * hypervisor clears TF (VT-x TF guard) or the VM is entered. It continues at the end of the
 * iteration.
 */
class KdbStep implements HostScenarioRunner, StepObserver {
  readonly stepObserver: StepObserver = this;
  constructor(protected readonly host: HostContext) {}
  beforeEnterPath(): void { this.host.setTF(true); }
  afterStep(_step: DrStep): void { this.host.singleStepTrapIfTF(); }
  beforeHardwareEntry(): void { /* VMLAUNCH/VMRUN: TF stays as it is */ }
  afterHardwareExit(): void {
    // SVM: host TF traps after #VMEXIT (VMRUN completes). VT-x: RFLAGS = 2, no trap.
    this.host.singleStepTrapIfTF();
  }
  exitHandling(): void { /* nothing */ }
  endOfIteration(): void { this.host.setTF(false); }
}

/**
 * `kdb-determined`: the commit message's determined debugger: a breakpoint on the first host
 * instruction after the guest DR6 load (pmap-activate), then single-stepping to the VM
 * entry, where it continues.
 */
class KdbDetermined implements HostScenarioRunner, StepObserver {
  readonly stepObserver: StepObserver = this;
  constructor(private readonly host: HostContext) {}
  beforeEnterPath(): void { /* not stepping yet */ }
  afterStep(step: DrStep): void {
    this.host.singleStepTrapIfTF();
    if (step.name === 'load-guest-dr6' || (step.name === 'load-guest-dr3' && !this.hasDr6Step)) {
      // Breakpoint (int3) right after the load: #BP in the host, the debugger then steps.
      this.host.breakpointHits++;
      this.host.setTF(true);
    }
  }
  /** Set by the vcpu: whether its enter path has a guest DR6 load step (VT-x). */
  hasDr6Step = true;
  beforeHardwareEntry(): void { this.host.setTF(false); }
  afterHardwareExit(): void { /* not stepping */ }
  exitHandling(): void { /* nothing */ }
  endOfIteration(): void { /* nothing */ }
}

export function createHostScenario(name: HostScenario, host: HostContext): HostScenarioRunner {
  switch (name) {
    case 'idle': return new IdleHost();
    case 'host-watch': return new HostWatch(host);
    case 'kdb-step': return new KdbStep(host);
    case 'kdb-determined': return new KdbDetermined(host);
  }
}

export { KdbDetermined };
