/*
 * main for fpmath: the guest ABI enters with CR4.OSFXSR clear (SSE instructions #UD), so
 * enable SSE before any C built with the default flags runs: CR4.OSFXSR (bit 9) and
 * OSXMMEXCPT (bit 10); CR0.EM (bit 2) clear, CR0.MP (bit 1) set; then FNINIT.
 */
	.text
	.globl main
	.type main, @function
main:
	mov %cr4, %rax
	or $0x600, %rax
	mov %rax, %cr4
	mov %cr0, %rax
	and $~4, %rax
	or $2, %rax
	mov %rax, %cr0
	fninit
	jmp fp_main
	.size main, . - main

	.section .note.GNU-stack, "", @progbits
