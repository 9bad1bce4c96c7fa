/**
 * The hypervisor's NMI paths on both backends, with the real CPU and small assembled guests
 * of our ELF64 ABI: guest NMIs injected at VM entry, a nested NMI held until the handler's
 * IRET (VT-x NMI-window exit; SVM IRET intercept and the hypervisor's hidden TF step), the
 * guest's own TF across that IRET, the client's step through it, and host NMI exits that
 * the guest never sees.
 */
import { expect } from 'chai';
import { Vm, createVm } from '../../vmm/api/create-vm';
import { DEFAULT_VM_OPTIONS } from '../../vmm/api/vm-options';
import { LoadedImage } from '../../vmm/loader/elf-types';
import { DrSwitchMode, VmStop } from '../../vmm/vmm-types';
import { assembleProgram } from '../helpers/asm';

/** IDT gates for #DB (db_h) and NMI (nmi_h), the xAPIC page in %r14, then `test`. */
const PROLOGUE = `
_start:
  mov %cs, %r15w
  mov $0xfee00000, %r14d
  movl $0x1ff, 0xf0(%r14)          # SVR: APIC software-enabled
  movl $0, 0x310(%r14)             # ICR destination: APIC ID 0 (this vCPU)
  mov $1, %edi; lea db_h(%rip), %rsi; call set_gate
  mov $2, %edi; lea nmi_h(%rip), %rsi; call set_gate
  lidt idtr(%rip)
  jmp test
set_gate:                          # vector in %edi, handler in %rsi
  shl $4, %edi; lea idt(%rip), %rax; add %rdi, %rax
  mov %si, (%rax); mov %r15w, 2(%rax); movw $0x8e00, 4(%rax)
  mov %rsi, %rdx; shr $16, %rdx; mov %dx, 6(%rax); shr $16, %rdx; mov %edx, 8(%rax); movl $0, 12(%rax)
  ret
done:
  xor %eax, %eax; mov $0xf4, %dx; out %eax, %dx
  hlt
`;

/** Send an NMI to this vCPU through the ICR (physical, NMI, assert), then an exit (the entry after it injects). */
const SELF_NMI = 'movl $0x4400, 0x300(%r14); out %al, $0x80';

/** The NMI handler: records each frame's RIP and RFLAGS; the first one raises a nested NMI and, while it is held, exits twice. */
const NMI_HANDLER = (beforeIret: string): string => `
nmi_h:
  push %rax; push %rbx
  mov nmis(%rip), %ebx
  lea frames(%rip), %rax; shl $4, %rbx; add %rbx, %rax
  mov 16(%rsp), %rbx; mov %rbx, (%rax)            # the frame's RIP
  mov 32(%rsp), %rbx; mov %rbx, 8(%rax)           # the frame's RFLAGS
  incl nmis(%rip)
  cmpl $1, nmis(%rip); jne 2f
  ${SELF_NMI}
  out %al, $0x80
  mov nmis(%rip), %eax; mov %eax, held(%rip)      # still 1: the nested NMI waits for the IRET
  pop %rbx; pop %rax
  ${beforeIret}
iret1:
  iretq
2: pop %rbx; pop %rax
  iretq
`;

const DATA = `
  .data
  .align 16
idtr: .word 3 * 16 - 1
  .quad idt
nmis: .long 0
held: .long 0
dbs: .long 0
dr6: .long 0
  .align 16
frames: .space 4 * 16
db_frame: .space 16
var: .long 0
  .align 16
idt: .space 3 * 16
`;

/** A nested NMI held until the first handler's IRET, then delivered before the next instruction. */
const NESTED = `${PROLOGUE}
test:
  ${SELF_NMI}
after1:
1: cmpl $2, nmis(%rip); jne 1b
  mov %dr6, %rax; mov %eax, dr6(%rip)
  jmp done
${NMI_HANDLER('')}
db_h: incl dbs(%rip); iretq
${DATA}`;

/** The same with the guest's own TF set across the first handler's IRET (a guest stepping its handler). */
const GUEST_TF = `${PROLOGUE}
test:
  ${SELF_NMI}
after1:
1: cmpl $2, nmis(%rip); jne 1b
  jmp done
${NMI_HANDLER('pushfq; orq $0x100, (%rsp); popfq')}
db_h:
  push %rax
  incl dbs(%rip)
  mov %dr6, %rax; mov %eax, dr6(%rip)
  mov 8(%rsp), %rax; mov %rax, db_frame(%rip)
  mov 24(%rsp), %rax; mov %rax, db_frame+8(%rip)
  mov $0xffff0ff0, %eax; mov %rax, %dr6
  pop %rax
  iretq
${DATA}`;

