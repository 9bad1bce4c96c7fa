/*
 * hhkernel: a higher-half kernel for the modes-and-privilege work (issue 8 section 3).
 * Linked at 0xffffffff80000000 and up, loaded at 1 MiB (boot.S builds its page tables). It
 * sets up its own GDT, TSS (RSP0, IST1 for #DB) and IDT, enters CPL 3 with IRETQ, makes
 * SYSCALLs, takes and fixes a #PF, and checks its own DR0-3 (data breakpoints on virtual
 * addresses hit at CPL 3 and CPL 0, an instruction breakpoint at CPL 3) across VM exits
 * (OUT, CPUID, HLT). One PASS/FAIL line per check; exits 0 only if all pass.
 *
 * For gdb: `hh_counter` (a higher-half global on a user page) is incremented at CPL 3 by
 * the user loop and at CPL 0 by SYS_BUMP, alternately; `hh_table` holds known quadwords.
 */
#include <stdint.h>

#define KBASE 0xffffffff80000000UL
#define USER __attribute__((section(".user.text"), noinline))
#define UDATA __attribute__((section(".user.data")))

enum { SYS_PUTC = 0, SYS_KWRITE = 1, SYS_BUMP = 2, SYS_EXIT = 3 };

/* ---- hardware access ------------------------------------------------------------------ */

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }
static inline void wrmsr(uint32_t msr, uint64_t v) {
  __asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}
static inline uint64_t rdmsr(uint32_t msr) {
  uint32_t lo, hi;
  __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
  return ((uint64_t)hi << 32) | lo;
}
static inline void cpuid0(void) {
  uint32_t a = 0, b, c = 0, d;
  __asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
}
#define SET_DR(n, v) __asm__ volatile("mov %0, %%dr" #n : : "r"((uint64_t)(v)))
#define GET_DR(n) ({ uint64_t _v; __asm__ volatile("mov %%dr" #n ", %0" : "=r"(_v)); _v; })

static void putc_k(char c) { outb(0xe9, (uint8_t)c); }
static void puts_k(const char *s) { while (*s) putc_k(*s++); }
static void puthex(uint64_t v) {
  puts_k("0x");
  for (int i = 60; i >= 0; i -= 4) putc_k("0123456789abcdef"[(v >> i) & 15]);
}

static int failures;
static void check(const char *name, int ok, uint64_t expected, uint64_t got) {
  if (ok) { puts_k("PASS "); puts_k(name); puts_k("\n"); return; }
  failures++;
  puts_k("FAIL "); puts_k(name); puts_k(": expected "); puthex(expected); puts_k(" got "); puthex(got); puts_k("\n");
}
#define CHECK_EQ(name, exp, got) do { uint64_t _e = (exp), _g = (got); check(name, _e == _g, _e, _g); } while (0)

/* ---- descriptor tables ------------------------------------------------------------------- */

struct tss {
  uint32_t reserved0;
  uint64_t rsp[3];
  uint64_t reserved1;
  uint64_t ist[7];
  uint64_t reserved2;
  uint16_t reserved3;
  uint16_t iomap_base;
} __attribute__((packed));

static uint64_t gdt[9];
static struct tss tss;
static struct { uint64_t lo, hi; } idt[256];
static uint8_t ist1_stack[8192] __attribute__((aligned(16)));
static uint8_t rsp0_stack[8192] __attribute__((aligned(16)));
static uint8_t syscall_stack[8192] __attribute__((aligned(16)));
/* per-CPU area for SWAPGS: [0] user RSP scratch, [1] syscall stack top */
static uint64_t percpu[2];
uint64_t exit_requested;

struct __attribute__((packed)) dtr { uint16_t limit; uint64_t base; };

extern char isr0[], isr1[], isr3[], isr6[], isr8[], isr13[], isr14[], isr32[];
extern char syscall_entry[];
extern void enter_user(void (*entry)(void), uint64_t user_rsp);
extern uint64_t pt_high[]; /* identity-mapped (boot.S) */
extern char __user_lazy[];

