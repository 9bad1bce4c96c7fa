// x87/SSE state: availability rules (CR0.EM/TS/MP, CR4.OSFXSR/OSXMMEXCPT/OSXSAVE), MXCSR,
// FXSAVE/FXRSTOR, XSAVE/XRSTOR/XGETBV/XSETBV (SDM Vol. 1 ch. 10-13, Vol. 2). The results of
// the SSE data instructions are checked against the real CPU by test/difftest.
import { expect } from 'chai';
import { buildKernel, LOG_EVENT } from './kernel';
import { emulateCpuid } from '../../vmm/hypervisor/guest-abi';

const SSE_ON = 'movq %cr4, %rax\n orq $0x600, %rax\n movq %rax, %cr4\n';
const XSAVE_ON = 'movq %cr4, %rax\n orq $0x40600, %rax\n movq %rax, %cr4\n';
/** A 64-byte aligned 1 KiB save area inside the code (RAM is writable). */
const AREA = 'jmp 1f\n .balign 64\n area: .fill 1024, 1, 0\n 1:\n';

const vectors = (k: ReturnType<typeof buildKernel>) => k.log().map((e) => [e.vector, e.error, e.rip]);

/** Handlers for #UD, #NM, #GP, #MF and #XM that log the event and resume at RIP = R15. */
const FIXUP_VECTORS = [6, 7, 13, 16, 19];
const FIXUP = `
${FIXUP_VECTORS.map((v) => `fix_${v}:\n${v === 13 ? '' : '  pushq $0\n'}  pushq $${v}\n  jmp fixup\n`).join('')}
fixup:
${LOG_EVENT}  movq %r15, 32(%rsp)
  popq %rbx
  popq %rax
  addq $16, %rsp
  iretq
`;
const GATES = Object.fromEntries(FIXUP_VECTORS.map((v) => [v, `fix_${v}`]));

/** A kernel whose faulting instructions are written `T(label) insn`: each resumes after itself. */
function kernel(body: string, memSize?: number): ReturnType<typeof buildKernel> {
  const src = body.replace(/T\((\w+)\)\s*([^\n]*)/g, (_m, l: string, insn: string) => `leaq 1f(%rip), %r15\n ${l}: ${insn}\n 1:`);
  return buildKernel(src, { extra: FIXUP, gates: GATES, memSize });
}

