/**
 * The SSE part of the differential corpus: the fpmath guest (C built with gcc's default
 * flags) from fp_main, and generated blobs that run each SSE/SSE2 instruction on pairs of
 * interesting vectors (signed zeros, denormals, infinities, quiet and signalling NaNs,
 * values at the integer-conversion limits, ...) from a constant pool, register and memory
 * forms, each case from clear MXCSR flags under a random rounding mode, FZ or DAZ.
 */
import * as fs from 'fs';
import * as path from 'path';
import { parseElf } from '../../vmm/loader/elf';
import { blobSpec, MEM_SIZE, Rng } from './corpus';
import { RunSpec } from './run-spec';

const GUESTS = path.join(__dirname, '..', '..', '..', 'guests');
const STACK_TOP = MEM_SIZE;
const STACK_SIZE = 0x10000;

/**
 * fpmath from fp_main (its main, fpstart.S, writes CR4/CR0, which a Linux process cannot):
 * fp_main returns into _start right after `call main`, which ends the run with OUT 0xF4.
 */
export function fpmathSpec(maxSteps?: number): RunSpec {
  const img = parseElf(new Uint8Array(fs.readFileSync(path.join(GUESTS, 'fpmath.elf'))), MEM_SIZE);
  const fpMain = img.symbols.get('fp_main');
  if (fpMain === undefined) throw new Error('fpmath.elf has no fp_main');
  // runtime/start.S: xor %ebp,%ebp (2 bytes); mov %edi,%r12d (3); call main (5).
  const afterCall = img.entry + 10;
  const stack = new Uint8Array(STACK_SIZE);
  new DataView(stack.buffer).setBigUint64(STACK_SIZE - 8, BigInt(afterCall), true);
  return {
    name: 'fpmath',
    regions: [...img.segments.map((s) => ({ address: s.address, size: s.memSize, data: s.data })), { address: STACK_TOP - STACK_SIZE, size: STACK_SIZE, data: stack }],
    regs: { rip: fpMain, rsp: STACK_TOP - 8, r12: 0 },
    maxSteps,
    dumps: [...img.segments.filter((s) => s.flags & 2).map((s) => ({ address: s.address, size: s.memSize }))],
    memSize: MEM_SIZE,
  };
}

const DOUBLES: bigint[] = [
  0x0000000000000000n, 0x8000000000000000n, 0x3ff0000000000000n, 0xbff0000000000000n, 0x3ff8000000000000n,
  0x4004000000000000n, 0xc004000000000000n, 0x4008000000000000n, 0x3fb999999999999an, 0x7fe1ccf385ebc8a0n,
  0xffe1ccf385ebc8a0n, 0x0000000000000001n, 0x0010000000000000n, 0x7ff0000000000000n, 0xfff0000000000000n,
  0x7ff8000000000001n, 0x7ff0000000000001n, 0xfff8000000000000n, 0x43e0000000000000n, 0xc3e0000000000000n,
  0x41e0000000000000n, 0xc1e0000000200000n, 0x41f0000000800000n, 0x419d6f34547e6b75n, 0x3ddb7cdfd9d7bdbbn,
  0x7fefffffffffffffn, 0x000fffffffffffffn, 0x3fe0000000000000n, 0xbfe8000000000000n, 0x4330000000000001n,
];
const FLOATS: number[] = [
  0x00000000, 0x80000000, 0x3f800000, 0xbfc00000, 0x40200000, 0x7f7fffff, 0x00000001, 0x7f800000, 0xff800000,
  0x7fc00001, 0x7f800001, 0x4b800001, 0x3dcccccd, 0x4f000000, 0xcf000000, 0x501502f9, 0x3f000000, 0xbf400000,
  0x00800000, 0x007fffff, 0xcf000001, 0x5f000000, 0x3fc00000, 0x40400000,
];
const INTS: bigint[] = [
  0n, 1n, 0x7fn, 0x80n, 0xffn, 0x7fffn, 0x8000n, 0xffffn, 0x7fffffffn, 0x80000000n, 0xffffffffn,
  0x7fffffffffffffffn, 0x8000000000000000n, 0xffffffffffffffffn, 0x0123456789abcdefn, 0xfedcba9876543210n,
  0x00ff00ff80017fffn, 0x8080808080808080n,
];


