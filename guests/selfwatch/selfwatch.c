/*
 * selfwatch: an in-guest debugger. It installs its own IDT with a #DB handler, programs its
 * own DR0-3/DR7 (write, read/write, execute and I/O breakpoints; lengths 1, 2, 4, 8), makes
 * VM exits (OUT, CPUID, HLT woken by the timer) between arming and triggering, triggers
 * each breakpoint, and checks the number of #DBs, DR6 and the RIP of each. One line per
 * check: "PASS name" or "FAIL name: expected ... got ...". Exit status 0 only if all pass.
 *
 * Whether this passes depends on the hypervisor switching debug registers at VM exits and
 * entries: with the pre-fix behaviour (--dr-switch none) the guest's DR7 is lost at the
 * first VM exit and the checks after it fail.
 */
#include "runtime.h"

#define TIMER_VECTOR 0x20
#define TIMER_PERIOD 500
#define DR6_CLEAR 0xFFFF0FF0UL /* DR6 read value with no status bit set */
#define DR6_BS (1UL << 14)
#define DR6_B(n) (1UL << (n))
#define CR4_DE (1UL << 3)

enum { RW_EXEC = 0, RW_WRITE = 1, RW_IO = 2, RW_RW = 3 };
enum { LEN1 = 0, LEN2 = 1, LEN8 = 2, LEN4 = 3 };

/* probes.S */
void probe_store8(volatile void *p, u64 v);
void probe_store4(volatile void *p, u64 v);
void probe_store2(volatile void *p, u64 v);
void probe_store1(volatile void *p, u64 v);
u32 probe_load4(volatile void *p);
void probe_exec(void);
void probe_out(u8 v);
void probe_push(void *stack_top, u64 v);
void probe_rep_stos(volatile void *p, int c, u64 n);
void probe_single_step(void);
extern char probe_store8_end[], probe_store4_end[], probe_store2_end[], probe_store1_end[];
extern char probe_load4_end[], probe_out_end[], probe_push_end[], probe_rep_stos_insn[];
extern char probe_single_step_end[];

/* Breakpoint targets, each on its own cache line. */
volatile u64 watched[4][8] __attribute__((aligned(64)));
volatile u8 rep_buffer[32] __attribute__((aligned(64)));
static u8 push_stack[4096] __attribute__((aligned(16)));

/* What the #DB handler saw. */
volatile u64 db_count, db_total, last_dr6, last_rip, ticks;
static int failures;

static void on_timer(struct isr_frame *f) {
  (void)f;
  ticks++;
}

static void on_debug(struct isr_frame *f) {
  u64 dr6 = read_dr6();
  u64 dr7 = read_dr7();
  db_count++;
  db_total++;
  last_dr6 = dr6;
  last_rip = f->rip;
  write_dr6(0);
  /* An instruction breakpoint is a fault: resume with RF=1 so it does not hit again. */
  for (int n = 0; n < 4; n++) {
    if ((dr6 & DR6_B(n)) && ((dr7 >> (16 + 4 * n)) & 3) == RW_EXEC) f->rflags |= RFLAGS_RF;
  }
  f->rflags &= ~RFLAGS_TF;
  if (db_count > 50) {
    con_puts("FAIL runaway: #DB keeps repeating at rip ");
    con_hex(f->rip);
    con_putc('\n');
    exit_vm(3);
  }
}

/* One VM exit of each kind the guest can cause by itself. */
static void vm_exits(void) {
  u32 a, b, c, d;
  outb(0x84, 0x5e); /* not 0x80: that port is the I/O breakpoint's */
  cpuid(1, &a, &b, &c, &d);
  u64 before = ticks;
  while (ticks == before) sti_hlt_cli();
}

static u64 get_dr(int n) {
  switch (n) {
  case 0: return read_dr0();
  case 1: return read_dr1();
  case 2: return read_dr2();
  default: return read_dr3();
  }
}

/* DR7 bits for slot n: L<n>, R/W<n>, LEN<n>. */
static u64 dr7_slot(int n, int rw, int len) {
  return (1UL << (2 * n)) | ((u64)rw << (16 + 4 * n)) | ((u64)len << (18 + 4 * n));
}

/* Programs slot n (address) and DR7, with every other slot disabled and pointing at 0. */
static void arm(u64 dr7, u64 a0, u64 a1, u64 a2, u64 a3) {
  write_dr7(0x400);
  write_dr0(a0);
  write_dr1(a1);
  write_dr2(a2);
  write_dr3(a3);
  write_dr6(0);
  write_dr7(0x400 | dr7);
}

