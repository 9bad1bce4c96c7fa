import { expect } from 'chai';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { detectBootProtocol } from '../../vmm/loader/boot-format';
import { parseElf } from '../../vmm/loader/elf';
import { ElfError } from '../../vmm/loader/elf-types';
import { loadImage } from '../../vmm/loader/load';
import { GuestMemory } from '../../vmm/memory';
import { STACK_SIZE, stackAreaBase, stackTop } from '../../vmm/loader/stacks';
import { PAGE_TABLES_SIZE, pageTablesBase } from '../../vmm/loader/page-tables';
import { createVm } from '../../vmm/api/create-vm';
import { DEFAULT_VM_OPTIONS } from '../../vmm/api/vm-options';

const MEM = 4 * 1024 * 1024;

/** A small static ET_EXEC built by the real assembler and linker: text at 1 MiB, data, bss. */
function buildGoodElf(dir: string): Uint8Array {
  const src = path.join(dir, 'good.s');
  fs.writeFileSync(src, [
    '.text', '.globl _start', '_start:', '  mov $1, %eax', '  hlt', '  jmp _start',
    '.data', '.globl value', 'value: .quad 0x1122334455667788',
    '.bss', '.globl zeroed', 'zeroed: .space 4096',
    '.globl high', '.set high, 0xffffffff80001000', '',
  ].join('\n'));
  const lds = path.join(dir, 'good.ld');
  fs.writeFileSync(lds, [
    'ENTRY(_start)', 'SECTIONS {', '  . = 0x100000;', '  .text : { *(.text) }',
    '  . = ALIGN(4096);', '  .data : { *(.data) }', '  .bss : { *(.bss) }', '}', '',
  ].join('\n'));
  execFileSync('as', ['--64', '-o', path.join(dir, 'good.o'), src]);
  execFileSync('ld', ['-static', '-nostdlib', '-T', lds, '-o', path.join(dir, 'good.elf'), path.join(dir, 'good.o')]);
  return new Uint8Array(fs.readFileSync(path.join(dir, 'good.elf')));
}

