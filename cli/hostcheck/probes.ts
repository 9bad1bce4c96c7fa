/**
 * The probes of `vmm-gdbstub hostcheck`: small guests (our ELF64 ABI) that exercise one
 * debug feature each on /dev/kvm, either programmed by the guest itself (MOV DR, its own
 * #DB handler counting hits and recording DR6 and RIP in memory) or by the debugger
 * (KVM_SET_GUEST_DEBUG through the kvm backend's VmApi), and what each one saw.
 */
import { DebuggerSlot, VmStop } from '../../vmm/api/vm-api';
import { DEFAULT_VM_OPTIONS } from '../../vmm/api/vm-options';
import { parseElf } from '../../vmm/loader/elf';
import { KvmVm } from '../../vmm/kvm/kvm-vm';
import { u64 } from '../../vmm/u64';
import { ProbeImage, assembleProbe } from './probe-asm';

export type Verdict = 'works' | 'does not fire' | 'wrong value';
export type Setter = 'guest' | 'debugger';

export interface ProbeResult {
  feature: string;
  setBy: Setter;
  verdict: Verdict;
  evidence: string;
}

const MEM_MIB = 16;
const RES = 0x200000;
const DB_COUNT = RES;
const LAST_DR6 = RES + 8;
const LAST_RIP = RES + 16;
const EXPECT = RES + 32;
const VAR = RES + 0x40;
const VAR2 = RES + 0x48;
const TABLE = RES + 0x100;
const PORT_PROBE = 0x80;

/** IDT with a #DB handler (counts, records DR6 and the pushed RIP, clears DR6, sets RF) and a timer handler. */
const RUNTIME = `
  .set DB_COUNT, ${DB_COUNT}
  .set LAST_DR6, ${LAST_DR6}
  .set LAST_RIP, ${LAST_RIP}
  .set TICKS, ${RES + 24}
  .set EXPECT, ${EXPECT}
  .set VAR, ${VAR}
  .set VAR2, ${VAR2}
  .set TABLE, ${TABLE}
  .set IDT, ${RES + 0x1000}
  .set IDTR, ${RES + 0x2000}
  .text
  .globl _start
_start:
  mov $1, %edi
  lea db_handler(%rip), %rsi
  call set_gate
  mov $0x20, %edi
  lea timer_handler(%rip), %rsi
  call set_gate
  movw $0xfff, IDTR
  movq $IDT, IDTR+2
  lidt IDTR
  call body
  xor %eax, %eax
  out %al, $0xf4
1: cli
  hlt
  jmp 1b
set_gate:
  mov %rdi, %rax
  shl $4, %rax
  add $IDT, %rax
  mov %esi, %edx
  mov %dx, (%rax)
  movw $8, 2(%rax)
  movw $0x8e00, 4(%rax)
  shr $16, %edx
  mov %dx, 6(%rax)
  movq $0, 8(%rax)
  ret
db_handler:
  push %rax
  incq DB_COUNT
  mov %dr6, %rax
  mov %rax, LAST_DR6
  mov 8(%rsp), %rax
  mov %rax, LAST_RIP
  mov $0xffff0ff0, %eax
  mov %rax, %dr6
  orq $0x10000, 24(%rsp)
  pop %rax
  iretq
timer_handler:
  incq TICKS
  iretq
`;

function guest(body: string): string {
  return `${RUNTIME}\nbody:\n${body}\n  ret\n`;
}

const SET_DE = `
  mov %cr4, %rax
  or $8, %rax
  mov %rax, %cr4`;
const CLEAR_DR7 = `
  xor %eax, %eax
  mov %rax, %dr7`;