static void set_gate(int v, void *handler, int ist, int dpl) {
  uint64_t h = (uint64_t)handler;
  idt[v].lo = (h & 0xffff) | (0x08UL << 16) | ((uint64_t)ist << 32) | ((uint64_t)(0x8e | (dpl << 5)) << 40) |
              ((h >> 16) & 0xffff) << 48;
  idt[v].hi = h >> 32;
}

static void setup_tables(void) {
  gdt[1] = 0x00af9b000000ffffUL; /* 0x08 kernel code 64 */
  gdt[2] = 0x00cf93000000ffffUL; /* 0x10 kernel data */
  gdt[3] = 0x00cffb000000ffffUL; /* 0x18 user code 32 (SYSRET base) */
  gdt[4] = 0x00cff3000000ffffUL; /* 0x20 user data */
  gdt[5] = 0x00affb000000ffffUL; /* 0x28 user code 64 */
  uint64_t t = (uint64_t)&tss, lim = sizeof tss - 1;
  gdt[6] = (lim & 0xffff) | ((t & 0xffffff) << 16) | (0x89UL << 40) | ((t >> 24) & 0xff) << 56; /* 0x30 TSS */
  gdt[7] = t >> 32;
  tss.rsp[0] = (uint64_t)(rsp0_stack + sizeof rsp0_stack);
  tss.ist[0] = (uint64_t)(ist1_stack + sizeof ist1_stack);
  tss.iomap_base = sizeof tss; /* no I/O bitmap: no port at CPL 3 */
  struct dtr g = { sizeof gdt - 1, (uint64_t)gdt };
  __asm__ volatile("lgdt %0" : : "m"(g));
  /* reload CS with a far return, then the data segments */
  __asm__ volatile("pushq $8\n lea 1f(%%rip), %%rax\n pushq %%rax\n lretq\n 1:\n"
                   "mov $0x10, %%eax\n mov %%eax, %%ds\n mov %%eax, %%es\n mov %%eax, %%ss" : : : "rax", "memory");
  __asm__ volatile("ltr %w0" : : "r"(0x30));
  set_gate(0, isr0, 0, 0);
  set_gate(1, isr1, 1, 0); /* #DB on IST1 */
  set_gate(3, isr3, 0, 3);
  set_gate(6, isr6, 0, 0);
  set_gate(8, isr8, 0, 0);
  set_gate(13, isr13, 0, 0);
  set_gate(14, isr14, 0, 0);
  set_gate(32, isr32, 0, 0);
  struct dtr i = { sizeof idt - 1, (uint64_t)idt };
  __asm__ volatile("lidt %0" : : "m"(i));
  /* SYSCALL: STAR (SYSCALL CS 0x08, SYSRET base 0x18), LSTAR, FMASK (TF IF DF AC), EFER.SCE */
  wrmsr(0xc0000081, (0x18UL << 48) | (0x08UL << 32));
  wrmsr(0xc0000082, (uint64_t)syscall_entry);
  wrmsr(0xc0000084, 0x40700);
  wrmsr(0xc0000080, rdmsr(0xc0000080) | 1);
  percpu[1] = (uint64_t)(syscall_stack + sizeof syscall_stack);
  wrmsr(0xc0000102, (uint64_t)percpu); /* KERNEL_GS_BASE */
}

/* ---- events --------------------------------------------------------------------------------- */

struct frame {
  uint64_t r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi, rdx, rcx, rbx, rax;
  uint64_t vector, error, rip, cs, rflags, rsp, ss;
};

#define MAX_DB 16
static struct { uint64_t dr6, cpl, rip, on_ist; } db_log[MAX_DB];
static int db_count;
static int pf_count;
static uint64_t pf_cr2, pf_error;
static int timer_ticks;

