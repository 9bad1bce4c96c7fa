/**
 * `monitor nmi` (QEMU's monitor name) through the real gdb: a guest with an NMI handler that
 * counts; gdb stops in the handler (a hardware breakpoint) after each `monitor nmi`, reads
 * the count and the frame, on vmx and svm (and on kvm through KVM_NMI where it is usable).
 */
import { expect } from 'chai';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { kvmProblem } from '../../vmm/kvm/kvm-device';

const ROOT = path.join(__dirname, '..', '..', '..');
const BIN = path.join(ROOT, 'bin', 'vmm-gdbstub.js');

const GUEST = `
  .globl _start
_start:
  mov %cs, %r15w
  lea nmi_handler(%rip), %rsi
  lea idt+32(%rip), %rax                      # gate 2
  mov %si, (%rax); mov %r15w, 2(%rax); movw $0x8e00, 4(%rax)
  mov %rsi, %rdx; shr $16, %rdx; mov %dx, 6(%rax); shr $16, %rdx; mov %edx, 8(%rax); movl $0, 12(%rax)
  lidt idtr(%rip)
main_loop:
  incq spins(%rip)
  jmp main_loop
nmi_handler:
  incl nmi_count(%rip)
  iretq
  .data
  .align 16
idtr: .word 3 * 16 - 1
  .quad idt
nmi_count: .long 0
spins: .quad 0
  .align 16
idt: .space 3 * 16
`;

/** The guest as a static ELF64 with its symbols (as + ld). */
function buildGuest(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmm-nmi-guest-'));
  fs.writeFileSync(path.join(dir, 'g.S'), GUEST);
  const run = (cmd: string, args: string[]): void => {
    const r = spawnSync(cmd, args, { cwd: dir, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${cmd}: ${r.stderr}`);
  };
  run('as', ['--64', '-o', 'g.o', 'g.S']);
  run('ld', ['-N', '-static', '-nostdlib', '-Ttext=0x100000', '-e', '_start', '-o', 'nmi.elf', 'g.o']);
  return path.join(dir, 'nmi.elf');
}

function gdb(image: string, backend: string, commands: string[], serveArgs = ''): string {
  const args = ['-batch', '-nx', '-ex', 'set confirm off', '-ex', 'set pagination off', '-ex', 'set remotetimeout 20',
    '-ex', `target remote | ${process.execPath} ${BIN} serve ${image} --backend ${backend}${serveArgs} --gdb stdio`];
  for (const c of [...commands, 'kill']) args.push('-ex', c);
  args.push(image);
  const r = spawnSync('gdb', args, { encoding: 'utf8', timeout: 50000 });
  return `${r.stdout}\n${r.stderr}`;
}

const SESSION = [
  'hbreak main_loop', 'continue', 'delete',
  'hbreak nmi_handler',
  'monitor nmi',
  'continue',
  'printf "STOP1 pc=%lx handler=%lx count=%d frame=%lx loop=%lx\\n", $pc, &nmi_handler, *(int *)&nmi_count, *(long *)$sp, &main_loop',
  'stepi',
  'printf "STEP count=%d\\n", *(int *)&nmi_count',
  'monitor nmi',
  // the second NMI waits for the handler's IRET; stepi over that IRET: one instruction, back in the loop
  'stepi',
  'printf "IRET pc=%lx\\n", $pc',
  'continue',
  'printf "STOP2 pc=%lx count=%d\\n", $pc, *(int *)&nmi_count',
];

/**
 * On kvm the second NMI is sent once the handler has returned: with this host's (nested)
 * KVM an NMI queued inside the handler while gdb single-steps there ends in a shutdown.
 */
const KVM_SESSION = [
  ...SESSION.slice(0, SESSION.indexOf('stepi')),
  'delete', 'hbreak main_loop', 'continue', 'delete',
  'printf "STEP count=%d\\n", *(int *)&nmi_count',
  'hbreak nmi_handler',
  'monitor nmi',
  ...SESSION.slice(SESSION.indexOf('continue', SESSION.indexOf('stepi'))),
];

function check(out: string, steppedIret = true): void {
  expect(out).to.contain('NMI injected into vCPU 0');
  const s1 = /STOP1 pc=([0-9a-f]+) handler=([0-9a-f]+) count=(\d+) frame=([0-9a-f]+) loop=([0-9a-f]+)/.exec(out);
  expect(s1, out).to.not.equal(null);
  expect(s1![1], 'stopped in the NMI handler').to.equal(s1![2]);
  expect(s1![3], 'before its first instruction').to.equal('0');
  expect(s1![4], 'the NMI came where gdb had stopped the loop').to.equal(s1![5]);
  expect(/STEP count=1/.test(out), out).to.equal(true);
  const iret = /IRET pc=([0-9a-f]+)/.exec(out);
  expect(iret !== null, out).to.equal(steppedIret);
  if (iret !== null) expect(iret[1], 'stepi over the IRET: at the interrupted loop, the NMI held while stepping').to.equal(s1![5]);
  const s2 = /STOP2 pc=([0-9a-f]+) count=(\d+)/.exec(out);
  expect(s2, out).to.not.equal(null);
  expect(s2![1], 'the second NMI: in the handler again').to.equal(s1![2]);
  expect(s2![2]).to.equal('1');
}

describe('monitor nmi with the real gdb', function () {
  this.timeout(60000);
  const gdbAvailable = spawnSync('gdb', ['--version']).status === 0;
  let elf = '';
  before(function () {
    if (!gdbAvailable) this.skip();
    elf = buildGuest();
  });
  after(() => { if (elf !== '') fs.rmSync(path.dirname(elf), { recursive: true, force: true }); });

  for (const backend of ['vmx', 'svm'] as const) {
    it(`${backend}: each monitor nmi reaches the guest's NMI handler through its IDT (hbreak there, its count read by gdb)`, () => {
      check(gdb(elf, backend, SESSION));
    });
  }

  it('kvm: monitor nmi through KVM_NMI', function () {
    if (kvmProblem() !== undefined) this.skip();
    check(gdb(elf, 'kvm', KVM_SESSION), false);
  });

  it('serve --host-nmi-every: monitor vmexits counts the NMI exits, monitor host the host\'s handlers; the guest saw none of them', () => {
    const out = gdb(elf, 'svm', ['hbreak main_loop', 'continue', 'continue', 'continue', 'monitor vmexits', 'monitor host',
      'printf "COUNT %d\\n", *(int *)&nmi_count'], ' --host-nmi-every 3');
    const exits = /^ {2}nmi +(\d+)$/m.exec(out);
    expect(exits, out).to.not.equal(null);
    expect(Number(exits![1])).to.be.greaterThan(0);
    expect(out).to.match(new RegExp(`host NMIs handled so far: ${exits![1]} \\(their handler found foreign debug registers 0 times\\)`));
    expect(out).to.contain('COUNT 0');
  });

  it('monitor nmi takes no argument; monitor help lists it', () => {
    const out = gdb(elf, 'vmx', ['monitor help', 'monitor nmi 0']);
    expect(out).to.match(/^ {2}nmi {15}inject an NMI into every vCPU/m);
    expect(out).to.contain('monitor nmi takes no arguments, not "0"');
  });
});
