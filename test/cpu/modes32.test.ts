// 32-bit protected mode and compatibility mode (SDM Vol. 1 3.6, Vol. 3 9.8.5): decoding by
// the code mode (INC/DEC 40-4F, operand/address size from CS.D with 66h/67h, 16-bit ModRM
// forms, moffs32), 32-bit stack operations, PUSHA/POPA, segment registers on the stack,
// segment bases, LDS/LES, and the Multiboot-style switch from 32-bit protected mode into
// long mode (CR4.PAE, EFER.LME, CR0.PG, far JMP ptr16:32 to a 64-bit code segment).
import { expect } from 'chai';
import * as fs from 'fs';
import * as path from 'path';
import { assembleProgram, makeCpu } from '../helpers/asm';
import { decodeAt } from '../../vmm/cpu/decoder';
import { Insn, Op } from '../../vmm/cpu/insn';
import { Cpu } from '../../vmm/cpu/cpu';
import { CpuExit } from '../../vmm/cpu/cpu-exit';
import { u64, u64ToBigInt } from '../../vmm/u64';

function dec(bytes: number[], mode: number): Insn {
  const i = new Insn();
  const b = new Uint8Array(32);
  b.set(bytes);
  decodeAt(b, 0, 32, 0, i, mode);
  return i;
}

describe('decoder by code mode', () => {
  it('40-4F are INC/DEC outside 64-bit mode and REX prefixes in 64-bit mode', () => {
    const a = dec([0x40], 1);
    expect([a.op, a.rm, a.size, a.len]).to.deep.equal([Op.INC_E, 0, 4, 1]);
    const b = dec([0x4f], 1);
    expect([b.op, b.rm]).to.deep.equal([Op.DEC_E, 7]);
    const c = dec([0x48, 0x89, 0xe5], 0); // mov %rsp,%rbp
    expect([c.op, c.size, c.len]).to.deep.equal([Op.MOV_EG, 8, 3]);
    const d = dec([0x48, 0x89, 0xe5], 1); // dec %eax; then mov %esp,%ebp
    expect([d.op, d.len]).to.deep.equal([Op.DEC_E, 1]);
  });

  it('operand and address sizes follow the mode, 66h/67h toggle them', () => {
    expect(dec([0x89, 0xd8], 1).size).to.equal(4);
    expect(dec([0x66, 0x89, 0xd8], 1).size).to.equal(2);
    expect(dec([0x89, 0xd8], 2).size).to.equal(2);
    expect(dec([0x66, 0x89, 0xd8], 2).size).to.equal(4);
    expect(dec([0x8b, 0x03], 1).asize).to.equal(4);
    expect(dec([0x67, 0x8b, 0x03], 1).asize).to.equal(2);
    const push = dec([0x50], 1);
    expect([push.op, push.size]).to.deep.equal([Op.PUSH_R, 4]);
    const moffs = dec([0xa1, 0x78, 0x56, 0x34, 0x12], 1);
    expect([moffs.op, moffs.dispLo, moffs.len]).to.deep.equal([Op.MOV_GE, 0x12345678, 5]);
    const moffs16 = dec([0xa1, 0x34, 0x12], 2);
    expect([moffs16.dispLo, moffs16.len]).to.deep.equal([0x1234, 3]);
  });

  it('16-bit ModRM forms: [bx+si], [bp+di+disp8] (SS), [disp16]', () => {
    const a = dec([0x8b, 0x00], 2);
    expect([a.base, a.index, a.seg]).to.deep.equal([3, 6, 3 + 3]);
    const b = dec([0x8b, 0x43, 0xfe], 2);
    expect([b.base, b.index, b.dispLo | 0, b.seg]).to.deep.equal([5, 7, -2, 3 + 2]);
    const c = dec([0x8b, 0x06, 0x34, 0x12], 2);
    expect([c.base, c.index, c.dispLo, c.len]).to.deep.equal([-1, -1, 0x1234, 4]);
  });

  it('[disp32] is absolute outside 64-bit mode and RIP-relative in it', () => {
    const a = dec([0x8b, 0x05, 0x00, 0x10, 0x00, 0x00], 1);
    expect([a.base, a.dispLo]).to.deep.equal([-1, 0x1000]);
    const b = dec([0x8b, 0x05, 0x00, 0x10, 0x00, 0x00], 0);
    expect(b.dispLo).to.equal(0x1006);
  });

  it('near branches wrap at 32 bits (16 with a 16-bit operand size); far pointers and the 64-bit-invalid opcodes', () => {
    const j = dec([0xe9, 0xf0, 0xff, 0xff, 0xff], 1); // at 0: jmp -16
    expect([j.op, j.targetLo, j.targetHi]).to.deep.equal([Op.JMP_REL, 0xfffffff5, 0]);
    const j16 = dec([0xe9, 0xf0, 0xff], 2);
    expect([j16.targetLo, j16.len]).to.deep.equal([0xfff3, 3]);
    const far = dec([0xea, 0x48, 0x01, 0x40, 0x00, 0x08, 0x00], 1);
    expect([far.op, far.immLo, far.imm2, far.len]).to.deep.equal([Op.JMP_FAR_PTR, 0x400148, 8, 7]);
    expect(dec([0xea, 0, 0, 0, 0, 0, 0], 0).op).to.equal(Op.UD);
    expect(dec([0x1e], 1).op).to.equal(Op.PUSH_SEG);
    expect(dec([0x1e], 0).op).to.equal(Op.UD);
    expect(dec([0x60], 1).op).to.equal(Op.PUSHA);
    expect(dec([0x27], 1).op).to.equal(Op.UD); // DAA: not modelled (gcc never emits it)
    expect(dec([0x63, 0xc0], 1).op).to.equal(Op.UD); // ARPL
  });
});

