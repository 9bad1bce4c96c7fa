import { expect } from 'chai';
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const BIN = path.join(ROOT, 'bin', 'vmm-gdbstub.js');

function run(args: string[]): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, 'run', ...args], { encoding: 'utf8', timeout: 60000 });
  return { status: r.status, stderr: r.stderr };
}

describe('platform: run with --boot, --cmdline, --module', function () {
  this.timeout(120000);
  let tmp: string;
  let kernel: string;
  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bootflags-'));
    fs.writeFileSync(path.join(tmp, 'k.s'), '.text\n.long 0x1BADB002, 0, -0x1BADB002\n.globl _start\n_start: hlt\n');
    execFileSync('as', ['--32', '-o', path.join(tmp, 'k.o'), path.join(tmp, 'k.s')]);
    kernel = path.join(tmp, 'k.elf');
    fs.writeFileSync(path.join(tmp, 'k.ld'), 'ENTRY(_start) SECTIONS { . = 0x100000; .text : { *(.text) } }');
    execFileSync('ld', ['-m', 'elf_i386', '-T', path.join(tmp, 'k.ld'), '-o', kernel, path.join(tmp, 'k.o')]);
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('refuses boot flags that do not fit, before anything starts (128), and a wrong forced protocol (129)', () => {
    const counter = path.join(ROOT, 'guests', 'counter.elf');
    let r = run([counter, '--cmdline', 'x']);
    expect(r.status).to.equal(128);
    expect(r.stderr).to.match(/--cmdline and --module need a Multiboot or PVH kernel/);
    r = run([kernel, '--boot', 'bogus']);
    expect(r.status).to.equal(128);
    r = run([kernel, '--module', path.join(tmp, 'missing.img')]);
    expect(r.status).to.equal(128);
    expect(r.stderr).to.match(/--module .*missing\.img: no such file/);
    r = run([kernel, '--boot', 'pvh']);
    expect(r.status).to.equal(129);
    expect(r.stderr).to.match(/no PVH entry/);
    r = run([kernel, '--backend', 'kvm']);
    expect(r.status).to.equal(128);
    expect(r.stderr).to.match(/--backend kvm boots ELF64-ABI guests only; .*k\.elf is a multiboot kernel \(use --backend vmx or svm\)/);
    expect(run([counter, '--boot', 'elf64']).status).to.equal(0);
  });

  it('a Multiboot kernel is detected and loaded; without 32-bit mode in the CPU it is one clear line', () => {
    fs.writeFileSync(path.join(tmp, 'initrd.img'), 'hello');
    const r = run([kernel, '--cmdline', 'a b', '--module', path.join(tmp, 'initrd.img')]);
    if (r.status === 134) {
      expect(r.stderr.trim().split('\n')).to.have.length(1);
      expect(r.stderr).to.match(/Multiboot kernel starts in 32-bit protected mode/);
    } else {
      expect(r.status, r.stderr).to.equal(132); // the kernel's HLT with IF=0: halted for good
    }
  });
});
