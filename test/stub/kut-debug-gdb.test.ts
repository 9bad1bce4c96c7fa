/**
 * The real gdb attached to `serve debug.flat` (the unmodified kvm-unit-tests binary, a
 * Multiboot ELF32 that starts in 32-bit code and enters long mode itself): `hbreak *ADDR`
 * in its 64-bit C code, `x/i $pc`, `p $cr3` after it enabled paging, `stepi` through the
 * IRETQ of its usermode helper (CPL 0 -> 3) and through its `int $0x20` back (CPL 3 -> 0),
 * Ctrl-C while it spins at CPL 3; and gdb given the ELF32 file itself after
 * `set architecture i386:x86-64` (README), from the 32-bit entry into long mode and main.
 * Addresses come from the .flat's own symbol table at test time (nothing hard-coded).
 */
import { expect } from 'chai';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { parseAnyElf } from '../../vmm/loader/elf-any';
import { kvmUnitTestsOrSkip } from '../platform/kvm-unit-tests-dir';
import { GdbRun, runGdb } from './gdb-runner';

const ROOT = path.join(__dirname, '..', '..', '..');
const BIN = path.join(ROOT, 'bin', 'vmm-gdbstub.js');

/** gdb in batch mode on `serve FLAT --gdb stdio`; `interruptAfter`: Ctrl-C 500 ms after that text appears. */
function gdb(flat: string, commands: string[], opts: { file?: boolean; interruptAfter?: string } = {}): Promise<GdbRun> {
  const before = opts.file ? ['set architecture i386:x86-64', `file ${flat}`] : [];
  return runGdb(`| ${process.execPath} ${BIN} serve ${flat} --gdb stdio`, [...commands, 'kill'],
    { before, interruptAfterText: opts.interruptAfter, timeoutMs: 50000 });
}

/** The values of `printf "TAG k=v k=v\n"` lines, in order. */
function tagged(out: string, tag: string): Record<string, string>[] {
  return out.split('\n').filter((l) => l.startsWith(tag + ' ')).map((l) => {
    const o: Record<string, string> = {};
    for (const kv of l.slice(tag.length + 1).split(' ')) { const [k, v] = kv.split('='); o[k] = v; }
    return o;
  });
}

const hex = (n: number) => n.toString(16);

