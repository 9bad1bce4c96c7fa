/*
 * The instructions that selfwatch's breakpoints are meant to hit, each followed by a global
 * label so the expected RIP of the #DB is known exactly:
 *   trap-like (data, I/O, single-step): RIP = the label after the instruction
 *   fault-like (instruction breakpoint): RIP = the instruction itself
 *   REP string data breakpoint: RIP = the REP instruction (iterations remain)
 */
	.text
	.macro probe name
	.globl \name
	.type \name, @function
\name:
	.endm

probe probe_store8              /* (rdi = address, rsi = value) */
	movq %rsi, (%rdi)
	.globl probe_store8_end
probe_store8_end:
	ret

probe probe_store4
	movl %esi, (%rdi)
	.globl probe_store4_end
probe_store4_end:
	ret

probe probe_store2
	movw %si, (%rdi)
	.globl probe_store2_end
probe_store2_end:
	ret

probe probe_store1
	movb %sil, (%rdi)
	.globl probe_store1_end
probe_store1_end:
	ret

probe probe_load4               /* returns the 4 bytes at rdi */
	movl (%rdi), %eax
	.globl probe_load4_end
probe_load4_end:
	ret

probe probe_exec                /* the target of an instruction breakpoint */
	nop
	ret

probe probe_out                 /* OUT %al, 0x80 with al = dil */
	mov %edi, %eax
	out %al, $0x80
	.globl probe_out_end
probe_out_end:
	ret

probe probe_push                /* push rsi onto a stack whose top is rdi */
	mov %rsp, %rax
	mov %rdi, %rsp
	push %rsi
	.globl probe_push_end
probe_push_end:
	mov %rax, %rsp
	ret

probe probe_rep_stos            /* memset(rdi, sil, rdx) with REP STOSB */
	mov %esi, %eax
	mov %rdx, %rcx
	.globl probe_rep_stos_insn
probe_rep_stos_insn:
	rep stosb
	ret

probe probe_single_step         /* sets TF with POPFQ; the NOP after it is single-stepped */
	pushfq
	orq $0x100, (%rsp)
	popfq
	nop
	.globl probe_single_step_end
probe_single_step_end:
	ret

	.section .note.GNU-stack, "", @progbits
