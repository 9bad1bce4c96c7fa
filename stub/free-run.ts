/**
 * The guest running on with no debugger attached, after gdb detached (as gdbserver and QEMU
 * let a detached program run): all vCPUs, no stop of the debugger's; it ends when the guest
 * does, or when the next gdb connects (attaching stops the guest, as attaching does).
 */
import { RunControl, SIGINT, StopReport } from './run-control';

export interface FreeRunHooks {
  onExit(status: number): void;
  log(line: string): void;
}

export class FreeRun {
  private active = false;

  constructor(private readonly run: RunControl, private readonly vcpuCount: number, private readonly hooks: FreeRunHooks) {}

  start(): void {
    if (this.active || this.run.running) return;
    this.active = true;
    const all = Array.from({ length: this.vcpuCount }, (_, i) => i);
    this.run.resume({ run: all, step: [] }, (r) => this.onStop(r));
  }

  /** Stops the guest where it is (a debugger connects, or the server shuts down). */
  stop(): void {
    if (!this.active) return;
    this.active = false;
    this.run.halt();
  }

  private onStop(r: StopReport): void {
    this.active = false;
    if (r.kind === 'exited') this.hooks.onExit(r.status);
    else if (r.signal !== SIGINT) this.hooks.log(`the guest stopped with no debugger attached: ${r.message ?? `signal ${r.signal}`}`);
  }
}
