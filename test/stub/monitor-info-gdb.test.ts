/**
 * `monitor info mem`, `info tlb`, `info lapic` and `monitor help` through the real gdb: the
 * higher-half kernel guest (its own 4 KiB page tables: kernel pages supervisor-only, the user
 * pages user-accessible, one page left not present) and kvm-unit-tests debug.flat (an
 * identity map of 4 GiB in 2 MiB pages, built by the guest itself; paging off at entry).
 */
import { expect } from 'chai';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { parseAnyElf } from '../../vmm/loader/elf-any';
import { kvmUnitTestsOrSkip } from '../platform/kvm-unit-tests-dir';

const ROOT = path.join(__dirname, '..', '..', '..');
const BIN = path.join(ROOT, 'bin', 'vmm-gdbstub.js');

function gdb(image: string, commands: string[], withFile: boolean): string {
  const args = ['-batch', '-nx', '-ex', 'set confirm off', '-ex', 'set pagination off', '-ex', 'set remotetimeout 20',
    '-ex', `target remote | ${process.execPath} ${BIN} serve ${image} --gdb stdio`];
  for (const c of [...commands, 'kill']) args.push('-ex', c);
  if (withFile) args.push(image);
  const r = spawnSync('gdb', args, { encoding: 'utf8', timeout: 50000 });
  return `${r.stdout}\n${r.stderr}`;
}

/** `info mem` lines: start, end, size, phys, flags (all hex but flags). */
function memLines(out: string) {
  return [...out.matchAll(/^([0-9a-f]{16})-([0-9a-f]{16}) ([0-9a-f]{16}) ([0-9a-f]{16}) ([-u]r[-w][-x])$/gm)]
    .map((m) => ({ start: BigInt('0x' + m[1]), end: BigInt('0x' + m[2]), size: BigInt('0x' + m[3]), phys: BigInt('0x' + m[4]), flags: m[5] }));
}

