import { PhysicalCpu } from '../cpu/physical-cpu';
import { BackendName } from '../api/vm-api';
import { DrSwitchMode } from '../api/vm-options';

/**
 * The debug-register switch of the FreeBSD fix (D13229) as data: vmx_dr_enter_guest /
 * vmx_dr_leave_guest and their SVM twins, one named step per statement, in bhyve's order.
 * Each step is one operation on the physical CPU, so that a host debugger (the kdb
 * scenarios) can act between any two steps. The pre-fix behaviour and each left-out part
 * are the same lists with steps removed.
 */

/** The per-vCPU software copies of vmxctx / svm_regctx (guest_dr0-3, guest_dr6, host_*). */
export class DrSwitchRegs {
  /** guest_dr0..3 at 0-3, guest_dr6 at 6 (VT-x only; on SVM DR6 lives in the VMCB). */
  readonly guestLo = new Uint32Array(8);
  readonly guestHi = new Uint32Array(8);
  /** host_dr0..3 at 0-3, host_dr6 at 6, host_dr7 at 7. */
  readonly hostLo = new Uint32Array(8);
  readonly hostHi = new Uint32Array(8);
  hostDebugctlLo = 0;
  hostDebugctlHi = 0;
  hostTF = false;

  constructor() {
    this.guestLo[6] = 0xffff0ff0; // vmx_vcpu_init: guest_dr6 = DBREG_DR6_RESERVED1
  }
}

/** Which part of the fix a step belongs to; `--dr-switch no-*` removes one part. */
export type DrPart =
  | 'host-dr7-debugctl' // save host DR7/DEBUGCTL, zero them, restore them last
  | 'tf-guard'          // VT-x: save and clear host TF before the guest DR6 load, restore last
  | 'host-dr0-3-dr6'    // save/restore host DR0-3 and DR6
  | 'guest-dr0-3'       // load/save guest DR0-3
  | 'guest-dr6'         // VT-x: load/save guest DR6
  | 'host-path';        // host code on the entry/exit path that is not part of the switch

export interface DrStep {
  readonly name: string;
  readonly part: DrPart;
  run(phys: PhysicalCpu, regs: DrSwitchRegs): void;
  /**
   * Whose physical DR6 it is after this step: the host hands its DR6 over when the switch
   * saves it and gets it back when the switch restores it (host #DB bookkeeping).
   */
  readonly dr6Holds?: 'guest' | 'host';
}

/** Called after every step: where a host debugger may take a trap or hit a breakpoint. */
export interface StepObserver {
  afterStep(step: DrStep): void;
}

function loadDr(phys: PhysicalCpu, n: number, lo: number, hi: number): void {
  phys.drLo[n] = lo;
  phys.drHi[n] = hi;
  phys.generation++;
}

function saveHostDr(n: number): DrStep {
  return {
    name: `save-host-dr${n}`, part: 'host-dr0-3-dr6',
    run: (p, r) => { r.hostLo[n] = p.drLo[n]; r.hostHi[n] = p.drHi[n]; },
  };
}
function loadGuestDr(n: number, part: DrPart): DrStep {
  return {
    name: `load-guest-dr${n}`, part,
    run: (p, r) => loadDr(p, n, r.guestLo[n], r.guestHi[n]),
  };
}
function saveGuestDr(n: number, part: DrPart): DrStep {
  return {
    name: `save-guest-dr${n}`, part,
    run: (p, r) => { r.guestLo[n] = p.drLo[n]; r.guestHi[n] = p.drHi[n]; },
  };
}
function restoreHostDr(n: number, part: DrPart): DrStep {
  return {
    name: `restore-host-dr${n}`, part, dr6Holds: n === 6 ? 'host' : undefined,
    run: (p, r) => loadDr(p, n, r.hostLo[n], r.hostHi[n]),
  };
}

const PMAP_ACTIVATE: DrStep = { name: 'pmap-activate', part: 'host-path', run: () => undefined };
const RUN_TRACE: DrStep = { name: 'run-trace', part: 'host-path', run: () => undefined };
const PMAP_DEACTIVATE: DrStep = { name: 'pmap-deactivate', part: 'host-path', run: () => undefined };

