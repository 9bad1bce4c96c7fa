/*
 * hobby: a small Multiboot v1 kernel of the kind people write to learn (issue 9). Linked at
 * 0xffffffff80000000 (boot.S switches to long mode and builds the page tables), it prints
 * on the 16550 UART (COM1, polling LSR.THRE) what the boot loader told it (magic, memory
 * sizes, command line, memory map), sets up its IDT and the local APIC timer (periodic,
 * vector 0x20, ticks counted per CPU), starts the second CPU with INIT-SIPI-SIPI through a
 * real-mode trampoline at 0x8000, and lets both CPUs increment `shared_counter` with
 * LOCK XADD: first in turns (CPU 0 makes it odd, CPU 1 even), then both at once. It exits
 * through port 0xF4 with 0 when the total is right. Every line is printed at a point fixed
 * by a handshake between the CPUs, so the output is the same on every run.
 *
 * Command line words (after the kernel path): `idle` = stay in HLT with the timer running
 * at the end instead of exiting (for gdb's Ctrl-C); `echo` = then read lines from COM1,
 * interrupt-driven (the 8259 remapped to 0x30, IRQ 4 through LINT0 in ExtINT mode, UART
 * IER.RDA), answer each with `echo: LINE`, and exit 0 on the line `exit` (`run
 * --serial-input`).
 */
#include <stdint.h>

#define TRAMPOLINE_BASE 0x8000 /* below 1 MiB, page-aligned: SIPI vector 0x08 */
#define APIC_BASE 0xfee00000UL  /* identity-mapped (boot.S) */
#define TIMER_VECTOR 0x20
#define PIC_BASE_VECTOR 0x30    /* the 8259 pair remapped: IRQ n at 0x30 + n */
#define COM1_VECTOR (PIC_BASE_VECTOR + 4)
#define SPURIOUS_VECTOR 0xff
#define TIMER_PERIOD 20000      /* APIC timer counts (TSC / 1) per tick */
#define BOOT_TICKS 3            /* ticks each CPU waits for before it goes on */
#define TURNS 5                 /* increments per CPU in turns */
#define RACE 1000               /* increments per CPU at the same time */

/* ---- the globals a debugger looks at --------------------------------------------------- */

/* Written by both CPUs with LOCK XADD (a higher-half global: `watch shared_counter`). */
volatile uint64_t shared_counter;
/* Timer interrupts taken, per CPU (index = local APIC ID). */
volatile uint64_t timer_ticks[2];
/* Increments each CPU made. */
volatile uint64_t increments[2];
/* The AP's progress: 1 = up in long mode with its timer running, 2 = done. */
volatile uint32_t ap_stage;
/* Set by the BSP when the AP may start incrementing. */
volatile uint32_t go;
static int idle_at_end;
static int echo_at_end;
/* Bytes the COM1 interrupt handler took from the receive FIFO, not yet echoed (a ring). */
static volatile uint8_t rx_ring[256];
static volatile uint32_t rx_head, rx_tail;
/* Bytes received over COM1, and its interrupts taken. */
volatile uint64_t serial_bytes, serial_irqs;

/* ---- hardware access --------------------------------------------------------------------- */

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port) { uint8_t v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }
static inline void pause(void) { __asm__ volatile("pause" ::: "memory"); }

static inline uint32_t apic_read(uint32_t reg) { return *(volatile uint32_t *)(APIC_BASE + reg); }
static inline void apic_write(uint32_t reg, uint32_t v) { *(volatile uint32_t *)(APIC_BASE + reg) = v; }
static uint32_t cpu_id(void) { return apic_read(0x20) >> 24; }

static void exit_vm(uint32_t status) {
  outl(0xf4, status);
  for (;;) __asm__ volatile("cli; hlt");
}

/* ---- UART (COM1) ----------------------------------------------------------------------- */

#define COM1 0x3f8

static void uart_init(void) {
  outb(COM1 + 1, 0x00); /* IER: no interrupts */
  outb(COM1 + 3, 0x80); /* LCR: DLAB */
  outb(COM1 + 0, 0x01); /* divisor 1: 115200 baud */
  outb(COM1 + 1, 0x00);
  outb(COM1 + 3, 0x03); /* 8N1 */
  outb(COM1 + 2, 0xc7); /* FIFO on, cleared */
  outb(COM1 + 4, 0x03); /* DTR RTS */
}