function dv(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

/** Offset of program header `i` in an ELF64 file. */
function phdr(b: Uint8Array, i: number): number {
  return Number(dv(b).getBigUint64(32, true)) + i * dv(b).getUint16(54, true);
}

/** Index of the n-th PT_LOAD program header. */
function loadIndex(b: Uint8Array, n: number): number {
  const phnum = dv(b).getUint16(56, true);
  for (let i = 0, seen = 0; i < phnum; i++) {
    if (dv(b).getUint32(phdr(b, i), true) === 1 && seen++ === n) return i;
  }
  throw new Error('no such PT_LOAD');
}

function expectElfError(b: Uint8Array, pattern: RegExp, mem = MEM, vcpus = 1): void {
  let err: unknown;
  try {
    parseElf(b, mem, vcpus);
  } catch (e) {
    err = e;
  }
  expect(err, 'parseElf should reject').to.be.instanceOf(ElfError);
  const msg = (err as Error).message;
  expect(msg).to.match(pattern);
  expect(msg).to.not.include('\n');
}

describe('ELF loader (guest ABI: static ELF64 x86-64 ET_EXEC)', () => {
  let dir: string;
  let good: Uint8Array;
  const mutate = (f: (b: Uint8Array, v: DataView) => void): Uint8Array => {
    const b = good.slice();
    f(b, dv(b));
    return b;
  };

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'elf-test-'));
    good = buildGoodElf(dir);
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('loads PT_LOAD segments at p_paddr, zero-fills to p_memsz and reads .symtab', () => {
    const img = parseElf(good, MEM);
    const start = img.symbols.get('_start');
    expect(start).to.equal(0x100000);
    // a higher-half value (>= 2^53) is exact, as a signed number like the CPU's RIP
    expect(img.symbols.get('high')).to.equal(-0x7ffff000);
    expect(img.entry).to.equal(start);
    const value = img.symbols.get('value')!;
    const zeroed = img.symbols.get('zeroed')!;
    expect(value).to.be.a('number');
    expect(zeroed).to.equal(value + 8);
    const mem = new GuestMemory(MEM);
    mem.bytes.fill(0xcc);
    loadImage(mem, img);
    expect(Array.from(mem.bytes.subarray(0x100000, 0x100005))).to.deep.equal([0xb8, 1, 0, 0, 0]);
    expect(mem.view.getBigUint64(value, true)).to.equal(0x1122334455667788n);
    expect(mem.bytes.subarray(zeroed, zeroed + 4096).every((x) => x === 0)).to.equal(true);
    // Only the image is touched.
    expect(mem.bytes[zeroed + 4096]).to.equal(0xcc);
  });

  it('accepts the committed built-in guests of our ELF64 ABI (not the Multiboot hobby kernel)', function () {
    const guestsDir = path.join(__dirname, '..', '..', '..', 'guests');
    const elfs = fs.existsSync(guestsDir) ? fs.readdirSync(guestsDir).filter((f) => f.endsWith('.elf')) : [];
    const abi = elfs.filter((f) => detectBootProtocol(new Uint8Array(fs.readFileSync(path.join(guestsDir, f)))) === 'elf64');
    if (abi.length === 0) this.skip();
    expect(abi.length, 'only hobby.elf uses a PC boot protocol').to.equal(elfs.length - (elfs.includes('hobby.elf') ? 1 : 0));
    for (const f of abi) {
      const img = parseElf(new Uint8Array(fs.readFileSync(path.join(guestsDir, f))), 64 * 1024 * 1024, 4);
      expect(img.symbols.get('_start'), f).to.equal(img.entry);
    }
  });

  it('rejects a truncated file or header', () => {
    expectElfError(good.slice(0, 10), /truncated ELF: ELF identification/);
    expectElfError(good.slice(0, 40), /truncated ELF: ELF header/);
    expectElfError(good.slice(0, 100), /truncated ELF: program header table/);
    expectElfError(new Uint8Array(0), /truncated/);
  });

  it('rejects a truncated segment', () => {
    const p = phdr(good, loadIndex(good, 0));
    const off = Number(dv(good).getBigUint64(p + 8, true)) + Number(dv(good).getBigUint64(p + 32, true));
    expectElfError(good.slice(0, off - 1), /truncated ELF: segment \d+ contents/);
  });

  it('rejects wrong magic, class, endianness, machine and type', () => {
    expectElfError(mutate((b) => { b[1] = 0x45 + 1; }), /not an ELF file/);
    expectElfError(mutate((b) => { b[4] = 1; }), /wrong ELF class 1/);
    expectElfError(mutate((b) => { b[5] = 2; }), /little-endian/);
    expectElfError(mutate((_, v) => v.setUint16(18, 3, true)), /wrong ELF machine 3/);
    expectElfError(mutate((_, v) => v.setUint16(16, 3, true)), /wrong ELF type 3 \(ET_DYN/);
    expectElfError(mutate((_, v) => v.setUint16(16, 1, true)), /wrong ELF type 1/);
  });

  it('rejects a segment outside RAM', () => {
    expectElfError(good, /outside guest RAM/, 0x100000);
    const far = mutate((b, v) => v.setBigUint64(phdr(b, loadIndex(b, 1)) + 24, 0x10000000n, true));
    expectElfError(far, /segment \d+ \[0x10000000, .*outside guest RAM \(0x400000 bytes\)/);
    const huge = mutate((b, v) => v.setBigUint64(phdr(b, loadIndex(b, 1)) + 24, 0xffffffff00000000n, true));
    expectElfError(huge, /out of range/);
  });

  it('rejects a segment overlapping the per-vCPU stacks at the top of RAM', () => {
    const img = parseElf(good, MEM);
    const last = img.segments.reduce((a, s) => Math.max(a, s.address + s.memSize), 0);
    // RAM just big enough for the image, the page tables and one stack, then one byte short.
    const fits = Math.ceil(last / 4096) * 4096 + PAGE_TABLES_SIZE + STACK_SIZE;
    expect(() => parseElf(good, fits, 1)).to.not.throw();
    expectElfError(good, /overlaps the vCPU stacks/, fits - 16, 1);
    expectElfError(good, /overlaps the vCPU stacks/, fits, 2);
  });

  it('rejects overlapping segments', () => {
    const b = mutate((b, v) => {
      const first = Number(v.getBigUint64(phdr(b, loadIndex(b, 0)) + 24, true));
      v.setBigUint64(phdr(b, loadIndex(b, 1)) + 24, BigInt(first + 2), true);
    });
    expectElfError(b, /overlapping segments: \[0x100000,/);
  });

  it('rejects an entry point outside every executable segment', () => {
    expectElfError(mutate((_, v) => v.setBigUint64(24, 0x200000n, true)), /entry point 0x200000 is not inside any executable segment/);
    const dataSeg = parseElf(good, MEM).segments.find((s) => (s.flags & 1) === 0)!;
    expectElfError(mutate((_, v) => v.setBigUint64(24, BigInt(dataSeg.address), true)), /not inside any executable segment/);
  });

  it('rejects p_filesz > p_memsz and a file with no loadable segment', () => {
    expectElfError(mutate((b, v) => v.setBigUint64(phdr(b, loadIndex(b, 0)) + 40, 1n, true)), /p_filesz .* > p_memsz/);
    expectElfError(mutate((_, v) => v.setUint16(56, 0, true)), /no program headers/);
  });

  it('rejects a dynamically linked image (PT_INTERP)', () => {
    expectElfError(mutate((b, v) => v.setUint32(phdr(b, loadIndex(b, 1)), 3, true)), /dynamically linked/);
  });

  it('rejects a section header table past the end of the file', () => {
    expectElfError(mutate((_, v) => v.setBigUint64(40, BigInt(good.length), true)), /truncated ELF: section header table/);
  });
});

describe('per-vCPU stacks (guest ABI)', () => {
  it('places 64 KiB 16-byte-aligned stacks at the top of RAM, vCPU 0 topmost', () => {
    const mem = 64 * 1024 * 1024;
    expect(stackTop(mem, 0, 4)).to.equal(mem);
    expect(stackTop(mem, 1, 4)).to.equal(mem - 0x10000);
    expect(stackTop(mem, 3, 4)).to.equal(mem - 0x30000);
    expect(stackAreaBase(mem, 4)).to.equal(mem - 0x40000);
    expect(stackTop(mem + 8, 0, 1) % 16).to.equal(0);
  });
  it('rejects a vCPU index out of range', () => {
    expect(() => stackTop(1 << 20, 2, 2)).to.throw(RangeError);
    expect(() => stackTop(1 << 20, -1, 2)).to.throw(RangeError);
  });
});

describe('guest ABI page tables (loader)', () => {
  let dir: string;
  let good: Uint8Array;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pt-'));
    good = buildGoodElf(dir);
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('builds an identity map in reserved RAM below the stacks; CR3 of every vCPU points at it; gdb-side reads translate through it', () => {
    const opts = { ...DEFAULT_VM_OPTIONS, memMiB: 8, vcpus: 2 };
    const mem = opts.memMiB << 20;
    const vm = createVm(parseElf(good, mem, 2), opts);
    const base = pageTablesBase(mem, 2);
    expect(base).to.equal(mem - 2 * STACK_SIZE - PAGE_TABLES_SIZE);
    for (const v of [0, 1]) expect(vm.getRegister(v, 'cr3')).to.deep.equal({ lo: base, hi: 0 });
    const pml4 = vm.readMemory(base, 8)!;
    expect(dv(pml4).getUint32(0, true)).to.equal(base + 0x1000 + 0x27);
    const pdpt = vm.readMemory(base + 0x1000, 16)!;
    expect([dv(pdpt).getUint32(0, true), dv(pdpt).getUint32(8, true)]).to.deep.equal([0xe7, 0x400000e7]);
    // virtual = physical for RAM; beyond the 512 GiB map: unmapped
    expect(Array.from(vm.readVirtual(0, { lo: 0x100000, hi: 0 }, 5)!)).to.deep.equal([0xb8, 1, 0, 0, 0]);
    expect(vm.readVirtual(0, { lo: 0, hi: 0x80 }, 1)).to.equal(undefined);
    expect(vm.readVirtual(0, { lo: mem, hi: 0 }, 1)).to.equal(undefined); // mapped, but not RAM
    expect(vm.writeVirtual(1, { lo: 0x200000, hi: 0 }, Uint8Array.of(7))).to.equal(true);
    expect(vm.readMemory(0x200000, 1)![0]).to.equal(7);
    const stop = vm.run([0], 10);
    expect(stop.kind).to.not.equal('triple-fault');
  });
});
