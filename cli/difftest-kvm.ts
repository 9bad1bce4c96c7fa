/**
 * `vmm-gdbstub difftest --against kvm GUEST [--steps N]`: a cross-check of our CPU model
 * against the host's: the same guest on our simulated VM (vmx) and on /dev/kvm.
 * - default: both run to their end; the console output and the exit status must agree.
 * - --steps N: both single-step in lockstep through VmApi (rflags-tf) for up to N
 *   instructions at CPL 0, comparing RIP, RFLAGS (arithmetic flags, IF, DF; RF/TF are the
 *   debugger's), the general registers, CR0/CR4/EFER and the segment selectors after
 *   every instruction: system instructions, MOV DR, IRETQ and interrupt delivery included,
 *   which a ptrace difftest cannot reach. Not compared: CR3 (where the page tables are is
 *   each VMM's choice) and the registers CPUID/RDTSC write
 *   (emulated vs real by design). Stops at the first RIP divergence (the runs cannot be
 *   re-synchronised). Exit 0 = no mismatch, 1 = mismatches (listed), 137 = no /dev/kvm.
 */
import * as fs from 'node:fs';
import { createVm } from '../vmm/api/create-vm';
import { RegName } from '../vmm/api/registers';
import { VmApi, VmStop } from '../vmm/api/vm-api';
import { DEFAULT_VM_OPTIONS, VmOptions } from '../vmm/api/vm-options';
import { parseElf } from '../vmm/loader/elf';
import { kvmProblem } from '../vmm/kvm/kvm-device';
import { KvmVm } from '../vmm/kvm/kvm-vm';
import { u64Hex } from '../vmm/u64';
import { CliError, EXIT } from './exit-codes';
import { Output } from './output';

export const EXIT_NO_KVM = 137;
const MEM_MIB = 64;
const MAX_LISTED = 20;

export interface DifftestRequest {
  guest: string;
  steps?: number;
}

const COMPARED: readonly RegName[] = [
  'rip', 'rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rbp', 'rsp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15',
  'rflags', 'cr0', 'cr4', 'efer', 'cs', 'ss', 'ds', 'es',
];
/** CF PF AF ZF SF OF, IF, DF, IOPL: what both CPUs define after every instruction we compare. */
const RFLAGS_COMPARED = 0x1 | 0x4 | 0x10 | 0x40 | 0x80 | 0x800 | 0x200 | 0x400 | 0x3000;

export interface StepMismatch {
  step: number;
  rip: string;
  register: string;
  ours: string;
  kvm: string;
}

function bootBoth(guest: string): { ours: VmApi; kvm: KvmVm } {
  let bytes: Uint8Array;
  try {
    bytes = fs.readFileSync(guest);
  } catch (e) {
    throw new CliError(`cannot read guest ${guest}: ${(e as Error).message}`, EXIT.BAD_ELF);
  }
  let image;
  try {
    image = parseElf(bytes, MEM_MIB * 1024 * 1024, 1);
  } catch (e) {
    throw new CliError(`bad guest ELF ${guest}: ${(e as Error).message}`, EXIT.BAD_ELF);
  }
  const opts: VmOptions = { ...DEFAULT_VM_OPTIONS, memMiB: MEM_MIB };
  return { ours: createVm(image, { ...opts, backend: 'vmx' }), kvm: new KvmVm(image, { ...opts, backend: 'kvm' }) };
}

function runToEnd(vm: VmApi, maxMs = 120_000): { stop: VmStop; console: string } {
  const t0 = Date.now();
  let text = '';
  for (;;) {
    const stop = vm.run([0], 5_000_000);
    text += vm.takeConsoleOutput();
    if (stop.kind !== 'slice' || Date.now() - t0 > maxMs) return { stop, console: text };
  }
}

function endOf(s: VmStop): string {
  return s.kind === 'exit' ? `exit ${s.status}` : s.kind;
}