static void uart_putc(char c) {
  while ((inb(COM1 + 5) & 0x20) == 0) pause(); /* LSR.THRE */
  outb(COM1, (uint8_t)c);
}

/* One CPU prints at a time: a spinlock taken with XCHG. */
static volatile uint32_t print_lock;
static void lock_print(void) { while (__atomic_exchange_n(&print_lock, 1, __ATOMIC_ACQUIRE)) pause(); }
static void unlock_print(void) { __atomic_store_n(&print_lock, 0, __ATOMIC_RELEASE); }

static void puts_u(const char *s) { while (*s) uart_putc(*s++); }
static void putdec(uint64_t v) {
  char b[24];
  int n = 0;
  do { b[n++] = (char)('0' + v % 10); v /= 10; } while (v);
  while (n) uart_putc(b[--n]);
}
static void puthex(uint64_t v, int digits) {
  puts_u("0x");
  for (int i = (digits - 1) * 4; i >= 0; i -= 4) uart_putc("0123456789abcdef"[(v >> i) & 15]);
}

/* ---- interrupts ------------------------------------------------------------------------- */

struct isr_frame {
  uint64_t r11, r10, r9, r8, rdi, rsi, rdx, rcx, rax;
  uint64_t vector, error, rip, cs, rflags, rsp, ss;
};

static struct { uint64_t lo, hi; } idt[256];
struct __attribute__((packed)) dtr { uint16_t limit; uint64_t base; };
extern char isr0[], isr6[], isr8[], isr13[], isr14[], isr32[], isr52[], isr255[];

static void set_gate(int v, void *handler) {
  uint64_t h = (uint64_t)handler;
  idt[v].lo = (h & 0xffff) | (0x08UL << 16) | (0x8eUL << 40) | ((h >> 16) & 0xffff) << 48;
  idt[v].hi = h >> 32;
}

static void load_idt(void) {
  struct dtr d = { sizeof idt - 1, (uint64_t)idt };
  __asm__ volatile("lidt %0" : : "m"(d));
}

void isr_dispatch(struct isr_frame *f) {
  if (f->vector == TIMER_VECTOR) {
    timer_ticks[cpu_id() & 1]++;
    apic_write(0xb0, 0); /* EOI */
    return;
  }
  if (f->vector == SPURIOUS_VECTOR) return; /* no EOI for a spurious interrupt */
  if (f->vector == COM1_VECTOR) {
    serial_irqs++;
    while (inb(COM1 + 5) & 1) { /* LSR.DR: drain the FIFO */
      rx_ring[rx_head & 255] = inb(COM1);
      rx_head++;
      serial_bytes++;
    }
    outb(0x20, 0x20); /* non-specific EOI to the master 8259 (ExtINT: no local APIC EOI) */
    return;
  }
  lock_print();
  puts_u("cpu");
  putdec(cpu_id());
  puts_u(": exception ");
  putdec(f->vector);
  puts_u(" error ");
  puthex(f->error, 4);
  puts_u(" at ");
  puthex(f->rip, 16);
  puts_u("\n");
  exit_vm(3);
}

/* This CPU's local APIC on (spurious vector 0xFF) and its timer periodic at vector 0x20. */
static void start_apic_timer(void) {
  apic_write(0xf0, 0x100 | SPURIOUS_VECTOR);
  apic_write(0x3e0, 0xb);                      /* divide by 1 */
  apic_write(0x320, (1u << 17) | TIMER_VECTOR); /* periodic */
  apic_write(0x380, TIMER_PERIOD);
}

static void wait_ticks(uint32_t me, uint64_t n) {
  while (timer_ticks[me] < n) __asm__ volatile("sti; hlt; cli" ::: "memory");
  __asm__ volatile("sti");
}

/* ---- the shared counter ----------------------------------------------------------------- */

static uint64_t bump(void) { return __atomic_fetch_add(&shared_counter, 1, __ATOMIC_SEQ_CST); } /* LOCK XADD */

/* Both CPUs: TURNS increments in turns (CPU 0 on even values, CPU 1 on odd), then RACE at once. */
static void count(uint32_t me) {
  for (int i = 0; i < TURNS; i++) {
    while ((shared_counter & 1) != me) pause();
    bump();
    increments[me]++;
  }
  while (shared_counter < 2 * TURNS) pause();
  for (int i = 0; i < RACE; i++) {
    bump();
    increments[me]++;
  }
}

/* ---- the application processor ---------------------------------------------------------- */

