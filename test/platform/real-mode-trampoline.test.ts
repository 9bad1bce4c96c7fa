import { expect } from 'chai';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { readDescriptor, runRealMode, sipiState } from '../../vmm/cpu/real-mode-trampoline';
import { loadMultiboot } from '../../vmm/loader/multiboot';
import { GuestMemory } from '../../vmm/memory';
import { kvmUnitTestsOrSkip } from './kvm-unit-tests-dir';

const read = (m: GuestMemory) => (a: number, n: number) => m.read(a, Math.min(n, m.size - a));

/** Assembles 16-bit code to a flat binary linked at `origin`. */
function as16(src: string, origin: number): Uint8Array {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rm-'));
  try {
    fs.writeFileSync(path.join(dir, 't.s'), '.code16\n' + src + '\n');
    execFileSync('as', ['--32', '-o', path.join(dir, 't.o'), path.join(dir, 't.s')]);
    execFileSync('ld', ['-m', 'elf_i386', '-Ttext', '0x' + origin.toString(16), '--oformat', 'binary', '-o', path.join(dir, 't.bin'), path.join(dir, 't.o')]);
    return new Uint8Array(fs.readFileSync(path.join(dir, 't.bin')));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('platform: the real-mode SIPI trampoline interpreter', () => {
  it('a typical trampoline at vector 0x9A: segments, LGDT, CR0.PE, far jump into 32-bit code', () => {
    const mem = new GuestMemory(0x200000);
    const code = as16(`
    start:
      cli
      cld
      mov %cs, %ax
      mov $0x9a00, %ax
      mov %ax, %ds
      xor %ebx, %ebx
      lgdtl gdtr - start
      mov %cr0, %eax
      or $1, %eax
      mov %eax, %cr0
      jmp 1f
    1:
      ljmpl $0x10, $0x123456
    gdtr: .word 0x1f
      .long 0x7000`, 0x9a000);
    mem.write(0x9a000, code);
    const s = sipiState(0x9a);
    expect(s.cs).to.equal(0x9a00);
    const r = runRealMode(s, read(mem));
    expect(r).to.deep.equal({ kind: 'protected', cs: 0x10, eip: 0x123456 });
    expect(s.gdtBase).to.equal(0x7000);
    expect(s.gdtLimit).to.equal(0x1f);
    expect(s.cr0 & 1).to.equal(1);
    expect(s.ds).to.equal(0x9a00);
    expect(s.eflags & 0x200).to.equal(0);
  });

  it('stops with a diagnosis on an instruction it does not know, and on HLT', () => {
    const mem = new GuestMemory(0x10000);
    mem.write(0x1000, new Uint8Array([0x90, 0xcd, 0x10]));   // nop; int $0x10
    const r = runRealMode(sipiState(1), read(mem));
    expect(r).to.deep.include({ kind: 'unsupported', address: 0x1001 });
    mem.write(0x2000, new Uint8Array([0xf4]));
    expect(runRealMode(sipiState(2), read(mem))).to.deep.equal({ kind: 'hlt' });
    mem.write(0x3000, new Uint8Array([0xeb, 0xfe]));          // jmp . : bounded
    expect(runRealMode(sipiState(3), read(mem), 100)).to.deep.equal({ kind: 'limit' });
  });

  it('readDescriptor decodes a flat 4 GiB code segment and refuses bad selectors', () => {
    const mem = new GuestMemory(0x10000);
    const gdt = new Uint8Array(24);
    new DataView(gdt.buffer).setUint32(8, 0x0000ffff, true);
    new DataView(gdt.buffer).setUint32(12, 0x00cf9b00, true);
    mem.write(0x500, gdt);
    expect(readDescriptor(read(mem), 0x500, 23, 8)).to.deep.equal({ base: 0, limit: 0xffffffff, access: 0x9b, flags: 0xc });
    expect(readDescriptor(read(mem), 0x500, 23, 0)).to.equal(undefined);
    expect(readDescriptor(read(mem), 0x500, 15, 16)).to.equal(undefined);
  });

  it('kvm-unit-tests\' own sipi_entry (smptest.flat, copied to page 0 as bringup_aps does) reaches ap_start32', function () {
    const dir = kvmUnitTestsOrSkip();
    if (!dir) this.skip();
    const bytes = new Uint8Array(fs.readFileSync(path.join(dir!, 'smptest.flat')));
    const plan = loadMultiboot(bytes, { memorySize: 64 << 20, vcpus: 2, kernelName: 'smptest.flat', cmdline: '', modules: [] });
    const mem = new GuestMemory(64 << 20);
    for (const b of plan.blobs) { const x = new Uint8Array(b.memSize); x.set(b.data); mem.write(b.address, x); }
    const from = plan.symbols.get('rm_trampoline')!, to = plan.symbols.get('rm_trampoline_end')!;
    mem.write(0, new Uint8Array(4096).fill(0xcc));
    mem.write(0, mem.read(from, to - from + 1)!);
    const s = sipiState(0);
    const r = runRealMode(s, read(mem));
    expect(r).to.deep.equal({ kind: 'protected', cs: 8, eip: plan.symbols.get('ap_start32') });
    expect(s.gdtBase).to.equal(plan.symbols.get('gdt32'));
    const cs = readDescriptor(read(mem), s.gdtBase, s.gdtLimit, 8)!;
    expect(cs).to.include({ base: 0, limit: 0xffffffff, access: 0x9b });
  });
});
