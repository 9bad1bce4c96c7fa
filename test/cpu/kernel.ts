// A tiny test kernel around a code body: an IDT whose handlers log (vector, error code, RIP,
// RFLAGS, DR6, DR7) for each event, return from #DB (with RF set, as kvm-unit-tests does),
// #BP and interrupts (vector >= 32), and stop with HLT on any other exception.
import { assembleProgram, makeCpu } from '../helpers/asm';
import { Cpu } from '../../vmm/cpu/cpu';
import { CpuExit } from '../../vmm/cpu/cpu-exit';
import { u64, u64ToBigInt } from '../../vmm/u64';

export const ORIGIN = 0x1000;
const ERROR_CODE_VECTORS = [8, 10, 11, 12, 13, 14, 17, 21];

export interface LogEntry { vector: number; error: number; rip: number; rflags: number; dr6: number; dr7: number }

export interface Kernel {
  cpu: Cpu;
  labels: Record<string, number>;
  log(): LogEntry[];
  /** Runs, emulating OUT/IN/CPUID exits, until HLT (returned) or another exit. */
  run(budget?: number): CpuExit;
}

function stubs(): string {
  let s = '';
  for (let v = 0; v < 256; v++) {
    s += `vec_${v}:\n`;
    if (!ERROR_CODE_VECTORS.includes(v)) s += '  pushq $0\n';
    s += `  pushq $${v}\n  jmp common_handler\n`;
  }
  return s;
}

/**
 * The first half of every logging handler: with the vector and an error code pushed on the
 * interrupt frame, saves RAX/RBX and appends vector, error, RIP and RFLAGS to `log` (RBX
 * then points at the entry). The handler pops RBX/RAX and the two words before IRETQ.
 */
export const LOG_EVENT = `  pushq %rax
  pushq %rbx
  movq log_n(%rip), %rax
  imulq $48, %rax, %rax
  leaq log(%rip), %rbx
  addq %rax, %rbx
  movq 16(%rsp), %rax
  movq %rax, 0(%rbx)
  movq 24(%rsp), %rax
  movq %rax, 8(%rbx)
  movq 32(%rsp), %rax
  movq %rax, 16(%rbx)
  movq 48(%rsp), %rax
  movq %rax, 24(%rbx)
  incq log_n(%rip)
`;

export function buildKernel(body: string, opts: { memSize?: number; withIdt?: boolean; extra?: string; gates?: Record<number, string> } = {}): Kernel {
  const src = `
.text
  jmp body_start
common_handler:
${LOG_EVENT}  movq 16(%rsp), %rax
  cmpq $1, %rax
  jne 1f
  movq %dr6, %rax
  movq %rax, 32(%rbx)
  movq %dr7, %rax
  movq %rax, 40(%rbx)
  orq $0x10000, 48(%rsp)
  jmp 2f
1:cmpq $3, %rax
  je 2f
  cmpq $32, %rax
  jae 2f
  hlt
2:popq %rbx
  popq %rax
  addq $16, %rsp
  iretq
${stubs()}
${opts.extra ?? ''}
body_start:
${body}
  hlt
.data
.balign 64
log_n: .quad 0
.balign 64
log: .fill ${48 * 64}, 1, 0
.balign 4096
idt: .fill 4096, 1, 0
.balign 64
value: .quad 0
.quad 0
buf: .fill 256, 1, 0
`;
  const p = assembleProgram(src, ORIGIN);
  const cpu = makeCpu(p.code, { origin: ORIGIN, memSize: opts.memSize ?? 1 << 20 });
  if (opts.withIdt !== false) {
    const idt = p.labels.idt;
    for (let v = 0; v < 256; v++) {
      const h = p.labels[opts.gates?.[v] ?? `vec_${v}`];
      const e = new DataView(cpu.mem.bytes.buffer, idt + v * 16, 16);
      e.setUint16(0, h & 0xffff, true);
      e.setUint16(2, 0x08, true);
      e.setUint8(4, 0);
      e.setUint8(5, 0x8e); // present, DPL 0, 64-bit interrupt gate
      e.setUint16(6, (h >>> 16) & 0xffff, true);
      e.setUint32(8, 0, true);
    }
    cpu.setReg('idtr_base', u64(idt));
    cpu.setReg('idtr_limit', u64(4095));
  }
  const log = (): LogEntry[] => {
    const dv = cpu.mem.view;
    const n = Number(dv.getBigUint64(p.labels.log_n, true));
    const out: LogEntry[] = [];
    for (let k = 0; k < n; k++) {
      const b = p.labels.log + k * 48;
      const q = (o: number): number => Number(dv.getBigUint64(b + o, true));
      out.push({ vector: q(0), error: q(8), rip: q(16), rflags: q(24), dr6: q(32), dr7: q(40) });
    }
    return out;
  };
  const run = (budget = 1_000_000): CpuExit => {
    for (let guard = 0; guard < 10000; guard++) {
      const e = cpu.run(budget);
      if (e.kind === 'io') { cpu.completeEmulatedInstruction(e.length, { port: e.port, size: e.size }); continue; }
      if (e.kind === 'cpuid') { for (const r of [0, 1, 2, 3] as const) cpu.setGpr(r, u64(0)); cpu.completeEmulatedInstruction(e.length); continue; }
      return e;
    }
    throw new Error('kernel run: too many exits');
  };
  return { cpu, labels: p.labels, log, run };
}

export function rip(cpu: Cpu): number {
  return Number(u64ToBigInt(cpu.getReg('rip')));
}
