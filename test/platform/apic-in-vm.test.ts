import { expect } from 'chai';
import { createVm } from '../../vmm/api/create-vm';
import { DEFAULT_VM_OPTIONS } from '../../vmm/api/vm-options';
import { LoadedImage } from '../../vmm/loader/elf-types';
import { assembleProgram } from '../helpers/asm';

/**
 * A guest of our ELF64 ABI that uses the PC platform the way a kernel does: its own IDT, the
 * local APIC at 0xFEE00000 (one-shot timer woken from HLT, CR8 = TPR[7:4], self-IPI through the ICR), then
 * x2APIC through the MSRs (ID, self-IPI register, two IPIs held while IF=0 taken highest
 * first, TSC-deadline timer), fw_cfg's CPU count,
 * the AMD legacy PMU MSRs on svm (no PMU: read 0), and the UART. Each check that fails exits with its own status; all pass: exit 0.
 */
const GUEST = `
_start:
  mov %cs, %r15w
  mov $0xfee00000, %r14d   # the xAPIC page
  mov $0x40, %edi; lea isr40(%rip), %rsi; call set_gate
  mov $0x41, %edi; lea isr41(%rip), %rsi; call set_gate
  mov $0x42, %edi; lea isr42(%rip), %rsi; call set_gate
  mov $0x43, %edi; lea isr43(%rip), %rsi; call set_gate
  mov $0x44, %edi; lea isr44(%rip), %rsi; call set_gate
  lidt idtr(%rip)

  # CPUID.1: APIC (EDX 9), x2APIC (ECX 21), TSC-deadline (ECX 24)
  mov $1, %eax; cpuid
  mov $10, %edi; bt $9, %edx; jnc fail
  mov $11, %edi; bt $21, %ecx; jnc fail
  mov $12, %edi; bt $24, %ecx; jnc fail

  # AMD (svm): the legacy PMU MSRs exist without a PMU: writes dropped, reads 0
  xor %eax, %eax; cpuid
  cmp $0x68747541, %ebx; jne 9f           # "Auth"
  mov $0xc0010000, %ecx; mov $0x430076, %eax; xor %edx, %edx; wrmsr
  mov $0xc0010004, %ecx; rdmsr
  mov $15, %edi; test %eax, %eax; jnz fail
9:

  # xAPIC: software-enable, one-shot timer (divide by 1, 500 ticks), HLT until it fires
  movl $0x1ff, 0x0f0(%r14)
  movl $0xb, 0x3e0(%r14)
  movl $0x40, 0x320(%r14)
  movl $500, 0x380(%r14)
  sti
  hlt
  mov $1, %edi; cmpl $1, ticks(%rip); jne fail
  mov $2, %edi; cmpl $0, 0x390(%r14); jne fail          # current count ran out
  mov $3, %edi; cmpl $0, 0x120(%r14); jne fail   # ISR clear after EOI

  # CR8 is TPR[7:4], both ways
  mov $5, %eax; mov %rax, %cr8
  mov $9, %edi; cmpl $0x50, 0x80(%r14); jne fail
  movl $0x30, 0x80(%r14); mov %cr8, %rax
  mov $13, %edi; cmp $3, %rax; jne fail
  xor %eax, %eax; mov %rax, %cr8

  # self-IPI through the ICR (shorthand self, fixed, vector 0x41)
  movl $0x44041, 0x300(%r14)
1: cmpl $0, ipis(%rip); je 1b

  # x2APIC: enable (EN|EXTD), ID by MSR 0x802, self-IPI by MSR 0x83F
  mov $0x1b, %ecx; rdmsr; or $0xc00, %eax; wrmsr
  mov $0x802, %ecx; rdmsr
  mov $4, %edi; cmp $0, %eax; jne fail
  mov $0x83f, %ecx; mov $0x41, %eax; xor %edx, %edx; wrmsr
2: cmpl $2, ipis(%rip); jne 2b

  # with IF=0, self-IPIs 0x43 then 0x44 both wait in the IRR; STI takes the higher first
  cli
  mov $0x83f, %ecx; mov $0x43, %eax; xor %edx, %edx; wrmsr
  mov $0x44, %eax; wrmsr
  nop; nop; nop
  sti; nop; nop; cli
  mov $14, %edi; cmpl $0x43, order(%rip); jne fail
  sti

  # TSC-deadline: 100000 ticks ahead; HLT lets time pass to it
  mov $0x832, %ecx; mov $0x40042, %eax; xor %edx, %edx; wrmsr  # LVT timer: TSC-deadline, vector 0x42
  rdtsc; shl $32, %rdx; or %rdx, %rax; lea 100000(%rax), %rbx
  mov %rbx, %rax; mov %rbx, %rdx; shr $32, %rdx; mov $0x6e0, %ecx; wrmsr
  hlt
  mov $5, %edi; cmpl $1, deadline_hits(%rip); jne fail
  rdtsc; shl $32, %rdx; or %rdx, %rax
  mov $6, %edi; cmp %rbx, %rax; jb fail

  # fw_cfg: signature and the CPU count
  mov $0x510, %dx; xor %eax, %eax; out %ax, %dx; mov $0x511, %dx; in %dx, %al
  mov $7, %edi; cmp $'Q', %al; jne fail
  mov $0x510, %dx; mov $5, %eax; out %ax, %dx; mov $0x511, %dx; in %dx, %al
  mov $8, %edi; cmp $1, %al; jne fail

  # UART: "apic ok\\n", polling LSR.THRE
  lea msg(%rip), %rsi
3: movzbl (%rsi), %eax; test %al, %al; jz 5f
  mov $0x3fd, %dx
4: in %dx, %al; test $0x20, %al; jz 4b
  movzbl (%rsi), %eax; mov $0x3f8, %dx; out %al, %dx; inc %rsi; jmp 3b
5: xor %edi, %edi
fail:
  mov %edi, %eax; mov $0xf4, %dx; out %eax, %dx
  hlt

set_gate:                 # vector in %edi, handler in %rsi
  shl $4, %edi; lea idt(%rip), %rax; add %rdi, %rax
  mov %si, (%rax); mov %r15w, 2(%rax); movw $0x8e00, 4(%rax)
  mov %rsi, %rdx; shr $16, %rdx; mov %dx, 6(%rax); shr $16, %rdx; mov %edx, 8(%rax); movl $0, 12(%rax)
  ret

isr40: incl ticks(%rip); movl $0, 0x0b0(%r14); iretq
isr41:
  incl ipis(%rip)
  push %rax; push %rcx; push %rdx
  mov $0x1b, %ecx; rdmsr; test $0x400, %eax; jnz 6f
  movl $0, 0x0b0(%r14); jmp 7f
6: mov $0x80b, %ecx; xor %eax, %eax; xor %edx, %edx; wrmsr
7: pop %rdx; pop %rcx; pop %rax; iretq
isr42:
  incl deadline_hits(%rip)
  push %rax; push %rcx; push %rdx
  mov $0x80b, %ecx; xor %eax, %eax; xor %edx, %edx; wrmsr
  pop %rdx; pop %rcx; pop %rax; iretq

isr43: push %rax; push %rcx; push %rdx; mov $3, %ecx; jmp 8f
isr44: push %rax; push %rcx; push %rdx; mov $4, %ecx
8: mov order(%rip), %eax; shl $4, %eax; or %ecx, %eax; mov %eax, order(%rip)
  mov $0x80b, %ecx; xor %eax, %eax; xor %edx, %edx; wrmsr
  pop %rdx; pop %rcx; pop %rax; iretq

  .data
  .align 16
idtr: .word 0x44 * 16 + 15
  .quad idt
msg: .asciz "apic ok\\n"
ticks: .long 0
ipis: .long 0
deadline_hits: .long 0
order: .long 0
  .align 16
idt: .space 0x45 * 16
`;

