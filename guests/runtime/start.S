/*
 * Entry of every built-in guest (guest ABI: 64-bit mode, CPL 0, IF=0, RDI = vCPU index,
 * RSI = vCPU count, RSP = top of this vCPU's 16-byte aligned stack).
 * main(cpu_index, cpu_count)'s return value goes to port 0xF4 (the VM ends with it as exit
 * status). Only vCPU 0 ends the VM; the others park in HLT with IF=0 when main returns.
 */
	.section .text.start, "ax"
	.globl _start
	.type _start, @function
_start:
	xor %ebp, %ebp          /* end of the frame chain for gdb's backtrace */
	mov %edi, %r12d         /* keep the vCPU index across main (callee-saved) */
	call main
	test %r12d, %r12d
	jnz park
	out %al, $0xf4
park:
	cli
	hlt
	jmp park
	.size _start, . - _start

	.section .note.GNU-stack, "", @progbits