void isr_dispatch(struct frame *f) {
  switch (f->vector) {
  case 1: {
    uint64_t sp = (uint64_t)f;
    if (db_count < MAX_DB) {
      db_log[db_count].dr6 = GET_DR(6);
      db_log[db_count].cpl = f->cs & 3;
      db_log[db_count].rip = f->rip;
      db_log[db_count].on_ist = sp >= (uint64_t)ist1_stack && sp < (uint64_t)(ist1_stack + sizeof ist1_stack);
    }
    db_count++;
    SET_DR(6, 0);
    f->rflags |= 1UL << 16; /* RF: an instruction breakpoint does not hit again */
    return;
  }
  case 14: {
    uint64_t cr2;
    __asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
    pf_count++;
    pf_cr2 = cr2;
    pf_error = f->error;
    uint64_t idx = ((cr2 & ~0xfffUL) - KBASE) >> 12;
    if (cr2 >= KBASE && idx < 512 && (uint64_t)__user_lazy == (cr2 & ~0xfffUL)) {
      pt_high[idx] |= 1; /* map the demand page (present, U, RW) and retry */
      __asm__ volatile("invlpg (%0)" : : "r"(cr2) : "memory");
      return;
    }
    break;
  }
  case 32:
    timer_ticks++;
    return;
  default:
    break;
  }
  puts_k("FAIL unexpected exception ");
  puthex(f->vector);
  puts_k(" error ");
  puthex(f->error);
  puts_k(" at ");
  puthex(f->rip);
  puts_k("\n");
  outb(0xf4, 1);
}

/* ---- watched data --------------------------------------------------------------------------- */

uint64_t user_word UDATA;            /* DR0: write, 8 bytes: the user writes it (CPL 3) */
uint64_t kernel_word;                /* DR1: write, 8 bytes: SYS_KWRITE writes it (CPL 0) */
uint32_t shared_word UDATA = 7;      /* DR2: read/write, 4 bytes: read at CPL 3 and at CPL 0 */
volatile uint64_t hh_counter UDATA;  /* for gdb: incremented at CPL 3 and at CPL 0 */
uint64_t hh_table[4] = { 0x1111111111111111UL, 0x2222222222222222UL, 0xfedcba9876543210UL, 0xffffffff80000000UL };
static uint64_t user_stack[512] __attribute__((section(".user.bss"), aligned(16)));
static volatile uint64_t lazy_page[512] __attribute__((section(".user.lazy"), aligned(4096)));
uint64_t user_result UDATA;

uint64_t syscall_dispatch(uint64_t nr, uint64_t arg) {
  switch (nr) {
  case SYS_PUTC: putc_k((char)arg); return 0;
  case SYS_KWRITE: {
    /* VM exits between arming and the hits */
    outb(0x80, 1);
    cpuid0();
    kernel_word = arg;                  /* DR1 at CPL 0 */
    return *(volatile uint32_t *)&shared_word; /* DR2 at CPL 0 */
  }
  case SYS_BUMP: hh_counter = hh_counter + 1; return hh_counter;
  case SYS_EXIT: exit_requested = 1; return 0;
  default: return (uint64_t)-1;
  }
}

/* ---- user mode (CPL 3) --------------------------------------------------------------------------- */

static inline __attribute__((always_inline)) uint64_t sys(uint64_t nr, uint64_t arg) {
  uint64_t r;
  __asm__ volatile("syscall" : "=a"(r) : "a"(nr), "D"(arg) : "rcx", "r11", "memory");
  return r;
}

USER void user_marker(void) { __asm__ volatile("nop"); }  /* DR3: execute */

USER void user_main(void) {
  user_word = 0x5555;                           /* DR0 at CPL 3 */
  uint32_t v = *(volatile uint32_t *)&shared_word; /* DR2 at CPL 3 */
  user_marker();                                /* DR3 at CPL 3 */
  uint64_t r = sys(SYS_KWRITE, 0x6666);         /* DR1 and DR2 at CPL 0 */
  lazy_page[3] = 0x77;                          /* #PF, fixed by the kernel */
  user_result = v + r + lazy_page[3];
  for (int i = 0; i < 5; i++) {
    hh_counter = hh_counter + 1;                /* CPL 3 */
    uint64_t nr = SYS_BUMP;
    __asm__ volatile(".globl user_syscall_insn\n user_syscall_insn:\n syscall" : "+a"(nr) : : "rcx", "r11", "memory"); /* CPL 0 */
  }
  sys(SYS_EXIT, 0);
}

