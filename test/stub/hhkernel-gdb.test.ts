/**
 * The real gdb debugging the higher-half kernel guest (guests/hhkernel, linked at
 * 0xffffffff80000000, its own page tables, CPL 3 through IRETQ, SYSCALL/SYSRETQ): `hbreak`
 * on kernel code, `stepi` through IRETQ, SYSCALL and SYSRETQ (each lands at the target with
 * the new CS), `x/4gx` of a higher-half virtual address, and `watch` on a higher-half global
 * that the user loop (CPL 3) and the SYS_BUMP system call (CPL 0) increment alternately:
 * every hit reports the right old and new values and the CPL where it happened.
 */
import { expect } from 'chai';
import { spawnSync } from 'child_process';
import * as path from 'path';

const ROOT = path.join(__dirname, '..', '..', '..');
const ELF = path.join(ROOT, 'guests', 'hhkernel.elf');
const BIN = path.join(ROOT, 'bin', 'vmm-gdbstub.js');

function gdb(commands: string[]): string {
  const args = ['-batch', '-nx', '-ex', 'set confirm off', '-ex', 'set pagination off', '-ex', 'set remotetimeout 20',
    '-ex', `target remote | ${process.execPath} ${BIN} serve ${ELF} --gdb stdio`];
  for (const c of [...commands, 'kill']) args.push('-ex', c);
  args.push(ELF);
  const r = spawnSync('gdb', args, { encoding: 'utf8', timeout: 50000 });
  return `${r.stdout}\n${r.stderr}`;
}

/** The values of `printf "TAG k=v k=v\n"` lines, in order. */
function tagged(out: string, tag: string): Record<string, string>[] {
  return out.split('\n').filter((l) => l.startsWith(tag + ' ')).map((l) => {
    const o: Record<string, string> = {};
    for (const kv of l.slice(tag.length + 1).split(' ')) { const [k, v] = kv.split('='); o[k] = v; }
    return o;
  });
}

describe('gdb on the higher-half kernel (hbreak, stepi through IRETQ/SYSCALL/SYSRETQ, x/4gx, watch at CPL 3 and CPL 0)', function () {
  this.timeout(60000);
  const gdbAvailable = spawnSync('gdb', ['--version']).status === 0;
  before(function () { if (!gdbAvailable) this.skip(); });

  it('hbreak on kernel code stops there; stepi through IRETQ enters user_main at CPL 3, through SYSCALL syscall_entry at CPL 0, through SYSRETQ back at CPL 3; x/4gx reads hh_table', () => {
    const out = gdb([
      'hbreak iretq_to_user', 'continue',
      'printf "AT pc=%lx cs=%d\\n", $pc, $cs', 'info symbol $pc',
      'stepi', 'printf "AT pc=%lx cs=%d\\n", $pc, $cs', 'info symbol $pc',
      'delete', 'hbreak user_syscall_insn', 'continue',
      'printf "AT pc=%lx cs=%d\\n", $pc, $cs',
      'stepi', 'printf "AT pc=%lx cs=%d\\n", $pc, $cs', 'info symbol $pc',
      'delete', 'hbreak sysretq_insn', 'continue',
      'stepi', 'printf "AT pc=%lx cs=%d\\n", $pc, $cs',
      'printf "SYM iret=%lx user=%lx sc=%lx entry=%lx\\n", &iretq_to_user, &user_main, &user_syscall_insn, &syscall_entry',
      'x/4gx &hh_table',
    ]);
    const at = tagged(out, 'AT');
    const sym = tagged(out, 'SYM')[0];
    expect(at, out).to.have.length(5);
    expect(at[0], 'hbreak iretq_to_user').to.deep.equal({ pc: sym.iret, cs: '8' });
    expect(out).to.match(/^iretq_to_user in section \.text/m);
    expect(at[1], 'stepi through IRETQ').to.deep.equal({ pc: sym.user, cs: '43' });
    expect(out).to.match(/^user_main in section \.user/m);
    expect(at[2], 'hbreak on the user SYSCALL').to.deep.equal({ pc: sym.sc, cs: '43' });
    expect(at[3], 'stepi through SYSCALL').to.deep.equal({ pc: sym.entry, cs: '8' });
    expect(out).to.match(/^syscall_entry in section \.text/m);
    expect(at[4], 'stepi through SYSRETQ').to.deep.equal({ pc: (BigInt('0x' + sym.sc) + 2n).toString(16), cs: '43' });
    expect(sym.iret).to.match(/^ffffffff8/);
    expect(out).to.match(/<hh_table>:\s+0x1111111111111111\s+0x2222222222222222/);
    expect(out).to.match(/<hh_table\+16>:\s+0xfedcba9876543210\s+0xffffffff80000000/);
  });

  it('watch on a higher-half global: hits at CPL 0 (SYS_BUMP) and CPL 3 (the user loop), alternately, with the right old and new values', () => {
    const out = gdb([
      'hbreak user_syscall_insn', 'continue', 'delete', // hh_counter = 1 (CPL 3) here
      'watch hh_counter',
      'continue', 'printf "HIT v=%d cs=%d\\n", hh_counter, $cs',
      'continue', 'printf "HIT v=%d cs=%d\\n", hh_counter, $cs',
      'continue', 'printf "HIT v=%d cs=%d\\n", hh_counter, $cs',
      'continue', 'printf "HIT v=%d cs=%d\\n", hh_counter, $cs',
    ]);
    expect(tagged(out, 'HIT'), out).to.deep.equal([
      { v: '2', cs: '8' }, { v: '3', cs: '43' }, { v: '4', cs: '8' }, { v: '5', cs: '43' },
    ]);
    const changes = [...out.matchAll(/Old value = (\d+)\s+New value = (\d+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
    expect(changes).to.deep.equal([[1, 2], [2, 3], [3, 4], [4, 5]]);
    expect(out).to.match(/New value = 2\s+syscall_dispatch \(nr=2/);
    expect(out).to.match(/New value = 3\s+user_main \(\)/);
  });
});