static void disarm(void) {
  write_dr7(0x400);
  write_dr6(0);
}

static void begin(void) {
  vm_exits();
  db_count = 0;
  last_dr6 = 0;
  last_rip = 0;
}

static void fail_u64(const char *name, const char *what, u64 expected, u64 got) {
  con_puts("FAIL ");
  con_puts(name);
  con_puts(": expected ");
  con_puts(what);
  con_putc(' ');
  con_hex(expected);
  con_puts(" got ");
  con_hex(got);
  con_putc('\n');
}

/* Compares what the #DB handler recorded (after more VM exits) with what the SDM says. */
static void check(const char *name, u64 want_count, u64 want_dr6, u64 want_rip) {
  vm_exits();
  disarm();
  u64 count = db_count, dr6 = last_dr6, rip = last_rip;
  if (count != want_count) {
    fail_u64(name, "#DB count", want_count, count);
  } else if (want_count && dr6 != want_dr6) {
    fail_u64(name, "DR6", want_dr6, dr6);
  } else if (want_count && rip != want_rip) {
    fail_u64(name, "RIP", want_rip, rip);
  } else {
    con_puts("PASS ");
    con_puts(name);
    con_putc('\n');
    return;
  }
  failures++;
}

static void check_value(const char *name, const char *what, u64 want, u64 got) {
  if (want == got) {
    con_puts("PASS ");
    con_puts(name);
    con_putc('\n');
  } else {
    fail_u64(name, what, want, got);
    failures++;
  }
}

static u64 addr(volatile void *p) { return (u64)p; }

