/*
 * hhkernel entry, trampolines and interrupt stubs.
 *
 * _start (guest ABI: 64-bit mode, identity paging, CPL 0) builds the kernel's own page
 * tables: the first 1 GiB identity-mapped with 2 MiB supervisor pages, and the kernel image
 * at KBASE with 4 KiB pages (user-accessible only between __user_start and __user_end, the
 * page at __user_lazy left not present for the #PF test); loads CR3 and jumps high.
 */
#define KBASE 0xffffffff80000000
#define KOFF (KBASE - 0x100000)

	.section .boot.text, "ax"
	.globl _start
_start:
	mov %rsp, %r15                  /* the ABI stack (identity-mapped), kept for nothing but debugging */
	/* PML4[0] -> identity PDPT; PML4[511] -> high PDPT */
	lea pdpt_low(%rip), %rax
	or $3, %rax
	mov %rax, pml4(%rip)
	lea pdpt_high(%rip), %rax
	or $3, %rax
	mov %rax, pml4+511*8(%rip)
	/* identity: PDPT[0] -> PD of 2 MiB pages (P RW PS) */
	lea pd_low(%rip), %rax
	or $3, %rax
	mov %rax, pdpt_low(%rip)
	xor %ecx, %ecx
1:	mov %rcx, %rax
	shl $21, %rax
	or $0x83, %rax
	lea pd_low(%rip), %rdx
	mov %rax, (%rdx,%rcx,8)
	inc %ecx
	cmp $512, %ecx
	jb 1b
	/* high: PDPT[510] -> PD -> PT[0..511] = phys 1 MiB + n*4 KiB */
	lea pd_high(%rip), %rax
	or $3, %rax
	mov %rax, pdpt_high+510*8(%rip)
	lea pt_high(%rip), %rax
	or $3, %rax
	mov %rax, pd_high(%rip)
	/* the user/supervisor bits are in the PDEs too: make the higher levels user-accessible */
	orq $4, pml4+511*8(%rip)
	orq $4, pdpt_high+510*8(%rip)
	orq $4, pd_high(%rip)
	xor %ecx, %ecx
2:	mov %rcx, %rax
	shl $12, %rax
	add $0x100000, %rax
	or $3, %rax
	lea pt_high(%rip), %rdx
	mov %rax, (%rdx,%rcx,8)
	inc %ecx
	cmp $512, %ecx
	jb 2b
	/* U/S = 1 for the user pages */
	movabs $__user_start, %rax
	movabs $__user_end, %rbx
	lea pt_high(%rip), %rdx
3:	cmp %rbx, %rax
	jae 4f
	mov %rax, %rcx
	movabs $KBASE, %rsi
	sub %rsi, %rcx
	shr $12, %rcx
	orq $4, (%rdx,%rcx,8)
	add $4096, %rax
	jmp 3b
4:	/* the demand page: not present */
	movabs $__user_lazy, %rax
	movabs $KBASE, %rsi
	sub %rsi, %rax
	shr $12, %rax
	andq $~1, (%rdx,%rax,8)
	lea pml4(%rip), %rax
	mov %rax, %cr3
	movabs $high_entry, %rax
	jmp *%rax

	.section .boot.bss, "aw", @nobits
	.balign 4096
pml4:	.skip 4096
pdpt_low:	.skip 4096
pd_low:	.skip 4096
pdpt_high:	.skip 4096
pd_high:	.skip 4096
	.globl pt_high
pt_high:	.skip 4096

	.text
high_entry:
	lea kstack_top(%rip), %rsp
	xor %ebp, %ebp
	call kmain
	out %al, $0xf4
5:	cli
	hlt
	jmp 5b

/* enter_user(entry, user_rsp): IRETQ to CPL 3; returns when the user calls SYS_EXIT. */
	.globl enter_user
enter_user:
	push %rbx
	push %rbp
	push %r12
	push %r13
	push %r14
	push %r15
	mov %rsp, kernel_resume_rsp(%rip)
	pushq $0x23                     /* SS: user data, RPL 3 */
	pushq %rsi                      /* RSP */
	pushq $0x202                    /* RFLAGS: IF */
	pushq $0x2b                     /* CS: 64-bit user code, RPL 3 */
	pushq %rdi                      /* RIP */
	.globl iretq_to_user
iretq_to_user:
	iretq

/* SYSCALL entry (LSTAR): SWAPGS to the per-CPU area, kernel stack, C dispatch, SYSRETQ. */
	.globl syscall_entry
syscall_entry:
	swapgs
	mov %rsp, %gs:0                 /* user RSP */
	mov %gs:8, %rsp                 /* kernel syscall stack */
	push %rcx
	push %r11
	push %rdi
	push %rsi
	push %rdx
	push %r8
	push %r9
	push %r10
	mov %rax, %rdx                  /* dispatch(nr, arg) */
	mov %rdi, %rsi
	mov %rdx, %rdi
	call syscall_dispatch
	cmpq $0, exit_requested(%rip)
	jne sys_exit_path
	pop %r10
	pop %r9
	pop %r8
	pop %rdx
	pop %rsi
	pop %rdi
	pop %r11
	pop %rcx
	mov %gs:0, %rsp
	swapgs
	.globl sysretq_insn
sysretq_insn:
	sysretq
sys_exit_path:
	swapgs
	mov kernel_resume_rsp(%rip), %rsp
	pop %r15
	pop %r14
	pop %r13
	pop %r12
	pop %rbp
	pop %rbx
	ret

/* Interrupt stubs: push a dummy error code where the CPU pushes none, the vector, all GPRs; isr_dispatch(frame). */
.macro STUB vec, err
	.globl isr\vec
isr\vec:
	.if \err == 0
	pushq $0
	.endif
	pushq $\vec
	jmp isr_common
.endm
	STUB 0, 0
	STUB 1, 0
	STUB 3, 0
	STUB 6, 0
	STUB 8, 1
	STUB 13, 1
	STUB 14, 1
	STUB 32, 0
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
	mov %rsp, %rdi
	call isr_dispatch
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
	add $16, %rsp
	iretq

	.bss
	.balign 16
	.skip 16384
kstack_top:
	.globl kernel_resume_rsp
kernel_resume_rsp: .quad 0

	.section .note.GNU-stack, "", @progbits