function image(): LoadedImage {
  const p = assembleProgram(GUEST, 0x100000);
  return { entry: 0x100000, segments: [{ address: 0x100000, data: p.code, memSize: p.code.length, flags: 7 }], symbols: new Map(Object.entries(p.labels)) };
}

describe('platform: the local APIC, fw_cfg and UART inside a VM (our ELF64 ABI)', () => {
  for (const backend of ['vmx', 'svm'] as const) {
    it(`${backend}: timer from HLT, self-IPIs (ICR and x2APIC), TSC-deadline, fw_cfg, UART output`, () => {
      const vm = createVm(image(), { ...DEFAULT_VM_OPTIONS, backend, memMiB: 4 });
      let stop = vm.run([0], 1e6);
      for (let i = 0; i < 50 && stop.kind === 'slice'; i++) stop = vm.run([0], 1e6);
      expect(stop).to.deep.equal({ kind: 'exit', vcpu: 0, status: 0 });
      expect(vm.devices.console.take()).to.equal('apic ok\n');
    });
  }
});

/**
 * Two vCPUs each reach their own local APIC through the one xAPIC page: each reads its APIC
 * ID at 0xFEE00020 and software-enables its APIC through the SVR; then vCPU 0 sends a fixed
 * IPI (vector 0x50, physical destination 1) that wakes vCPU 1 from HLT. (Before the fix,
 * every vCPU's MMIO reached APIC 0: vCPU 1 read ID 0 and its APIC stayed disabled.)
 */
