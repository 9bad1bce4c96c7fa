import { PhysicalCpu } from '../cpu/physical-cpu';
import { BackendName, DrSwitchMode } from '../vmm-types';
import { DR6_RESERVED1 } from '../x86/debug-regs';

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
    this.guestLo[6] = DR6_RESERVED1; // vmx_vcpu_init: guest_dr6 = DBREG_DR6_RESERVED1
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

/** The operations of the host micro-program; `n` is the DR number where one is needed. */
export const enum StepOp {
  SaveHostDr, SaveHostDebugctl, ZeroDr7, ZeroDebugctl, SaveHostTF, ClearHostTF,
  LoadGuestDr, SaveGuestDr, RestoreHostDr, RestoreHostDebugctl, RestoreHostTF, HostPath,
}

/** One step: a named operation on the physical CPU (every step has the same shape). */
export interface DrStep {
  readonly name: string;
  readonly part: DrPart;
  readonly op: StepOp;
  readonly n: number;
  /**
   * Whose physical DR6 it is after this step: the host hands its DR6 over when the switch
   * saves it and gets it back when the switch restores it (host #DB bookkeeping).
   */
  readonly dr6Holds: 'guest' | 'host' | undefined;
}

/** Called after every step: where a host debugger may take a trap or hit a breakpoint. */
export interface StepObserver {
  afterStep(step: DrStep): void;
}

function step(name: string, part: DrPart, op: StepOp, n = 0, dr6Holds?: 'guest' | 'host'): DrStep {
  return { name, part, op, n, dr6Holds };
}

/** Execute one step on the physical CPU and the software copies. */
export function execStep(s: DrStep, p: PhysicalCpu, r: DrSwitchRegs): void {
  execOp(s.op, s.n, p, r);
  p.generation++;
}

/** One operation; the caller bumps PhysicalCpu.generation (after each step, or once per program). */
function execOp(op: StepOp, n: number, p: PhysicalCpu, r: DrSwitchRegs): void {
  switch (op) {
    case StepOp.SaveHostDr: r.hostLo[n] = p.drLo[n]; r.hostHi[n] = p.drHi[n]; return;
    case StepOp.SaveHostDebugctl: r.hostDebugctlLo = p.debugctlLo; r.hostDebugctlHi = p.debugctlHi; return;
    case StepOp.ZeroDr7: p.drLo[7] = 0; p.drHi[7] = 0; return;
    case StepOp.ZeroDebugctl: p.debugctlLo = 0; p.debugctlHi = 0; return;
    case StepOp.SaveHostTF: r.hostTF = p.hostTF; return;
    case StepOp.ClearHostTF: p.hostTF = false; return;
    case StepOp.LoadGuestDr: p.drLo[n] = r.guestLo[n]; p.drHi[n] = r.guestHi[n]; return;
    case StepOp.SaveGuestDr: r.guestLo[n] = p.drLo[n]; r.guestHi[n] = p.drHi[n]; return;
    case StepOp.RestoreHostDr: p.drLo[n] = r.hostLo[n]; p.drHi[n] = r.hostHi[n]; return;
    case StepOp.RestoreHostDebugctl: p.debugctlLo = r.hostDebugctlLo; p.debugctlHi = r.hostDebugctlHi; return;
    case StepOp.RestoreHostTF: p.hostTF = p.hostTF || r.hostTF; return; // write_rflags(read_rflags() | host_tf)
    case StepOp.HostPath: return;
  }
}

const PMAP_ACTIVATE = step('pmap-activate', 'host-path', StepOp.HostPath);
const RUN_TRACE = step('run-trace', 'host-path', StepOp.HostPath);
const PMAP_DEACTIVATE = step('pmap-deactivate', 'host-path', StepOp.HostPath);

/** vmx_dr_enter_guest / svm_dr_enter_guest, then the rest of the entry path. */
function fullEnterSteps(backend: BackendName): DrStep[] {
  const steps: DrStep[] = [
    step('save-host-dr7', 'host-dr7-debugctl', StepOp.SaveHostDr, 7),
    step('save-host-debugctl', 'host-dr7-debugctl', StepOp.SaveHostDebugctl),
    step('zero-dr7', 'host-dr7-debugctl', StepOp.ZeroDr7),
    step('zero-debugctl', 'host-dr7-debugctl', StepOp.ZeroDebugctl),
  ];
  if (backend === 'vmx') {
    steps.push(step('save-host-tf', 'tf-guard', StepOp.SaveHostTF), step('clear-host-tf', 'tf-guard', StepOp.ClearHostTF));
  }
  for (const n of [0, 1, 2, 3]) steps.push(step(`save-host-dr${n}`, 'host-dr0-3-dr6', StepOp.SaveHostDr, n));
  steps.push(step('save-host-dr6', 'host-dr0-3-dr6', StepOp.SaveHostDr, 6, 'guest'));
  for (const n of [0, 1, 2, 3]) steps.push(step(`load-guest-dr${n}`, 'guest-dr0-3', StepOp.LoadGuestDr, n));
  if (backend === 'vmx') steps.push(step('load-guest-dr6', 'guest-dr6', StepOp.LoadGuestDr, 6));
  steps.push(PMAP_ACTIVATE, RUN_TRACE);
  return steps;
}