/**
 * The guest debugs itself: a write watchpoint (DR0/DR7) on \`var\` and TF over a loop that
 * writes it; its #DB handler counts and ORs the DR6 bits it sees. Host NMIs must change
 * nothing of that (the traps pending at each NMI exit survive it).
 */
const SELF_DEBUG = `${PROLOGUE}
test:
  lea var(%rip), %rax; mov %rax, %dr0
  mov $0xd0401, %eax; mov %rax, %dr7              # L0, RW0 = write, LEN0 = 4 bytes
  mov $25, %ecx
  pushfq; orq $0x100, (%rsp); popfq
1: incl var(%rip)
  mov %ss, %ax; mov %ax, %ss                      # a MOV-SS shadow: its trap waits one instruction
  dec %ecx
  jnz 1b
  pushfq; andq $~0x100, (%rsp); popfq
  xor %eax, %eax; mov %rax, %dr7
  jmp done
nmi_h: incl nmis(%rip); iretq
db_h:
  push %rax
  incl dbs(%rip)
  mov %dr6, %rax; or %eax, dr6(%rip)
  mov $0xffff0ff0, %eax; mov %rax, %dr6
  pop %rax
  iretq
${DATA}`;

/** An NMI that arrives in an STI shadow (the shadow's instruction is a PUSHF): held for one instruction. */
const SHADOW = `${PROLOGUE}
test:
  sti
  pushfq
after_pushf:
  popq %rax; mov %rax, pushed(%rip)
1: cmpl $2, nmis(%rip); jne 1b
  jmp done
${NMI_HANDLER('')}
db_h: incl dbs(%rip); iretq
${DATA}
pushed: .quad 0
`;

interface Guest { image: LoadedImage; labels: Record<string, number> }

function guest(source: string): Guest {
  const p = assembleProgram(source, 0x100000);
  return {
    image: { entry: 0x100000, segments: [{ address: 0x100000, data: p.code, memSize: p.code.length, flags: 7 }], symbols: new Map(Object.entries(p.labels)) },
    labels: p.labels,
  };
}

function vmFor(g: Guest, backend: 'vmx' | 'svm', drSwitch: DrSwitchMode = 'full'): Vm {
  return createVm(g.image, { ...DEFAULT_VM_OPTIONS, backend, drSwitch, memMiB: 4 });
}

function runToEnd(vm: Vm): VmStop {
  let stop = vm.run([0], 1e6);
  for (let i = 0; i < 50 && stop.kind === 'slice'; i++) stop = vm.run([0], 1e6);
  return stop;
}

function u32(vm: Vm, g: Guest, label: string, offset = 0): number {
  const b = vm.readMemory(g.labels[label] + offset, 4);
  if (b === undefined) throw new Error(`${label} not readable`);
  return new DataView(b.buffer, b.byteOffset).getUint32(0, true);
}

const TF = 0x100;

