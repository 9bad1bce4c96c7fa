/*
 * counter: updates globals in a loop with a VM exit of each kind between updates:
 *   OUT to port 0x80, CPUID, and HLT woken by the virtual timer (port 0xF8) through the
 *   guest's own IDT with IF=1 around the HLT.
 * The globals are the targets of the gdb watchpoint tests:
 *   counter        8 bytes, written every iteration (watch)
 *   misaligned_u32 4 bytes (struct { u32 value; }, packed) at an address = 2 mod 16,
 *                  written every iteration (2 DR slots)
 *   wide_struct    16 bytes, both halves written every iteration (2 DR slots)
 *   read_only_value 8 bytes, only ever read (rwatch/awatch)
 *   ticks          timer interrupts taken
 * Each vCPU runs the loop; vCPU 0 prints and its return ends the VM with status 0.
 */
#include "runtime.h"

#define ITERATIONS 20
#define TIMER_VECTOR 0x20
#define TIMER_PERIOD 2000

/* gcc will not lower a variable's alignment, but a packed struct's alignment is 1. */
struct unaligned_u32 {
  u32 value;
} __attribute__((packed));

struct wide {
  u64 lo;
  u64 hi;
};

volatile u64 counter;
volatile struct unaligned_u32 misaligned_u32 __attribute__((section(".data.misaligned")));
volatile struct wide wide_struct __attribute__((aligned(16)));
volatile u64 read_only_value = 0x5a5a0001;
volatile u64 ticks;
volatile u64 read_sum;

static void on_timer(struct isr_frame *f) {
  (void)f;
  __atomic_fetch_add(&ticks, 1, __ATOMIC_RELAXED);
}

/* One update of every watched global; kept out of line so gdb can break on it. */
__attribute__((noinline)) void update_globals(u64 i) {
  __atomic_fetch_add(&counter, 1, __ATOMIC_SEQ_CST);
  misaligned_u32.value = (u32)(0x11110000 + i);
  wide_struct.lo = i;
  wide_struct.hi = ~i;
  read_sum += read_only_value;
}

int main(int cpu, int ncpus) {
  (void)ncpus;
  idt_init();
  idt_set_handler(TIMER_VECTOR, on_timer, GATE_INTERRUPT);
  timer_start(TIMER_VECTOR, TIMER_PERIOD);
  if (cpu == 0) con_puts("counter: start\n");

  for (u64 i = 1; i <= ITERATIONS; i++) {
    update_globals(i);
    outb(PORT_POST, (u8)i); /* I/O exit */
    u32 a, b, c, d;
    cpuid(0, &a, &b, &c, &d); /* CPUID exit */
    u64 before = ticks;
    while (ticks == before) sti_hlt_cli(); /* HLT exit, woken by the timer */
    if (cpu == 0) {
      con_puts("counter ");
      con_dec(counter);
      con_puts(" ticks ");
      con_dec(ticks);
      con_putc('\n');
    }
  }
  timer_stop();
  if (cpu == 0) {
    con_puts("counter: done ");
    con_dec(counter);
    con_putc('\n');
  }
  return 0;
}
