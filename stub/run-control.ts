/**
 * All-stop run control: runs the chosen vCPUs in bounded slices through VmApi.run, yields to
 * the event loop between slices (so a 0x03 or a dropped connection is seen within a few
 * milliseconds), decides for every stop whether it is the debugger's, hands back to the
 * guest what is not, and reports the first stop that is.
 */
import { VmApiError, VmStop } from '../vmm/api/vm-api';
import { VmTarget } from './target';

export const SIGINT = 2;
export const SIGTRAP = 5;
export const SIGSEGV = 11;

export type StopReason =
  | { kind: 'swbreak' }
  | { kind: 'hwbreak' }
  | { kind: 'watch' | 'awatch'; address: bigint };

export type StopReport =
  | { kind: 'stopped'; vcpu: number; signal: number; reason?: StopReason; message?: string }
  | { kind: 'exited'; status: number };

export interface ResumePlan {
  /** vCPUs that run (stepping ones included). */
  run: number[];
  /** vCPUs that single-step. */
  step: number[];
}

/** Wall time one batch of slices may take before yielding to the event loop. */
const TICK_MS = 2;
const MIN_BUDGET = 100;
const MAX_BUDGET = 2_000_000;

export class RunControl {
  private budget = 1000;
  private runningPlan: ResumePlan | undefined;
  private interruptRequested = false;
  private cancelled = false;
  private done: ((r: StopReport) => void) | undefined;
  private lastVcpu = 0;
  /** A stop the VM cannot be resumed from (triple fault, ...), reported again on resume. */
  private fatal: StopReport | undefined;
  private exitStatus: number | undefined;
  /** Bumped by every resume and halt: a tick scheduled for an older run does nothing. */
  private generation = 0;

  constructor(
    private readonly target: VmTarget,
    /** Where the guest console goes; undefined = the stub leaves it to its owner (the CLI). */
    private readonly onConsole: ((text: string) => void) | undefined,
  ) {}

  /** After a VM reset: a fatal stop of the old run is forgotten. */
  afterReset(): void {
    this.fatal = undefined;
    this.lastVcpu = 0;
  }

  get running(): boolean {
    return this.runningPlan !== undefined;
  }

  get exited(): number | undefined {
    return this.exitStatus;
  }

  resume(plan: ResumePlan, done: (r: StopReport) => void): void {
    if (this.running) return;
    if (this.exitStatus !== undefined) return done({ kind: 'exited', status: this.exitStatus });
    if (this.fatal) return done(this.fatal);
    if (plan.run.length === 0) {
      // gdb resumed nothing: nothing can stop; report at once so gdb is not left waiting
      return done({ kind: 'stopped', vcpu: this.lastVcpu, signal: 0 });
    }
    this.runningPlan = plan;
    this.done = done;
    this.interruptRequested = false;
    this.cancelled = false;
    this.lastVcpu = plan.step[0] ?? plan.run[0];
    this.generation++;
    try {
      this.target.stepOnly(plan.step);
    } catch (e) {
      return this.finish(this.errorStop(e));
    }
    this.tick();
  }

  /**
   * Drops the step set-up a step stop left in place (see finish) while the guest is stopped:
   * before anything that shows the VM's debug state (monitor commands).
   */
  settle(): void {
    if (this.running) return;
    try {
      this.target.clearStepping();
    } catch {
      // the VM refused to drop TF: the next resume tries again
    }
  }

  /** 0x03 from gdb: stop at the next slice boundary with SIGINT. */
  interrupt(): void {
    if (this.running) this.interruptRequested = true;
  }

  /** The connection went away: stop running without reporting. */
  cancel(): void {
    if (this.running) this.cancelled = true;
  }

  /** Stops now (the VM is between slices whenever this runs), reporting nothing. */
  halt(): void {
    if (!this.running) return;
    this.generation++;
    this.finish(undefined);
  }

  private scheduleTick(): void {
    const gen = this.generation;
    setImmediate(() => { if (gen === this.generation) this.tick(); });
  }

  private tick = (): void => {
    const plan = this.runningPlan;
    if (!plan) return;
    const t0 = performance.now();
    for (;;) {
      if (this.cancelled) return this.finish(undefined);
      if (this.interruptRequested) {
        return this.finish({ kind: 'stopped', vcpu: this.lastVcpu, signal: SIGINT });
      }
      let report: StopReport | undefined;
      try {
        const s0 = performance.now();
        const stop = this.target.vm.run(plan.run, this.budget);
        if (stop.kind === 'slice') this.adaptBudget(performance.now() - s0);
        this.lastVcpu = stop.vcpu;
        this.drainConsole();
        report = this.classify(stop);
      } catch (e) {
        report = this.errorStop(e);
      }
      if (report) return this.finish(report);
      if (performance.now() - t0 >= TICK_MS) break;
    }
    this.scheduleTick();
  };

