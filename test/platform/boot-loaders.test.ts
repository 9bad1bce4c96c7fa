import { expect } from 'chai';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { detectBootProtocol } from '../../vmm/loader/boot-format';
import { BootOptions, BootPlan } from '../../vmm/loader/boot-plan';
import { ElfError } from '../../vmm/loader/elf-types';
import { MULTIBOOT_BOOTLOADER_MAGIC, loadMultiboot } from '../../vmm/loader/multiboot';
import { HVM_START_MAGIC, loadPvh } from '../../vmm/loader/pvh';
import { GuestMemory } from '../../vmm/memory';
import { kvmUnitTestsOrSkip } from './kvm-unit-tests-dir';

const MEM = 16 * 1024 * 1024;
let tmp: string;

/** Assembles and links `src` (32-bit unless `bits64`) with a linker script. */
function build(name: string, src: string, lds: string, opts: { bits64?: boolean; binary?: boolean } = {}): Uint8Array {
  const s = path.join(tmp, `${name}.s`), o = path.join(tmp, `${name}.o`), l = path.join(tmp, `${name}.ld`), out = path.join(tmp, `${name}.elf`);
  fs.writeFileSync(s, src + '\n'); fs.writeFileSync(l, lds);
  execFileSync('as', [opts.bits64 ? '--64' : '--32', '-o', o, s]);
  execFileSync('ld', ['--no-warn-rwx-segments', '-m', opts.bits64 ? 'elf_x86_64' : 'elf_i386', '-static', '-nostdlib', '-T', l, '-o', out, o]);
  if (!opts.binary) return new Uint8Array(fs.readFileSync(out));
  const bin = path.join(tmp, `${name}.bin`);
  execFileSync('objcopy', ['-O', 'binary', out, bin]);
  return new Uint8Array(fs.readFileSync(bin));
}

const MB_HEADER = (flags: number, extra = '') => `
  .section .mboot, "a"
  .align 4
mbh:
  .long 0x1BADB002, ${flags}, -(0x1BADB002 + ${flags})
  ${extra}
`;

const ELF32_KERNEL = MB_HEADER(3) + `
  .text
  .globl _start
_start: mov $0x1234, %eax
  hlt
  .data
value: .long 0xcafe
  .bss
  .space 0x3000
`;
const LDS_1M = `ENTRY(_start) SECTIONS { . = 0x100000; .mboot : { *(.mboot) } .text : { *(.text) } . = ALIGN(4096); .data : { *(.data) } .bss : { *(.bss) } }`;

function opts(extra: Partial<BootOptions> = {}): BootOptions {
  return { memorySize: MEM, vcpus: 2, kernelName: 'kernel.elf', cmdline: '', modules: [], ...extra };
}

/** Copies the plan's blobs into a fresh RAM, as the VM builder will. */
function place(plan: BootPlan): GuestMemory {
  const mem = new GuestMemory(MEM);
  for (const b of plan.blobs) {
    const bytes = new Uint8Array(b.memSize);
    bytes.set(b.data);
    expect(mem.write(b.address, bytes), `blob at 0x${b.address.toString(16)}`).to.equal(true);
  }
  return mem;
}

const u32 = (m: GuestMemory, a: number) => m.view.getUint32(a, true);
const u64 = (m: GuestMemory, a: number) => u32(m, a) + u32(m, a + 4) * 2 ** 32;
function cstr(m: GuestMemory, a: number): string {
  let e = a;
  while (m.bytes[e] !== 0) e++;
  return Buffer.from(m.bytes.subarray(a, e)).toString();
}

