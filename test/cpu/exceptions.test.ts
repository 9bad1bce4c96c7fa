// Exceptions, interrupts and system instructions (SDM Vol. 3 ch. 6, Vol. 2).
import { emulateCpuid } from '../../vmm/hypervisor/guest-abi';
import { expect } from 'chai';
import { buildKernel, rip } from './kernel';
import { assemble, makeCpu } from '../helpers/asm';
import { u64 } from '../../vmm/u64';
import { Cpu } from '../../vmm/cpu/cpu';
import { PhysicalCpu } from '../../vmm/cpu/physical-cpu';

describe('cpu: exceptions and interrupts (SDM 6)', () => {
  it('#UD for an unimplemented opcode is delivered to the guest with RIP at the instruction (6.15 #UD)', () => {
    const k = buildKernel('nop\n bad: .byte 0x0f, 0x05\n nop'); // SYSCALL is not implemented
    expect(k.run().kind).to.equal('hlt');
    expect(k.log().map((e) => [e.vector, e.rip])).to.deep.equal([[6, k.labels.bad]]);
  });

  it('#DE on divide by zero and on quotient overflow (DIV/IDIV)', () => {
    const k = buildKernel('xorl %ecx, %ecx\n d1: divl %ecx');
    k.run();
    expect(k.log().map((e) => [e.vector, e.rip])).to.deep.equal([[0, k.labels.d1]]);
    const k2 = buildKernel('movq $0x8000000000000000, %rax\n cqto\n movq $-1, %rcx\n d2: idivq %rcx');
    k2.run();
    expect(k2.log().map((e) => [e.vector, e.rip])).to.deep.equal([[0, k2.labels.d2]]);
  });

  it('an instruction longer than 15 bytes is #GP(0) (SDM 2.3.11)', () => {
    const k = buildKernel('long: .byte 0x66,0x66,0x66,0x66,0x66,0x66,0x66,0x66,0x66,0x66,0x66,0x66,0x66,0x66,0x66,0x90');
    k.run();
    expect(k.log().map((e) => [e.vector, e.error, e.rip])).to.deep.equal([[13, 0, k.labels.long]]);
  });

  it('a non-canonical memory address is #GP(0); the 64-bit frame holds error code, RIP, CS, RFLAGS (RF=1 for a fault), RSP, SS', () => {
    const k = buildKernel('movq $0x0000800000000000, %rbx\n movq %rsp, %r12\n g: movq (%rbx), %rax');
    k.run();
    const [e] = k.log();
    expect([e.vector, e.error, e.rip]).to.deep.equal([13, 0, k.labels.g]);
    expect(e.rflags & 0x10000).to.equal(0x10000);
  });

  it('INT n through an interrupt gate: RIP after INT, IF cleared in the handler, restored by IRETQ', () => {
    const k = buildKernel('sti\n int $0x80\n after: pushfq\n popq %r15');
    expect(k.run().kind).to.equal('hlt');
    expect(k.log().map((e) => [e.vector, e.rip, e.rflags & 0x200])).to.deep.equal([[0x80, k.labels.after, 0x200]]);
    expect(k.cpu.getGpr(15).lo & 0x200).to.equal(0x200);
  });

  it('a fault during delivery of a benign exception is delivered serially; contributory + contributory = #DF (Table 6-5)', () => {
    // #UD (benign) with IDT entry 6 not present: #NP(6*8+2+1) is delivered.
    const k = buildKernel('ud2');
    const idt = k.cpu.getReg('idtr_base').lo;
    k.cpu.mem.bytes[idt + 6 * 16 + 5] = 0x0e; // present bit clear
    k.run();
    expect(k.log().map((e) => [e.vector, e.error])).to.deep.equal([[11, 6 * 8 + 3]]);
    // #DE (contributory) with entry 0 not present: #NP is contributory -> #DF with error 0.
    const k2 = buildKernel('xorl %ecx, %ecx\n divl %ecx');
    const idt2 = k2.cpu.getReg('idtr_base').lo;
    k2.cpu.mem.bytes[idt2 + 5] = 0x0e;
    k2.run();
    expect(k2.log().map((e) => [e.vector, e.error])).to.deep.equal([[8, 0]]);
  });

  it('no usable IDT: the exception ends in a triple fault exit with a diagnosis', () => {
    const cpu = makeCpu(assemble('ud2'));
    cpu.setReg('idtr_limit', u64(0));
    const e = cpu.run(100);
    expect(e.kind).to.equal('triple-fault');
    if (e.kind === 'triple-fault') expect(e.reason).to.match(/#DF.*#UD/);
    expect(cpu.run(100).kind).to.equal('triple-fault'); // stays in shutdown
  });

  it('an exception whose vector is in the exception bitmap exits instead of IDT delivery', () => {
    const k = buildKernel('x: ud2');
    k.cpu.intercepts.exceptionBitmap = 1 << 6;
    const e = k.cpu.run(1000);
    expect(e).to.deep.equal({ kind: 'exception', vector: 6, errorCode: undefined, dr6: 0, type: 'hw', instructionLength: 0 });
    expect(rip(k.cpu)).to.equal(k.labels.x);
    expect(k.log()).to.deep.equal([]);
  });

  it('INT3 in the exception bitmap exits as a software exception at the INT3 with its length', () => {
    const k = buildKernel('x: int3');
    k.cpu.intercepts.exceptionBitmap = 1 << 3;
    expect(k.cpu.run(1000)).to.deep.equal({ kind: 'exception', vector: 3, errorCode: undefined, dr6: 0, type: 'swexc', instructionLength: 1 });
    expect(rip(k.cpu)).to.equal(k.labels.x);
  });

  it('inject(): a hardware exception with error code and a software interrupt past its instruction', () => {
    const k = buildKernel('x: nop\n nop');
    k.cpu.setReg('rip', u64(k.labels.x));
    k.cpu.inject({ vector: 13, type: 'hw', errorCode: 0x1234 });
    k.run();
    expect(k.log().map((e) => [e.vector, e.error, e.rip])).to.deep.equal([[13, 0x1234, k.labels.x]]);
    const k2 = buildKernel('x: int $0x40\n y: nop');
    k2.cpu.setReg('rip', u64(k2.labels.x));
    k2.cpu.inject({ vector: 0x40, type: 'sw', instructionLength: 2 });
    k2.run();
    expect(k2.log().map((e) => [e.vector, e.rip])).to.deep.equal([[0x40, k2.labels.y]]); // the INT itself was skipped
  });

  it('requestInterrupt(): held while IF=0, delivered after the instruction following STI (the STI shadow, 6.8.3)', () => {
    const k = buildKernel('nop\n nop\n sti\n s1: nop\n s2: nop\n cli');
    k.cpu.requestInterrupt(0x30);
    expect(k.cpu.interruptPending).to.equal(true);
    k.run();
    expect(k.log().map((e) => [e.vector, e.rip])).to.deep.equal([[0x30, k.labels.s2]]);
    expect(k.cpu.interruptPending).to.equal(false);
  });

  it('the MOV SS shadow also blocks interrupts for one instruction', () => {
    const k = buildKernel('sti\n nop\n movw %ss, %ax\n cli\n sti\n movw %ax, %ss\n m1: nop\n m2: nop\n cli');
    k.cpu.requestInterrupt(0x31);
    // the interrupt arrives at the first boundary with IF=1 and no shadow: after the NOP
    // following STI, i.e. before MOV AX,SS
    k.run();
    expect(k.log()[0].vector).to.equal(0x31);
    const k2 = buildKernel('movw %ss, %ax\n sti\n nop\n movw %ax, %ss\n m1: nop\n m2: nop\n cli');
    k2.run(5); // jmp, mov ax,ss, sti, nop, mov ss,ax: the MOV-SS shadow is now in force
    k2.cpu.requestInterrupt(0x31);
    k2.run();
    expect(k2.log().map((e) => [e.vector, e.rip])).to.deep.equal([[0x31, k2.labels.m2]]);
  });

  it('HLT exits; a halted CPU runs nothing until an interrupt with IF=1 wakes it', () => {
    const k = buildKernel('sti\n h: hlt\n after: nop\n cli');
    expect(k.run()).to.deep.equal({ kind: 'hlt', length: 1 });
    k.cpu.completeEmulatedInstruction(1);
    k.cpu.halted = true;
    const before = k.cpu.instret;
    expect(k.cpu.run(1000).kind).to.equal('budget');
    expect(k.cpu.instret).to.equal(before);
    k.cpu.requestInterrupt(0x22);
    k.run();
    expect(k.cpu.halted).to.equal(false);
    expect(k.log().map((e) => [e.vector, e.rip])).to.deep.equal([[0x22, k.labels.after]]);
  });

  it('a trap gate leaves IF set; an interrupt gate clears it; both clear TF (6.12.1.2)', () => {
    const extra = 'probe: pushfq\n popq %r14\n iretq\n';
    const k = buildKernel('sti\n int $0x50\n movq %r14, %r13\n int $0x51\n cli', { extra, gates: { 0x50: 'probe', 0x51: 'probe' } });
    const idt = k.cpu.getReg('idtr_base').lo;
    k.cpu.mem.bytes[idt + 0x50 * 16 + 5] = 0x8f; // 64-bit trap gate
    expect(k.run().kind).to.equal('hlt');
    expect(k.cpu.getGpr(13).lo & 0x300).to.equal(0x200); // trap gate: IF kept, TF clear
    expect(k.cpu.getGpr(14).lo & 0x300).to.equal(0); // interrupt gate: IF cleared
  });
});

describe('cpu: NMI blocking (SDM 6.7.1)', () => {
  it('an NMI blocks NMIs until IRET: a second NMI requested in the handler waits for its IRETQ, then comes at once', () => {
    const k = buildKernel('b0: nop\n b1: hlt', { extra: 'nmi_h: incq %r12\n hlt\n movq %r12, %r15\n iretq\n', gates: { 2: 'nmi_h' } });
    k.cpu.requestNmi();
    k.run();
    expect(k.cpu.getGpr(12).lo).to.equal(1); // taken at once, before the first instruction
    const firstRet = k.cpu.mem.view.getUint32(k.cpu.getGpr(4).lo, true);
    k.cpu.completeEmulatedInstruction(1); // the HLT exit, as the hypervisor completes it
    k.cpu.requestNmi(); // blocked: the handler runs on to its IRETQ
    k.run();
    expect(k.cpu.getGpr(15).lo).to.equal(1);
    expect(k.cpu.getGpr(12).lo).to.equal(2);
    expect(k.cpu.mem.view.getUint32(k.cpu.getGpr(4).lo, true)).to.equal(firstRet); // right after the IRETQ
  });

  it('a pending NMI wakes HLT even with IF = 0', () => {
    const k = buildKernel('cli\n hlt\n after: hlt', { extra: 'nmi_h: movq $7, %r12\n iretq\n', gates: { 2: 'nmi_h' } });
    k.run();
    k.cpu.completeEmulatedInstruction(1);
    k.cpu.halted = true; // HLT not intercepted: the CPU waits in it
    k.cpu.requestNmi();
    k.run();
    expect(k.cpu.getGpr(12).lo).to.equal(7);
    expect(k.cpu.getReg('rip').lo).to.equal(k.labels.after);
  });
});

describe('cpu: system state and self-modifying code', () => {
  it('a store into already-executed code is seen by the next execution (decoded cache invalidated)', () => {
    const k = buildKernel(`movl $2, %ecx
      loop: p: movl $1, %eax
      leaq p+1(%rip), %rbx
      movl $7, (%rbx)
      decl %ecx
      jnz loop`);
    k.run();
    expect(k.cpu.getGpr(0).lo).to.equal(7);
  });

  it('a debugger write through GuestMemory.write drops decoded instructions', () => {
    const cpu = makeCpu(assemble('1: movl $1, %eax\n hlt'));
    expect(cpu.run(10).kind).to.equal('hlt');
    cpu.mem.write(0x1001, new Uint8Array([5, 0, 0, 0]));
    cpu.setReg('rip', u64(0x1000));
    cpu.run(10);
    expect(cpu.getGpr(0).lo).to.equal(5);
  });

  it('LIDT/SIDT, LGDT/SGDT, SWAPGS, MOV CR, RDTSC, FS/GS segment overrides', () => {
    // a CR3 load switches address spaces: reload the same tables with PWT set
    const k = buildKernel(`sidt buf(%rip)\n movq %cr3, %rax\n orq $8, %rax\n movq %rax, %cr3\n movq %cr3, %rbx
      swapgs\n rdtsc\n movw %gs:16, %si`);
    k.cpu.setReg('kernel_gs_base', u64(k.labels.buf));
    k.cpu.mem.view.setUint16(k.labels.buf + 16, 0xbeef, true);
    k.run();
    expect(k.cpu.getGpr(3)).to.deep.equal(k.cpu.getReg('cr3'));
    expect(k.cpu.getGpr(3).lo & 0xfff).to.equal(8);
    expect(k.cpu.getReg('gs_base').lo).to.equal(k.labels.buf);
    expect(k.cpu.getGpr(6).lo & 0xffff).to.equal(0xbeef);
    expect(k.cpu.mem.view.getUint16(k.labels.buf, true)).to.equal(4095);
  });

  it('IA32_TSC_AUX (reserved upper half refused) reaches ECX through RDTSCP and a register through RDPID (F3 0F C7 /7)', () => {
    const k = buildKernel('movq $-1, %rcx\n movq $-1, %rbx\n rdtscp\n .byte 0xf3, 0x0f, 0xc7, 0xfb'); // rdpid %rbx
    expect(k.cpu.writeMsr(0xc0000103, u64(0, 1))).to.equal(false);
    expect(k.cpu.writeMsr(0xc0000103, u64(0x1234))).to.equal(true);
    expect(k.cpu.readMsr(0xc0000103)).to.deep.equal(u64(0x1234));
    k.run();
    expect(k.log()).to.deep.equal([]);
    expect(k.cpu.getGpr(1)).to.deep.equal(u64(0x1234));
    expect(k.cpu.getGpr(3)).to.deep.equal(u64(0x1234));
    const out = new Uint32Array(4);
    emulateCpuid('vmx', 0x80000001, 0, 0, 1, out);
    expect(out[3] & (1 << 27)).to.not.equal(0); // RDTSCP
    emulateCpuid('svm', 7, 0, 0, 1, out);
    expect(out[2] & (1 << 22)).to.not.equal(0); // RDPID
  });

  it('RDMSR/WRMSR exit; readMsr/writeMsr implement EFER, FS/GS bases, DEBUGCTL (on the physical CPU) and #GP for others', () => {
    const k = buildKernel('rdmsr');
    expect(k.run()).to.deep.equal({ kind: 'rdmsr', length: 2 });
    expect(k.cpu.writeMsr(0x1d9, u64(2))).to.equal(true);
    expect(k.cpu.phys.debugctlLo).to.equal(2);
    expect(k.cpu.writeMsr(0xc0000100, u64(0, 0x8000))).to.equal(false); // non-canonical
    expect(k.cpu.writeMsr(0x12345, u64(0))).to.equal(false);
    expect(k.cpu.readMsr(0xc0000080)?.lo).to.equal(0x500);
  });

  it('a 64-bit imul/div/shift mix gives the same result as native code (sanity for the fast paths)', () => {
    const cpu = makeCpu(assemble(`movabsq $0x123456789abcdef1, %rax\n movq %rax, %rbx\n imulq %rbx, %rax\n shlq $13, %rax
      sarq $7, %rax\n shrq $3, %rbx\n xorl %edx, %edx\n movq $1000003, %rcx\n divq %rcx\n hlt`));
    cpu.run(100);
    const a = 0x123456789abcdef1n;
    let r = BigInt.asUintN(64, a * a);
    r = BigInt.asUintN(64, r << 13n);
    r = BigInt.asUintN(64, BigInt.asIntN(64, r) >> 7n);
    expect(BigInt(cpu.getGpr(0).hi) * 2n ** 32n + BigInt(cpu.getGpr(0).lo)).to.equal(r / 1000003n);
    expect(BigInt(cpu.getGpr(2).lo) + (BigInt(cpu.getGpr(2).hi) << 32n)).to.equal(r % 1000003n);
  });
});

describe('cpu: cross-modifying code between vCPUs', () => {
  it('a store by one CPU into code another CPU has decoded is seen by the other (shared code epoch)', () => {
    const a = makeCpu(assemble('movl $1, %eax\n hlt\n .fill 64, 1, 0x90\n movl $9, 0x1001\n hlt'));
    const b = new Cpu(a.mem, new PhysicalCpu(1));
    b.setReg('rip', u64(0x1000));
    b.setGpr(4, u64(0x80000));
    expect(b.run(10).kind).to.equal('hlt'); // B decodes and runs "mov $1, %eax"
    expect(b.getGpr(0).lo).to.equal(1);
    a.setReg('rip', u64(0x1000 + 6 + 64)); // A patches the immediate of B's instruction
    expect(a.run(10).kind).to.equal('hlt');
    b.setReg('rip', u64(0x1000));
    b.run(10);
    expect(b.getGpr(0).lo).to.equal(9);
  });
});
