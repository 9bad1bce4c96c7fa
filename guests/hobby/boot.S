/*
 * hobby: Multiboot header, 32-bit entry, long-mode switch, AP trampoline, interrupt stubs.
 *
 * mb_entry: the Multiboot loader's 32-bit protected-mode entry (paging off, EAX=0x2BADB002,
 * EBX=info). Loads our GDT, builds the page tables (the first 1 GiB identity-mapped with
 * 2 MiB pages, the local APIC page at 0xFEE00000, and KBASE.. -> 1 MiB.. with 4 KiB pages),
 * enables PAE, EFER.LME and paging, far-jumps into 64-bit code and then to the higher half.
 * ap_tramp: 16-bit code that kmain copies below 1 MiB; an AP runs it after its SIPI, sets
 * CR0.PE and far-jumps to ap_entry32, which takes the same way into long mode.
 */
	.cfi_sections .debug_frame       /* .eh_frame is discarded: gdb unwinds from .debug_frame */

#define MB_MAGIC 0x1BADB002
#define MB_FLAGS 0x00000003 /* page-align modules, memory information */

	.section .multiboot, "a"
	.balign 4
mb_header:
	.long MB_MAGIC
	.long MB_FLAGS
	.long (0x100000000 - MB_MAGIC - MB_FLAGS) & 0xffffffff

/* ---- 32-bit code, identity-mapped at 1 MiB ------------------------------------------- */

/* CR4.PAE, CR3, EFER.LME, CR0.PG|WP, then (at label `jump`) a far jump to 64-bit code at `target`. */
.macro ENTER_LONG_MODE target, jump
	mov %cr4, %eax
	or $0x20, %eax
	mov %eax, %cr4
	mov $pml4, %eax
	mov %eax, %cr3
	mov $0xc0000080, %ecx
	rdmsr
	or $0x100, %eax
	wrmsr
	mov %cr0, %eax
	or $0x80010000, %eax
	mov %eax, %cr0
	.globl \jump
\jump:
	ljmp $0x08, $\target
.endm

	.section .boot.text, "ax"
	.code32
	.globl mb_entry
mb_entry:
	cli
	mov %eax, mb_magic
	mov %ebx, mb_info
	lgdt gdt_ptr
	ljmp $0x18, $1f
1:	mov $0x10, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	mov %eax, %fs
	mov %eax, %gs
	/* PML4[0] -> identity PDPT, PML4[511] -> high PDPT */
	movl $pdpt_low + 3, pml4
	movl $pdpt_high + 3, pml4 + 511 * 8
	/* identity: PDPT[0] -> 512 2 MiB pages; PDPT[3] -> the APIC page (PCD PWT) */
	movl $pd_low + 3, pdpt_low
	movl $pd_apic + 3, pdpt_low + 3 * 8
	movl $0xfee0009b, pd_apic + ((0xfee00000 - 0xc0000000) >> 21) * 8
	xor %ecx, %ecx
2:	mov %ecx, %eax
	shl $21, %eax
	or $0x83, %eax
	mov %eax, pd_low(, %ecx, 8)
	inc %ecx
	cmp $512, %ecx
	jb 2b
	/* high: PDPT[510] -> PD[0] -> PT: KBASE + n * 4 KiB -> 1 MiB + n * 4 KiB */
	movl $pd_high + 3, pdpt_high + 510 * 8
	movl $pt_high + 3, pd_high
	xor %ecx, %ecx
3:	mov %ecx, %eax
	shl $12, %eax
	add $0x100003, %eax
	mov %eax, pt_high(, %ecx, 8)
	inc %ecx
	cmp $512, %ecx
	jb 3b
	.globl bsp_enter_long_mode
bsp_enter_long_mode:
	ENTER_LONG_MODE bsp_long_mode, bsp_far_jump_64

	.globl ap_entry32
ap_entry32:
	mov $0x10, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	mov %eax, %fs
	mov %eax, %gs
	ENTER_LONG_MODE ap_long_mode, ap_far_jump_64

/* ---- 64-bit code, still identity-mapped: on to the higher half ------------------------- */
	.code64
	.globl bsp_long_mode
bsp_long_mode:
	mov $0x10, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	movabs $bsp_high, %rax
	jmp *%rax

	.globl ap_long_mode
ap_long_mode:
	mov $0x10, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	movabs $ap_high, %rax
	jmp *%rax

	.section .boot.data, "aw"
	.balign 8
	.globl gdt
gdt:	.quad 0
	.quad 0x00af9b000000ffff        /* 0x08 64-bit code */
	.quad 0x00cf93000000ffff        /* 0x10 data */
	.quad 0x00cf9b000000ffff        /* 0x18 32-bit code */
gdt_end:
gdt_ptr:
	.word gdt_end - gdt - 1
	.long gdt
	.globl mb_magic, mb_info
mb_magic: .long 0
mb_info: .long 0

	.section .boot.bss, "aw", @nobits
	.balign 4096
	.globl pml4
pml4:	.skip 4096
pdpt_low: .skip 4096
pd_low:	.skip 4096
pd_apic: .skip 4096
pdpt_high: .skip 4096
pd_high: .skip 4096
pt_high: .skip 4096

/* ---- the AP's real-mode trampoline (copied to TRAMPOLINE_BASE by kmain) --------------- */
	.section .rodata
	.globl ap_tramp, ap_tramp_end
	.code16
ap_tramp:
	cli
	mov %cs, %ax
	mov %ax, %ds
	lgdtl tramp_gdtr - ap_tramp
	mov %cr0, %eax
	or $1, %eax
	mov %eax, %cr0
	ljmpl $0x18, $ap_entry32
tramp_gdtr:
	.word gdt_end - gdt - 1
	.long gdt
ap_tramp_end:
	.code64

/* ---- higher half ---------------------------------------------------------------------- */
	.text
	.globl bsp_high, ap_high
bsp_high:
	.cfi_startproc
	.cfi_undefined rip              /* the outermost frame for gdb's backtrace */
	lea bsp_stack_top(%rip), %rsp
	xor %ebp, %ebp
	movl mb_magic, %edi
	movl mb_info, %esi
	call kmain
4:	cli
	hlt
	jmp 4b
	.cfi_endproc

ap_high:
	.cfi_startproc
	.cfi_undefined rip
	lea ap_stack_top(%rip), %rsp
	xor %ebp, %ebp
	call ap_main
5:	cli
	hlt
	jmp 5b
	.cfi_endproc

/* Interrupt stubs: a dummy error code where the CPU pushes none, the vector, the GPRs. */
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
	STUB 6, 0
	STUB 8, 1
	STUB 13, 1
	STUB 14, 1
	STUB 32, 0
	STUB 52, 0
	STUB 255, 0
isr_common:
	push %rax
	push %rcx
	push %rdx
	push %rsi
	push %rdi
	push %r8
	push %r9
	push %r10
	push %r11
	mov %rsp, %rdi
	call isr_dispatch
	pop %r11
	pop %r10
	pop %r9
	pop %r8
	pop %rdi
	pop %rsi
	pop %rdx
	pop %rcx
	pop %rax
	add $16, %rsp
	iretq

	.bss
	.balign 16
	.skip 16384
bsp_stack_top:
	.skip 16384
ap_stack_top:

	.section .note.GNU-stack, "", @progbits