const hex = (v: bigint | number) => '0x' + v.toString(16);

type Kind = 'pd' | 'ps' | 'int';
/** Two-operand xmm instructions (AT&T `op src, dst`) by the vectors they like. */
const BINARY: Array<[string, Kind]> = [
  ...['addpd', 'subpd', 'mulpd', 'divpd', 'minpd', 'maxpd', 'sqrtpd', 'addsd', 'subsd', 'mulsd', 'divsd', 'minsd', 'maxsd', 'sqrtsd',
    'andpd', 'andnpd', 'orpd', 'xorpd', 'unpcklpd', 'unpckhpd', 'ucomisd', 'comisd', 'cvtpd2ps', 'cvtsd2ss', 'cvtpd2dq', 'cvttpd2dq',
    'movsd', 'movapd', 'movupd'].map((m): [string, Kind] => [m, 'pd']),
  ...['addps', 'subps', 'mulps', 'divps', 'minps', 'maxps', 'sqrtps', 'addss', 'subss', 'mulss', 'divss', 'minss', 'maxss', 'sqrtss',
    'andps', 'andnps', 'orps', 'xorps', 'unpcklps', 'unpckhps', 'ucomiss', 'comiss', 'cvtps2pd', 'cvtss2sd', 'cvtps2dq', 'cvttps2dq',
    'movss', 'movaps', 'movups', 'movhlps', 'movlhps'].map((m): [string, Kind] => [m, 'ps']),
  ...['paddb', 'paddw', 'paddd', 'paddq', 'psubb', 'psubw', 'psubd', 'psubq', 'paddsb', 'paddsw', 'paddusb', 'paddusw', 'psubsb',
    'psubsw', 'psubusb', 'psubusw', 'pcmpeqb', 'pcmpeqw', 'pcmpeqd', 'pcmpgtb', 'pcmpgtw', 'pcmpgtd', 'pand', 'pandn', 'por', 'pxor',
    'pmullw', 'pmulhw', 'pmulhuw', 'pmuludq', 'pmaddwd', 'psadbw', 'pminub', 'pmaxub', 'pminsw', 'pmaxsw', 'pavgb', 'pavgw',
    'punpcklbw', 'punpcklwd', 'punpckldq', 'punpcklqdq', 'punpckhbw', 'punpckhwd', 'punpckhdq', 'punpckhqdq', 'packsswb',
    'packssdw', 'packuswb', 'psrlw', 'psrld', 'psrlq', 'psraw', 'psrad', 'psllw', 'pslld', 'psllq', 'cvtdq2ps', 'cvtdq2pd',
    'movdqa', 'movdqu', 'movq'].map((m): [string, Kind] => [m, 'int']),
];
/** Register-only forms (no memory source). */
const REG_ONLY = new Set(['movhlps', 'movlhps']);
/** Instructions with an imm8 and the immediates worth trying. */
const WITH_IMM: Array<[string, Kind, number[]]> = [
  ['cmppd', 'pd', [0, 1, 2, 3, 4, 5, 6, 7]], ['cmpsd', 'pd', [0, 1, 2, 3, 4, 5, 6, 7]],
  ['cmpps', 'ps', [0, 1, 2, 3, 4, 5, 6, 7]], ['cmpss', 'ps', [0, 1, 2, 3, 4, 5, 6, 7]],
  ['shufps', 'ps', [0x00, 0x1b, 0xe4, 0x4e, 0xb1, 0x93]], ['shufpd', 'pd', [0, 1, 2, 3]],
  ['pshufd', 'int', [0x00, 0x1b, 0xe4, 0x4e, 0xb1]], ['pshuflw', 'int', [0x1b, 0xe4, 0x4e]], ['pshufhw', 'int', [0x1b, 0x93]],
];
const SHIFT_IMM = ['psrlw', 'psrld', 'psrlq', 'psraw', 'psrad', 'psllw', 'pslld', 'psllq', 'psrldq', 'pslldq'];
/** MXCSR values (all exceptions masked, flags clear): the four rounding modes, FZ, DAZ. */
const MXCSRS = [0x1f80, 0x3f80, 0x5f80, 0x7f80, 0x9f80, 0x1fc0, 0xff80, 0x1f80];