const PROGRAM = `
.code32
start:
  mov $0x9000, %esp
  mov $5, %eax
  inc %eax
  mov $3, %ecx
  dec %ecx
  movl %eax, res_inc
  movl %ecx, res_dec
  push $0x12345678
  pop %ebx
  movl %ebx, res_pop
  call sub1
  movl %eax, res_call
  movl %esp, res_esp
  mov $1, %eax
  mov $2, %ecx
  mov $3, %edx
  mov $4, %ebx
  mov $6, %ebp
  mov $7, %esi
  mov $8, %edi
  pusha
  xor %eax, %eax
  xor %ecx, %ecx
  xor %edi, %edi
  xor %ebp, %ebp
  movl 12(%esp), %edx
  movl %edx, res_pusha_esp
  popa
  lea (%eax,%ecx,8), %edx
  add %edi, %edx
  add %ebp, %edx
  movl %edx, res_popa
  stc
  pushf
  pop %eax
  and $1, %eax
  movl %eax, res_flags
  movw $0xbeef, %ax
  movw %ax, res_w
  mov $tbl, %ebx
  mov $4, %esi
  addr16 movl (%bx,%si), %eax
  movl %eax, res_a16
  lgdt gdtr
  push %ds
  pop %es
  mov $0x18, %ax
  mov %ax, %fs
  mov %ax, %es
  movl %es:8, %eax
  movl %eax, res_es
  push %ds
  pop %es
  lds farptr, %esi
  mov %ds, %eax
  movl %eax, %es:res_lds_sel
  mov $0x10, %ax
  mov %ax, %ds
  movl %esi, res_lds_off
  smsw %eax
  movl %eax, res_smsw
  mov $0x8, %eax
  lmsw %ax
  smsw %eax
  movl %eax, res_lmsw
  clts
  call build_tables
  mov %cr4, %eax
  bts $5, %eax
  mov %eax, %cr4
  mov $0x20000, %eax
  mov %eax, %cr3
  mov $0xc0000080, %ecx
  rdmsr
  bts $8, %eax
  wrmsr
  mov %cr0, %eax
  bts $31, %eax
  mov %eax, %cr0
  call compat_sub
  movl %eax, res_compat
  ljmp $0x20, $long64
sub1:
  mov $0x55, %eax
  ret
compat_sub:
  mov $0x77, %eax
  ret
build_tables:
  movl $0x21003, 0x20000
  movl $0x22003, 0x21000
  movl $0x83, 0x22000
  ret
.code64
long64:
  movabs $0x123456789abcdef0, %rax
  movq %rax, res64
  mov %rsp, %rbx
  hlt
.data
.balign 8
gdt:
  .quad 0
  .quad 0x00cf9b000000ffff
  .quad 0x00cf93000000ffff
  .quad 0x00cf9300f000ffff
  .quad 0x00af9b000000ffff
gdtr:
  .word 39
  .long gdt
farptr:
  .long 0xabcd
  .word 0x10
.balign 8
tbl: .long 0x11111111, 0x22222222, 0x33333333
res_inc: .long 0
res_dec: .long 0
res_pop: .long 0
res_call: .long 0
res_esp: .long 0
res_pusha_esp: .long 0
res_popa: .long 0
res_flags: .long 0
res_w: .long 0
res_a16: .long 0
res_es: .long 0
res_lds_sel: .long 0
res_lds_off: .long 0
res_compat: .long 0
res_smsw: .long 0
res_lmsw: .long 0
res64: .quad 0
`;