describe('platform: boot loaders (Multiboot v1, PVH, format detection)', () => {
  before(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'boot-')); });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('Multiboot ELF32: 32-bit flat entry, EAX magic, EBX info with memory, mmap, cmdline, modules', () => {
    const k = build('mb32', ELF32_KERNEL, LDS_1M);
    expect(detectBootProtocol(k)).to.equal('multiboot');
    const mod = { name: 'initrd.img', data: new Uint8Array(5000).fill(7) };
    const plan = loadMultiboot(k, opts({ cmdline: 'verbose x=1', modules: [mod, { name: 'm2', data: new Uint8Array([1, 2, 3]) }] }));
    expect(plan.bsp).to.include({ eax: MULTIBOOT_BOOTLOADER_MAGIC, ebx: 0x9000, cs: 0x10, ds: 0x18 });
    expect(plan.bsp.eip).to.equal(plan.symbols.get('_start'));
    const m = place(plan);
    expect(m.bytes[plan.bsp.eip]).to.equal(0xb8);              // mov $imm, %eax
    const mbi = plan.bsp.ebx;
    expect(u32(m, mbi) & 0x24f).to.equal(0x24d);                // mem, cmdline, mods, mmap, loader name
    expect(u32(m, mbi + 4)).to.equal(639);
    expect(u32(m, mbi + 8)).to.equal((MEM - 0x100000) / 1024);
    expect(cstr(m, u32(m, mbi + 16))).to.equal('kernel.elf verbose x=1');
    expect(cstr(m, u32(m, mbi + 64))).to.equal('vmm-gdbstub');
    // Memory map: 20-byte entries with a size prefix; RAM below 640K and above 1 MiB.
    const mmap = u32(m, mbi + 48), len = u32(m, mbi + 44);
    const entries: Array<[number, number, number]> = [];
    for (let e = mmap; e < mmap + len; e += u32(m, e) + 4) entries.push([u64(m, e + 4), u64(m, e + 12), u32(m, e + 20)]);
    expect(entries).to.deep.include([0x100000, MEM - 0x100000, 1]);
    expect(entries[0]).to.deep.equal([0, 0x9fc00, 1]);
    // Modules: page-aligned after the kernel's bss, named, contents in place.
    expect(u32(m, mbi + 20)).to.equal(2);
    const mods = u32(m, mbi + 24);
    const start = u32(m, mods), end = u32(m, mods + 4);
    expect(start % 4096).to.equal(0);
    const kernelEnd = Math.max(...plan.blobs.filter((b) => b.address >= 0x100000 && b.address < start).map((b) => b.address + b.memSize));
    expect(start).to.be.at.least(kernelEnd);
    expect(end - start).to.equal(5000);
    expect(m.bytes[start + 4999]).to.equal(7);
    expect(cstr(m, u32(m, mods + 8))).to.equal('initrd.img');
    expect(u32(m, mods + 16)).to.equal(start + 8192);          // second module on the next page
    expect(plan.apsWaitForSipi).to.equal(true);
  });

  it('Multiboot a.out kludge (flag 16): a flat binary placed by the header fields, bss zeroed', () => {
    const src = `
      .text
      .globl _start
    hdr:
      .long 0x1BADB002, 0x10003, -(0x1BADB002 + 0x10003)
      .long hdr, hdr, load_end, bss_end, _start
    _start: mov $0x77, %eax
      hlt
    load_end:
      .bss
      .space 0x2000
    bss_end:`;
    const bin = build('kludge', src, `ENTRY(_start) SECTIONS { . = 0x200000; .text : { *(.text) } .bss : { *(.bss) } }`, { binary: true });
    expect(detectBootProtocol(bin)).to.equal('multiboot');
    const plan = loadMultiboot(bin, opts());
    const kernel = plan.blobs.find((b) => b.address === 0x200000)!;
    expect(kernel.data.length).to.equal(bin.length);
    expect(kernel.memSize).to.equal(bin.length + 0x2000);
    expect(plan.bsp.eip).to.equal(0x200000 + 32);
    const m = place(plan);
    expect(m.bytes[plan.bsp.eip]).to.equal(0xb8);
  });

  it('Multiboot ELF64 higher-half: the virtual e_entry is translated to its physical address', () => {
    const src = MB_HEADER(2) + `
      .text
      .globl _start
    _start: nop
      hlt`;
    const lds = `ENTRY(_start) SECTIONS { . = 0xffffffff80100000; .mboot : AT(0x100000) { *(.mboot) } .text : AT(0x100000 + SIZEOF(.mboot)) { *(.text) } }`;
    const k = build('hh64', src, lds, { bits64: true });
    expect(detectBootProtocol(k)).to.equal('multiboot');
    const plan = loadMultiboot(k, opts());
    expect(plan.bsp.eip).to.equal(0x10000c);
  });

  it('refuses what it cannot honour, with a diagnosis', () => {
    const unknownFlag = build('flag8', MB_HEADER(8) + '.text\n.globl _start\n_start: hlt\n', LDS_1M);
    expect(() => loadMultiboot(unknownFlag, opts())).to.throw(ElfError, /requires features .*0x8/);
    const low = build('low', MB_HEADER(0) + '.text\n.globl _start\n_start: hlt\n', LDS_1M.replace('0x100000', '0x9000'));
    expect(() => loadMultiboot(low, opts())).to.throw(ElfError, /overlaps the boot information/);
    const k = build('mb32b', ELF32_KERNEL, LDS_1M);
    expect(() => loadMultiboot(k, opts({ modules: [{ name: 'big', data: new Uint8Array(MEM) }] }))).to.throw(ElfError, /module big .* does not fit/);
    expect(() => loadMultiboot(k, opts({ memorySize: 0x100000 }))).to.throw(ElfError, /at least 2 MiB/);
    // A header with a bad checksum is no header: the file is then our ELF64 ABI's to judge.
    const bad = build('badsum', `.section .mboot, "a"\n.long 0x1BADB002, 0, 0\n.text\n.globl _start\n_start: hlt\n`, LDS_1M);
    expect(detectBootProtocol(bad)).to.equal('elf64');
    expect(() => loadMultiboot(bad, opts())).to.throw(ElfError, /no Multiboot header/);
  });

  it('PVH: the Xen PHYS32_ENTRY note wins; hvm_start_info v1 with cmdline, RSDP, memory map, modules', () => {
    const src = MB_HEADER(0) + `
      .section .note.pvh, "a"
      .align 4
      .long 4, 4, 18
      .asciz "Xen"
      .long pvh_start
      .text
      .globl _start, pvh_start
    _start: hlt
    pvh_start: mov $1, %eax
      hlt`;
    const k = build('pvh', src, `ENTRY(_start) PHDRS { text PT_LOAD; note PT_NOTE; } SECTIONS { . = 0x100000; .mboot : { *(.mboot) } :text .text : { *(.text) } :text .note.pvh : { *(.note.pvh) } :text :note }`);
    expect(detectBootProtocol(k)).to.equal('pvh');
    const plan = loadPvh(k, opts({ cmdline: 'console=ttyS0', modules: [{ name: 'mod', data: new Uint8Array([9, 9]) }] }));
    expect(plan.bsp.eip).to.equal(plan.symbols.get('pvh_start'));
    const m = place(plan);
    const si = plan.bsp.ebx;
    expect(u32(m, si)).to.equal(HVM_START_MAGIC);
    expect(u32(m, si + 4)).to.equal(1);
    expect(u32(m, si + 12)).to.equal(1);
    const mod = u64(m, si + 16);
    expect(m.bytes[u64(m, mod)]).to.equal(9);
    expect(u64(m, mod + 8)).to.equal(2);
    expect(cstr(m, u64(m, si + 24))).to.equal('console=ttyS0');
    expect(u64(m, si + 32)).to.equal(0xf0000);
    const map = u64(m, si + 40);
    expect(u32(m, si + 48)).to.equal(4);
    expect([u64(m, map + 72), u64(m, map + 80), u32(m, map + 88)]).to.deep.equal([0x100000, MEM - 0x100000, 1]);
  });

  it('ACPI: an OS scanning 0xE0000-0xFFFFF finds the RSDP; checksums hold; FADT PM timer; MADT per vCPU', () => {
    const plan = loadMultiboot(build('mb32c', ELF32_KERNEL, LDS_1M), opts({ vcpus: 3 }));
    const m = place(plan);
    let rsdp = -1;
    for (let a = 0xe0000; a < 0x100000; a += 16) if (Buffer.from(m.bytes.subarray(a, a + 8)).toString() === 'RSD PTR ') { rsdp = a; break; }
    expect(rsdp).to.equal(0xf0000);
    const sum = (a: number, n: number) => m.bytes.subarray(a, a + n).reduce((s, b) => (s + b) & 0xff, 0);
    expect(sum(rsdp, 20)).to.equal(0);
    const rsdt = u32(m, rsdp + 16);
    expect(sum(rsdt, u32(m, rsdt + 4))).to.equal(0);
    const tables = new Map<string, number>();
    for (let e = rsdt + 36; e < rsdt + u32(m, rsdt + 4); e += 4) {
      const t = u32(m, e);
      tables.set(Buffer.from(m.bytes.subarray(t, t + 4)).toString(), t);
      expect(sum(t, u32(m, t + 4))).to.equal(0);
    }
    expect(u32(m, tables.get('FACP')! + 76)).to.equal(0x608);
    const madt = tables.get('APIC')!;
    expect(u32(m, madt + 36)).to.equal(0xfee00000);
    expect((u32(m, madt + 4) - 44) / 8).to.equal(3);
    expect(m.bytes[madt + 44 + 8 * 2 + 3]).to.equal(2);         // third entry: APIC ID 2
  });

  it('the unmodified kvm-unit-tests .flat files are Multiboot (ELF32, flags 0)', function () {
    const dir = kvmUnitTestsOrSkip();
    if (!dir) this.skip();
    for (const name of ['dummy.flat', 'debug.flat', 'smptest.flat']) {
      const bytes = new Uint8Array(fs.readFileSync(path.join(dir!, name)));
      expect(detectBootProtocol(bytes), name).to.equal('multiboot');
      const plan = loadMultiboot(bytes, opts({ memorySize: 64 * 1024 * 1024, kernelName: name }));
      expect(plan.bsp.eip).to.equal(plan.symbols.get('start'));
    }
  });

  it('our ELF64 guests stay ELF64', () => {
    const guest = path.resolve(__dirname, '..', '..', '..', 'guests', 'counter.elf');
    expect(detectBootProtocol(new Uint8Array(fs.readFileSync(guest)))).to.equal('elf64');
  });
});