/** Console mode: both to their end. */
export function compareConsoles(guest: string): { same: boolean; report: string } {
  const { ours, kvm } = bootBoth(guest);
  try {
    const a = runToEnd(ours);
    const b = runToEnd(kvm);
    const la = a.console.split('\n');
    const lb = b.console.split('\n');
    const lines: string[] = [];
    for (let i = 0; i < Math.max(la.length, lb.length) && lines.length < MAX_LISTED; i++) {
      if (la[i] !== lb[i]) lines.push(`  line ${i + 1}: ours ${JSON.stringify(la[i] ?? '(none)')}, kvm ${JSON.stringify(lb[i] ?? '(none)')}`);
    }
    if (endOf(a.stop) !== endOf(b.stop)) lines.push(`  end: ours ${endOf(a.stop)}, kvm ${endOf(b.stop)}`);
    const same = lines.length === 0;
    const head = same ? `${guest}: same console output (${la.length - 1} lines) and end (${endOf(a.stop)}) on our CPU and on kvm`
      : `${guest}: our CPU and kvm differ:`;
    return { same, report: [head, ...lines].join('\n') + '\n' };
  } finally {
    kvm.close();
  }
}

function read(vm: VmApi, reg: RegName): { lo: number; hi: number } {
  const v = vm.getRegister(0, reg);
  return reg === 'rflags' ? { lo: v.lo & RFLAGS_COMPARED, hi: 0 } : v;
}

function stepOnce(vm: VmApi): VmStop {
  for (let i = 0; i < 1000; i++) {
    const s = vm.run([0], 1);
    if (s.kind !== 'slice') return s;
  }
  return { kind: 'slice', vcpu: 0 };
}

/** Step mode: lockstep single-steps; the mismatches, and why it ended. */
export function compareSteps(guest: string, steps: number): { mismatches: StepMismatch[]; steps: number; ended: string } {
  const { ours, kvm } = bootBoth(guest);
  const mismatches: StepMismatch[] = [];
  try {
    for (const vm of [ours, kvm] as VmApi[]) {
      vm.setCapability(0, 'intercept-db', true);
      vm.setCapability(0, 'rflags-tf', true);
    }
    let skip: RegName[] = [];
    for (let n = 1; n <= steps; n++) {
      const rip = ours.getRegister(0, 'rip');
      const insn = ours.readMemory(rip.lo, 2);
      skip = insn && insn[0] === 0x0f && (insn[1] === 0xa2 || insn[1] === 0x31) ? ['rax', 'rbx', 'rcx', 'rdx'] : [];
      const a = stepOnce(ours);
      const b = stepOnce(kvm);
      if (a.kind !== 'debug' || b.kind !== 'debug') {
        if (a.kind !== b.kind || endOf(a) !== endOf(b)) mismatches.push({ step: n, rip: u64Hex(rip), register: 'stop', ours: endOf(a), kvm: endOf(b) });
        return { mismatches, steps: n, ended: `step ${n}: ours ${endOf(a)}, kvm ${endOf(b)}` };
      }
      for (const reg of COMPARED) {
        if (skip.includes(reg)) continue;
        const x = read(ours, reg);
        const y = read(kvm, reg);
        if (x.lo >>> 0 !== y.lo >>> 0 || x.hi >>> 0 !== y.hi >>> 0) {
          mismatches.push({ step: n, rip: u64Hex(rip), register: reg, ours: u64Hex(x), kvm: u64Hex(y) });
          if (reg === 'rip') return { mismatches, steps: n, ended: `step ${n}: RIP diverged (the runs cannot be compared further)` };
        }
      }
    }
    return { mismatches, steps, ended: `${steps} steps done` };
  } finally {
    kvm.close();
  }
}

export async function difftestCommand(req: DifftestRequest, out: Output): Promise<number> {
  const problem = kvmProblem();
  if (problem !== undefined) throw new CliError(`difftest --against kvm: ${problem}`, EXIT_NO_KVM);
  if (req.steps === undefined) {
    const r = compareConsoles(req.guest);
    out.stdout(r.report);
    return r.same ? 0 : 1;
  }
  const r = compareSteps(req.guest, req.steps);
  const lines = [`${req.guest}: ${r.steps} single-steps on our CPU and on kvm; ${r.mismatches.length} mismatch(es); ${r.ended}`];
  for (const m of r.mismatches.slice(0, MAX_LISTED)) lines.push(`  step ${m.step} at ${m.rip}: ${m.register} ours ${m.ours}, kvm ${m.kvm}`);
  if (r.mismatches.length > MAX_LISTED) lines.push(`  ... and ${r.mismatches.length - MAX_LISTED} more`);
  out.stdout(lines.join('\n') + '\n');
  return r.mismatches.length === 0 ? 0 : 1;
}