/** A flat GDT at 0x500 (null, 0x08 code32, 0x10 data32), then the Multiboot hand-over state at `eip`. */
function enterFlatProtectedMode(cpu: Cpu, eip: number): void {
  const dv = cpu.mem.view;
  dv.setUint32(0x508, 0x0000ffff, true); dv.setUint32(0x50c, 0x00cf9b00, true);
  dv.setUint32(0x510, 0x0000ffff, true); dv.setUint32(0x514, 0x00cf9300, true);
  cpu.startFlat32({ eip, cs: 0x08, ds: 0x10, eax: 0x2badb002, ebx: 0x9000, esi: 0, gdtBase: 0x500, gdtLimit: 0x17 });
}

function runToHlt(cpu: Cpu): CpuExit {
  for (let guard = 0; guard < 100; guard++) {
    const e = cpu.run(100000);
    if (e.kind === 'rdmsr' || e.kind === 'wrmsr') {
      const ecx = Number(cpu.getGpr(1).lo);
      if (e.kind === 'rdmsr') {
        const v = cpu.readMsr(ecx) ?? u64(0);
        cpu.setGpr(0, u64(v.lo)); cpu.setGpr(2, u64(v.hi));
      } else {
        cpu.writeMsr(ecx, { lo: cpu.getGpr(0).lo, hi: cpu.getGpr(2).lo });
      }
      cpu.completeEmulatedInstruction(e.length);
      continue;
    }
    return e;
  }
  throw new Error('too many exits');
}

describe('32-bit protected mode into long mode', () => {
  it('runs a .code32 program in flat protected mode, then enters 64-bit mode as Multiboot kernels do', () => {
    const p = assembleProgram(PROGRAM, 0x1000);
    const cpu = makeCpu(p.code, { origin: 0x1000, memSize: 1 << 20 });
    cpu.mem.view.setUint32(0xf008, 0x33333333, true); // ES:8 with ES base 0xf000
    enterFlatProtectedMode(cpu, 0x1000);
    expect(cpu.codeMode).to.equal(1);
    const e = runToHlt(cpu);
    expect(e.kind).to.equal('hlt');
    const dv = cpu.mem.view;
    const r = (name: string): number => dv.getUint32(p.labels[name], true);
    expect(r('res_inc')).to.equal(6);
    expect(r('res_dec')).to.equal(2);
    expect(r('res_pop')).to.equal(0x12345678);
    expect(r('res_call')).to.equal(0x55);
    expect(r('res_esp')).to.equal(0x9000);
    expect(r('res_pusha_esp')).to.equal(0x9000); // the ESP PUSHA saved
    expect(r('res_popa')).to.equal(1 + 2 * 8 + 8 + 6);
    expect(r('res_flags')).to.equal(1);
    expect(r('res_w')).to.equal(0xbeef);
    expect(r('res_a16')).to.equal(0x22222222);
    expect(r('res_es')).to.equal(0x33333333);
    expect(r('res_lds_sel')).to.equal(0x10);
    expect(r('res_lds_off')).to.equal(0xabcd);
    expect(r('res_compat')).to.equal(0x77);
    expect(r('res_smsw')).to.equal(0x11); // SMSW r32: CR0 (PE | ET)
    expect(r('res_lmsw')).to.equal(0x19); // LMSW sets TS and cannot clear PE
    expect(u64ToBigInt({ lo: r('res64'), hi: dv.getUint32(p.labels.res64 + 4, true) })).to.equal(0x123456789abcdef0n);
    expect(Number(cpu.getReg('efer').lo) & 0x500).to.equal(0x500); // LME | LMA
    expect(cpu.getReg('cs').lo).to.equal(0x20);
  });
});