/* ---- main ------------------------------------------------------------------------------------ */

static void arm(void) {
  SET_DR(0, &user_word);
  SET_DR(1, &kernel_word);
  SET_DR(2, &shared_word);
  SET_DR(3, user_marker);
  /* L0-L3; DR0 W len 8, DR1 W len 8, DR2 RW len 4, DR3 execute */
  uint64_t dr7 = 0x55 | (0x9UL << 16) | (0x9UL << 20) | (0xfUL << 24) | (0x0UL << 28);
  SET_DR(7, dr7);
}

int kmain(void) {
  puts_k("hhkernel: running at ");
  puthex((uint64_t)kmain);
  puts_k("\n");
  CHECK_EQ("higher-half", 1, (uint64_t)kmain >= KBASE);
  setup_tables();
  uint16_t cs;
  __asm__ volatile("mov %%cs, %0" : "=r"(cs));
  CHECK_EQ("lretq-reloads-cs", 0x08, cs);

  arm();
  /* VM exits with the breakpoints armed: OUT, CPUID, HLT woken by the timer */
  outb(0x80, 0);
  cpuid0();
  outl(0xf8, 32 | (500 << 8));
  __asm__ volatile("sti\n hlt\n cli");
  outl(0xf8, 0);
  CHECK_EQ("timer-woke-hlt", 1, timer_ticks >= 1);
  CHECK_EQ("dr7-survives-exits", 0x55 | (0x9UL << 16) | (0x9UL << 20) | (0xfUL << 24), GET_DR(7) & 0xffff00ff);
  CHECK_EQ("dr0-survives-exits", (uint64_t)&user_word, GET_DR(0));

  enter_user(user_main, (uint64_t)(user_stack + 512));
  SET_DR(7, 0);

  CHECK_EQ("db-count", 5, db_count);
  CHECK_EQ("dr0-write-at-cpl3", 1 | (3UL << 8), (db_log[0].dr6 & 0xf) | db_log[0].cpl << 8);
  CHECK_EQ("dr2-read-at-cpl3", 4 | (3UL << 8), (db_log[1].dr6 & 0xf) | db_log[1].cpl << 8);
  CHECK_EQ("dr3-exec-at-cpl3", 8 | (3UL << 8), (db_log[2].dr6 & 0xf) | db_log[2].cpl << 8);
  CHECK_EQ("dr3-rip", (uint64_t)user_marker, db_log[2].rip);
  CHECK_EQ("dr1-write-at-cpl0", 2, (db_log[3].dr6 & 0xf) | db_log[3].cpl << 8);
  CHECK_EQ("dr2-read-at-cpl0", 4, (db_log[4].dr6 & 0xf) | db_log[4].cpl << 8);
  int ist = 1;
  for (int k = 0; k < db_count && k < MAX_DB; k++) ist &= (int)db_log[k].on_ist;
  CHECK_EQ("db-on-ist1-stack", 1, ist);
  CHECK_EQ("kernel-word", 0x6666, kernel_word);
  CHECK_EQ("user-word", 0x5555, user_word);
  CHECK_EQ("pf-count", 1, pf_count);
  CHECK_EQ("pf-cr2", (uint64_t)&lazy_page[3], pf_cr2);
  CHECK_EQ("pf-error-user-write-not-present", 6, pf_error);
  CHECK_EQ("user-result", 7 + 7 + 0x77, user_result);
  CHECK_EQ("hh-counter", 10, hh_counter);
  puts_k(failures ? "hhkernel: FAILED\n" : "hhkernel: all checks passed\n");
  return failures ? 1 : 0;
}
