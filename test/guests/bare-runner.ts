/**
 * A minimal stand-in for the hypervisor, for testing the built-in guests on the Cpu alone:
 * loads an ELF per the guest ABI, emulates ports 0xE9/0xF4/0xF8 and CPUID, and wakes HLT
 * with the timer. It never touches the debug registers, so the guest's DR0-7 stay in the
 * physical CPU across "exits" (the behaviour of a correct DR switch).
 */
import * as fs from 'fs';
import { GprIndex } from '../../vmm/cpu/guest-cpu';
import { PhysicalCpu } from '../../vmm/cpu/physical-cpu';
import { parseElf } from '../../vmm/loader/elf';
import { loadImage } from '../../vmm/loader/load';
import { stackTop } from '../../vmm/loader/stacks';
import { GuestMemory } from '../../vmm/memory';
import { CpuClass } from '../difftest/sim';

export interface BareRunResult {
  status: number | undefined;
  console: string;
  /** Why the run ended without an exit status. */
  error?: string;
  instructions: number;
  exits: Record<string, number>;
}

export interface BareRunOptions {
  maxInstructions?: number;
  /**
   * Model a hypervisor without the DR switch: every VM exit leaves DR7 = 400H (what a
   * VT-x exit loads) and nothing restores the guest's value before the next entry.
   */
  loseDr7OnExit?: boolean;
}

export function runGuest(Cpu: CpuClass, elfPath: string, opts: BareRunOptions = {}): BareRunResult {
  const maxInstructions = opts.maxInstructions ?? 50_000_000;
  const mem = new GuestMemory(64 * 1024 * 1024);
  const img = parseElf(new Uint8Array(fs.readFileSync(elfPath)), mem.size);
  loadImage(mem, img);
  const cpu = new Cpu(mem, new PhysicalCpu());
  cpu.setReg('rip', { lo: img.entry, hi: 0 });
  cpu.setGpr(4 as GprIndex, { lo: stackTop(mem.size, 0, 1), hi: 0 });
  cpu.setGpr(7 as GprIndex, { lo: 0, hi: 0 });
  cpu.setGpr(6 as GprIndex, { lo: 1, hi: 0 });
  const res: BareRunResult = { status: undefined, console: '', instructions: 0, exits: {} };
  let timerVector = 0;
  let timerPeriod = 0;
  let nextTick = Infinity;
  const count = (k: string) => (res.exits[k] = (res.exits[k] ?? 0) + 1);
  while (cpu.instret < maxInstructions) {
    const budget = Math.max(1, Math.min(100_000, nextTick - cpu.instret));
    const exit = cpu.run(budget);
    if (cpu.instret >= nextTick) {
      if (!cpu.interruptPending) cpu.requestInterrupt(timerVector);
      nextTick = cpu.instret + timerPeriod;
    }
    if (opts.loseDr7OnExit && exit.kind !== 'budget') cpu.phys.setDr(7, { lo: 0x400, hi: 0 });
    switch (exit.kind) {
      case 'budget':
        break;
      case 'io': {
        count('io');
        const rax = cpu.getGpr(0);
        if (exit.isIn) {
          cpu.setGpr(0, exit.size === 4 ? { lo: 0xffffffff, hi: 0 } : { lo: (rax.lo | (exit.size === 2 ? 0xffff : 0xff)) >>> 0, hi: rax.hi });
        } else if (exit.port === 0xe9) {
          res.console += String.fromCharCode(rax.lo & 0xff);
        } else if (exit.port === 0xf4) {
          res.status = rax.lo & 0x7f;
          res.instructions = cpu.instret;
          return res;
        } else if (exit.port === 0xf8) {
          timerVector = rax.lo & 0xff;
          timerPeriod = rax.lo >>> 8;
          nextTick = timerPeriod ? cpu.instret + timerPeriod : Infinity;
        }
        cpu.completeEmulatedInstruction(exit.length, { port: exit.port, size: exit.size });
        break;
      }
      case 'cpuid':
        count('cpuid');
        for (const r of [0, 1, 2, 3] as GprIndex[]) cpu.setGpr(r, { lo: 0, hi: 0 });
        cpu.completeEmulatedInstruction(exit.length);
        break;
      case 'hlt': {
        count('hlt');
        cpu.completeEmulatedInstruction(exit.length);
        const ifSet = (cpu.getReg('rflags').lo & 0x200) !== 0;
        if (!ifSet || !timerPeriod) {
          res.error = `halted with ${ifSet ? 'no timer' : 'IF=0'} at rip 0x${cpu.getReg('rip').lo.toString(16)}`;
          res.instructions = cpu.instret;
          return res;
        }
        cpu.halted = true;
        // Time passes until the next tick.
        if (!cpu.interruptPending) cpu.requestInterrupt(timerVector);
        nextTick = cpu.instret + timerPeriod;
        break;
      }
      default:
        res.error = `unexpected exit ${JSON.stringify(exit)} at rip 0x${cpu.getReg('rip').lo.toString(16)}`;
        res.instructions = cpu.instret;
        return res;
    }
  }
  res.error = `no exit after ${maxInstructions} instructions`;
  res.instructions = cpu.instret;
  return res;
}