/** Guest-set breakpoints: DR0 + DR7, the access, the expected RIP of the #DB in EXPECT. */
const GUEST_PROBES: Record<string, { feature: string; source: string; dr6: number }> = {
  exec: {
    feature: 'instruction breakpoint', dr6: 0x1, source: guest(`
  lea 1f(%rip), %rax
  mov %rax, EXPECT
  mov %rax, %dr0
  mov $0x401, %eax
  mov %rax, %dr7
1: nop${CLEAR_DR7}`),
  },
  write: {
    feature: 'data write breakpoint', dr6: 0x1, source: guest(`
  mov $VAR, %eax
  mov %rax, %dr0
  lea 1f(%rip), %rax
  mov %rax, EXPECT
  mov $0xd0401, %eax
  mov %rax, %dr7
  movl $1, VAR
1: nop${CLEAR_DR7}`),
  },
  access: {
    feature: 'data read/write breakpoint', dr6: 0x1, source: guest(`
  mov $VAR2, %eax
  mov %rax, %dr0
  lea 1f(%rip), %rax
  mov %rax, EXPECT
  mov $0xf0401, %eax
  mov %rax, %dr7
  mov VAR2, %ecx
1: nop${CLEAR_DR7}`),
  },
  io: {
    feature: 'I/O breakpoint', dr6: 0x1, source: guest(`${SET_DE}
  mov $${PORT_PROBE}, %eax
  mov %rax, %dr0
  lea 1f(%rip), %rax
  mov %rax, EXPECT
  mov $0x20401, %eax
  mov %rax, %dr7
  out %al, $${PORT_PROBE}
1: nop${CLEAR_DR7}`),
  },
};

/** The guest's own TF: a #DB after each of nop, nop, nop, pushfq, andq, popfq. */
const GUEST_STEP = guest(`
  lea 1f(%rip), %rax
  mov %rax, EXPECT
  pushfq
  orq $0x100, (%rsp)
  popfq
  nop
  nop
  nop
  pushfq
  andq $~0x100, (%rsp)
  popfq
1: nop`);
const GUEST_STEP_COUNT = 6;

const SURVIVE_VALUES = [0x1111000, 0x2222000, 0x3333000, 0x4444000, 0x4ff];
const SURVIVE_EXITS = ['I/O', 'CPUID', 'HLT', 'preemption'];
/** The guest spins until the host has kicked it out of KVM_RUN this many times. */
const PREEMPTIONS = 20;
const RELEASE = RES + 0x30;
function saveDrs(k: number): string {
  return [0, 1, 2, 3, 7].map((n, i) => `  mov %dr${n}, %rax\n  mov %rax, TABLE+${40 * k + 8 * i}`).join('\n');
}
const GUEST_SURVIVE = guest(`
${[0, 1, 2, 3].map((n) => `  mov $${SURVIVE_VALUES[n]}, %eax\n  mov %rax, %dr${n}`).join('\n')}
  mov $${SURVIVE_VALUES[4]}, %eax
  mov %rax, %dr7
  out %al, $${PORT_PROBE}
${saveDrs(0)}
  xor %eax, %eax
  cpuid
${saveDrs(1)}
  mov $(0x20 | (1000 << 8)), %eax
  out %eax, $0xf8
  sti
  hlt
  cli
  xor %eax, %eax
  out %eax, $0xf8
${saveDrs(2)}
2: pause
  cmpq $0, ${RELEASE}
  je 2b
${saveDrs(3)}
${CLEAR_DR7}`);

/** For the debugger: labelled instructions, CR4.DE on for I/O breakpoints. */
const DEBUGGER_GUEST = guest(`${SET_DE}
exec_target:
  nop
  movl $1, VAR
after_write:
  mov VAR2, %ecx
after_read:
  out %al, $${PORT_PROBE}
after_out:
  nop
step0:
  nop
step1:
  nop
step2:
  nop
step3:
  nop`);

function hex(n: number): string {
  return '0x' + n.toString(16);
}

interface Probe {
  vm: KvmVm;
  image: ProbeImage;
}

function boot(image: ProbeImage): KvmVm {
  const opts = { ...DEFAULT_VM_OPTIONS, backend: 'kvm' as const, memMiB: MEM_MIB };
  return new KvmVm(parseElf(image.elf, MEM_MIB * 1024 * 1024, 1), opts);
}

/** Runs until a stop that is not a slice (budget ~ms each, at most `maxMs`). */
function runUntilStop(vm: KvmVm, maxMs = 10_000, budget = 5_000_000): VmStop {
  const t0 = Date.now();
  for (;;) {
    const s = vm.run([0], budget);
    if (s.kind !== 'slice' || Date.now() - t0 > maxMs) return s;
  }
}

function u64At(vm: KvmVm, addr: number): number {
  const b = vm.readMemory(addr, 8);
  if (!b) return NaN;
  const dv = new DataView(b.buffer);
  return dv.getUint32(4, true) * 0x100000000 + dv.getUint32(0, true);
}

function describeStop(s: VmStop): string {
  switch (s.kind) {
    case 'exit': return `the guest ran to its end (exit ${s.status})`;
    case 'debug': return `debug stop (slots ${hex(s.slotsHit)}, step ${s.step})`;
    case 'entry-failed': return `the VM stopped: ${s.reason}`;
    case 'triple-fault': return `the VM stopped: ${s.reason}`;
    default: return `${s.kind} stop`;
  }
}