// ../shared/kvm-unit-tests beside the repository (or beside the worktree's parent), or $KVM_UNIT_TESTS_DIR
const REPO = path.join(__dirname, '../../..');
const KUT = [process.env.KVM_UNIT_TESTS_DIR ?? '', path.join(REPO, '../shared/kvm-unit-tests'), path.join(REPO, '../../shared/kvm-unit-tests')]
  .find((d) => d !== '' && fs.existsSync(d)) ?? path.join(REPO, '../shared/kvm-unit-tests');

/** The PT_LOAD segments of an ELF32 file at their physical addresses; returns the entry point. */
function loadElf32(cpu: Cpu, f: Buffer): number {
  const phoff = f.readUInt32LE(28), phnum = f.readUInt16LE(44);
  for (let k = 0; k < phnum; k++) {
    const b = phoff + k * 32;
    if (f.readUInt32LE(b) !== 1) continue;
    const off = f.readUInt32LE(b + 4), pa = f.readUInt32LE(b + 12), size = f.readUInt32LE(b + 16);
    cpu.mem.write(pa, f.subarray(off, off + size));
  }
  return f.readUInt32LE(24);
}

describe('kvm-unit-tests 32-bit start-up (cstart64.S)', () => {
  for (const name of ['dummy', 'debug', 'syscall']) {
    it(`${name}.flat: from the Multiboot entry (32-bit, paging off) into its 64-bit code at start64`, function () {
      const file = path.join(KUT, `${name}.flat`);
      if (!fs.existsSync(file)) { console.log(`    [skipped: ${file} is not there]`); this.skip(); }
      const cpu = makeCpu(new Uint8Array(0), { memSize: 32 << 20 });
      const entry = loadElf32(cpu, fs.readFileSync(file));
      enterFlatProtectedMode(cpu, entry);
      // start64 is where the far JMP of the 32-bit code lands (ljmp $8, $start64)
      let reached = false;
      for (let n = 0; n < 200 && !reached; n++) {
        const e = runToHlt1(cpu);
        expect(['budget', 'hlt', 'rdmsr', 'wrmsr']).to.include(e.kind);
        reached = cpu.getReg('cs').lo === 0x08 && (Number(cpu.getReg('efer').lo) & 0x400) !== 0 && cpu.codeMode === 0;
      }
      expect(reached).to.equal(true);
      expect(Number(cpu.getReg('cr0').lo) >>> 31).to.equal(1);
      expect(Number(cpu.getReg('cr4').lo) & 0x20).to.equal(0x20);
    });
  }
});

/** One instruction, emulating RDMSR/WRMSR. */
function runToHlt1(cpu: Cpu): CpuExit {
  const e = cpu.run(1);
  if (e.kind === 'rdmsr' || e.kind === 'wrmsr') {
    const ecx = Number(cpu.getGpr(1).lo);
    if (e.kind === 'rdmsr') {
      const v = cpu.readMsr(ecx) ?? u64(0);
      cpu.setGpr(0, u64(v.lo)); cpu.setGpr(2, u64(v.hi));
    } else expect(cpu.writeMsr(ecx, { lo: cpu.getGpr(0).lo, hi: cpu.getGpr(2).lo })).to.equal(true);
    cpu.completeEmulatedInstruction(e.length);
  }
  return e;
}