describe('cpu: x87/SSE state and its fault rules', () => {
  it('SSE instructions are #UD while CR4.OSFXSR = 0 or CR0.EM = 1, and #NM while CR0.TS = 1 (until CLTS)', () => {
    const k = kernel(`T(u1) movaps %xmm0, %xmm1
      ${SSE_ON}
      movq %cr0, %rax
      orq $4, %rax
      movq %rax, %cr0
      T(u2) addsd %xmm0, %xmm1
      andq $~4, %rax
      orq $8, %rax
      movq %rax, %cr0
      T(n1) pxor %xmm0, %xmm0
      clts
      ok: pxor %xmm0, %xmm0`);
    expect(k.run().kind).to.equal('hlt');
    expect(vectors(k)).to.deep.equal([[6, 0, k.labels.u1], [6, 0, k.labels.u2], [7, 0, k.labels.n1]]);
  });

  it('x87 control: FNINIT, FLDCW/FNSTCW, FNSTSW (memory and AX); #NM with CR0.EM or CR0.TS; FWAIT #NM only with TS and MP', () => {
    const k = kernel(`movw $0x27f, value(%rip)
      fldcw value(%rip)
      fnstcw value+2(%rip)
      fninit
      fnstcw value+4(%rip)
      movw $0x1234, %ax
      fnstsw %ax
      movw %ax, %bx
      movq %cr0, %rax
      andq $~2, %rax
      orq $8, %rax
      movq %rax, %cr0
      fwait
      orq $2, %rax
      movq %rax, %cr0
      T(w1) fwait
      T(n1) fninit
      clts
      movq %cr0, %rax
      orq $4, %rax
      movq %rax, %cr0
      T(n2) fnstcw value(%rip)`);
    expect(k.run().kind).to.equal('hlt');
    expect(vectors(k)).to.deep.equal([[7, 0, k.labels.w1], [7, 0, k.labels.n1], [7, 0, k.labels.n2]]);
    const dv = k.cpu.mem.view;
    expect(dv.getUint16(k.labels.value + 2, true)).to.equal(0x27f);
    expect(dv.getUint16(k.labels.value + 4, true)).to.equal(0x37f);
    expect(k.cpu.getGpr(3).lo & 0xffff).to.equal(0);
  });

  it('LDMXCSR with a reserved bit is #GP(0) and leaves MXCSR alone; STMXCSR stores it; the default is 0x1F80', () => {
    const k = kernel(`${SSE_ON}
      stmxcsr value(%rip)
      movl $0x7f80, value+4(%rip)
      ldmxcsr value+4(%rip)
      movl $0x10000, value+8(%rip)
      T(g) ldmxcsr value+8(%rip)`);
    expect(k.run().kind).to.equal('hlt');
    expect(vectors(k)).to.deep.equal([[13, 0, k.labels.g]]);
    expect(k.cpu.mem.view.getUint32(k.labels.value, true)).to.equal(0x1f80);
    expect(k.cpu.fpu.mxcsr).to.equal(0x7f80);
  });

  it('FXSAVE: 16-byte alignment #GP(0), the 64-bit layout; FXRSTOR restores it and #GPs on a reserved MXCSR bit without changing anything', () => {
    const k = kernel(`${SSE_ON}${AREA}
      movq $0x1122334455667788, %rax
      movq %rax, %xmm1
      pinsrw $7, %eax, %xmm1
      T(g1) fxsave area+8(%rip)
      fxsave area(%rip)
      pxor %xmm1, %xmm1
      fxrstor area(%rip)
      movq %xmm1, %rbx
      pxor %xmm1, %xmm1
      orl $0x10000, area+24(%rip)
      T(g2) fxrstor area(%rip)`);
    expect(k.run().kind).to.equal('hlt');
    expect(vectors(k)).to.deep.equal([[13, 0, k.labels.g1], [13, 0, k.labels.g2]]);
    const dv = k.cpu.mem.view, a = k.labels.area;
    expect(dv.getUint16(a, true)).to.equal(0x37f); // FCW
    expect(dv.getUint32(a + 28, true)).to.equal(0xffff); // MXCSR_MASK
    expect(dv.getBigUint64(a + 160 + 16, true)).to.equal(0x1122334455667788n); // XMM1 low
    expect(dv.getUint16(a + 160 + 16 + 14, true)).to.equal(0x7788); // XMM1 word 7
    expect(k.cpu.getGpr(3).lo).to.equal(0x55667788);
    expect(k.cpu.fpu.u32[4]).to.equal(0); // the faulting FXRSTOR left XMM1 as it was (zero)
    expect(k.cpu.fpu.mxcsr).to.equal(0x1f80);
  });

  it('XGETBV/XSETBV/XSAVE are #UD without CR4.OSXSAVE; XSETBV #GP(0) for ECX != 0, x87 off or unsupported bits', () => {
    const k = kernel(`${SSE_ON}
      xor %ecx, %ecx
      T(u1) xgetbv
      T(u2) xsave value(%rip)
      ${XSAVE_ON}
      xgetbv
      movq %rax, %r8
      xor %edx, %edx
      mov $3, %eax
      xsetbv
      xgetbv
      movq %rax, %r9
      mov $2, %eax
      T(g1) xsetbv
      mov $7, %eax
      T(g2) xsetbv
      mov $3, %eax
      mov $1, %edx
      T(g3) xsetbv
      xor %edx, %edx
      mov $1, %ecx
      T(g4) xsetbv
      T(g5) xgetbv`);
    expect(k.run().kind).to.equal('hlt');
    expect(vectors(k)).to.deep.equal([[6, 0, k.labels.u1], [6, 0, k.labels.u2], [13, 0, k.labels.g1], [13, 0, k.labels.g2],
      [13, 0, k.labels.g3], [13, 0, k.labels.g4], [13, 0, k.labels.g5]]);
    expect(k.cpu.getGpr(8).lo).to.equal(1); // XCR0 after reset: x87 only
    expect(k.cpu.getGpr(9).lo).to.equal(3);
    expect(k.cpu.fpu.xcr0).to.equal(3);
  });

  it('XSAVE: 64-byte alignment, XSTATE_BV set for the requested components only; XRSTOR initialises a component whose bit is clear and #GPs on a bad header', () => {
    const k = kernel(`${XSAVE_ON}${AREA}
      xor %ecx, %ecx
      xor %edx, %edx
      mov $3, %eax
      xsetbv
      movq $0xabcdef, %rbx
      movq %rbx, %xmm2
      mov $3, %eax
      T(g1) xsave area+16(%rip)
      mov $2, %eax
      xsave area(%rip)
      movq area+512(%rip), %r8
      mov $3, %eax
      xsave area(%rip)
      movq area+512(%rip), %r9
      movb $1, area+512(%rip)
      xrstor area(%rip)
      movq %xmm2, %r10
      movl $1, area+520(%rip)
      T(g2) xrstor area(%rip)
      movl $0, area+520(%rip)
      movb $4, area+512(%rip)
      T(g3) xrstor area(%rip)`);
    expect(k.run().kind).to.equal('hlt');
    expect(vectors(k)).to.deep.equal([[13, 0, k.labels.g1], [13, 0, k.labels.g2], [13, 0, k.labels.g3]]);
    expect(k.cpu.getGpr(8).lo).to.equal(2);
    expect(k.cpu.getGpr(9).lo).to.equal(3);
    expect(k.cpu.getGpr(10).lo).to.equal(0); // SSE state initialised: XMM2 = 0
    expect(k.cpu.mem.view.getUint32(k.labels.area + 160 + 32, true)).to.equal(0xabcdef);
  });

  it('movaps/movdqa need 16-byte alignment (#GP(0)), movups does not; a 16-byte store that crosses the end of RAM writes nothing', () => {
    const k = kernel(`${SSE_ON}
      pcmpeqd %xmm0, %xmm0
      movups %xmm0, buf+4(%rip)
      T(g1) movaps %xmm0, buf+4(%rip)
      T(g2) movdqa buf+8(%rip), %xmm1
      movq $0xffff8, %rbx
      movq $0x1234, (%rbx)
      s: movups %xmm0, (%rbx)`, 1 << 20);
    const e = k.run();
    expect(vectors(k)).to.deep.equal([[13, 0, k.labels.g1], [13, 0, k.labels.g2]]);
    expect(e.kind).to.not.equal('hlt'); // the store is outside RAM: a nested-page fault
    expect(k.cpu.mem.view.getUint32(k.labels.buf + 4, true)).to.equal(0xffffffff);
    expect(k.cpu.mem.view.getBigUint64(0xffff8, true)).to.equal(0x1234n); // the first half was not written
  });

  it('an unmasked SIMD exception is #XM with CR4.OSXMMEXCPT, #UD without; the destination is unchanged and the flag is set', () => {
    const k = kernel(`${SSE_ON}
      movl $0x1d80, value(%rip)
      ldmxcsr value(%rip)
      mov $1, %eax
      cvtsi2sd %eax, %xmm0
      pxor %xmm1, %xmm1
      T(x) divsd %xmm1, %xmm0
      movq %cr4, %rax
      andq $~0x400, %rax
      movq %rax, %cr4
      T(u) divsd %xmm1, %xmm0
      movq %xmm0, %rbx`);
    expect(k.run().kind).to.equal('hlt');
    expect(vectors(k)).to.deep.equal([[19, 0, k.labels.x], [6, 0, k.labels.u]]);
    expect(k.cpu.getGpr(3).hi).to.equal(0x3ff00000); // still 1.0
    expect(k.cpu.fpu.mxcsr & 4).to.equal(4);
  });

  it('CPUID reports FXSR, SSE, SSE2 and XSAVE but not the x87 FPU; OSXSAVE mirrors CR4; leaf 0DH describes x87|SSE', () => {
    const out = new Uint32Array(4);
    emulateCpuid('vmx', 1, 0, 0, 1, out, 0);
    expect(out[3] & 1).to.equal(0);
    expect(out[3] & (7 << 24)).to.equal(7 << 24);
    expect(out[2] & (3 << 26)).to.equal(1 << 26);
    emulateCpuid('vmx', 1, 0, 0, 1, out, 1 << 18);
    expect(out[2] & (3 << 26)).to.equal(3 << 26);
    emulateCpuid('svm', 0xd, 0, 0, 1, out, 0);
    expect([...out]).to.deep.equal([3, 576, 576, 0]);
    emulateCpuid('svm', 0xd, 1, 0, 1, out, 0);
    expect([...out]).to.deep.equal([0, 0, 0, 0]);
  });
});