function withVm<T>(image: ProbeImage, f: (p: Probe) => T): T {
  const vm = boot(image);
  try {
    return f({ vm, image });
  } finally {
    vm.close();
  }
}

function guestSet(feature: string, source: string, dr6Bits: number, name: string): ProbeResult {
  const image = assembleProbe(`guest-${name}`, source);
  return withVm(image, ({ vm }) => {
    const stop = runUntilStop(vm);
    const count = u64At(vm, DB_COUNT);
    const dr6 = u64At(vm, LAST_DR6);
    const rip = u64At(vm, LAST_RIP);
    const expect = u64At(vm, EXPECT);
    const end = stop.kind === 'exit' ? '' : `; ${describeStop(stop)}`;
    if (count === 0) return { feature, setBy: 'guest' as const, verdict: 'does not fire' as const, evidence: `0 #DB in the guest's handler${end}` };
    const wantDr6 = (0xffff0ff0 | dr6Bits) >>> 0;
    const ok = count === 1 && rip === expect && dr6 === wantDr6;
    return {
      feature, setBy: 'guest' as const, verdict: ok ? 'works' as const : 'wrong value' as const,
      evidence: `${count} #DB, RIP ${hex(rip)} (expected ${hex(expect)}), DR6 ${hex(dr6)} (expected ${hex(wantDr6)})${end}`,
    };
  });
}

function guestStep(): ProbeResult {
  const feature = 'single-step';
  return withVm(assembleProbe('guest-step', GUEST_STEP), ({ vm }) => {
    const stop = runUntilStop(vm);
    const count = u64At(vm, DB_COUNT);
    const dr6 = u64At(vm, LAST_DR6);
    const rip = u64At(vm, LAST_RIP);
    const expect = u64At(vm, EXPECT);
    const end = stop.kind === 'exit' ? '' : `; ${describeStop(stop)}`;
    if (count === 0) return { feature, setBy: 'guest' as const, verdict: 'does not fire' as const, evidence: `0 #DB with TF set${end}` };
    const ok = count === GUEST_STEP_COUNT && dr6 === 0xffff4ff0 && rip === expect;
    return {
      feature, setBy: 'guest' as const, verdict: ok ? 'works' as const : 'wrong value' as const,
      evidence: `${count} #DB (expected ${GUEST_STEP_COUNT}), last RIP ${hex(rip)} (expected ${hex(expect)}), DR6 ${hex(dr6)} (expected 0xffff4ff0)${end}`,
    };
  });
}

function guestSurvive(): ProbeResult[] {
  return withVm(assembleProbe('guest-survive', GUEST_SURVIVE), ({ vm }) => {
    // 1 ms slices: the spin loop is kicked out of KVM_RUN, then released by the host.
    const t0 = Date.now();
    let stop: VmStop;
    for (;;) {
      stop = vm.run([0], 1_000_000);
      if (stop.kind !== 'slice' || Date.now() - t0 > 30_000) break;
      if ((vm.stats().exits['slice'] ?? 0) >= PREEMPTIONS) vm.writeMemory(RELEASE, new Uint8Array([1]));
    }
    const kicks = vm.stats().exits['slice'] ?? 0;
    return SURVIVE_EXITS.map((exit, k) => {
      const feature = `DR0-3/DR7 survive ${exit} exits`;
      if (stop.kind !== 'exit') return { feature, setBy: 'guest' as const, verdict: 'wrong value' as const, evidence: describeStop(stop) };
      const names = ['dr0', 'dr1', 'dr2', 'dr3', 'dr7'];
      const bad: string[] = [];
      names.forEach((n, i) => {
        const got = u64At(vm, TABLE + 40 * k + 8 * i);
        if (got !== SURVIVE_VALUES[i]) bad.push(`${n} ${hex(got)} (wrote ${hex(SURVIVE_VALUES[i])})`);
      });
      const extra = exit === 'preemption' ? ` (${kicks} host kicks during the run)` : '';
      return bad.length === 0
        ? { feature, setBy: 'guest' as const, verdict: 'works' as const, evidence: `all five read back as written${extra}` }
        : { feature, setBy: 'guest' as const, verdict: 'wrong value' as const, evidence: bad.join(', ') + extra };
    });
  });
}