void ap_main(void) {
  uint32_t me = cpu_id();
  load_idt();
  start_apic_timer();
  wait_ticks(me, BOOT_TICKS);
  lock_print();
  puts_u("cpu1: up in long mode (apic id ");
  putdec(me);
  puts_u("), ");
  putdec(BOOT_TICKS);
  puts_u(" timer ticks\n");
  unlock_print();
  __atomic_store_n(&ap_stage, 1, __ATOMIC_RELEASE);
  while (!go) pause();
  count(me);
  lock_print();
  puts_u("cpu1: done, ");
  putdec(increments[me]);
  puts_u(" increments\n");
  unlock_print();
  __atomic_store_n(&ap_stage, 2, __ATOMIC_RELEASE);
  if (echo_at_end) {
    /* Out of the way for good: while the BSP waits for input, every CPU is halted. */
    apic_write(0x320, 1u << 16);
    for (;;) __asm__ volatile("cli; hlt");
  }
  for (;;) __asm__ volatile("hlt");
}

/* INIT, then SIPI twice, to APIC ID 1 (SDM 8.4.4.1; the second SIPI is ignored by an AP already running). */
static void start_ap(void) {
  extern const char ap_tramp[], ap_tramp_end[];
  volatile char *dst = (volatile char *)TRAMPOLINE_BASE;
  for (const char *s = ap_tramp; s < ap_tramp_end; s++) *dst++ = *s;
  apic_write(0x310, 1u << 24);
  apic_write(0x300, 0x4500); /* INIT, assert */
  apic_write(0x310, 1u << 24);
  apic_write(0x300, 0x4600 | (TRAMPOLINE_BASE >> 12)); /* SIPI */
  apic_write(0x310, 1u << 24);
  apic_write(0x300, 0x4600 | (TRAMPOLINE_BASE >> 12));
}

/* ---- serial input (`echo`) ---------------------------------------------------------------- */

/* The 8259 pair remapped above the exceptions, every line masked but IRQ 4 (COM1). */
static void pic_init(void) {
  outb(0x20, 0x11); outb(0xa0, 0x11);                       /* ICW1: edge, cascade, ICW4 */
  outb(0x21, PIC_BASE_VECTOR); outb(0xa1, PIC_BASE_VECTOR + 8); /* ICW2: vector bases */
  outb(0x21, 0x04); outb(0xa1, 0x02);                       /* ICW3: slave on IRQ 2 */
  outb(0x21, 0x01); outb(0xa1, 0x01);                       /* ICW4: 8086 mode */
  outb(0x21, 0xef); outb(0xa1, 0xff);                       /* masks: IRQ 4 only */
}

/* Lines from COM1 answered with `echo: LINE`; the line `exit` ends the VM with 0. */
static void echo_lines(void) {
  char line[128];
  uint32_t n = 0;
  set_gate(COM1_VECTOR, isr52);
  pic_init();
  apic_write(0x350, 0x700);      /* LINT0: ExtINT, unmasked (the 8259's INTR) */
  apic_write(0x320, 1u << 16);   /* the timer masked: only input wakes this CPU */
  outb(COM1 + 1, 0x01);          /* IER: received data available */
  outb(COM1 + 4, 0x0b);          /* DTR RTS OUT2: the IRQ line reaches the 8259 */
  puts_u("echo: type lines, `exit` ends\n");
  for (;;) {
    __asm__ volatile("cli" ::: "memory");
    if (rx_tail == rx_head) { __asm__ volatile("sti; hlt" ::: "memory"); continue; }
    __asm__ volatile("sti" ::: "memory");
    char c = (char)rx_ring[rx_tail & 255];
    rx_tail++;
    if (c == '\r') continue;
    if (c != '\n') { if (n < sizeof line - 1) line[n++] = c; continue; }
    line[n] = 0;
    puts_u("echo: ");
    puts_u(line);
    puts_u("\n");
    if (n == 4 && line[0] == 'e' && line[1] == 'x' && line[2] == 'i' && line[3] == 't') exit_vm(0);
    n = 0;
  }
}

/* ---- Multiboot information ---------------------------------------------------------------- */

struct multiboot_info {
  uint32_t flags, mem_lower, mem_upper, boot_device, cmdline, mods_count, mods_addr;
  uint32_t syms[4];
  uint32_t mmap_length, mmap_addr;
  uint32_t drives_length, drives_addr, config_table, boot_loader_name;
};

