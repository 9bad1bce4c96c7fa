/**
 * Issue 10's stepi fast paths, driven by the real gdb against the real VM on both backends:
 * the step set-up kept between consecutive steps (run-control.ts), and stepping through code
 * the VM has decoded and cached before, while gdb writes over it (M) or puts its int3s in it
 * (Z0). Each result is compared with what the guest does without a debugger.
 */
import { expect } from 'chai';
import { BackendName } from '../../vmm/api/vm-api';
import { RegName } from '../../vmm/api/registers';
import { makeRealVm, RealVm } from './real-vm';
import { realVmGdb } from './real-vm-gdb';

const STATE: RegName[] = ['rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rbp', 'rsp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13',
  'r14', 'r15', 'rip', 'rflags'];

/** gdb's `$N = value` lines in order. */
function values(out: string): string[] {
  return [...out.matchAll(/^\$\d+ = (.*)$/gm)].map((m) => m[1]);
}

for (const backend of ['vmx', 'svm'] as BackendName[]) {
  describe(`stepi through the stub with stock gdb (${backend})`, function () {
    this.timeout(120000);
    const served = realVmGdb(backend, { timeoutMs: 90000 });
    const { serve, gdb } = served;

    it('stepi 1000 twice ends in the state of 2000 instructions run without a debugger', async () => {
      const t = await serve('workload-O2');
      const r = await gdb(t, ['stepi 1000', 'stepi 1000', 'disconnect']);
      expect(r.out).to.not.match(/SIGSEGV|cannot continue/);
      const ref = makeRealVm('workload-O2', { backend })!;
      for (let left = 2000; left > 0;) {
        const before = ref.vm.stats().instructions;
        const stop = ref.vm.run([0], left);
        left -= ref.vm.stats().instructions - before;
        expect(stop.kind === 'slice' || left === 0, JSON.stringify(stop)).to.equal(true);
      }
      expect(served.real.vm.stats().instructions).to.equal(2000);
      const state = (vm: RealVm['vm']) => STATE.map((n) => { const v = vm.getRegister(0, n); return `${n}=${v.hi.toString(16)}:${v.lo.toString(16)}`; });
      expect(state(served.real.vm)).to.deep.equal(state(ref.vm));
      expect(served.real.vm.getRegister(0, 'rflags').lo & 0x100, 'the stub\'s TF is not left in the guest').to.equal(0);
    });

    it('stepi, then continue: later watchpoint hits, and monitor dr between steps shows the guest\'s own state', async () => {
      const t = await serve('counter');
      const r = await gdb(t, ['stepi', 'stepi', 'monitor dr', 'stepi', 'watch counter', 'continue', 'continue', 'stepi', 'stepi',
        'delete', 'break update_globals', 'continue', 'p counter', 'disconnect']);
      expect(r.out).to.contain('guest only');
      expect(r.out).to.match(/Old value = 0\s+New value = 1/);
      expect(r.out).to.match(/Old value = 1\s+New value = 2/);
      expect(r.out).to.match(/Breakpoint 2, update_globals/);
      expect(values(r.out)).to.deep.equal(['2']);
      expect(served.real.vm.getCapability(0, 'rflags-tf')).to.equal(false);
      expect(served.real.vm.getCapability(0, 'intercept-db')).to.equal(false);
    });

    it('stepi runs the bytes gdb just wrote over code the VM has run and cached (M)', async () => {
      const t = await serve('counter');
      // update_globals: 55 push %rbp; 48 89 e5 mov %rsp,%rbp; 48 83 ec 08 sub $8,%rsp
      const r = await gdb(t, ['break *update_globals', 'continue', 'continue', 'continue', 'delete',
        'stepi', 'p (long)$pc - (long)update_globals',
        // a NOP over the first byte of the 3-byte mov it ran three times: the step runs the NOP
        'set *(unsigned char*)$pc = 0x90', 'stepi', 'p (long)$pc - (long)update_globals',
        // 89 e5 (mov %esp,%ebp: the same value here, the stack is below 4 GiB)
        'stepi', 'p (long)$pc - (long)update_globals', 'p $rbp == $rsp + 0',
        // and back: the original byte, run again on the next iteration
        'set *(unsigned char*)((char*)update_globals + 1) = 0x48', 'break *((char*)update_globals + 1)', 'continue',
        'delete', 'stepi', 'p (long)$pc - (long)update_globals', 'p counter', 'disconnect']);
      expect(values(r.out)).to.deep.equal(['1', '2', '4', '1', '4', '3']);
    });

    it('stepi onto and off gdb\'s int3s in cached code (Z0/z0 around every step), then continue to one', async () => {
      const t = await serve('counter');
      // 1000ad: lock addq $1,counter (9 bytes); 1000b6: mov -0x8(%rbp),%rax (4 bytes)
      const r = await gdb(t, ['break *update_globals', 'continue', 'continue', 'delete',
        // stepping lands on the int3's address and leaves it by the instruction under it
        'break *((char*)update_globals + 21)', 'stepi 4', 'p (long)$pc - (long)update_globals', 'p counter',
        'stepi', 'p (long)$pc - (long)update_globals', 'p counter',
        'stepi', 'p (long)$pc - (long)update_globals', 'x/2xb (char*)update_globals + 21',
        'continue', 'p (long)$pc - (long)update_globals', 'p counter', 'disconnect']);
      expect(r.out).to.not.match(/SIGTRAP|SIGSEGV/);
      expect(values(r.out)).to.deep.equal(['12', '1', '21', '2', '25', '21', '3']);
      expect(r.out).to.match(/0x[0-9a-f]+ <update_globals\+21>:\s+0x48\s+0x8b/);
      expect(r.out).to.match(/Breakpoint 2, update_globals \(i=2\)[^]*Breakpoint 2, update_globals \(i=3\)/);
    });

    it('two vCPUs: stepping one thread, then the other, moves only the stepped one', async () => {
      const t = await serve('counter', { vcpus: 2 });
      const r = await gdb(t, ['break *update_globals', 'continue', 'set scheduler-locking on',
        'thread 1', 'continue', 'thread 2', 'continue', 'delete',
        'thread 1', 'p (long)$pc - (long)update_globals', 'stepi', 'p (long)$pc - (long)update_globals',
        'thread 2', 'p (long)$pc - (long)update_globals', 'stepi', 'stepi', 'p (long)$pc - (long)update_globals',
        'thread 1', 'p (long)$pc - (long)update_globals', 'stepi', 'p (long)$pc - (long)update_globals',
        'thread 2', 'p (long)$pc - (long)update_globals', 'disconnect']);
      expect(values(r.out)).to.deep.equal(['0', '1', '0', '4', '1', '4', '4']);
    });
  });
}
