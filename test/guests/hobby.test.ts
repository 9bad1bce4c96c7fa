/**
 * The Multiboot hobby kernel (guests/hobby) on the whole VM: detected as Multiboot, entered
 * in 32-bit code at 1 MiB, switches itself to long mode and the higher half, prints the boot
 * information on the UART, takes local-APIC timer interrupts, starts vCPU 1 with
 * INIT-SIPI-SIPI, and both vCPUs increment `shared_counter` with LOCK XADD. The README's
 * `run` example is run as written and must print the README's sample exactly, on vmx and
 * svm, with --dr-switch full, every time (the output is deterministic).
 */
import { expect } from 'chai';
import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { detectBootProtocol } from '../../vmm/loader/boot-format';
import { loadMultiboot } from '../../vmm/loader/multiboot';
import { readmeExample } from '../helpers/readme';

const ROOT = path.join(__dirname, '..', '..', '..');
const ELF = path.join(ROOT, 'guests', 'hobby.elf');
const BIN = path.join(ROOT, 'bin', 'vmm-gdbstub.js');

/** `vmm-gdbstub ARGS` from the repository root. */
function vmm(args: string[]): { stdout: string; stderr: string; status: number | null } {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 50000 });
  return { stdout: r.stdout, stderr: r.stderr, status: r.status };
}

/** The README's run line as argv (after `node bin/vmm-gdbstub.js`), quotes honoured. */
function readmeRunArgs(): string[] {
  const [line] = readmeExample('hobby-run');
  const words = line.match(/'[^']*'|\S+/g) ?? [];
  expect(words.slice(0, 3)).to.deep.equal(['node', 'bin/vmm-gdbstub.js', 'run']);
  return words.slice(2).map((w) => w.replace(/^'(.*)'$/, '$1'));
}

describe('guest: hobby (Multiboot, 32-bit entry, higher half, APIC timer, UART, INIT-SIPI-SIPI)', function () {
  this.timeout(120000);

  it('is an ELF64 Multiboot kernel: 32-bit entry at 1 MiB, higher-half segments loaded by p_paddr', () => {
    const bytes = new Uint8Array(fs.readFileSync(ELF));
    expect(detectBootProtocol(bytes)).to.equal('multiboot');
    const plan = loadMultiboot(bytes, { memorySize: 64 << 20, vcpus: 2, kernelName: 'guests/hobby.elf', cmdline: '', modules: [] });
    const entry = plan.symbols.get('mb_entry');
    expect(plan.bsp.eip).to.equal(entry);
    expect(entry).to.be.within(0x100000, 0x101000);
    expect(plan.symbols.get('kmain')! >= 0xffffffff80000000).to.equal(true);
    expect(plan.symbols.get('shared_counter')! >= 0xffffffff80000000).to.equal(true);
    const kernel = plan.blobs.filter((b) => b.address >= 0x100000);
    expect(kernel.length).to.be.greaterThan(1);
    for (const b of kernel) expect(b.address).to.be.below(0x200000);
  });

  for (const backend of ['vmx', 'svm']) {
    it(`the README's run example prints the README's output and exits 0 (${backend}, --dr-switch full, twice)`, () => {
      const args = [...readmeRunArgs(), '--backend', backend, '--dr-switch', 'full'];
      const want = readmeExample('hobby-output').join('\n') + '\n';
      for (let i = 0; i < 2; i++) {
        const r = vmm(args);
        expect(r.stdout, r.stderr).to.equal(want);
        expect(r.status).to.equal(0);
      }
    });
  }

  it('prints the command line and the memory map the loader passed (--mem 32, --cmdline)', () => {
    const r = vmm(['run', 'guests/hobby.elf', '--vcpus', '2', '--mem', '32', '--cmdline', 'a b=c']);
    expect(r.stdout).to.include('cmdline: guests/hobby.elf a b=c\n');
    expect(r.stdout).to.include('memory: lower 639 KiB, upper 31744 KiB\n');
    expect(r.stdout).to.include('mmap: 0x00100000-0x01ffffff available\n');
    expect(r.status).to.equal(0);
  });

  it('the README\'s echo example: lines typed into COM1 come back, `exit` ends with 0', () => {
    const [line] = readmeExample('hobby-echo');
    const r = spawnSync('bash', ['-c', line], { cwd: ROOT, encoding: 'utf8', timeout: 50000 });
    const want = readmeExample('hobby-echo-output').join('\n') + '\n';
    expect(r.stdout.endsWith(want), r.stdout + r.stderr).to.equal(true);
    expect(r.status).to.equal(0);
  });

  it('--serial-input FILE without `exit`: once the input has ended and every vCPU is halted, exit 132', () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'hobby-')), 'in.txt');
    fs.writeFileSync(file, 'one\r\ntwo\n');
    const r = vmm(['run', 'guests/hobby.elf', '--vcpus', '2', '--cmdline', 'echo', '--serial-input', file]);
    expect(r.stdout).to.include('echo: one\necho: two\n');
    expect(r.stderr).to.include('every vCPU is halted');
    expect(r.status).to.equal(132);
  });

  it('--serial-input -: the run waits, halted, for each line typed on stdin', async () => {
    const child = spawn(process.execPath, [BIN, 'run', 'guests/hobby.elf', '--vcpus', '2', '--cmdline', 'echo', '--serial-input', '-'], { cwd: ROOT });
    let out = '';
    const seen = (text: string) => new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no ${JSON.stringify(text)} in: ${out}`)), 40000);
      const check = () => { if (out.includes(text)) { clearTimeout(t); child.stdout.off('data', check); resolve(); } };
      child.stdout.on('data', check);
      check();
    });
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    const status = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await seen('`exit` ends\n');
    child.stdin.write('first\n');
    await seen('echo: first\n');
    await new Promise((r) => setTimeout(r, 300));               // idle in between: nothing ends the run
    expect(child.exitCode).to.equal(null);
    child.stdin.write('exit\n');
    expect(await status).to.equal(0);
    expect(out).to.include('echo: first\necho: exit\n');
  });

  it('--serial-input with a missing file is a usage error (128) before the guest runs', () => {
    const r = vmm(['run', 'guests/hobby.elf', '--vcpus', '2', '--serial-input', 'no/such/file']);
    expect(r.status).to.equal(128);
    expect(r.stderr).to.include('--serial-input no/such/file: no such file');
    expect(r.stdout).to.equal('');
  });

  it('with one vCPU the AP never answers: the kernel says so and exits 2', () => {
    const r = vmm(['run', 'guests/hobby.elf']);
    expect(r.stdout).to.include('cpu0: INIT-SIPI-SIPI to apic id 1');
    expect(r.stdout).to.include('cpu0: cpu1 did not come up');
    expect(r.stdout).to.not.include('cpu1: up');
    expect(r.status).to.equal(2);
  });
});