int main(int cpu, int ncpus) {
  (void)ncpus;
  if (cpu != 0) return 0; /* one in-guest debugger is enough */
  idt_init();
  idt_set_handler(1, on_debug, GATE_INTERRUPT);
  idt_set_handler(TIMER_VECTOR, on_timer, GATE_INTERRUPT);
  timer_start(TIMER_VECTOR, TIMER_PERIOD);
  con_puts("selfwatch: start\n");
  u64 expected_total = 0;

  /* The guest's own debug registers survive VM exits. */
  arm(dr7_slot(0, RW_WRITE, LEN8) | dr7_slot(3, RW_RW, LEN4), addr(&watched[0][1]), 0x1111, 0x2222, addr(&watched[3][1]));
  u64 dr7_written = read_dr7();
  vm_exits();
  vm_exits();
  {
    static const char *names[4] = {"dr0-survives-exits", "dr1-survives-exits", "dr2-survives-exits", "dr3-survives-exits"};
    u64 want[4] = {addr(&watched[0][1]), 0x1111, 0x2222, addr(&watched[3][1])};
    for (int n = 0; n < 4; n++) check_value(names[n], "DR value", want[n], get_dr(n));
  }
  check_value("dr7-survives-exits", "DR7", dr7_written, read_dr7());
  write_dr6(DR6_CLEAR | DR6_B(1));
  vm_exits();
  check_value("dr6-survives-exits", "DR6", DR6_CLEAR | DR6_B(1), read_dr6());
  disarm();

  /* Data write breakpoints, each length, trap-like: RIP after the store. */
  arm(dr7_slot(0, RW_WRITE, LEN8), addr(&watched[0][0]), 0, 0, 0);
  begin();
  probe_store8(&watched[0][0], 1);
  check("write-len8", 1, DR6_CLEAR | DR6_B(0), addr(probe_store8_end));
  expected_total += 1;

  arm(dr7_slot(1, RW_WRITE, LEN4), 0, addr(&watched[1][0]) + 4, 0, 0);
  begin();
  probe_store1((u8 *)&watched[1][0] + 7, 2); /* last byte of the 4-byte range */
  check("write-len4-last-byte", 1, DR6_CLEAR | DR6_B(1), addr(probe_store1_end));
  expected_total += 1;

  arm(dr7_slot(2, RW_WRITE, LEN2), 0, 0, addr(&watched[2][0]) + 2, 0);
  begin();
  probe_store1((u8 *)&watched[2][0] + 3, 3);
  check("write-len2", 1, DR6_CLEAR | DR6_B(2), addr(probe_store1_end));
  expected_total += 1;

  arm(dr7_slot(2, RW_WRITE, LEN2), 0, 0, addr(&watched[2][0]) + 2, 0);
  begin();
  probe_store1((u8 *)&watched[2][0] + 4, 3); /* just past the 2-byte range */
  check("write-len2-outside", 0, 0, 0);

  arm(dr7_slot(3, RW_WRITE, LEN1), 0, 0, 0, addr(&watched[3][0]) + 5);
  begin();
  probe_store8(&watched[3][0], 4); /* an 8-byte store overlapping the watched byte */
  check("write-len1-overlap", 1, DR6_CLEAR | DR6_B(3), addr(probe_store8_end));
  expected_total += 1;

  /* A write breakpoint ignores reads; a read/write one takes both. */
  arm(dr7_slot(0, RW_WRITE, LEN4), addr(&watched[0][2]), 0, 0, 0);
  begin();
  (void)probe_load4(&watched[0][2]);
  check("write-ignores-read", 0, 0, 0);

  arm(dr7_slot(1, RW_RW, LEN4), 0, addr(&watched[1][2]), 0, 0);
  begin();
  (void)probe_load4(&watched[1][2]);
  check("readwrite-read", 1, DR6_CLEAR | DR6_B(1), addr(probe_load4_end));
  expected_total += 1;

  arm(dr7_slot(1, RW_RW, LEN4), 0, addr(&watched[1][2]), 0, 0);
  begin();
  probe_store2(&watched[1][2], 5);
  check("readwrite-write", 1, DR6_CLEAR | DR6_B(1), addr(probe_store2_end));
  expected_total += 1;

  /* Instruction breakpoint: fault-like, RIP at the instruction; RF lets it run once. */
  arm(dr7_slot(2, RW_EXEC, LEN1), 0, 0, addr(probe_exec), 0);
  begin();
  probe_exec();
  check("execute", 1, DR6_CLEAR | DR6_B(2), addr(probe_exec));
  expected_total += 1;

  /* Two slots on the same bytes: one #DB reporting both. */
  arm(dr7_slot(0, RW_WRITE, LEN8) | dr7_slot(1, RW_WRITE, LEN1), addr(&watched[0][4]), addr(&watched[0][4]), 0, 0);
  begin();
  probe_store8(&watched[0][4], 6);
  check("two-slots-one-event", 1, DR6_CLEAR | DR6_B(0) | DR6_B(1), addr(probe_store8_end));
  expected_total += 1;

  /* A disabled slot never causes a #DB. */
  arm(dr7_slot(1, RW_WRITE, LEN8), addr(&watched[0][5]), addr(&watched[1][5]), 0, 0);
  begin();
  probe_store8(&watched[0][5], 7);
  check("disabled-slot-silent", 0, 0, 0);

  /* A PUSH is a data write. */
  u64 *push_top = (u64 *)(push_stack + sizeof push_stack);
  arm(dr7_slot(3, RW_WRITE, LEN8), 0, 0, 0, addr(push_top - 1));
  begin();
  probe_push(push_top, 8);
  check("push-write", 1, DR6_CLEAR | DR6_B(3), addr(probe_push_end));
  expected_total += 1;

  /* REP STOSB: the #DB follows the iteration that wrote the byte, RIP at the REP. */
  arm(dr7_slot(0, RW_WRITE, LEN1), addr(&rep_buffer[5]), 0, 0, 0);
  begin();
  probe_rep_stos(rep_buffer, 0xab, sizeof rep_buffer);
  check("rep-stos-write", 1, DR6_CLEAR | DR6_B(0), addr(probe_rep_stos_insn));
  expected_total += 1;
  {
    u64 filled = 0;
    for (u64 i = 0; i < sizeof rep_buffer; i++) filled += rep_buffer[i] == 0xab;
    check_value("rep-stos-completes", "bytes written", sizeof rep_buffer, filled);
  }

  /* Single-step: the instruction after the POPFQ that set TF traps with BS. */
  disarm();
  begin();
  probe_single_step();
  check("single-step", 1, DR6_CLEAR | DR6_BS, addr(probe_single_step_end));
  expected_total += 1;

  /* I/O breakpoint on port 0x80 (CR4.DE=1): trap after the OUT. */
  write_cr4(read_cr4() | CR4_DE);
  arm(dr7_slot(3, RW_IO, LEN1), 0, 0, 0, 0x80);
  begin();
  probe_out(0x42);
  check("io-out-port", 1, DR6_CLEAR | DR6_B(3), addr(probe_out_end));
  expected_total += 1;
  write_cr4(read_cr4() & ~CR4_DE);

  check_value("db-total", "#DB count", expected_total, db_total);
  timer_stop();
  con_puts(failures ? "selfwatch: FAILED " : "selfwatch: all passed ");
  con_dec((u64)failures);
  con_puts(" failure(s)\n");
  return failures ? 1 : 0;
}
