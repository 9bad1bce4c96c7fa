// Arbitrary bytes never crash the simulator: every outcome is an exit or a guest exception.
import { expect } from 'chai';
import { buildKernel } from './kernel';
import { u64 } from '../../vmm/u64';

describe('cpu: robustness on random instruction bytes', () => {
  it('2000 random 16-byte sequences run to an exit with no simulator error', () => {
    let seed = 0x1234567;
    const rnd = (): number => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return seed >>> 24; };
    const k = buildKernel('code: .fill 64, 1, 0x90\n hlt');
    const kinds = new Map<string, number>();
    for (let n = 0; n < 2000; n++) {
      const code = new Uint8Array(16);
      for (let j = 0; j < 16; j++) code[j] = rnd();
      // favour prefixes and the two-byte map now and then
      if (n % 3 === 0) code[0] = 0x0f;
      if (n % 5 === 0) code[0] = [0x66, 0xf3, 0xf2, 0x48, 0x4c][n % 5];
      k.cpu.mem.write(k.labels.code, code);
      k.cpu.setReg('rip', u64(k.labels.code));
      k.cpu.setGpr(4, u64(0x80000));
      for (let r = 0; r < 16; r++) if (r !== 4) k.cpu.setGpr(r as 0, u64(0x40000 + r * 64));
      k.cpu.setReg('rflags', u64(2));
      k.cpu.intercepts.exceptionBitmap = 0xffffffff; // every exception exits
      const e = k.cpu.run(8);
      kinds.set(e.kind, (kinds.get(e.kind) ?? 0) + 1);
      if (e.kind === 'triple-fault') expect(e.reason).not.to.match(/internal error/);
      if (e.kind === 'triple-fault') break;
      // undo any state a random instruction may have changed that matters to the next run
      k.cpu.interruptibility = 0;
      k.cpu.pendingDebugExceptions = 0;
      k.cpu.halted = false;
      k.cpu.phys.reset();
    }
    expect(kinds.get('exception') ?? 0).to.be.greaterThan(100);
  });
});
