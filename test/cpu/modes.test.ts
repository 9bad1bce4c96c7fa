// Modes and privilege (SDM Vol. 3 ch. 3, 5, 6, 7; Vol. 2 JMP/CALL/RET/IRET/SYSCALL/SYSRET/LTR):
// segment loads with their checks, far transfers, CPL 3 through IRETQ and SYSRET, the TSS
// stacks (RSP0, IST), privileged instructions, IOPL and the I/O permission bitmap.
import { expect } from 'chai';
import { buildKernel, Kernel } from './kernel';
import { u64 } from '../../vmm/u64';

import { GDT, TSS, RSP0, IST1, USTACK, GDT_ENTRIES, KCODE, UCODE32, UDATA, UCODE, TSS_SEL, setup, toUser, frame, cs } from './user-mode';

describe('cpu: segments and far transfers (SDM 3, 5; Vol. 2 JMP/CALL/RET)', () => {
  it('the reload of CS after LGDT with push $8; lea 1f(%rip),%rax; push %rax; lretq works (far RET, same level)', () => {
    const k = buildKernel(`lgdt gdtr(%rip)\n pushq $8\n leaq 1f(%rip), %rax\n pushq %rax\n movq %rsp, %r12\n lretq
      1: movq %rsp, %r13\n movw $0x10, %ax\n movw %ax, %ds\n movw %ax, %ss`, {
      extra: `.balign 8\n gdt: .quad 0, 0x00af9b000000ffff, 0x00cf93000000ffff\n gdtr: .word 23\n .quad gdt\n`,
    });
    expect(k.run().kind).to.equal('hlt');
    expect(k.log()).to.deep.equal([]);
    expect(k.cpu.getGpr(13).lo - k.cpu.getGpr(12).lo).to.equal(16);
    expect(cs(k)).to.equal(8);
    expect(k.cpu.getReg('gdtr_base').lo).to.equal(k.labels.gdt);
  });

  it('lret without REX.W pops a 4-byte RIP and a 4-byte CS slot; far JMP and far CALL through m16:64', () => {
    const k = buildKernel(`pushq $0\n movl $8, 4(%rsp)\n leaq l1(%rip), %rax\n movl %eax, (%rsp)\n lret
      l1: leaq l2(%rip), %rax\n movq %rax, buf(%rip)\n movw $8, buf+8(%rip)\n rex.w ljmp *buf(%rip)
      l2: leaq l3(%rip), %rax\n movq %rax, buf(%rip)\n movq %rsp, %r12\n rex.w lcall *buf(%rip)
      l4: jmp l5
      l3: movq %rsp, %r13\n movq (%rsp), %r14\n movq 8(%rsp), %r15\n lretq
      l5: nop`);
    setup(k);
    expect(k.run().kind).to.equal('hlt');
    expect(k.log()).to.deep.equal([]);
    expect(k.cpu.getGpr(12).lo - k.cpu.getGpr(13).lo).to.equal(16);
    expect(k.cpu.getGpr(14).lo).to.equal(k.labels.l4);
    expect(k.cpu.getGpr(15).lo).to.equal(8);
  });

  it('MOV Sreg checks: beyond the GDT limit #GP(sel), not writable for SS #GP(sel), not present #NP(sel), RPL != CPL for SS #GP(sel), system descriptor #GP(sel)', () => {
    const cases: [string, number, number][] = [
      ['movw $0x100, %ax\n x: movw %ax, %ds', 13, 0x100],
      ['movw $0x48, %ax\n x: movw %ax, %ss', 13, 0x48],
      ['movw $0x40, %ax\n x: movw %ax, %es', 11, 0x40],
      ['movw $0x13, %ax\n x: movw %ax, %ss', 13, 0x10],
      ['movw $0x30, %ax\n x: movw %ax, %fs', 13, 0x30],
      ['movw $0x08, %ax\n x: movw %ax, %ss', 13, 0x08],
    ];
    for (const [body, vector, error] of cases) {
      const k = buildKernel(body);
      setup(k);
      k.run();
      expect(k.log().map((e) => [e.vector, e.error, e.rip]), body).to.deep.equal([[vector, error, k.labels.x]]);
      expect(k.cpu.getReg('ss').lo, body).to.equal(0x10);
    }
  });

  it('MOV SS null is allowed at CPL 0 in 64-bit mode; a null DS loads as unusable; POP DS of a bad selector leaves RSP unchanged', () => {
    const k = buildKernel('xorl %eax, %eax\n movw %ax, %ss\n movw %ax, %ds\n movq %rsp, %r12\n pushq $0x40\n x: popq %fs');
    setup(k);
    k.run();
    expect(k.log().map((e) => [e.vector, e.error, e.rip])).to.deep.equal([[11, 0x40, k.labels.x]]);
    expect(k.cpu.getReg('ds').lo).to.equal(0);
    const f = frame(k);
    expect(f.rsp).to.equal(k.cpu.getGpr(12).lo - 8);
  });

  it('far JMP to a DPL 3 code segment from CPL 0 is #GP(sel); to a null selector #GP(0)', () => {
    const k = buildKernel(`leaq 1f(%rip), %rax\n movq %rax, buf(%rip)\n movw $${UCODE}, buf+8(%rip)\n x: rex.w ljmp *buf(%rip)\n 1: nop`);
    setup(k);
    k.run();
    expect(k.log().map((e) => [e.vector, e.error, e.rip])).to.deep.equal([[13, UCODE & ~3, k.labels.x]]);
    const k2 = buildKernel('movw $0, buf+8(%rip)\n x: rex.w ljmp *buf(%rip)');
    setup(k2);
    k2.run();
    expect(k2.log().map((e) => [e.vector, e.error])).to.deep.equal([[13, 0]]);
  });
});

