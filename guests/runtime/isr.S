/*
 * Interrupt and exception entry stubs, one per vector, each 16 bytes long at
 * isr_stubs + 16 * vector. Vectors without a CPU error code push a 0 so that every frame
 * has the same layout (struct isr_frame in runtime.h): the stubs push the error code (or 0)
 * and the vector, then isr_common saves all 15 GPRs and calls isr_dispatch(frame).
 */
	.text
	.balign 16
	.globl isr_stubs
isr_stubs:
	.set vec, 0
	.rept 256
	.balign 16
	.if (vec == 8) || ((vec >= 10) && (vec <= 14)) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
	.else
	pushq $0
	.endif
	pushq $vec
	jmp isr_common
	.set vec, vec + 1
	.endr

	.globl isr_common
	.type isr_common, @function
isr_common:
	push %rax
	push %rbx
	push %rcx
	push %rdx
	push %rsi
	push %rdi
	push %rbp
	push %r8
	push %r9
	push %r10
	push %r11
	push %r12
	push %r13
	push %r14
	push %r15
	cld
	mov %rsp, %rdi          /* struct isr_frame * */
	mov %rsp, %rbx
	and $-16, %rsp          /* SysV call alignment whatever the CPU's frame alignment */
	call isr_dispatch
	mov %rbx, %rsp
	pop %r15
	pop %r14
	pop %r13
	pop %r12
	pop %r11
	pop %r10
	pop %r9
	pop %r8
	pop %rbp
	pop %rdi
	pop %rsi
	pop %rdx
	pop %rcx
	pop %rbx
	pop %rax
	add $16, %rsp           /* vector and error code */
	iretq
	.size isr_common, . - isr_common

	.section .note.GNU-stack, "", @progbits
