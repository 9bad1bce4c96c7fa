/*
 * stepper: a short, fully predictable instruction sequence for single-step tests.
 * Labels (global, so gdb and tests can find them):
 *   step_start     straight-line arithmetic
 *   step_loop      a 3-iteration loop (dec/jnz)
 *   step_call      a call to step_leaf and its return
 *   step_out       OUT to port 0x80 (I/O VM exit)
 *   step_cpuid     CPUID (VM exit)
 *   step_hlt       STI; HLT; CLI: HLT waits for the timer interrupt (vector 0x20), whose
 *                  handler stepper_tick increments step_ticks
 *   step_end       the return to main's caller (exit status 0)
 * step_counter is incremented in the loop (a memory write to watch).
 */
	.text
	.globl main
	.type main, @function
main:
	push %rbx
	call idt_init
	mov $0x20, %edi
	lea stepper_tick(%rip), %rsi
	mov $0xE, %edx                  /* 64-bit interrupt gate */
	call idt_set_handler
	mov $0x20, %edi
	mov $100000, %esi               /* tick far away: only HLT waits for it */
	call timer_start

	.globl step_start
step_start:
	mov $1, %eax
	mov $2, %ebx
	add %ebx, %eax
	lea (%rax,%rbx,2), %rcx
	xor %edx, %edx

	.globl step_loop
step_loop:
	mov $3, %ecx
1:	incq step_counter(%rip)
	add %ecx, %edx
	dec %ecx
	jnz 1b

	.globl step_call
step_call:
	call step_leaf

	.globl step_out
step_out:
	mov $0x55, %al
	out %al, $0x80

	.globl step_cpuid
step_cpuid:
	xor %eax, %eax
	cpuid

	.globl step_hlt
step_hlt:
	mov step_ticks(%rip), %rbx
2:	sti
	hlt
	cli
	cmp step_ticks(%rip), %rbx
	je 2b

	call timer_stop
	.globl step_end
step_end:
	xor %eax, %eax
	pop %rbx
	ret
	.size main, . - main

	.globl step_leaf
	.type step_leaf, @function
step_leaf:
	lea 7(%rdx), %rax
	ret
	.size step_leaf, . - step_leaf

	.globl stepper_tick
	.type stepper_tick, @function
stepper_tick:                   /* isr_handler: rdi = struct isr_frame * */
	incq step_ticks(%rip)
	ret
	.size stepper_tick, . - stepper_tick

	.data
	.balign 8
	.globl step_counter
step_counter: .quad 0
	.globl step_ticks
step_ticks: .quad 0

	.section .note.GNU-stack, "", @progbits
