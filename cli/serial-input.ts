/**
 * --serial-input FILE|- of run and serve: the host side of COM1's receive line. Bytes read
 * from the file (or stdin) go into the VM's UART as they arrive; reading pauses while the
 * guest has not taken what it was given, so a large file never piles up in memory.
 */
import * as fs from 'node:fs';
import type { Readable } from 'node:stream';
import type { VmApi } from '../vmm/api/vm-api';
import { UsageError } from './exit-codes';

/** Host bytes the VM may hold before reading pauses. */
const HIGH_WATER = 64 * 1024;

export class SerialInput {
  private ended = false;
  private wakeWaiter: (() => void) | undefined;
  /** Set while reading is paused for the guest to catch up. */
  private drainTimer: NodeJS.Timeout | undefined;

  private constructor(private readonly vm: VmApi, private readonly stream: Readable, onError: (message: string) => void) {
    stream.on('data', (chunk: Buffer) => {
      vm.serialInput?.(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length));
      if ((vm.serialInputPending?.() ?? 0) > HIGH_WATER) this.pauseUntilDrained();
      this.wake();
    });
    stream.on('end', () => { this.ended = true; this.wake(); });
    stream.on('error', (e: Error) => {
      this.ended = true;
      onError(`--serial-input: reading stopped: ${e.message}`);
      this.wake();
    });
  }

  /**
   * Opens `spec` (a file name, or - for stdin) before anything starts: a usage error if it
   * cannot be read.
   */
  static source(spec: string): Readable {
    if (spec === '-') return process.stdin;
    let fd: number;
    try {
      fd = fs.openSync(spec, 'r');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new UsageError(`--serial-input ${spec}: ${code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
    }
    if (fs.fstatSync(fd).isDirectory()) {
      fs.closeSync(fd);
      throw new UsageError(`--serial-input ${spec}: is a directory`);
    }
    return fs.createReadStream('', { fd });
  }

  /**
   * Feeds `source` (from `SerialInput.source`) into `vm`'s COM1; a usage error if the VM has
   * none. A read error later ends the input and is reported through `onError` (one line).
   */
  static attach(source: Readable, vm: VmApi, onError: (message: string) => void): SerialInput {
    if (vm.serialInput === undefined) {
      source.destroy();
      throw new UsageError('--serial-input: this VM has no 16550 UART (the kvm backend runs our ELF64 ABI only)');
    }
    return new SerialInput(vm, source, onError);
  }

  /** True once the source is at its end (or failed): no more input can come. */
  get done(): boolean { return this.ended; }

  /** Read on once the guest has drained the line below half the mark (a timer checks while paused). */
  private resumeIfDrained(): void {
    if (this.ended || this.drainTimer === undefined || (this.vm.serialInputPending?.() ?? 0) > HIGH_WATER / 2) return;
    clearInterval(this.drainTimer);
    this.drainTimer = undefined;
    this.stream.resume();
  }

  private pauseUntilDrained(): void {
    if (this.drainTimer !== undefined) return;
    this.stream.pause();
    this.drainTimer = setInterval(() => this.resumeIfDrained(), 20);
    this.drainTimer.unref();
  }

  /** Resolves when more input arrives or the source ends (for a VM idle until it types). */
  nextInput(): Promise<void> {
    if (this.ended) return Promise.resolve();
    this.resumeIfDrained();
    return new Promise((resolve) => { this.wakeWaiter = resolve; });
  }

  /** Ends a wait for input early (a signal arrived). */
  interrupt(): void { this.wake(); }

  /** Stops reading (stdin too: an open stdin would keep the process alive). */
  close(): void {
    this.ended = true;
    this.wake();
    if (this.drainTimer !== undefined) clearInterval(this.drainTimer);
    this.stream.removeAllListeners('data');
    this.stream.destroy();
  }

  private wake(): void {
    const w = this.wakeWaiter;
    this.wakeWaiter = undefined;
    w?.();
  }
}
