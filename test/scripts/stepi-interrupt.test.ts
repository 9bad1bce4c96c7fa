/** Real gdb: `stepi` into the stepper guest's timer interrupt stops at the vector entry (issue 12 item 7). */
import { expect } from 'chai';
import * as path from 'path';
import { gdbAvailable, REPO_ROOT, runGdbScript } from './gdb-session';

const STEPPER = path.join(REPO_ROOT, 'guests', 'stepper.elf');

function value(out: string, key: string): number {
  const m = new RegExp(`${key}=0x([0-9a-f]+)`).exec(out);
  expect(m, `${key} in gdb's output`).to.not.equal(null);
  return parseInt(m ? m[1] : '0', 16);
}

describe('gdb stepi into an interrupt (stepper guest, timer vector 0x20)', function () {
  for (const backend of ['vmx', 'svm'] as const) {
    it(`${backend}: stepi over HLT, then stepi stops at the handler's first instruction with the frame pushed; the next stepi runs it`, function () {
      if (!gdbAvailable()) this.skip();
      // step_hlt: mov (7 bytes); sti; hlt; cli
      const s = runGdbScript(STEPPER, [
        'vmmcheck attach',
        'break *(step_hlt+8)',
        'continue',
        'delete',
        'stepi',
        'printf "after-hlt=0x%lx\\n", $pc',
        'stepi',
        'printf "entry=0x%lx\\n", $pc',
        'printf "gate=0x%lx\\n", (*(unsigned short *)((char *)&idt + 0x200)) | ((unsigned long)*(unsigned short *)((char *)&idt + 0x206) << 16)',
        'printf "frame-rip=0x%lx\\n", *(unsigned long *)$sp',
        'x/i $pc',
        'stepi',
        'printf "next=0x%lx\\n", $pc',
        'printf "ticks=0x%lx\\n", *(unsigned long *)&step_ticks',
        'kill',
      ], { VMMCHECK_TARGET: 'launch', VMMCHECK_SERVE_ARGS: `--backend ${backend}` }, 60000);
      const out = s.stdout;
      const cli = value(out, 'after-hlt');
      const entry = value(out, 'entry');
      expect(entry, 'stopped at the IDT gate 0x20 target').to.equal(value(out, 'gate'));
      expect(value(out, 'frame-rip'), 'the frame holds the interrupted RIP').to.equal(cli);
      expect(out).to.match(new RegExp(`=> 0x0*${entry.toString(16)} <isr_stubs`));
      const next = value(out, 'next');
      expect(next, 'one instruction of the entry ran').to.be.greaterThan(entry).and.lessThan(entry + 16);
      expect(value(out, 'ticks'), 'the handler has not run yet').to.equal(0);
    });
  }
});