describe('gdb on kvm-unit-tests debug.flat (hbreak *ADDR, x/i, $cr3, stepi to CPL 3 and back, Ctrl-C)', function () {
  this.timeout(60000);
  const gdbAvailable = spawnSync('gdb', ['--version']).status === 0;
  const dir = kvmUnitTestsOrSkip();
  const flat = dir ? path.join(dir, 'debug.flat') : '';
  // run_in_user_ex ends with IRETQ (48 cf) right before the label user_mode; the user code
  // returns with INT $0x20 (cd 20) right before ret_to_kernel, the handler of vector 0x20
  let sym: Record<'main' | 'userMode' | 'retToKernel' | 'start64', number> = { main: 0, userMode: 0, retToKernel: 0, start64: 0 };
  before(function () {
    if (!gdbAvailable || !dir) this.skip();
    const bytes = new Uint8Array(fs.readFileSync(flat));
    const elf = parseAnyElf(bytes);
    const need = (name: string) => {
      const v = elf.symbols.get(name);
      if (v === undefined) throw new Error(`debug.flat has no symbol ${name}`);
      return v;
    };
    sym = { main: need('main'), userMode: need('user_mode'), retToKernel: need('ret_to_kernel'), start64: need('start64') };
    // the file offset of a .text address (first LOAD segment maps .text)
    const seg = elf.segments.find((s) => sym.userMode >= s.virtualAddress && sym.userMode < s.virtualAddress + s.data.length);
    if (!seg) throw new Error('user_mode is in no loaded segment');
    const at = (a: number) => seg.data[a - seg.virtualAddress];
    expect([at(sym.userMode - 2), at(sym.userMode - 1)], 'IRETQ before user_mode').to.deep.equal([0x48, 0xcf]);
    expect([at(sym.retToKernel - 2), at(sym.retToKernel - 1)], 'INT 0x20 before ret_to_kernel').to.deep.equal([0xcd, 0x20]);
  });

  it('hbreak *ADDR in main and x/i; p $cr3 non-zero; stepi through IRETQ lands in user_mode at CPL 3, through INT 0x20 in ret_to_kernel at CPL 0', async () => {
    const iretq = sym.userMode - 2, int20 = sym.retToKernel - 2;
    const r = await gdb(flat, [
      `hbreak *0x${hex(sym.main)}`, 'continue',
      'printf "AT pc=%lx cs=%d\\n", $pc, $cs', 'x/i $pc', 'printf "CR cr3=%lx cr0=%lx efer=%lx\\n", $cr3, $cr0, $efer',
      'delete', `hbreak *0x${hex(iretq)}`, 'continue',
      'printf "AT pc=%lx cs=%d\\n", $pc, $cs', 'x/i $pc',
      'stepi', 'printf "AT pc=%lx cs=%d\\n", $pc, $cs',
      'delete', `hbreak *0x${hex(int20)}`, 'continue',
      'printf "AT pc=%lx cs=%d\\n", $pc, $cs', 'x/i $pc',
      'stepi', 'printf "AT pc=%lx cs=%d\\n", $pc, $cs',
    ]);
    const at = tagged(r.out, 'AT');
    expect(at, r.out).to.deep.equal([
      { pc: hex(sym.main), cs: '8' },
      { pc: hex(iretq), cs: '8' },
      { pc: hex(sym.userMode), cs: '75' }, // 0x4b: the user code selector, RPL 3
      { pc: hex(int20), cs: '75' },
      { pc: hex(sym.retToKernel), cs: '8' },
    ]);
    expect(r.out).to.match(new RegExp(`=> 0x${hex(sym.main)}:\\s+endbr64`));
    expect(r.out).to.match(new RegExp(`=> 0x${hex(iretq)}:\\s+iretq`));
    expect(r.out).to.match(new RegExp(`=> 0x${hex(int20)}:\\s+int\\s+\\$0x20`));
    const cr = tagged(r.out, 'CR')[0];
    expect(Number.parseInt(cr.cr3, 16), 'cr3 after paging is on').to.be.greaterThan(0);
    expect((Number.parseInt(cr.cr0, 16) & 0x80000001) >>> 0, 'CR0.PG and PE').to.equal(0x80000001);
    expect(Number.parseInt(cr.efer, 16) & 0x500, 'EFER.LME and LMA').to.equal(0x500);
  });

  it('Ctrl-C stops a guest spinning at CPL 3 (SIGINT), registers stay readable', async () => {
    const r = await gdb(flat, [
      `hbreak *0x${hex(sym.userMode)}`, 'continue', 'delete',
      'set *(unsigned short*)$pc = 0xfeeb', // jmp . at CPL 3
      'echo SPIN\\n', 'continue',
      'printf "AT pc=%lx cs=%d\\n", $pc, $cs',
    ], { interruptAfter: 'SPIN' });
    expect(r.out, r.out).to.contain('Program received signal SIGINT, Interrupt.');
    expect(tagged(r.out, 'AT'), r.out).to.deep.equal([{ pc: hex(sym.userMode), cs: '75' }]);
  });

  it('gdb given the ELF32 file after `set architecture i386:x86-64`: attaches in 32-bit code, hbreak start64 (long mode), hbreak main with source lines', async () => {
    const r = await gdb(flat, [
      'printf "AT pc=%lx cs=%d\\n", $pc, $cs',
      'hbreak start64', 'continue', 'printf "AT pc=%lx cs=%d\\n", $pc, $cs',
      'hbreak main', 'continue', 'printf "AT pc=%lx cs=%d\\n", $pc, $cs', 'bt 1',
    ], { file: true });
    const at = tagged(r.out, 'AT');
    expect(at[0], r.out).to.deep.equal({ pc: hex(parseAnyElf(new Uint8Array(fs.readFileSync(flat))).entry), cs: '16' });
    expect(at.slice(1), r.out).to.deep.equal([{ pc: hex(sym.start64), cs: '8' }, { pc: hex(sym.main), cs: '8' }]);
    expect(r.out).to.match(/#0 {2}main \(ac=1, av=0x[0-9a-f]+ <__argv>\) at x86\/debug\.c:\d+/);
  });
});
