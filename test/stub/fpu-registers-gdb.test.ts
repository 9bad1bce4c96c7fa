/**
 * The real gdb reading and writing the guest's own x87/SSE registers: on the fpmath guest
 * (SSE2 doubles), `hbreak report` stops where the double argument is in xmm0; gdb must show
 * the guest's value there (and MXCSR with the precision flag the guest's arithmetic set),
 * a `set $xmm0...` must be what the guest then prints, and a reserved MXCSR bit is refused
 * with the reason and changes nothing.
 */
import { expect } from 'chai';
import { spawnSync } from 'child_process';
import * as path from 'path';

const ROOT = path.join(__dirname, '..', '..', '..');
const ELF = path.join(ROOT, 'guests', 'fpmath.elf');
const BIN = path.join(ROOT, 'bin', 'vmm-gdbstub.js');

function gdb(backend: string, commands: string[]): string {
  const args = ['-batch', '-nx', '-ex', 'set confirm off', '-ex', 'set pagination off', '-ex', 'set remotetimeout 20',
    '-ex', `target remote | ${process.execPath} ${BIN} serve ${ELF} --backend ${backend} --gdb stdio`];
  for (const c of [...commands, 'kill']) args.push('-ex', c);
  args.push(ELF);
  const r = spawnSync('gdb', args, { encoding: 'utf8', timeout: 50000 });
  return `${r.stdout}\n${r.stderr}`;
}

describe('gdb reads and writes the guest\'s x87/SSE registers (xmm, mxcsr, x87 control)', function () {
  this.timeout(60000);
  const gdbAvailable = spawnSync('gdb', ['--version']).status === 0;
  before(function () { if (!gdbAvailable) this.skip(); });

  for (const backend of ['vmx', 'svm']) {
    it(`${backend}: xmm0 holds the double argument, MXCSR the guest's flags; a written xmm0 is what the guest prints`, () => {
      const out = gdb(backend, [
        'hbreak report', 'continue',
        'printf "XMM0 %lx\\n", $xmm0.v2_int64[0]',
        'printf "MXCSR %x FCTRL %x FTAG %x\\n", $mxcsr, $fctrl, $ftag',
        'set $xmm0.v2_int64[0] = 0x4000000000000000',
        'printf "SET %lx\\n", $xmm0.v2_int64[0]',
        'set $mxcsr = 0x10000',
        'printf "AFTER %x\\n", $mxcsr',
        'delete', 'hbreak con_dec', 'continue',
        'printf "DEC %d\\n", $rdi',
      ]);
      // sqrt(2) as the guest computes it (the native build prints the same bits).
      expect(out, out).to.match(/^XMM0 3ff6a09e667f3bcc$/m);
      // 0x1F80 is the reset value; PE (bit 5) is set by the inexact square root.
      expect(out).to.match(/^MXCSR 1fa0 FCTRL 37f FTAG ffff$/m);
      expect(out).to.match(/^SET 4000000000000000$/m);
      expect(out).to.match(/E\.mxcsr: reserved bits set \(0x10000\)/);
      expect(out).to.match(/^AFTER 1fa0$/m);
      // report() prints the integer part of the (now 2.0) double through con_dec.
      expect(out).to.match(/^DEC 2$/m);
      expect(out).to.match(/sqrt2 /);
    });
  }
});
