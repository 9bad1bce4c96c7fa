// STAC/CLAC (SDM Vol. 2: set/clear RFLAGS.AC, #UD at CPL > 0), the SMEP/SMAP bits of CPUID
// leaf 7 that now report what the MMU implements, and CR0.ET hard-wired to 1 (Vol. 3 2.5:
// "reserved ... hardcoded to 1" since the P6 family), as MOV to CR0 and LMSW leave it.
import { expect } from 'chai';
import { buildKernel } from './kernel';
import { emulateCpuid } from '../../vmm/hypervisor/guest-abi';
import { setup, toUser } from './user-mode';

const AC = 1 << 18;

describe('cpu: STAC/CLAC, SMEP/SMAP in CPUID, CR0.ET', () => {
  it('CPUID.(7,0):EBX reports SMEP (bit 7) and SMAP (bit 20) on both backends', () => {
    for (const backend of ['vmx', 'svm'] as const) {
      const out = new Uint32Array(4);
      emulateCpuid(backend, 7, 0, 0, 1, out);
      expect(out[1] & ((1 << 7) | (1 << 20)), backend).to.equal((1 << 7) | (1 << 20));
    }
  });

  it('STAC sets RFLAGS.AC and CLAC clears it at CPL 0', () => {
    const k = buildKernel('stac\n pushfq\n popq %rbx\n clac\n pushfq\n popq %rcx');
    expect(k.run().kind).to.equal('hlt');
    expect(k.log()).to.deep.equal([]);
    expect(k.cpu.getGpr(3).lo & AC).to.equal(AC);
    expect(k.cpu.getGpr(1).lo & AC).to.equal(0);
  });

  it('STAC and CLAC are #UD at CPL 3 and leave AC alone', () => {
    for (const insn of ['stac', 'clac']) {
      const k = buildKernel(`${toUser('user', AC | 2)}\n user: x: ${insn}`);
      setup(k);
      k.run();
      expect(k.log().map((e) => [e.vector, e.rip]), insn).to.deep.equal([[6, k.labels.x]]);
      expect(k.cpu.getReg('rflags').lo & AC).to.equal(AC);
    }
  });

  it('CR0.ET reads 1 after a MOV to CR0 that clears it, and after LMSW', () => {
    const k = buildKernel('movq %cr0, %rax\n btrq $4, %rax\n movq %rax, %cr0\n movq %cr0, %rbx\n lmsw %ax\n movq %cr0, %rcx');
    expect(k.run().kind).to.equal('hlt');
    expect(k.cpu.getGpr(3).lo & 0x10).to.equal(0x10);
    expect(k.cpu.getGpr(1).lo & 0x10).to.equal(0x10);
  });
});