/** The exit path up to vmx_dr_leave_guest / svm_dr_leave_guest included. */
function fullLeaveSteps(backend: BackendName): DrStep[] {
  const steps: DrStep[] = [PMAP_DEACTIVATE];
  for (const n of [0, 1, 2, 3]) steps.push(step(`save-guest-dr${n}`, 'guest-dr0-3', StepOp.SaveGuestDr, n));
  if (backend === 'vmx') steps.push(step('save-guest-dr6', 'guest-dr6', StepOp.SaveGuestDr, 6));
  for (const n of [0, 1, 2, 3]) steps.push(step(`restore-host-dr${n}`, 'host-dr0-3-dr6', StepOp.RestoreHostDr, n));
  steps.push(step('restore-host-dr6', 'host-dr0-3-dr6', StepOp.RestoreHostDr, 6, 'host'),
    step('restore-host-debugctl', 'host-dr7-debugctl', StepOp.RestoreHostDebugctl),
    step('restore-host-dr7', 'host-dr7-debugctl', StepOp.RestoreHostDr, 7));
  if (backend === 'vmx') steps.push(step('restore-host-tf', 'tf-guard', StepOp.RestoreHostTF));
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

/** One operation as JavaScript over the locals compileProgram sets up (execOp's twin: a test holds them equal). */
function opSource(op: StepOp, n: number): string {
  switch (op) {
    case StepOp.SaveHostDr: return `hLo[${n}] = pLo[${n}]; hHi[${n}] = pHi[${n}];`;
    case StepOp.SaveHostDebugctl: return 'r.hostDebugctlLo = p.debugctlLo; r.hostDebugctlHi = p.debugctlHi;';
    case StepOp.ZeroDr7: return 'pLo[7] = 0; pHi[7] = 0;';
    case StepOp.ZeroDebugctl: return 'p.debugctlLo = 0; p.debugctlHi = 0;';
    case StepOp.SaveHostTF: return 'r.hostTF = p.hostTF;';
    case StepOp.ClearHostTF: return 'p.hostTF = false;';
    case StepOp.LoadGuestDr: return `pLo[${n}] = gLo[${n}]; pHi[${n}] = gHi[${n}];`;
    case StepOp.SaveGuestDr: return `gLo[${n}] = pLo[${n}]; gHi[${n}] = pHi[${n}];`;
    case StepOp.RestoreHostDr: return `pLo[${n}] = hLo[${n}]; pHi[${n}] = hHi[${n}];`;
    case StepOp.RestoreHostDebugctl: return 'p.debugctlLo = r.hostDebugctlLo; p.debugctlHi = r.hostDebugctlHi;';
    case StepOp.RestoreHostTF: return 'p.hostTF = p.hostTF || r.hostTF;';
    case StepOp.HostPath: return '';
  }
}

type ProgramFn = (p: PhysicalCpu, r: DrSwitchRegs) => void;

/** Compiled programs by source: every vCPU and VM with the same steps shares one function (and its warm code). */
const compiled = new Map<string, ProgramFn>();

function compileProgram(steps: readonly DrStep[]): ProgramFn {
  const body = ['const pLo = p.drLo, pHi = p.drHi, gLo = r.guestLo, gHi = r.guestHi, hLo = r.hostLo, hHi = r.hostHi;'];
  for (const s of steps) body.push(opSource(s.op, s.n));
  body.push('p.generation++;');
  const source = body.join('\n');
  let fn = compiled.get(source);
  if (fn === undefined) {
    fn = new Function('p', 'r', source) as ProgramFn;
    compiled.set(source, fn);
  }
  return fn;
}

/**
 * A step list compiled for the hot path, when no observer watches: one straight-line
 * function doing each step's operation in order (nothing can act between them), then one
 * generation bump. Same effect as runSteps without an observer.
 */
export class StepProgram {
  /**
   * Run the program (nothing acts between steps): the hot path, twice per round trip. Called
   * as prog.run at each of the vCPU's two sites, so that each site sees only its own programs.
   */
  readonly run: ProgramFn;
  constructor(readonly steps: readonly DrStep[]) {
    this.run = compileProgram(steps);
  }
}

/** The host "micro-program" executor: run the steps in order, the observer after each. */
export function runSteps(steps: readonly DrStep[], phys: PhysicalCpu, regs: DrSwitchRegs, observer: StepObserver | null): void {
  if (observer === null) {
    for (let i = 0; i < steps.length; i++) execStep(steps[i], phys, regs);
    return;
  }
  for (let i = 0; i < steps.length; i++) {
    execStep(steps[i], phys, regs);
    observer.afterStep(steps[i]);
  }
}