/** vmx_dr_enter_guest / svm_dr_enter_guest, then the rest of the entry path. */
function fullEnterSteps(backend: BackendName): DrStep[] {
  const steps: DrStep[] = [
    { name: 'save-host-dr7', part: 'host-dr7-debugctl', run: (p, r) => { r.hostLo[7] = p.drLo[7]; r.hostHi[7] = p.drHi[7]; } },
    { name: 'save-host-debugctl', part: 'host-dr7-debugctl', run: (p, r) => { r.hostDebugctlLo = p.debugctlLo; r.hostDebugctlHi = p.debugctlHi; } },
    { name: 'zero-dr7', part: 'host-dr7-debugctl', run: (p) => loadDr(p, 7, 0, 0) },
    { name: 'zero-debugctl', part: 'host-dr7-debugctl', run: (p) => { p.debugctlLo = 0; p.debugctlHi = 0; p.generation++; } },
  ];
  if (backend === 'vmx') {
    steps.push(
      { name: 'save-host-tf', part: 'tf-guard', run: (p, r) => { r.hostTF = p.hostTF; } },
      { name: 'clear-host-tf', part: 'tf-guard', run: (p) => { p.hostTF = false; } },
    );
  }
  steps.push(saveHostDr(0), saveHostDr(1), saveHostDr(2), saveHostDr(3),
    { name: 'save-host-dr6', part: 'host-dr0-3-dr6', dr6Holds: 'guest', run: (p, r) => { r.hostLo[6] = p.drLo[6]; r.hostHi[6] = p.drHi[6]; } });
  steps.push(loadGuestDr(0, 'guest-dr0-3'), loadGuestDr(1, 'guest-dr0-3'), loadGuestDr(2, 'guest-dr0-3'), loadGuestDr(3, 'guest-dr0-3'));
  if (backend === 'vmx') steps.push(loadGuestDr(6, 'guest-dr6'));
  steps.push(PMAP_ACTIVATE, RUN_TRACE);
  return steps;
}

/** The exit path up to vmx_dr_leave_guest / svm_dr_leave_guest included. */
function fullLeaveSteps(backend: BackendName): DrStep[] {
  const steps: DrStep[] = [PMAP_DEACTIVATE,
    saveGuestDr(0, 'guest-dr0-3'), saveGuestDr(1, 'guest-dr0-3'), saveGuestDr(2, 'guest-dr0-3'), saveGuestDr(3, 'guest-dr0-3')];
  if (backend === 'vmx') steps.push(saveGuestDr(6, 'guest-dr6'));
  steps.push(restoreHostDr(0, 'host-dr0-3-dr6'), restoreHostDr(1, 'host-dr0-3-dr6'),
    restoreHostDr(2, 'host-dr0-3-dr6'), restoreHostDr(3, 'host-dr0-3-dr6'), restoreHostDr(6, 'host-dr0-3-dr6'),
    { name: 'restore-host-debugctl', part: 'host-dr7-debugctl', run: (p, r) => { p.debugctlLo = r.hostDebugctlLo; p.debugctlHi = r.hostDebugctlHi; p.generation++; } },
    restoreHostDr(7, 'host-dr7-debugctl'));
  if (backend === 'vmx') {
    steps.push({ name: 'restore-host-tf', part: 'tf-guard', run: (p, r) => { p.hostTF = p.hostTF || r.hostTF; } });
  }
  return steps;
}

/** The parts a mode leaves out. */
export function partsLeftOut(mode: DrSwitchMode): ReadonlySet<DrPart> {
  switch (mode) {
    case 'full': return new Set();
    case 'none': return new Set<DrPart>(['host-dr7-debugctl', 'tf-guard', 'host-dr0-3-dr6', 'guest-dr0-3', 'guest-dr6']);
    case 'no-guest-dr0-3': return new Set<DrPart>(['guest-dr0-3']);
    case 'no-guest-dr6': return new Set<DrPart>(['guest-dr6']);
    case 'no-host-dr7-debugctl': return new Set<DrPart>(['host-dr7-debugctl']);
    case 'no-tf-guard': return new Set<DrPart>(['tf-guard']);
    case 'no-svm-dirty': return new Set();
  }
}

export function enterSteps(backend: BackendName, mode: DrSwitchMode): DrStep[] {
  const out = partsLeftOut(mode);
  return fullEnterSteps(backend).filter((s) => !out.has(s.part));
}

export function leaveSteps(backend: BackendName, mode: DrSwitchMode): DrStep[] {
  const out = partsLeftOut(mode);
  return fullLeaveSteps(backend).filter((s) => !out.has(s.part));
}

/** The host "micro-program" executor: run the steps in order, the observer after each. */
export function runSteps(steps: readonly DrStep[], phys: PhysicalCpu, regs: DrSwitchRegs, observer: StepObserver | null): void {
  if (observer === null) {
    for (let i = 0; i < steps.length; i++) steps[i].run(phys, regs);
    return;
  }
  for (let i = 0; i < steps.length; i++) {
    steps[i].run(phys, regs);
    observer.afterStep(steps[i]);
  }
}