/** The constant pool: `n` vectors of each kind, 16-byte aligned, labels v_<kind>_<i>. */
function pool(rng: Rng, n: number): string {
  let s = '.balign 16\n';
  for (let i = 0; i < n; i++) {
    s += `v_pd_${i}: .quad ${hex(rng.pick(DOUBLES))}, ${hex(rng.pick(DOUBLES))}\n`;
    s += `v_ps_${i}: .long ${[0, 1, 2, 3].map(() => hex(rng.pick(FLOATS))).join(', ')}\n`;
    s += `v_int_${i}: .quad ${hex(rng.pick(INTS) ^ (i % 3 === 0 ? rng.next() : 0n))}, ${hex(rng.pick(INTS))}\n`;
  }
  s += MXCSRS.map((m, i) => `mx_${i}: .long ${hex(m)}\n`).join('');
  return s;
}

/**
 * Generated SSE cases, `perBlob` instruction cases per blob; `scale` multiplies the blobs.
 * Each case loads vectors into xmm1/xmm2 (and a GPR), runs the instruction, and leaves the
 * result in the registers (compared after every step); some store to the data region.
 */
export function sseEdgeSpecs(scale: number): RunSpec[] {
  const rng = new Rng(0x5ee5eedn);
  const specs: RunSpec[] = [];
  const POOL = 12;
  const blobs = 3 * scale;
  for (let b = 0; b < blobs; b++) {
    const lines: string[] = [];
    const v = (k: Kind) => `v_${k}_${rng.int(POOL)}(%rip)`;
    // each case starts from clear flags under a random rounding mode / FZ / DAZ
    const load = (k: Kind) => `ldmxcsr mx_${rng.int(MXCSRS.length)}(%rip)\nmovdqa ${v(k)}, %xmm1\nmovdqa ${v(k)}, %xmm2`;
    for (const [m, k] of BINARY) {
      lines.push(load(k), `${m} %xmm2, %xmm1`);
      if (!REG_ONLY.has(m)) lines.push(`${m} ${v(k)}, %xmm1`);
    }
    for (const [m, k, imms] of WITH_IMM) {
      lines.push(load(k), `${m} $${rng.pick(imms)}, %xmm2, %xmm1`, `${m} $${rng.pick(imms)}, ${v(k)}, %xmm2`);
    }
    for (const m of SHIFT_IMM) lines.push(load('int'), `${m} $${rng.pick([0, 1, 3, 7, 8, 15, 16, 31, 32, 63, 64, 200])}, %xmm1`);
    // to and from general registers, with the rounding modes
    for (const mx of [0, 1, 2, 3]) {
      lines.push(load('pd'), `ldmxcsr mx_${mx}(%rip)`);
      for (const m of ['cvtsd2si', 'cvttsd2si']) lines.push(`${m} %xmm1, %rax`, `${m} %xmm2, %ecx`, `${m} ${v('pd')}, %rdx`);
      lines.push(load('ps'), `ldmxcsr mx_${mx}(%rip)`);
      for (const m of ['cvtss2si', 'cvttss2si']) lines.push(`${m} %xmm1, %rax`, `${m} %xmm2, %ecx`, `${m} ${v('ps')}, %edx`);
      lines.push(load('pd'), `ldmxcsr mx_${mx}(%rip)`, 'cvtpd2dq %xmm2, %xmm1', load('ps'), `ldmxcsr mx_${mx}(%rip)`, 'cvtps2dq %xmm2, %xmm1');
      lines.push(`movabsq $${hex(rng.pick(INTS) ^ rng.next())}, %rbx`, 'cvtsi2sdq %rbx, %xmm1', 'cvtsi2ssq %rbx, %xmm2', 'cvtsi2sdl %ebx, %xmm3', 'cvtsi2ssl %ebx, %xmm4');
      lines.push(`movabsq $${hex(rng.pick(INTS))}, %rbx`, 'cvtsi2sdq %rbx, %xmm1', 'cvtsi2ssq %rbx, %xmm2', 'cvtsi2ssl %ebx, %xmm4');
    }
    lines.push('ldmxcsr mx_0(%rip)');
    lines.push(load('int'), 'movmskps %xmm1, %eax', 'movmskpd %xmm2, %ecx', 'pmovmskb %xmm1, %edx');
    lines.push(`pextrw $${rng.int(8)}, %xmm1, %eax`, `pinsrw $${rng.int(8)}, %ebx, %xmm2`, `pinsrw $${rng.int(8)}, 0x300010, %xmm2`);
    lines.push('movq %xmm1, %rax', 'movd %xmm2, %ecx', 'movq %rbx, %xmm3', 'movd %ebx, %xmm4', 'movq %xmm1, %xmm5');
    // memory destinations in the data region (compared at the end) and loads back
    const off = 0x100 + 16 * rng.int(32);
    lines.push(load('pd'), `movups %xmm1, ${hex(0x300000 + off + 3)}`, `movaps %xmm2, ${hex(0x300000 + off)}`,
      `movntdq %xmm1, ${hex(0x300000 + off + 16)}`, `movsd %xmm2, ${hex(0x300000 + off + 40)}`, `movss %xmm1, ${hex(0x300000 + off + 52)}`,
      `movlps %xmm1, ${hex(0x300000 + off + 60)}`, `movhps %xmm2, ${hex(0x300000 + off + 68)}`, `movhpd %xmm1, ${hex(0x300000 + off + 76)}`,
      `movq %xmm2, ${hex(0x300000 + off + 84)}`, `movd %xmm1, ${hex(0x300000 + off + 92)}`, `movnti %rbx, ${hex(0x300000 + off + 96)}`,
      `movlpd ${hex(0x300000 + off + 5)}, %xmm3`, `movhps ${hex(0x300000 + off + 9)}, %xmm3`, `movsd ${hex(0x300000 + off + 1)}, %xmm4`,
      `movss ${hex(0x300000 + off + 2)}, %xmm5`, `movdqu ${hex(0x300000 + off + 7)}, %xmm6`, `movq ${hex(0x300000 + off + 3)}, %xmm7`);
    // FPU state round trip through FXSAVE/FXRSTOR and the x87 control words
    lines.push('fnstcw 0x300800', 'fnstsw %ax', 'stmxcsr 0x300804', 'fxsave 0x300a00', 'movl $0, 0x300a1c', 'pxor %xmm1, %xmm1', 'fxrstor 0x300a00');
    const body = `jmp start\n${pool(rng, POOL)}start:\n${lines.join('\n')}`;
    specs.push(blobSpec(`sse-${b}`, body));
  }
  return specs;
}

/** SSE instructions that fault natively: both sides must fault there, nothing changed. */
export function sseFaultSpecs(): RunSpec[] {
  return [
    blobSpec('movaps-misaligned', 'mov $0x300008, %eax\nmovaps (%rax), %xmm0'),
    blobSpec('movdqa-store-misaligned', 'nop\nmovdqa %xmm0, 0x300004'),
    blobSpec('ldmxcsr-reserved-bit', 'movl $0x11f80, 0x300000\nldmxcsr 0x300000'),
    blobSpec('divsd-unmasked-zero-divide', 'movl $0x1d80, 0x300000\nldmxcsr 0x300000\nmov $1, %eax\ncvtsi2sd %eax, %xmm0\npxor %xmm1, %xmm1\ndivsd %xmm1, %xmm0'),
    blobSpec('fxsave-misaligned', 'nop\nfxsave 0x300008'),
  ];
}