describe('cpu: CPL 3, the TSS stacks and IRETQ (SDM 5.9, 6.12, 6.14, 7.7)', () => {
  it('IRETQ to CPL 3; a privileged instruction there is #GP(0), delivered on TSS.RSP0 with the user SS:RSP and CS in the frame', () => {
    const k = buildKernel(`${toUser('user')}
      user: movq $1, %rbx\n x: hlt`);
    setup(k);
    expect(k.run().kind).to.equal('hlt'); // the #GP handler's HLT, at CPL 0
    const f = frame(k);
    expect([f.vector, f.error, f.rip, f.cs, f.rsp, f.ss]).to.deep.equal([13, 0, k.labels.x, UCODE, USTACK, UDATA]);
    expect(k.cpu.getGpr(4).lo).to.equal(RSP0 - 72);
    expect(cs(k)).to.equal(KCODE);
    expect(k.cpu.getReg('ss').lo).to.equal(0); // a null SS with RPL 0
  });

  for (const [name, insn] of [
    ['MOV to CR3', 'movq %rax, %cr3'], ['MOV from CR0', 'movq %cr0, %rax'], ['MOV to DR7', 'movq %rax, %dr7'],
    ['WRMSR', 'wrmsr'], ['RDMSR', 'rdmsr'], ['LGDT', 'lgdt (%rsp)'], ['LIDT', 'lidt (%rsp)'], ['LTR', 'ltr %ax'],
    ['LLDT', 'lldt %ax'], ['CLTS', 'clts'], ['SWAPGS', 'swapgs'], ['CLI (IOPL 0)', 'cli'], ['STI (IOPL 0)', 'sti'], ['WBINVD', 'wbinvd'], ['INVD', 'invd'],
  ] as const) {
    it(`${name} at CPL 3 is #GP(0) (before any VM exit)`, () => {
      const k = buildKernel(`${toUser('user')}\n user: x: ${insn}\n nop`);
      setup(k);
      expect(k.run().kind).to.equal('hlt');
      expect(k.log().map((e) => [e.vector, e.error, e.rip])).to.deep.equal([[13, 0, k.labels.x]]);
    });
  }

  it('CLI/STI at CPL 3 with IOPL 3 work; POPF at CPL 3 changes neither IOPL nor (with IOPL 0) IF', () => {
    const k = buildKernel(`${toUser('user', 0x3002)}
      user: cli\n sti\n cli\n pushq $0x202\n popfq\n pushfq\n popq %r12\n x: hlt`);
    setup(k);
    k.run();
    expect(k.log().map((e) => [e.vector, e.rip])).to.deep.equal([[13, k.labels.x]]);
    expect(k.cpu.getGpr(12).lo & 0x3200).to.equal(0x3200); // IOPL kept at 3; IF loaded (CPL <= IOPL)
    const k2 = buildKernel(`${toUser('user')}
      user: pushq $0x3202\n popfq\n pushfq\n popq %r12\n x: hlt`);
    setup(k2);
    k2.run();
    expect(k2.cpu.getGpr(12).lo & 0x3200).to.equal(0); // IOPL 0 kept, IF 0 kept (CPL > IOPL)
  });

  it('IN/OUT at CPL 3: allowed by a 0 bit in the TSS I/O bitmap (a VM exit), #GP(0) for a set bit, for a port beyond the bitmap, and without a bitmap', () => {
    const k = buildKernel(`${toUser('user')}
      user: outb %al, $0x80\n x: outb %al, $0x81`);
    setup(k);
    const e = k.run();
    expect(k.log().map((l) => [l.vector, l.error, l.rip])).to.deep.equal([[13, 0, k.labels.x]]);
    expect(e.kind).to.equal('hlt');
    const k2 = buildKernel(`${toUser('user')}
      user: x: inw $0x7f, %ax`); // two ports: 0x7f denied
    setup(k2);
    k2.run();
    expect(k2.log().map((l) => [l.vector, l.rip])).to.deep.equal([[13, k2.labels.x]]);
    const k3 = buildKernel(`${toUser('user')}
      user: x: outb %al, $0x80`);
    setup(k3, { ioBitmap: false });
    k3.run();
    expect(k3.log().map((l) => [l.vector, l.rip])).to.deep.equal([[13, k3.labels.x]]);
  });

  it('INT n from CPL 3: a DPL 0 gate is #GP(vector*8+2); a DPL 3 gate enters CPL 0 on RSP0 and IRETQ returns to CPL 3', () => {
    const k = buildKernel(`${toUser('user')}
      user: int $0x40\n after: movq %rsp, %r12\n x: int $0x41`);
    setup(k);
    const idt = k.cpu.getReg('idtr_base').lo;
    k.cpu.mem.bytes[idt + 0x40 * 16 + 5] = 0xee; // DPL 3 interrupt gate
    k.run();
    expect(k.log().map((e) => [e.vector, e.error, e.rip])).to.deep.equal([[0x40, 0, k.labels.after], [13, 0x41 * 8 + 2, k.labels.x]]); // a fault: RIP at the INT
    expect(k.cpu.getGpr(12).lo).to.equal(USTACK);
  });

  it('a gate with IST 1 switches to TSS.IST1 at CPL 0 too (SDM 6.14.5)', () => {
    const k = buildKernel(`movw $${TSS_SEL}, %ax\n ltr %ax\n movq %rsp, %r12\n x: ud2`);
    setup(k);
    const idt = k.cpu.getReg('idtr_base').lo;
    k.cpu.mem.bytes[idt + 6 * 16 + 4] = 1; // IST1 for #UD
    k.run();
    const f = frame(k);
    expect([f.vector, f.rip, f.cs, f.rsp]).to.deep.equal([6, k.labels.x, KCODE, k.cpu.getGpr(12).lo]);
    expect(k.cpu.getGpr(4).lo).to.equal(IST1 - 72);
  });

  it('an event that needs RSP0 with no TSS loaded is #TS, whose delivery fails the same way: #DF, then a triple fault', () => {
    const k = buildKernel(`pushq $${UDATA}\n pushq $${USTACK}\n pushq $2\n pushq $${UCODE}\n leaq user(%rip), %rax\n pushq %rax\n iretq
      user: ud2`);
    setup(k);
    const e = k.run();
    expect(e.kind).to.equal('triple-fault');
  });

  it('far RET to an outer level (lretq to CPL 3 with SS:RSP); DS with DPL 0 becomes unusable', () => {
    const k = buildKernel(`movw $0x10, %ax\n movw %ax, %ds\n movw $${TSS_SEL}, %ax\n ltr %ax
      pushq $${UDATA}\n pushq $${USTACK}\n pushq $${UCODE}\n leaq user(%rip), %rax\n pushq %rax\n lretq
      user: movq %rsp, %r12\n movw %ds, %r13w\n x: hlt`);
    setup(k);
    k.run();
    expect(k.log().map((e) => [e.vector, e.rip])).to.deep.equal([[13, k.labels.x]]);
    expect(k.cpu.getGpr(12).lo).to.equal(USTACK);
    expect(k.cpu.getGpr(13).lo & 0xffff).to.equal(0);
  });

  it('IRETQ to a 32-bit code segment at CPL 3 enters compatibility mode (codeMode 1)', () => {
    const k = buildKernel(`movw $${TSS_SEL}, %ax\n ltr %ax
      pushq $${UDATA}\n pushq $${USTACK}\n pushq $2\n pushq $${UCODE32}\n leaq user(%rip), %rax\n pushq %rax\n iretq
      user: hlt`);
    setup(k);
    k.run();
    expect(k.log().map((e) => [e.vector, e.rip])).to.deep.equal([[13, k.labels.user]]);
    const f = frame(k);
    expect(f.cs).to.equal(UCODE32);
    expect(k.cpu.codeMode).to.equal(0); // back in 64-bit mode in the handler
  });

  it('LTR marks the TSS busy (a second LTR is #GP(sel)); STR reads TR', () => {
    const k = buildKernel(`movw $${TSS_SEL}, %ax\n ltr %ax\n str %r12\n x: ltr %ax`);
    setup(k);
    k.run();
    expect(k.log().map((e) => [e.vector, e.error, e.rip])).to.deep.equal([[13, TSS_SEL, k.labels.x]]);
    expect(k.cpu.getGpr(12).lo).to.equal(TSS_SEL);
    expect((k.cpu.mem.view.getUint32(GDT + 0x34, true) >>> 8) & 0xf).to.equal(0xb);
  });

  it('SGDT/SIDT/SLDT/STR at CPL 3 work without UMIP and are #GP(0) with CR4.UMIP', () => {
    const k = buildKernel(`${toUser('user')}\n user: sgdt -16(%rsp)\n str %ax\n x: hlt`);
    setup(k);
    k.run();
    expect(k.log().map((e) => [e.vector, e.rip])).to.deep.equal([[13, k.labels.x]]);
    const k2 = buildKernel(`${toUser('user')}\n user: x: sidt -16(%rsp)`);
    setup(k2);
    k2.cpu.setReg('cr4', u64(0x20 | 0x800));
    k2.run();
    expect(k2.log().map((e) => [e.vector, e.error, e.rip])).to.deep.equal([[13, 0, k2.labels.x]]);
  });

  it('SMSW stores CR0: 16 bits to memory, the whole CR0 to r32 (66h: r16); #GP(0) at CPL 3 with CR4.UMIP', () => {
    const k = buildKernel('movq $-1, %rax\n movq $-1, %rbx\n movq $-1, %rcx\n smsw %eax\n smsw %bx\n movw $0x5555, -16(%rsp)\n smsw -16(%rsp)\n movzwl -16(%rsp), %ecx');
    k.run();
    const cr0 = k.cpu.getReg('cr0').lo;
    expect(k.cpu.getGpr(0)).to.deep.equal({ lo: cr0 >>> 0, hi: 0 });
    expect(k.cpu.getGpr(3)).to.deep.equal({ lo: (0xffff0000 | (cr0 & 0xffff)) >>> 0, hi: 0xffffffff });
    expect(k.cpu.getGpr(1).lo).to.equal(cr0 & 0xffff);
    const k2 = buildKernel(`${toUser('user')}\n user: smsw %ax\n x: smsw %ax`);
    setup(k2);
    k2.run();
    expect(k2.log().map((e) => [e.vector, e.rip])).to.deep.equal([[13, k2.labels.x + 4]]); // the HLT after: no UMIP, no #GP
    const k3 = buildKernel(`${toUser('user')}\n user: x: smsw %ax`);
    setup(k3);
    k3.cpu.setReg('cr4', u64(0x20 | 0x800));
    k3.run();
    expect(k3.log().map((e) => [e.vector, e.error, e.rip])).to.deep.equal([[13, 0, k3.labels.x]]);
  });
});

