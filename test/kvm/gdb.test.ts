/** A real gdb on `serve --backend kvm`: hbreak, stepi, p $dr7, watch (what the host does), Ctrl-C. */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runGdb } from '../stub/gdb-runner';
import { BIN, asmGuest, guestPath, requireKvm } from './kvm-env';

const serve = (elf: string): string => `| node ${BIN} serve ${elf} --backend kvm --gdb stdio`;

describe('kvm backend: stock gdb on serve --backend kvm', function () {
  before(function () { requireKvm(this); });

  it('hbreak stops in update_globals; stepi steps one instruction; p $dr7 is the guest\'s 0x400', async () => {
    const elf = guestPath('counter');
    const r = await runGdb(serve(elf), [
      `file ${elf}`, 'hbreak update_globals', 'continue', 'p/x $pc', 'stepi', 'p/x $pc', 'stepi', 'p/x $pc', 'p/x $dr7',
      'monitor dr', 'delete', 'continue',
    ]);
    expect(r.out).to.match(/Breakpoint 1, update_globals \(i=1\)/);
    const pcs = [...r.out.matchAll(/^\$\d+ = (0x[0-9a-f]+)$/gm)].map((m) => m[1]);
    expect(pcs).to.have.length(4);
    const [bp, s1, s2, dr7] = pcs.map((x) => parseInt(x, 16));
    expect(s1).to.be.greaterThan(bp);
    expect(s2).to.be.greaterThan(s1);
    expect(s2 - bp).to.be.lessThan(32);
    expect(dr7).to.equal(0x400);
    expect(r.out).to.match(/guest view: .*dr7=0x400/).and.match(/KVM_SET_GUEST_DEBUG/);
    expect(r.out).to.match(/exited normally/);
  });

  it('watch counter: gdb reports what the host does (a hit with old/new values, or the guest running to its end)', async () => {
    const elf = guestPath('counter');
    const r = await runGdb(serve(elf), [`file ${elf}`, 'set remote hardware-watchpoint-limit 4', 'watch counter', 'continue', 'continue']);
    expect(r.out).to.match(/Hardware watchpoint 1: counter/);
    const hit = /Old value = 0\s+New value = 1/.test(r.out);
    const ranThrough = /exited normally/.test(r.out);
    expect(hit || ranThrough, r.out).to.equal(true);
    console.log(`      [kvm] watch counter on this host: ${hit ? 'the watchpoint fired (old 0, new 1)' : 'the watchpoint never fired: the guest ran to its end (the host misses data breakpoints)'}`);
  });

  it('Ctrl-C stops a spinning kvm guest with SIGINT', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmm-kvm-gdb-'));
    try {
      const elf = path.join(dir, 'spin.elf');
      fs.writeFileSync(elf, asmGuest('spin', 'spin:\n  incq 0x200000\n  jmp spin').elf);
      const r = await runGdb(serve(elf), [`file ${elf}`, 'continue', 'p/x $pc', 'x/gx 0x200000'], { interruptAfterMs: 3000 });
      expect(r.out).to.match(/Program received signal SIGINT/);
      const count = /0x200000:\s+(0x[0-9a-f]+)/.exec(r.out);
      expect(count, r.out).to.not.equal(null);
      expect(parseInt(count![1], 16)).to.be.greaterThan(0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('x87/SSE registers through KVM_GET_XSAVE/KVM_SET_XSAVE: fctrl as KVM resets it, written xmm3 and MXCSR read back from KVM, a reserved MXCSR bit refused', async () => {
    // (Guest SSE/MMX code itself cannot run on this host's nested KVM: the first SSE or MMX
    // instruction ends in an emulation failure; the registers are still KVM's real state.)
    const elf = guestPath('counter');
    const r = await runGdb(serve(elf), [
      `file ${elf}`, 'hbreak update_globals', 'continue',
      'set $xmm3.v4_int32[1] = 0x12345678', 'set $mxcsr = 0x7f80', 'set $mxcsr = 0x10000', 'maintenance flush register-cache',
      'printf "FPU fctrl=%x mxcsr=%x xmm3=%x\\n", $fctrl, $mxcsr, $xmm3.v4_int32[1]', 'kill',
    ]);
    expect(r.out, r.out).to.match(/E\.mxcsr: reserved bits set \(0x10000\)/);
    expect(r.out).to.match(/^FPU fctrl=37f mxcsr=7f80 xmm3=12345678$/m);
  });

  it('virtual memory through KVM_TRANSLATE: x/4gx and a write of a higher-half global of hhkernel (its own page tables), an unmapped address refused', async () => {
    const elf = guestPath('hhkernel');
    const r = await runGdb(serve(elf), [
      `file ${elf}`, 'hbreak iretq_to_user', 'continue', 'x/4gx &hh_table',
      'set var hh_table[1] = 0x1234', 'x/2gx &hh_table', 'x/gx 0xffff800000000000', 'kill',
    ]);
    expect(r.out, r.out).to.match(/<hh_table>:\s+0x1111111111111111\s+0x2222222222222222/);
    expect(r.out).to.match(/<hh_table\+16>:\s+0xfedcba9876543210\s+0xffffffff80000000/);
    expect(r.out).to.match(/<hh_table>:\s+0x1111111111111111\s+0x0000000000001234/);
    expect(r.out).to.match(/Cannot access memory at address 0xffff800000000000/);
  });
});