describe('monitor info mem / info tlb / info lapic with the real gdb', function () {
  this.timeout(60000);
  const gdbAvailable = spawnSync('gdb', ['--version']).status === 0;
  before(function () { if (!gdbAvailable) this.skip(); });

  it('hhkernel: info mem shows the higher-half ranges, user pages u, kernel pages -, the not-present page as a hole; info tlb lists 4K pages', () => {
    const elf = path.join(ROOT, 'guests', 'hhkernel.elf');
    const out = gdb(elf, ['hbreak user_main', 'continue', 'monitor info mem', 'monitor info tlb',
      'printf "SYM user=%lx lazy=%lx kernel=%lx\\n", &user_main, &__user_lazy, &iretq_to_user'], true);
    const sym = /^SYM user=([0-9a-f]+) lazy=([0-9a-f]+) kernel=([0-9a-f]+)$/m.exec(out);
    expect(sym, out).to.not.equal(null);
    const [user, lazy, kernel] = [sym![1], sym![2], sym![3]].map((s) => BigInt('0x' + s));
    expect(out).to.contain('vCPU 0 (4-level paging): virtual range, size, physical start, flags');
    const lines = memLines(out);
    const holding = (a: bigint) => lines.find((l) => l.start <= a && a < l.end);
    expect(holding(user)?.flags, out).to.equal('urwx');
    expect(holding(kernel)?.flags, out).to.equal('-rwx');
    expect(holding(lazy & ~0xfffn), 'the not-present page').to.equal(undefined);
    for (const l of lines) expect(l.end - l.start).to.equal(l.size);
    // the kernel is linked at 0xffffffff80000000 and loaded at 1 MiB
    expect(holding(0xffffffff80000000n)?.phys).to.equal(0x100000n);
    const tlbUser = new RegExp(`^${(user & ~0xfffn).toString(16)}: ([0-9a-f]{16})\\s+4K urwx`, 'm').exec(out);
    expect(tlbUser, out).to.not.equal(null);
    expect(BigInt('0x' + tlbUser![1])).to.equal(holding(user)!.phys + ((user & ~0xfffn) - holding(user)!.start));
  });

  it('debug.flat: paging off at entry; after it built its tables an identity map of 4 GiB in 2M pages; info lapic; help lists them; info foo fails', function () {
    const dir = kvmUnitTestsOrSkip();
    if (!dir) this.skip();
    const flat = path.join(dir!, 'debug.flat');
    const start64 = parseAnyElf(new Uint8Array(fs.readFileSync(flat))).symbols.get('start64');
    expect(start64, 'start64 in the .flat symbols').to.be.a('number');
    const out = gdb(flat, ['monitor info mem', `hbreak *0x${start64!.toString(16)}`, 'continue', // long mode, its own page tables
      'monitor info mem', 'monitor info tlb', 'monitor info lapic', 'monitor help', 'monitor info foo'], false);
    expect(out).to.contain('vCPU 0: paging is off (CR0.PG = 0): virtual = physical');
    expect(memLines(out), out).to.deep.equal([{ start: 0n, end: 0x100000000n, size: 0x100000000n, phys: 0n, flags: 'urwx' }]);
    const tlb = out.split('\n').filter((l) => /^[0-9a-f]{16}: [0-9a-f]{16}\s+2M urwx/.test(l));
    expect(tlb.length).to.equal(2048);
    expect(tlb[1]).to.match(/^0000000000200000: 0000000000200000/);
    expect(out).to.match(/^apic 0: base 0x[0-9a-f]+ mode (xapic|x2apic|disabled)/m);
    expect(out).to.match(/^ {2}lvt timer 0x[0-9a-f]+ /m);
    for (const c of ['info mem', 'info tlb', 'info lapic']) expect(out).to.contain(`  ${c}  `);
    expect(out).to.contain('monitor info: unknown "foo": mem, tlb or lapic');
    expect(out).to.contain('Protocol error with Rcmd');
  });

  it('system_reset: debug.flat back at its 32-bit entry with paging off; the hbreak and the int3 hit again; the guest then passes whole', function () {
    const dir = kvmUnitTestsOrSkip();
    if (!dir) this.skip();
    const flat = path.join(dir!, 'debug.flat');
    const elf = parseAnyElf(new Uint8Array(fs.readFileSync(flat)));
    const main = elf.symbols.get('main')!, iretq = elf.symbols.get('user_mode')! - 2;
    const out = gdb(flat, [`hbreak *0x${main.toString(16)}`, `break *0x${iretq.toString(16)}`, 'continue', 'continue',
      'monitor system_reset', 'maintenance flush register-cache',
      'printf "AT pc=%lx cs=%d cr0=%lx\\n", $pc, $cs, $cr0', 'monitor info mem',
      'continue', 'printf "AT pc=%lx cs=%d cr0=%lx\\n", $pc, $cs, $cr0',
      'continue', 'printf "AT pc=%lx cs=%d cr0=%lx\\n", $pc, $cs, $cr0',
      'delete', 'continue'], false);
    const at = [...out.matchAll(/^AT pc=(\w+) cs=(\d+) cr0=(\w+)$/gm)].map((m) => [m[1], m[2], m[3]]);
    expect(at, out).to.deep.equal([
      [elf.entry.toString(16), '16', '11'],
      [main.toString(16), '8', '80000011'],
      [iretq.toString(16), '8', '80000011'],
    ]);
    expect(out).to.contain('VM reset to its boot state');
    expect(out).to.contain('int3s written again\n');
    expect(out).to.contain('vCPU 0: paging is off (CR0.PG = 0): virtual = physical');
    expect(out.match(/^Breakpoint 2, /gm), out).to.have.length(2);
    expect(out.match(/^SUMMARY: 25 tests$/gm)).to.have.length(1);
    expect(out).to.not.match(/^FAIL/m);
    expect(out).to.contain('exited normally');
  });

  it('system_reset on the higher-half kernel: an int3 at a higher-half address (not mapped at boot) is dropped and said so', () => {
    const elf = path.join(ROOT, 'guests', 'hhkernel.elf');
    const out = gdb(elf, ['hbreak user_main', 'continue', 'set breakpoint always-inserted on', 'break user_main', 'monitor system_reset',
      'maintenance flush register-cache', 'printf "PC %lx\\n", $pc', 'monitor help'], true);
    expect(out).to.contain('int3s written again (1 dropped: not mapped at boot)');
    expect(out).to.contain('  system_reset  ');
    const entry = parseAnyElf(new Uint8Array(fs.readFileSync(elf))).entry;
    expect(out).to.match(new RegExp(`^PC ${entry.toString(16)}$`, 'm')); // back at the ELF64 ABI entry
  });
});