function debuggerSlot(image: ProbeImage, feature: string, slot: DebuggerSlot, expectRip: number): ProbeResult {
  return withVm(image, ({ vm }) => {
    vm.setDebuggerSlots(0, [slot, null, null, null]);
    vm.setCapability(0, 'intercept-db', true);
    const stop = runUntilStop(vm);
    if (stop.kind !== 'debug') return { feature, setBy: 'debugger' as const, verdict: 'does not fire' as const, evidence: describeStop(stop) };
    const rip = vm.getRegister(0, 'rip').lo;
    const dr6 = vm.lastDebugExit?.dr6 ?? 0;
    const ok = stop.slotsHit === 1 && rip === expectRip && (dr6 & 0xf) === 1;
    return {
      feature, setBy: 'debugger' as const, verdict: ok ? 'works' as const : 'wrong value' as const,
      evidence: `KVM_EXIT_DEBUG at RIP ${hex(rip)} (expected ${hex(expectRip)}), slots ${hex(stop.slotsHit)}, DR6 ${hex(dr6)}`,
    };
  });
}

function debuggerDr6(image: ProbeImage): ProbeResult {
  const feature = 'DR6 contents';
  return withVm(image, ({ vm }) => {
    vm.setDebuggerSlots(0, [null, { address: u64(image.symbols['exec_target']), type: 'exec', len: 1 }, null, null]);
    vm.setCapability(0, 'intercept-db', true);
    const stop = runUntilStop(vm);
    if (stop.kind !== 'debug') return { feature, setBy: 'debugger' as const, verdict: 'does not fire' as const, evidence: describeStop(stop) };
    const dr6 = vm.lastDebugExit?.dr6 ?? 0;
    return {
      feature, setBy: 'debugger' as const, verdict: dr6 === 0xffff0ff2 ? 'works' as const : 'wrong value' as const,
      evidence: `kvm_run.debug.arch.dr6 ${hex(dr6)} for an instruction breakpoint in DR1 (expected 0xffff0ff2)`,
    };
  });
}

function debuggerStep(image: ProbeImage): ProbeResult {
  const feature = 'single-step';
  return withVm(image, ({ vm }) => {
    const s = image.symbols;
    // run to step0 with an instruction breakpoint, then step three times
    vm.setDebuggerSlots(0, [{ address: u64(s['step0']), type: 'exec', len: 1 }, null, null, null]);
    vm.setCapability(0, 'intercept-db', true);
    const first = runUntilStop(vm);
    if (first.kind !== 'debug') return { feature, setBy: 'debugger' as const, verdict: 'wrong value' as const, evidence: `could not reach step0: ${describeStop(first)}` };
    vm.setDebuggerSlots(0, [null, null, null, null]);
    vm.setCapability(0, 'rflags-tf', true);
    const rips: string[] = [];
    let ok = true;
    for (const want of ['step1', 'step2', 'step3']) {
      const stop = runUntilStop(vm);
      if (stop.kind !== 'debug' || !stop.step) {
        return { feature, setBy: 'debugger' as const, verdict: rips.length === 0 ? 'does not fire' as const : 'wrong value' as const, evidence: `after ${rips.length} steps: ${describeStop(stop)}` };
      }
      const rip = vm.getRegister(0, 'rip').lo;
      rips.push(hex(rip));
      if (rip !== s[want]) ok = false;
    }
    const dr6 = vm.lastDebugExit?.dr6 ?? 0;
    if ((dr6 & 0x4000) === 0) ok = false;
    return {
      feature, setBy: 'debugger' as const, verdict: ok ? 'works' as const : 'wrong value' as const,
      evidence: `RIPs ${rips.join(' ')} (expected ${['step1', 'step2', 'step3'].map((n) => hex(s[n])).join(' ')}), DR6 ${hex(dr6)}`,
    };
  });
}

