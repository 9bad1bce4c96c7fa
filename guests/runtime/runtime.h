/* The built-in guests' tiny runtime: ports of the guest ABI, console, IDT, debug registers. */
#ifndef GUEST_RUNTIME_H
#define GUEST_RUNTIME_H

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long u64;

#define PORT_CONSOLE 0xE9 /* write a byte: debug console */
#define PORT_EXIT 0xF4    /* write: the VM ends, status = value & 0x7F */
#define PORT_TIMER 0xF8   /* write 32 bits: vector | period << 8 (0 = stop) */
#define PORT_POST 0x80    /* an ordinary I/O port: a VM exit, nothing else */

#define RFLAGS_TF (1UL << 8)
#define RFLAGS_IF (1UL << 9)
#define RFLAGS_RF (1UL << 16)

static inline void outb(u16 port, u8 v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outw(u16 port, u16 v) { __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outl(u16 port, u32 v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }
static inline u8 inb(u16 port) { u8 v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline u32 inl(u16 port) { u32 v; __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port)); return v; }

static inline void cpuid(u32 leaf, u32 *a, u32 *b, u32 *c, u32 *d) {
  __asm__ volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(leaf), "c"(0));
}
static inline void cli(void) { __asm__ volatile("cli" ::: "memory"); }
static inline void sti(void) { __asm__ volatile("sti" ::: "memory"); }
/* STI's interrupt shadow covers the HLT, so a pending tick cannot be lost in between. */
static inline void sti_hlt_cli(void) { __asm__ volatile("sti; hlt; cli" ::: "memory"); }
static inline u64 read_rflags(void) { u64 f; __asm__ volatile("pushfq; popq %0" : "=r"(f)); return f; }
static inline u16 read_cs(void) { u16 cs; __asm__ volatile("mov %%cs, %0" : "=r"(cs)); return cs; }

void exit_vm(int status) __attribute__((noreturn));

/* Console (port 0xE9). */
#include "console.h"

/* Virtual timer (port 0xF8): `vector` every `period` guest instructions; 0 stops it. */
void timer_start(u8 vector, u32 period);
void timer_stop(void);

/* Frame built by isr.S: GPRs saved by isr_common, then vector, error code, CPU frame. */
struct isr_frame {
  u64 r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi, rdx, rcx, rbx, rax;
  u64 vector, error_code;
  u64 rip, cs, rflags, rsp, ss;
};
typedef void (*isr_handler)(struct isr_frame *f);

#define GATE_INTERRUPT 0xE /* clears IF on delivery */
#define GATE_TRAP 0xF      /* leaves IF alone */

/* Builds the 256-entry IDT (every vector gets its stub), loads it with LIDT. */
void idt_init(void);
/* Routes `vector` to `h` through a gate of `type`; unrouted vectors end the VM (status 126). */
void idt_set_handler(u8 vector, isr_handler h, u8 type);

/* Debug registers (mov to/from DRn) and CR4. */
#define DEFINE_DR(n)                                                                         \
  static inline u64 read_dr##n(void) { u64 v; __asm__ volatile("mov %%dr" #n ", %0" : "=r"(v)); return v; } \
  static inline void write_dr##n(u64 v) { __asm__ volatile("mov %0, %%dr" #n : : "r"(v) : "memory"); }
DEFINE_DR(0)
DEFINE_DR(1)
DEFINE_DR(2)
DEFINE_DR(3)
DEFINE_DR(6)
DEFINE_DR(7)
static inline u64 read_cr4(void) { u64 v; __asm__ volatile("mov %%cr4, %0" : "=r"(v)); return v; }
static inline void write_cr4(u64 v) { __asm__ volatile("mov %0, %%cr4" : : "r"(v) : "memory"); }

#endif