// 32-bit IDT (8-byte gates) and TSS: INT n at CPL 0 (same stack), #GP with its error code,
// and INT n from CPL 3 onto SS0:ESP0 of the 32-bit TSS with the old SS:ESP in the frame.
const EVENTS = `
.code32
start:
  mov $0x9000, %esp
  lgdt gdtr
  lidt idtr
  mov $0x38, %ax
  ltr %ax
  int $0x30
  movl %esp, res_esp_after
  mov $0x50, %ax
bad_load:
  mov %ax, %ds
  movl $0x1b, %eax
  pushl $0x23
  pushl $0x7000
  pushl $0x202
  pushl $0x1b
  pushl $user
  iret
user:
  movl $0x1234, %eax
  int $0x31
  hlt
h30:
  movl 0(%esp), %eax
  movl %eax, res30_eip
  movl 4(%esp), %eax
  movl %eax, res30_cs
  movl %esp, res30_esp
  iret
h13:
  movl 0(%esp), %eax
  movl %eax, res13_err
  movl 4(%esp), %eax
  movl %eax, res13_eip
  addl $4, %esp
  addl $2, 0(%esp)
  iret
h31:
  mov $0x10, %cx     # the IRET to CPL 3 made DS null (DPL 0 < CPL 3): reload it before any data access
  mov %cx, %ds
  movl %esp, res31_esp
  movl 4(%esp), %eax
  movl %eax, res31_cs
  movl 12(%esp), %eax
  movl %eax, res31_usp
  movl 16(%esp), %eax
  movl %eax, res31_uss
  mov %cs, %eax
  movl %eax, res31_mycs
  hlt
.data
.balign 8
gdt:
  .quad 0
  .quad 0x00cf9b000000ffff
  .quad 0x00cf93000000ffff
  .quad 0x00cffb000000ffff
  .quad 0x00cff3000000ffff
  .quad 0, 0
  .quad 0x00008900b0000067
gdtr:
  .word 63
  .long gdt
idtr:
  .word 0x31 * 8 + 7
  .long 0xa000
res_esp_after: .long 0
res30_eip: .long 0
res30_cs: .long 0
res30_esp: .long 0
res13_err: .long 0
res13_eip: .long 0
res31_esp: .long 0
res31_cs: .long 0
res31_usp: .long 0
res31_uss: .long 0
res31_mycs: .long 0
`;

describe('event delivery in 32-bit protected mode (8-byte gates, 32-bit TSS)', () => {
  it('INT n at CPL 0 pushes EFLAGS/CS/EIP on the same stack; #GP(selector) has its error code; INT from CPL 3 switches to SS0:ESP0 and pushes the user SS:ESP', () => {
    const p = assembleProgram(EVENTS, 0x1000);
    const cpu = makeCpu(p.code, { origin: 0x1000, memSize: 1 << 20 });
    const dv = cpu.mem.view;
    const gate = (v: number, h: number, dpl: number): void => {
      dv.setUint32(0xa000 + v * 8, (0x08 << 16) | (h & 0xffff), true);
      dv.setUint32(0xa004 + v * 8, (h & 0xffff0000) | 0x8e00 | (dpl << 13), true);
    };
    gate(0x30, p.labels.h30, 0);
    gate(13, p.labels.h13, 0);
    gate(0x31, p.labels.h31, 3);
    dv.setUint32(0xb004, 0x8800, true); // TSS ESP0
    dv.setUint32(0xb008, 0x10, true); // TSS SS0
    enterFlatProtectedMode(cpu, 0x1000);
    const e = runToHlt(cpu);
    expect(e.kind, JSON.stringify(e) + ' rip ' + cpu.getReg('rip').lo.toString(16)).to.equal('hlt');
    const r = (name: string): number => dv.getUint32(p.labels[name], true);
    expect(r('res30_eip')).to.equal(p.labels.bad_load - 10); // after the 2-byte INT (then 6 + 4 bytes to bad_load)
    expect(r('res30_cs')).to.equal(0x08);
    expect(r('res30_esp')).to.equal(0x9000 - 12);
    expect(r('res_esp_after')).to.equal(0x9000);
    expect(r('res13_err')).to.equal(0x50);
    expect(r('res13_eip')).to.equal(p.labels.bad_load);
    expect(r('res31_esp')).to.equal(0x8800 - 20);
    expect(r('res31_cs')).to.equal(0x1b);
    expect(r('res31_usp')).to.equal(0x7000);
    expect(r('res31_uss')).to.equal(0x23);
    expect(r('res31_mycs')).to.equal(0x08);
    expect(cpu.getReg('ss').lo).to.equal(0x10);
  });
});