describe('cpu: SYSCALL/SYSRET (SDM Vol. 2, AMD APM 6.1.1)', () => {
  function sysKernel(userBody: string, lstarBody: string): Kernel {
    const k = buildKernel(`${toUser('user')}\n user: ${userBody}`, { extra: `lstar: ${lstarBody}\n` });
    setup(k);
    k.cpu.writeMsr(0xc0000080, u64(0x501)); // SCE
    k.cpu.writeMsr(0xc0000081, u64(0, (0x18 << 16) | 0x08)); // STAR: SYSRET base 0x18, SYSCALL CS 0x08
    k.cpu.writeMsr(0xc0000082, u64(k.labels.lstar));
    k.cpu.writeMsr(0xc0000084, u64(0x700)); // FMASK: TF IF DF
    return k;
  }

  it('SYSCALL saves RIP in RCX and RFLAGS in R11, masks RFLAGS, enters CPL 0 at LSTAR; SYSRETQ returns to CPL 3', () => {
    const k = sysKernel('pushq $0x402\n popfq\n s1: syscall\n after: movq %rcx, %r12\n x: hlt',
      'movq %rcx, %r13\n movq %r11, %r14\n pushfq\n popq %r15\n movw %cs, %r10w\n sysretq');
    k.run();
    expect(k.log().map((e) => [e.vector, e.rip])).to.deep.equal([[13, k.labels.x]]);
    expect(k.cpu.getGpr(13).lo).to.equal(k.labels.after);
    expect(k.cpu.getGpr(14).lo & 0x402).to.equal(0x402);
    expect(k.cpu.getGpr(15).lo & 0x700).to.equal(0);
    expect(k.cpu.getGpr(10).lo & 0xffff).to.equal(0x08);
    expect(frame(k).cs).to.equal(0x2b);
    expect(frame(k).rflags & 0x400).to.equal(0x400); // DF back from R11
  });

  it('SYSCALL with EFER.SCE = 0 is #UD; SYSRET at CPL 3 is #GP(0); SYSRET to a non-canonical RCX is #GP(0) at CPL 0', () => {
    const k = sysKernel('x: sysretq', 'hlt');
    k.run();
    expect(k.log().map((e) => [e.vector, e.error, e.rip])).to.deep.equal([[13, 0, k.labels.x]]);
    const k2 = sysKernel('x: syscall', 'hlt');
    k2.cpu.writeMsr(0xc0000080, u64(0x500));
    k2.run();
    expect(k2.log().map((e) => [e.vector, e.rip])).to.deep.equal([[6, k2.labels.x]]);
    const k3 = sysKernel('syscall', 'movabsq $0x0000800000000000, %rcx\n y: sysretq');
    k3.run();
    expect(k3.log().map((e) => [e.vector, e.rip])).to.deep.equal([[13, k3.labels.y]]);
    expect(frame(k3).cs).to.equal(KCODE);
  });

  it('TF across SYSCALL: no single-step #DB after SYSCALL when FMASK clears TF (the trap follows TF at its end)', () => {
    const k = sysKernel('pushq $0x102\n popfq\n nop\n s: syscall', 'l0: nop\n hlt');
    k.run();
    const log = k.log();
    expect(log.map((e) => [e.vector, e.rip])).to.deep.equal([[1, k.labels.s]]);
    expect(k.cpu.getReg('rip').lo).to.be.within(k.labels.l0, k.labels.l0 + 2); // stopped in the HLT
  });

  it('TF across SYSRET: R11.TF = 1 gives a single-step #DB right after SYSRET, before the first user instruction', () => {
    const k = sysKernel('syscall', 'leaq c(%rip), %rcx\n movq $0x102, %r11\n sysretl\n c: nop\n hlt');
    k.run();
    expect(k.log().map((e) => [e.vector, e.rip])[0]).to.deep.equal([1, k.labels.c]);
    expect(frame(k).cs).to.equal(UCODE32);
    expect(k.log()[0].dr6 & 0x4000).to.equal(0x4000);
  });

  it('SYSCALL from compatibility mode enters 64-bit CPL 0 at CSTAR with RCX = the next EIP', () => {
    const k = sysKernel('syscall', 'leaq c(%rip), %rcx\n sysretl\n c: .code32\n syscall\n c2: .code64\n hlt\n cstar: movq %rcx, %r12\n movw %cs, %r13w\n hlt');
    k.cpu.writeMsr(0xc0000083, u64(k.labels.cstar));
    k.run();
    expect(k.log()).to.deep.equal([]);
    expect(k.cpu.getGpr(12).lo).to.equal(k.labels.c2);
    expect(k.cpu.getGpr(13).lo & 0xffff).to.equal(KCODE);
  });

  it('TF across IRETQ to CPL 3: the #DB follows the first user instruction (TF from the image), not the IRETQ', () => {
    const k = buildKernel(`${toUser('user', 0x102)}\n user: nop\n u1: nop\n hlt`);
    setup(k);
    k.run();
    expect(k.log().map((e) => [e.vector, e.rip]).slice(0, 2)).to.deep.equal([[1, k.labels.u1], [1, k.labels.u1 + 1]]);
  });

  it('SYSRET (32-bit) returns to compatibility mode with CS = STAR[63:48] | 3', () => {
    const k = sysKernel('syscall', 'leaq c(%rip), %rcx\n sysretl\n c: hlt');
    k.run();
    expect(frame(k).cs).to.equal(UCODE32);
    expect(frame(k).vector).to.equal(13);
  });

  it('SYSCALL in compatibility mode enters CPL 0 at CSTAR (as AMD processors do) with the return EIP in RCX', () => {
    const k = sysKernel('syscall', 'leaq c(%rip), %rcx\n sysretl\n .code32\n c: syscall\n after32: nop\n .code64\n cstar: movq %rcx, %r13\n movw %cs, %r10w\n hlt');
    k.cpu.writeMsr(0xc0000083, u64(k.labels.cstar));
    expect(k.run().kind).to.equal('hlt');
    expect(k.cpu.getGpr(13).lo).to.equal(k.labels.after32);
    expect(k.cpu.getGpr(10).lo & 0xffff).to.equal(0x08);
    expect(k.cpu.codeMode).to.equal(0);
    expect(k.log()).to.deep.equal([]);
  });
});

describe('cpu: long-mode control (SDM 9.8.5, MOV CR, WRMSR EFER)', () => {
  it('clearing CR0.PG in 64-bit mode is #GP(0); clearing CR4.PAE with EFER.LMA is #GP(0); EFER.LME cannot change with PG on; LMA is read-only', () => {
    const k = buildKernel('movq %cr0, %rax\n btrq $31, %rax\n x: movq %rax, %cr0');
    k.run();
    expect(k.log().map((e) => [e.vector, e.rip])).to.deep.equal([[13, k.labels.x]]);
    const k2 = buildKernel('movq %cr4, %rax\n andq $~0x20, %rax\n x: movq %rax, %cr4');
    k2.run();
    expect(k2.log().map((e) => [e.vector, e.rip])).to.deep.equal([[13, k2.labels.x]]);
    expect(k.cpu.writeMsr(0xc0000080, u64(0x400))).to.equal(false); // LME off with PG on
    expect(k.cpu.writeMsr(0xc0000080, u64(0x101))).to.equal(true); // LMA write ignored
    expect(k.cpu.readMsr(0xc0000080)?.lo).to.equal(0x501);
  });
});