/** Every probe, in table order. Throws KvmUnavailable / ToolMissing when it cannot run at all. */
export function runProbes(progress: (line: string) => void = () => undefined): ProbeResult[] {
  const results: ProbeResult[] = [];
  const add = (r: ProbeResult | ProbeResult[]): void => {
    for (const x of Array.isArray(r) ? r : [r]) {
      results.push(x);
      progress(`${x.feature} (${x.setBy}): ${x.verdict}`);
    }
  };
  const dbg = assembleProbe('debugger', DEBUGGER_GUEST);
  const s = dbg.symbols;
  for (const [name, p] of Object.entries(GUEST_PROBES)) {
    add(guestSet(p.feature, p.source, p.dr6, name));
    const slot: DebuggerSlot = name === 'exec' ? { address: u64(s['exec_target']), type: 'exec', len: 1 }
      : name === 'write' ? { address: u64(VAR), type: 'write', len: 4 }
        : name === 'access' ? { address: u64(VAR2), type: 'access', len: 4 }
          : { address: u64(PORT_PROBE), type: 'io', len: 1 };
    const rip = name === 'exec' ? s['exec_target'] : name === 'write' ? s['after_write'] : name === 'access' ? s['after_read'] : s['after_out'];
    add(debuggerSlot(dbg, p.feature, slot, rip));
  }
  add(guestStep());
  add(debuggerStep(dbg));
  add(guestDr6Row(results));
  add(debuggerDr6(dbg));
  add(guestSurvive());
  add(guestInt3());
  add(debuggerInt3(dbg));
  return results;
}

/** The guest's own INT3 through its IDT (the #BP gate is vector 3). */
const GUEST_INT3 = guest(`
  mov $3, %edi
  lea bp_handler(%rip), %rsi
  call set_gate
  lea 1f(%rip), %rax
  mov %rax, EXPECT
  int3
1: nop
  ret
bp_handler:
  push %rax
  incq DB_COUNT
  mov 8(%rsp), %rax
  mov %rax, LAST_RIP
  pop %rax
  iretq`);

function guestInt3(): ProbeResult {
  const feature = 'int3 (software breakpoint)';
  return withVm(assembleProbe('guest-int3', GUEST_INT3), ({ vm }) => {
    const stop = runUntilStop(vm);
    const count = u64At(vm, DB_COUNT);
    const rip = u64At(vm, LAST_RIP);
    const expect = u64At(vm, EXPECT);
    if (count === 0) return { feature, setBy: 'guest' as const, verdict: 'does not fire' as const, evidence: `0 #BP in the guest's handler; ${describeStop(stop)}` };
    const ok = count === 1 && rip === expect && stop.kind === 'exit';
    return { feature, setBy: 'guest' as const, verdict: ok ? 'works' as const : 'wrong value' as const, evidence: `${count} #BP, RIP ${hex(rip)} (expected ${hex(expect)}); ${describeStop(stop)}` };
  });
}

function debuggerInt3(image: ProbeImage): ProbeResult {
  const feature = 'int3 (software breakpoint)';
  return withVm(image, ({ vm }) => {
    const at = image.symbols['exec_target'];
    vm.writeMemory(at, new Uint8Array([0xcc]));
    vm.setCapability(0, 'intercept-bp', true);
    const stop = runUntilStop(vm);
    if (stop.kind !== 'breakpoint') return { feature, setBy: 'debugger' as const, verdict: 'does not fire' as const, evidence: describeStop(stop) };
    if ((vm.stats().exits['int3-emulation-failure'] ?? 0) > 0) {
      return { feature, setBy: 'debugger' as const, verdict: 'does not fire' as const,
        evidence: `KVM_EXIT_INTERNAL_ERROR (emulation failure) at the int3 ${hex(stop.rip.lo)} instead of KVM_EXIT_DEBUG; the kvm backend takes it as gdb's breakpoint` };
    }
    const ok = stop.rip.lo === at;
    return { feature, setBy: 'debugger' as const, verdict: ok ? 'works' as const : 'wrong value' as const, evidence: `KVM_EXIT_DEBUG #BP at ${hex(stop.rip.lo)} (expected ${hex(at)})` };
  });
}

/** The guest-set DR6 row: what the guest's handler read for its own instruction breakpoint. */
function guestDr6Row(done: ProbeResult[]): ProbeResult {
  const exec = done.find((r) => r.feature === 'instruction breakpoint' && r.setBy === 'guest');
  const feature = 'DR6 contents';
  if (!exec || exec.verdict === 'does not fire') return { feature, setBy: 'guest', verdict: 'does not fire', evidence: 'no #DB to read DR6 in' };
  const m = /DR6 (0x[0-9a-f]+) \(expected (0x[0-9a-f]+)\)/.exec(exec.evidence);
  const ok = m !== null && m[1] === m[2];
  return { feature, setBy: 'guest', verdict: ok ? 'works' : 'wrong value', evidence: m ? `the guest's #DB handler read DR6 ${m[1]} (expected ${m[2]})` : exec.evidence };
}