describe('hypervisor: guest NMIs by injection, the NMI window, host NMI exits', () => {
  for (const backend of ['vmx', 'svm'] as const) {
    describe(backend, () => {
      it('an NMI IPI is injected at the next entry and taken through the IDT; a nested one waits for the handler\'s IRET, then comes before the next instruction', () => {
        const g = guest(NESTED);
        const vm = vmFor(g, backend);
        expect(runToEnd(vm)).to.deep.equal({ kind: 'exit', vcpu: 0, status: 0 });
        expect(u32(vm, g, 'nmis')).to.equal(2);
        expect(u32(vm, g, 'held'), 'two exits inside the handler did not deliver the nested NMI').to.equal(1);
        expect(u32(vm, g, 'frames', 0), 'the first NMI: right after the OUT that followed the IPI').to.equal(g.labels.after1);
        expect(u32(vm, g, 'frames', 16), 'the nested NMI: right after the IRET, before any instruction').to.equal(g.labels.after1);
        expect(u32(vm, g, 'frames', 8) & TF).to.equal(0);
        expect(u32(vm, g, 'frames', 24) & TF, 'no hypervisor TF in the nested frame').to.equal(0);
        expect(u32(vm, g, 'dbs'), 'the guest saw no #DB').to.equal(0);
        expect(u32(vm, g, 'dr6'), 'nor any DR6 bit of the hypervisor\'s step').to.equal(0xffff0ff0);
        const exits = vm.stats().exits;
        if (backend === 'vmx') {
          expect(exits['nmi-window'], 'VT-x: an NMI-window exit when blocking ended').to.be.at.least(1);
          expect(exits['iret']).to.equal(undefined);
        } else {
          expect(exits['iret'], 'SVM: the IRET intercept of each handler').to.equal(2);
          expect(exits['exception'], 'SVM: the #DB of the hypervisor\'s step over the first IRET').to.equal(1);
          expect(exits['nmi-window']).to.equal(undefined);
        }
        expect(vm.describeDebugState(0)).to.match(/NMI: pending 0, .*injected 2/);
        expect(vm.leaks()).to.deep.equal([]);
      });

      it('the guest\'s own TF across that IRET: exactly its own #DB (DR6.BS), then the nested NMI at the #DB handler\'s first instruction', () => {
        const g = guest(GUEST_TF);
        const vm = vmFor(g, backend);
        expect(runToEnd(vm)).to.deep.equal({ kind: 'exit', vcpu: 0, status: 0 });
        expect(u32(vm, g, 'nmis')).to.equal(2);
        expect(u32(vm, g, 'dbs'), 'one single-step trap: after the IRET').to.equal(1);
        expect(u32(vm, g, 'dr6'), 'DR6 as the guest\'s handler reads it').to.equal(0xffff4ff0);
        expect(u32(vm, g, 'db_frame'), 'the trap comes at the IRET\'s target').to.equal(g.labels.after1);
        expect(u32(vm, g, 'db_frame', 8) & TF, 'TF as the IRET loaded it (0), not the hypervisor\'s').to.equal(0);
        expect(u32(vm, g, 'frames', 16), 'the nested NMI ranks below the trap: at the #DB handler').to.equal(g.labels.db_h);
        expect(u32(vm, g, 'frames', 24) & TF).to.equal(0);
        expect(vm.leaks()).to.deep.equal([]);
      });

      it('the client\'s TF step through the handler\'s IRET with a nested NMI pending stops once per instruction; the NMI comes on continue', () => {
        const g = guest(NESTED);
        const vm = vmFor(g, backend);
        vm.setDebuggerSlots(0, [{ address: { lo: g.labels.iret1, hi: 0 }, type: 'exec', len: 1 }, null, null, null]);
        expect(runToEnd(vm)).to.deep.equal({ kind: 'debug', vcpu: 0, slotsHit: 1, step: false });
        vm.setDebuggerSlots(0, [null, null, null, null]);
        vm.setCapability(0, 'rflags-tf', true);
        const pcs: number[] = [];
        for (let i = 0; i < 4; i++) {
          const before = vm.stats().instructions;
          expect(vm.run([0], 1000)).to.deep.equal({ kind: 'debug', vcpu: 0, slotsHit: 0, step: true });
          expect(vm.stats().instructions - before, `step ${i}: one instruction`).to.equal(1);
          pcs.push(vm.getRegister(0, 'rip').lo);
          expect(vm.getRegister(0, 'rflags').lo & TF, 'the guest\'s TF is its own').to.equal(0);
        }
        expect(pcs[0], 'the IRET returned to the loop').to.equal(g.labels.after1);
        expect(u32(vm, g, 'nmis'), 'held while the client steps').to.equal(1);
        vm.setCapability(0, 'rflags-tf', false);
        expect(runToEnd(vm)).to.deep.equal({ kind: 'exit', vcpu: 0, status: 0 });
        expect(u32(vm, g, 'nmis')).to.equal(2);
        expect(u32(vm, g, 'frames', 24) & TF).to.equal(0);
        expect(u32(vm, g, 'dbs')).to.equal(0);
      });

      it('an NMI in an STI shadow waits for the shadow\'s instruction (a PUSHF: no hypervisor TF in what it pushed), then comes at once', () => {
        const g = guest(SHADOW);
        const vm = vmFor(g, backend);
        vm.setDebuggerSlots(0, [{ address: { lo: g.labels.test, hi: 0 }, type: 'exec', len: 1 }, null, null, null]);
        expect(runToEnd(vm)).to.deep.equal({ kind: 'debug', vcpu: 0, slotsHit: 1, step: false });
        vm.setDebuggerSlots(0, [null, null, null, null]);
        expect(vm.run([0], 1)).to.deep.equal({ kind: 'slice', vcpu: 0 });  // the STI: its shadow is on now
        expect(vm.getRegister(0, 'rip').lo).to.equal(g.labels.test + 1);
        vm.injectNmi(0);
        expect(runToEnd(vm)).to.deep.equal({ kind: 'exit', vcpu: 0, status: 0 });
        expect(u32(vm, g, 'frames', 0), 'after the PUSHF, not before it').to.equal(g.labels.after_pushf);
        expect(u32(vm, g, 'frames', 8) & (TF | 0x200), 'IF set by the STI, no TF').to.equal(0x200);
        expect(u32(vm, g, 'pushed') & TF, 'PUSHF pushed the guest\'s own TF').to.equal(0);
        expect(u32(vm, g, 'dbs')).to.equal(0);
        const exits = vm.stats().exits;
        if (backend === 'vmx') expect(exits['nmi-window'], 'VT-x: the window opens after the shadow').to.be.at.least(1);
        else expect(exits['exception'], 'SVM: the hypervisor stepped over the shadow').to.be.at.least(1);
        expect(vm.leaks()).to.deep.equal([]);
      });

      it('host NMIs after every guest instruction: NMI exits the host handles; the guest\'s own watchpoint and TF traps, DR6 and registers are as without them', () => {
        const g = guest(SELF_DEBUG);
        const quiet = vmFor(g, backend);
        expect(runToEnd(quiet)).to.deep.equal({ kind: 'exit', vcpu: 0, status: 0 });
        const vm = vmFor(g, backend);
        let stop: VmStop = { kind: 'slice', vcpu: 0 };
        let raised = 0;
        for (let i = 0; i < 5000 && stop.kind === 'slice'; i++) {
          vm.raiseHostNmi(0);
          raised++;
          stop = vm.run([0], 2);
        }
        expect(stop).to.deep.equal({ kind: 'exit', vcpu: 0, status: 0 });
        const st = vm.stats();
        expect(st.exits['nmi'], 'an NMI exit for (nearly) every host NMI').to.be.within(raised - 40, raised);
        expect(st.hostNmis).to.deep.equal({ handled: st.exits['nmi'], sawForeignDebugState: 0 });
        expect(st.instructions).to.equal(quiet.stats().instructions);
        for (const label of ['dbs', 'dr6', 'var', 'nmis']) expect(u32(vm, g, label), label).to.equal(u32(quiet, g, label));
        expect(u32(vm, g, 'dbs'), 'a #DB after each instruction from the first with TF (MOV SS: with the next)').to.be.greaterThan(100);
        expect(u32(vm, g, 'dr6'), 'BS and B0 seen').to.equal(0xffff4ff1);
        expect(u32(vm, g, 'nmis'), 'the guest never saw an NMI').to.equal(0);
        for (const r of ['rax', 'rcx', 'rsp', 'rip', 'rflags', 'dr0', 'dr6', 'dr7'] as const) {
          expect(vm.getRegister(0, r), r).to.deep.equal(quiet.getRegister(0, r));
        }
        expect(vm.leaks()).to.deep.equal([]);
      });

      it('the host\'s NMI handler runs after the DR restore: it finds the host\'s debug registers under full, the guest\'s under none', () => {
        const g = guest(SELF_DEBUG);
        for (const mode of ['full', 'none'] as const) {
          const vm = vmFor(g, backend, mode);
          let stop: VmStop = { kind: 'slice', vcpu: 0 };
          for (let i = 0; i < 5000 && stop.kind === 'slice'; i++) {
            vm.raiseHostNmi(0);
            stop = vm.run([0], 2);
          }
          const nmis = vm.stats().hostNmis;
          expect(nmis?.handled, mode).to.be.greaterThan(100);
          if (mode === 'full') expect(nmis?.sawForeignDebugState, 'full').to.equal(0);
          else expect(nmis?.sawForeignDebugState, 'none: the guest\'s DR0 reached the host handler').to.be.greaterThan(50);
        }
      });
    });
  }
});