const TWO_VCPUS = `
_start:
  mov $0xfee00000, %r14d
  mov 0x20(%r14), %eax; shr $24, %eax
  lea ids(%rip), %rbx; mov %eax, (%rbx,%rdi,4)
  movl $0x1ff, 0x0f0(%r14)
  test %edi, %edi
  jnz ap
  mov $21, %edi; cmpl $0, ids(%rip); jne fail
1: cmpl $0, ap_ready(%rip); je 1b
  mov $22, %edi; cmpl $1, ids+4(%rip); jne fail
  movl $0x01000000, 0x310(%r14)
  movl $0x4050, 0x300(%r14)           # fixed, physical, vector 0x50
2: cmpl $0, ap_ipis(%rip); je 2b
  xor %edi, %edi
fail:
  mov %edi, %eax; mov $0xf4, %dx; out %eax, %dx
  hlt
ap:
  mov %cs, %r15w
  lea idt(%rip), %rax; lea isr50(%rip), %rsi
  mov %si, 0x500(%rax); mov %r15w, 0x502(%rax); movw $0x8e00, 0x504(%rax)
  mov %rsi, %rdx; shr $16, %rdx; mov %dx, 0x506(%rax); shr $16, %rdx; mov %edx, 0x508(%rax); movl $0, 0x50c(%rax)
  lidt idtr(%rip)
  sti
  movl $1, ap_ready(%rip)
3: hlt; jmp 3b
isr50: incl ap_ipis(%rip); movl $0, 0x0b0(%r14); iretq

  .data
  .align 16
idtr: .word 0x51 * 16 - 1
  .quad idt
ids: .long -1, -1
ap_ready: .long 0
ap_ipis: .long 0
  .align 16
idt: .space 0x51 * 16
`;

describe('platform: each vCPU reaches its own local APIC through the xAPIC page', () => {
  for (const backend of ['vmx', 'svm'] as const) {
    it(`${backend}: APIC IDs 0 and 1 by MMIO, SVR per vCPU, a fixed IPI wakes vCPU 1 from HLT`, () => {
      const p = assembleProgram(TWO_VCPUS, 0x100000);
      const img: LoadedImage = { entry: 0x100000, segments: [{ address: 0x100000, data: p.code, memSize: p.code.length, flags: 7 }], symbols: new Map(Object.entries(p.labels)) };
      const vm = createVm(img, { ...DEFAULT_VM_OPTIONS, backend, memMiB: 4, vcpus: 2 });
      let stop = vm.run([0, 1], 1e6);
      for (let i = 0; i < 20 && stop.kind === 'slice'; i++) stop = vm.run([0, 1], 1e6);
      expect(stop).to.deep.equal({ kind: 'exit', vcpu: 0, status: 0 });
      expect(vm.devices.platform.apics.apics[1].describe(0)).to.match(/svr 0x1ff/);
    });
  }
});