  private adaptBudget(ms: number): void {
    // aim at about 1 ms per slice so an interrupt is seen quickly
    const scaled = ms <= 0.05 ? this.budget * 4 : Math.round(this.budget * (1 / ms));
    this.budget = Math.max(MIN_BUDGET, Math.min(MAX_BUDGET, Math.round((this.budget + scaled) / 2)));
  }

  private drainConsole(): void {
    if (!this.onConsole) return;
    const text = this.target.vm.takeConsoleOutput();
    if (text.length > 0) this.onConsole(text);
  }

  /** undefined = not the debugger's event: keep running. */
  private classify(stop: VmStop): StopReport | undefined {
    const vm = this.target.vm;
    const v = stop.vcpu;
    switch (stop.kind) {
      case 'slice':
        return undefined;
      case 'debug': {
        let exec = false;
        for (let i = 0; i < 4; i++) {
          if (!(stop.slotsHit & (1 << i))) continue;
          const s = this.target.slot(i);
          if (!s) continue;
          if (s.type === 'exec') exec = true;
          else return { kind: 'stopped', vcpu: v, signal: SIGTRAP, reason: { kind: s.type === 'write' ? 'watch' : 'awatch', address: s.address } };
        }
        if (exec) return { kind: 'stopped', vcpu: v, signal: SIGTRAP, reason: { kind: 'hwbreak' } };
        if (stop.step && this.target.isStepping(v)) return { kind: 'stopped', vcpu: v, signal: SIGTRAP };
        // nothing of ours: the hypervisor already gave the guest its own part of this #DB
        return undefined;
      }
      case 'breakpoint': {
        const rip = (BigInt(stop.rip.hi >>> 0) << 32n) | BigInt(stop.rip.lo >>> 0);
        if (this.target.isSwBreakpoint(rip)) {
          if (this.target.getPc(v) !== rip) this.target.setPc(v, rip);
          return { kind: 'stopped', vcpu: v, signal: SIGTRAP, reason: { kind: 'swbreak' } };
        }
        return this.passGuestInt3(v);
      }
      case 'mtf':
        return this.target.isStepping(v) ? { kind: 'stopped', vcpu: v, signal: SIGTRAP } : undefined;
      case 'exit':
        this.exitStatus = stop.status;
        return { kind: 'exited', status: stop.status };
      case 'triple-fault':
        return this.setFatal(v, `vCPU ${v}: triple fault: ${stop.reason.replace(/^triple fault:\s*/, '')}; the VM cannot continue`);
      case 'npf':
        return this.setFatal(v, `vCPU ${v}: ${stop.write ? 'write' : 'read'} outside guest memory at 0x${stop.address.toString(16)}; the VM cannot continue`);
      case 'entry-failed':
        return this.setFatal(v, `vCPU ${v}: VM entry failed (${stop.reason}); the VM cannot continue`);
      case 'all-halted':
        return { kind: 'stopped', vcpu: v, signal: 0, message: 'every vCPU is halted with nothing to wake it' };
    }
  }

  /**
   * An int3 that is not gdb's: run that one instruction with #BP interception off, so the
   * guest's own IDT handles it as if no debugger were attached (bhyve re-injects instead).
   */
  private passGuestInt3(v: number): StopReport | undefined {
    const vm = this.target.vm;
    vm.setCapability(v, 'intercept-bp', false);
    let stop: VmStop;
    try {
      stop = vm.run([v], 1);
    } finally {
      vm.setCapability(v, 'intercept-bp', true);
    }
    this.lastVcpu = stop.vcpu;
    return this.classify(stop);
  }

  private setFatal(vcpu: number, message: string): StopReport {
    this.fatal = { kind: 'stopped', vcpu, signal: SIGSEGV, message };
    return this.fatal;
  }

  private errorStop(e: unknown): StopReport {
    const msg = e instanceof VmApiError || e instanceof Error ? e.message : String(e);
    return { kind: 'stopped', vcpu: this.lastVcpu, signal: SIGSEGV, message: `vmm error: ${msg}` };
  }

  /**
   * The step set-up (the VM's step capability, #DB interception) stays while the guest is
   * stopped: gdb's next stepi usually steps the same vCPU again, which then costs no
   * tear-down and set-up. The guest sees nothing of it (TF is set only for the instruction
   * being stepped); resume() changes it to what the next plan steps, settle() and the
   * session's end drop it.
   */
  private finish(report: StopReport | undefined): void {
    const done = this.done;
    this.runningPlan = undefined;
    this.done = undefined;
    if (report === undefined) this.settle();
    if (report && done) done(report);
  }
}
