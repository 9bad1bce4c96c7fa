// Segmentation outside 64-bit mode (SDM Vol. 3 5.3, Vol. 2 MOV/PUSH/JMP): data accesses add
// the segment base and are checked against the limit (expand-up and expand-down; #GP(0), #SS(0)
// for SS); instruction fetch is at CS.base + EIP and a fetch or near branch beyond the CS
// limit is #GP(0); a null data segment is #GP(0). 64-bit mode ignores limits and DS bases.
import { expect } from 'chai';
import { assembleProgram, makeCpu } from '../helpers/asm';
import { Cpu } from '../../vmm/cpu/cpu';
import { CpuExit } from '../../vmm/cpu/cpu-exit';

const GDT = 0x500;
// 0x08 code32 flat, 0x10 data flat, 0x18 data limit 0xFFF, 0x20 data expand-down limit 0xFFF
// (B=1), 0x28 code32 base 0x20000, 0x30 code32 limit 0x2FFF, 0x38 data limit 0x8FFF, 0x40
// data base 0x10000, 0x48 code64 flat
const ENTRIES: [number, number][] = [
  [0, 0], [0x0000ffff, 0x00cf9b00], [0x0000ffff, 0x00cf9300], [0x00000fff, 0x00409300],
  [0x00000fff, 0x00409700], [0x0000ffff, 0x00cf9b02], [0x00002fff, 0x00409b00], [0x00008fff, 0x00409300],
  [0x0000ffff, 0x00cf9301], [0x0000ffff, 0x00af9b00],
];

/** The .code32 program at 0x1000, entered in flat protected mode with this GDT; exceptions 12/13 exit. */
function run32(body: string, setup?: (c: Cpu) => void): { cpu: Cpu; exit: CpuExit; labels: Record<string, number> } {
  const p = assembleProgram(`.code32\n${body}\n hlt\n`, 0x1000);
  const cpu = makeCpu(p.code, { origin: 0x1000, memSize: 1 << 20 });
  ENTRIES.forEach(([lo, hi], n) => { cpu.mem.view.setUint32(GDT + n * 8, lo, true); cpu.mem.view.setUint32(GDT + n * 8 + 4, hi, true); });
  cpu.startFlat32({ eip: 0x1000, cs: 0x08, ds: 0x10, eax: 0, ebx: 0, esi: 0, gdtBase: GDT, gdtLimit: ENTRIES.length * 8 - 1 });
  cpu.intercepts.exceptionBitmap = (1 << 12) | (1 << 13);
  setup?.(cpu);
  return { cpu, exit: cpu.run(100000), labels: p.labels };
}

const eip = (c: Cpu): number => c.getReg('rip').lo;

