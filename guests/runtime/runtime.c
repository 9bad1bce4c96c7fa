#include "runtime.h"

void exit_vm(int status) {
  outb(PORT_EXIT, (u8)status);
  for (;;) __asm__ volatile("cli; hlt");
}

void con_putc(char c) { outb(PORT_CONSOLE, (u8)c); }

void con_puts(const char *s) {
  while (*s) con_putc(*s++);
}

void con_hex(u64 v) {
  char buf[16];
  int n = 0;
  con_puts("0x");
  do {
    buf[n++] = "0123456789abcdef"[v & 15];
    v >>= 4;
  } while (v);
  while (n) con_putc(buf[--n]);
}

void con_dec(u64 v) {
  char buf[20];
  int n = 0;
  do {
    buf[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  while (n) con_putc(buf[--n]);
}

void con_sdec(long v) {
  if (v < 0) {
    con_putc('-');
    con_dec(-(u64)v);
  } else {
    con_dec((u64)v);
  }
}

void timer_start(u8 vector, u32 period) { outl(PORT_TIMER, vector | (period << 8)); }
void timer_stop(void) { outl(PORT_TIMER, 0); }

/* 64-bit IDT gate descriptor (SDM Vol. 3A 6.14.1). */
struct idt_gate {
  u16 offset_lo;
  u16 selector;
  u8 ist;
  u8 type_attr; /* P=1, DPL=0, type */
  u16 offset_mid;
  u32 offset_hi;
  u32 reserved;
} __attribute__((packed));

struct idt_pointer {
  u16 limit;
  u64 base;
} __attribute__((packed));

extern char isr_stubs[];
static struct idt_gate idt[256] __attribute__((aligned(16)));
static isr_handler handlers[256];

static void set_gate(u8 vector, u8 type) {
  u64 target = (u64)(isr_stubs + 16 * vector);
  struct idt_gate *g = &idt[vector];
  g->offset_lo = (u16)target;
  g->selector = read_cs();
  g->ist = 0;
  g->type_attr = (u8)(0x80 | type);
  g->offset_mid = (u16)(target >> 16);
  g->offset_hi = (u32)(target >> 32);
  g->reserved = 0;
}

void idt_init(void) {
  for (int v = 0; v < 256; v++) set_gate((u8)v, GATE_INTERRUPT);
  struct idt_pointer p = {sizeof idt - 1, (u64)idt};
  __asm__ volatile("lidt %0" : : "m"(p));
}

void idt_set_handler(u8 vector, isr_handler h, u8 type) {
  handlers[vector] = h;
  set_gate(vector, type);
}

/* Called by isr_common with the saved frame; handlers may edit it (RIP, RFLAGS.RF...). */
void isr_dispatch(struct isr_frame *f) {
  isr_handler h = handlers[f->vector & 0xff];
  if (h) {
    h(f);
    return;
  }
  con_puts("unhandled exception/interrupt vector ");
  con_dec(f->vector);
  con_puts(" error ");
  con_hex(f->error_code);
  con_puts(" at rip ");
  con_hex(f->rip);
  con_putc('\n');
  exit_vm(126);
}
