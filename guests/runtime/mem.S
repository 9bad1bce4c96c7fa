/*
 * memcpy/memset/memmove/memcmp: gcc may call these even for -ffreestanding code (struct
 * copies, zeroing). Written in assembly so the compiler cannot turn them into calls to
 * themselves; they use the string instructions on purpose.
 */
	.text
	.globl memcpy
	.type memcpy, @function
memcpy:                         /* rdi = dst, rsi = src, rdx = n */
	mov %rdi, %rax
	mov %rdx, %rcx
	rep movsb
	ret
	.size memcpy, . - memcpy

	.globl memset
	.type memset, @function
memset:                         /* rdi = dst, esi = byte, rdx = n */
	mov %rdi, %r8
	mov %esi, %eax
	mov %rdx, %rcx
	rep stosb
	mov %r8, %rax
	ret
	.size memset, . - memset

	.globl memmove
	.type memmove, @function
memmove:
	mov %rdi, %rax
	mov %rdx, %rcx
	cmp %rsi, %rdi
	jbe 1f                  /* dst below src: forward copy is safe */
	lea -1(%rsi,%rdx), %rsi
	lea -1(%rdi,%rdx), %rdi
	std
	rep movsb
	cld
	ret
1:	rep movsb
	ret
	.size memmove, . - memmove

	.globl memcmp
	.type memcmp, @function
memcmp:
	mov %rdx, %rcx
	xor %eax, %eax
	test %rcx, %rcx
	jz 2f
	repe cmpsb
	je 2f
	movzbl -1(%rdi), %eax
	movzbl -1(%rsi), %edx
	sub %edx, %eax
2:	ret
	.size memcmp, . - memcmp

	.section .note.GNU-stack, "", @progbits