struct __attribute__((packed)) mmap_entry { uint32_t size; uint64_t base, length; uint32_t type; };

static int word_in(const char *s, const char *w) {
  while (*s) {
    while (*s == ' ') s++;
    const char *a = s, *b = w;
    while (*a && *a != ' ' && *a == *b) { a++; b++; }
    if (*b == 0 && (*a == 0 || *a == ' ')) return 1;
    while (*s && *s != ' ') s++;
  }
  return 0;
}

static void print_boot_info(const struct multiboot_info *mb) {
  if (mb->flags & (1u << 9)) { puts_u("boot loader: "); puts_u((const char *)(uint64_t)mb->boot_loader_name); puts_u("\n"); }
  if (mb->flags & (1u << 0)) {
    puts_u("memory: lower ");
    putdec(mb->mem_lower);
    puts_u(" KiB, upper ");
    putdec(mb->mem_upper);
    puts_u(" KiB\n");
  }
  if (mb->flags & (1u << 2)) {
    const char *cmdline = (const char *)(uint64_t)mb->cmdline;
    puts_u("cmdline: ");
    puts_u(cmdline);
    puts_u("\n");
    /* the first word is the kernel's path */
    while (*cmdline && *cmdline != ' ') cmdline++;
    idle_at_end = word_in(cmdline, "idle");
    echo_at_end = word_in(cmdline, "echo");
  }
  if (mb->flags & (1u << 6)) {
    uint64_t p = mb->mmap_addr, end = p + mb->mmap_length;
    while (p < end) {
      const struct mmap_entry *e = (const struct mmap_entry *)p;
      puts_u("mmap: ");
      puthex(e->base, 8);
      puts_u("-");
      puthex(e->base + e->length - 1, 8);
      puts_u(e->type == 1 ? " available\n" : " reserved\n");
      p += e->size + 4;
    }
  }
}

/* ---- the bootstrap processor -------------------------------------------------------------- */

void kmain(uint32_t magic, uint32_t info) {
  uart_init();
  puts_u("hobby: Multiboot kernel at ");
  puthex((uint64_t)&kmain, 16);
  puts_u(", long mode\n");
  if (magic != 0x2badb002) {
    puts_u("bad Multiboot magic ");
    puthex(magic, 8);
    puts_u("\n");
    exit_vm(1);
  }
  print_boot_info((const struct multiboot_info *)(uint64_t)info);

  set_gate(0, isr0);
  set_gate(6, isr6);
  set_gate(8, isr8);
  set_gate(13, isr13);
  set_gate(14, isr14);
  set_gate(TIMER_VECTOR, isr32);
  set_gate(SPURIOUS_VECTOR, isr255);
  load_idt();
  uint32_t me = cpu_id();
  start_apic_timer();
  wait_ticks(me, BOOT_TICKS);
  puts_u("cpu0: apic id ");
  putdec(me);
  puts_u(", ");
  putdec(BOOT_TICKS);
  puts_u(" timer ticks (vector 0x20, periodic)\n");

  puts_u("cpu0: INIT-SIPI-SIPI to apic id 1, trampoline at ");
  puthex(TRAMPOLINE_BASE, 4);
  puts_u("\n");
  start_ap();
  /* give the AP 100 of our ticks to come up */
  while (__atomic_load_n(&ap_stage, __ATOMIC_ACQUIRE) < 1) {
    if (timer_ticks[me] > BOOT_TICKS + 100) {
      puts_u("cpu0: cpu1 did not come up (one vCPU only? run with --vcpus 2)\n");
      exit_vm(2);
    }
    pause();
  }
  go = 1;
  count(me);
  while (__atomic_load_n(&ap_stage, __ATOMIC_ACQUIRE) < 2) pause();
  lock_print();
  puts_u("cpu0: done, ");
  putdec(increments[me]);
  puts_u(" increments\n");
  puts_u("shared_counter = ");
  putdec(shared_counter);
  puts_u(shared_counter == 2 * (TURNS + RACE) ? " (ok)\n" : " (WRONG)\n");
  if (idle_at_end) {
    puts_u("idle: both CPUs in HLT, timer running\n");
    unlock_print();
    for (;;) __asm__ volatile("hlt");
  }
  unlock_print();
  if (echo_at_end && shared_counter == 2 * (TURNS + RACE)) echo_lines();
  exit_vm(shared_counter == 2 * (TURNS + RACE) ? 0 : 1);
}