describe('cpu: segment bases and limits outside 64-bit mode', () => {
  it('an expand-up data segment: the last byte of an access must be within the limit (#GP(0) at the instruction)', () => {
    let r = run32('mov $0x18, %ax\n mov %ax, %es\n movl %es:0xffc, %eax\n movb %es:0xfff, %al');
    expect(r.exit.kind).to.equal('hlt');
    r = run32('mov $0x18, %ax\n mov %ax, %es\n x: movl %es:0xffd, %eax');
    expect(r.exit).to.include({ kind: 'exception', vector: 13, errorCode: 0 });
    expect(eip(r.cpu)).to.equal(r.labels.x);
    r = run32('mov $0x18, %ax\n mov %ax, %ds\n mov $0x1000, %esi\n mov $0x2000, %edi\n x: movsl');
    expect(r.exit).to.include({ kind: 'exception', vector: 13 });
    expect(eip(r.cpu)).to.equal(r.labels.x);
  });

  it('an expand-down data segment (B=1): offsets above the limit up to 4 GiB are valid, the rest #GP(0)', () => {
    let r = run32('mov $0x20, %ax\n mov %ax, %es\n movl %es:0x1000, %eax\n movl %es:0xffff0, %eax');
    expect(r.exit.kind).to.equal('hlt');
    r = run32('mov $0x20, %ax\n mov %ax, %es\n x: movl %es:0xffe, %eax');
    expect(r.exit).to.include({ kind: 'exception', vector: 13, errorCode: 0 });
    expect(eip(r.cpu)).to.equal(r.labels.x);
  });

  it('SS-relative accesses beyond the SS limit are #SS(0): a push, and an [EBP+disp] operand', () => {
    let r = run32('mov $0x38, %ax\n mov %ax, %ss\n mov $0x9002, %esp\n x: pushl %eax');
    expect(r.exit).to.include({ kind: 'exception', vector: 12, errorCode: 0 });
    expect(eip(r.cpu)).to.equal(r.labels.x);
    expect(r.cpu.getGpr(4).lo).to.equal(0x9002);
    r = run32('mov $0x38, %ax\n mov %ax, %ss\n mov $0x8000, %esp\n mov $0x8ffe, %ebp\n x: movl 0(%ebp), %eax');
    expect(r.exit).to.include({ kind: 'exception', vector: 12, errorCode: 0 });
    expect(eip(r.cpu)).to.equal(r.labels.x);
    r = run32('mov $0x38, %ax\n mov %ax, %ss\n mov $0x9000, %esp\n pushl %eax\n popl %ebx');
    expect(r.exit.kind).to.equal('hlt');
  });

  it('a null data segment is #GP(0) on access; DS and CS bases are added to the linear address', () => {
    let r = run32('xor %eax, %eax\n mov %ax, %fs\n x: movl %fs:0x100, %eax');
    expect(r.exit).to.include({ kind: 'exception', vector: 13, errorCode: 0 });
    expect(eip(r.cpu)).to.equal(r.labels.x);
    r = run32('mov $0x40, %ax\n mov %ax, %ds\n movl 0x100, %eax', (c) => c.mem.view.setUint32(0x10100, 0xcafe, true));
    expect(r.exit.kind).to.equal('hlt');
    expect(r.cpu.getGpr(0).lo).to.equal(0xcafe);
    // far jump to a code segment based at 0x20000: EIP 0x10 fetches linear 0x20010
    r = run32('ljmp $0x28, $0x10', (c) => c.mem.write(0x20010, new Uint8Array([0xb8, 0x42, 0, 0, 0, 0xeb, 0x00, 0xf4]))); // mov $0x42,%eax; jmp .+0; hlt
    expect(r.exit.kind).to.equal('hlt');
    expect(r.cpu.getGpr(0).lo).to.equal(0x42);
    expect(eip(r.cpu)).to.equal(0x17);
  });

  it('CS limit: a near jump beyond it is #GP(0) at the jump; running off its end is #GP(0) at the first byte beyond', () => {
    let r = run32('ljmp $0x30, $1f\n 1: x: jmp 0x3000');
    expect(r.exit).to.include({ kind: 'exception', vector: 13, errorCode: 0 });
    expect(eip(r.cpu)).to.equal(r.labels.x);
    // the code at 0x2ffe: two NOPs, then the limit
    r = run32('ljmp $0x30, $0x2ffe', (c) => c.mem.write(0x2ffe, new Uint8Array([0x90, 0x90, 0x90])));
    expect(r.exit).to.include({ kind: 'exception', vector: 13, errorCode: 0 });
    expect(eip(r.cpu)).to.equal(0x3000);
    // an instruction that straddles the limit: #GP(0) at its first byte
    r = run32('ljmp $0x30, $0x2ffd', (c) => c.mem.write(0x2ffd, new Uint8Array([0x90, 0xb8, 1, 2, 3, 4])));
    expect(r.exit).to.include({ kind: 'exception', vector: 13, errorCode: 0 });
    expect(eip(r.cpu)).to.equal(0x2ffe);
  });

  it('64-bit mode: no limit checks and no DS base (a DS with limit 0xFFF and base 0x10000 is ignored)', () => {
    const p = assembleProgram(`movw $0x40, %ax\n movw %ax, %ds\n movw $0x18, %ax\n movw %ax, %es\n movl 0x5000, %eax\n movl %es:0x6000, %ebx\n hlt`, 0x1000);
    const cpu = makeCpu(p.code, { origin: 0x1000 });
    const dv = cpu.mem.view;
    ENTRIES.forEach(([lo, hi], n) => { dv.setUint32(GDT + n * 8, lo, true); dv.setUint32(GDT + n * 8 + 4, hi, true); });
    cpu.setReg('gdtr_base', { lo: GDT, hi: 0 });
    cpu.setReg('gdtr_limit', { lo: ENTRIES.length * 8 - 1, hi: 0 });
    dv.setUint32(0x5000, 7, true);
    dv.setUint32(0x6000, 9, true);
    expect(cpu.run(1000).kind).to.equal('hlt');
    expect([cpu.getGpr(0).lo, cpu.getGpr(3).lo]).to.deep.equal([7, 9]);
  });
});

describe('cpu: 16-bit IRET (66 CF) and task switches', () => {
  it('64-bit mode: IRET with a 16-bit operand size pops IP, CS, FLAGS, SP and SS as 2-byte slots', () => {
    const p = assembleProgram(`movq %rsp, %r12
      pushw $0x10\n pushw $0x8000\n pushw $0x0202\n pushw $0x08\n pushw $target\n iretw
      target: movq %rsp, %rbx\n hlt`, 0x1000);
    const cpu = makeCpu(p.code, { origin: 0x1000 });
    expect(cpu.run(1000).kind).to.equal('hlt');
    expect(cpu.getGpr(3).lo).to.equal(0x8000);
    expect(cpu.getReg('rflags').lo & 0x200).to.equal(0x200); // IF from the 16-bit image
    expect(eip(cpu)).to.equal(p.labels.target + 3); // at the HLT
  });

  it('protected mode: a 16-bit IRET at the same level pops IP, CS and FLAGS (2 bytes each), the upper EFLAGS bits stay', () => {
    const r = run32(`pushfl\n orl $0x40000, (%esp)\n popfl
      pushw $0x0002\n pushw $0x08\n pushw $target\n iretw
      target: mov %esp, %ebx`, (c) => c.setGpr(4, { lo: 0x9000, hi: 0 }));
    expect(r.exit.kind).to.equal('hlt');
    expect(r.cpu.getGpr(3).lo).to.equal(0x9000);
    expect(r.cpu.getReg('rflags').lo & 0x40000).to.equal(0x40000); // AC (bit 18) kept
  });

  it('task switching is not modelled: a far JMP to a TSS descriptor is #GP(selector), IRET with NT=1 is #GP(0)', () => {
    let r = run32('ljmp $0x50, $0', (c) => { // 0x50: an available 32-bit TSS descriptor
      c.mem.view.setUint32(GDT + 0x50, 0x20000067, true); c.mem.view.setUint32(GDT + 0x54, 0x00008900, true);
      c.setReg('gdtr_limit', { lo: 0x57, hi: 0 });
    });
    expect(r.exit).to.include({ kind: 'exception', vector: 13, errorCode: 0x50 });
    r = run32('pushfl\n orl $0x4000, (%esp)\n popfl\n x: iret', (c) => c.setGpr(4, { lo: 0x9000, hi: 0 }));
    expect(r.exit).to.include({ kind: 'exception', vector: 13, errorCode: 0 });
    expect(eip(r.cpu)).to.equal(r.labels.x);
  });
});
