/*
 * Differential-test oracle: runs x86-64 machine code natively, in a forked child under
 * ptrace single-step, and writes the registers after every instruction.
 *
 *   tracer [--map ADDR:SIZE[:FILE]]... [--reg NAME=HEX]... [--max N] [--dump ADDR:SIZE]...
 *
 * --map   maps SIZE bytes RWX at ADDR (fixed, must be free) filled from FILE (rest zero)
 * --reg   initial value of rax..r15, rip or rflags (hex)
 * --max   stop after N records
 * --dump  at the end, append the bytes of [ADDR, ADDR+SIZE) (after a DUMP record)
 *
 * Output (stdout, little-endian): records of 53 u64: kind, aux, rax rcx rdx rbx rsp rbp
 * rsi rdi r8..r15 (encoding order), rip, rflags, xmm0..xmm15 (two u64 each, low first),
 * mxcsr. The child starts with XMM0-15 zero and MXCSR 0x1F80. Kinds:
 *   0 STEP    one instruction retired (a REP string instruction counts once, all iterations)
 *   1 OUT     an OUT was emulated (aux = port | size << 16 | value << 32), regs after it
 *   2 IN      an IN was emulated (returns all ones; aux = port | size << 16)
 *   3 INT3    stopped before an int3 (regs are the current ones)
 *   4 FAULT   the instruction at rip faulted (aux = signal number); nothing retired
 *   5 EXIT    OUT to port 0xF4 (aux = value): the guest ABI's exit; nothing retired
 *   6 MAX     record limit reached
 *   7 DUMP    aux = size; followed by the dumped bytes padded to 8
 * Privileged instructions other than IN/OUT cannot run in a Linux process: they FAULT.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

enum { K_STEP, K_OUT, K_IN, K_INT3, K_FAULT, K_EXIT, K_MAX, K_DUMP };

struct map { uint64_t addr, size; const char *file; };
static struct map maps[16];
static int nmaps;
static struct map dumps[16];
static int ndumps;
static pid_t child;

static void die(const char *msg) {
  fprintf(stderr, "tracer: %s: %s\n", msg, strerror(errno));
  if (child > 0) kill(child, SIGKILL);
  exit(2);
}

static void emit(int kind, uint64_t aux, const struct user_regs_struct *r) {
  uint64_t rec[53] = {(uint64_t)kind, aux, r->rax, r->rcx, r->rdx, r->rbx, r->rsp, r->rbp, r->rsi, r->rdi,
                      r->r8, r->r9, r->r10, r->r11, r->r12, r->r13, r->r14, r->r15, r->rip, r->eflags};
  struct user_fpregs_struct fp;
  if (ptrace(PTRACE_GETFPREGS, child, 0, &fp) < 0) die("GETFPREGS");
  memcpy(&rec[20], fp.xmm_space, 256);
  rec[52] = fp.mxcsr;
  if (fwrite(rec, sizeof rec, 1, stdout) != 1) die("write");
}

static void child_main(void) {
  if (ptrace(PTRACE_TRACEME, 0, 0, 0) < 0) die("PTRACE_TRACEME");
  for (int i = 0; i < nmaps; i++) {
    uint64_t start = maps[i].addr & ~0xfffULL;
    uint64_t len = ((maps[i].addr + maps[i].size + 0xfff) & ~0xfffULL) - start;
    void *p = mmap((void *)start, len, PROT_READ | PROT_WRITE | PROT_EXEC,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (p != (void *)start) die("mmap at fixed address (is the range in use?)");
    if (maps[i].file) {
      int fd = open(maps[i].file, O_RDONLY);
      if (fd < 0) die(maps[i].file);
      uint64_t off = 0;
      for (;;) {
        ssize_t n = read(fd, (char *)maps[i].addr + off, maps[i].size - off);
        if (n < 0) die("read");
        if (n == 0 || (off += (uint64_t)n) >= maps[i].size) break;
      }
      close(fd);
    }
  }
  raise(SIGSTOP);
  _exit(0); /* never reached: the tracer moves RIP away */
}

static int peek_bytes(uint64_t addr, uint8_t *buf, size_t n) {
  struct iovec local = {buf, n}, remote = {(void *)addr, n};
  return process_vm_readv(child, &local, 1, &remote, 1, 0) == (ssize_t)n ? 0 : -1;
}

static int is_rep_string(const uint8_t *b) {
  int i = 0, rep = 0;
  for (; i < 14; i++) {
    uint8_t c = b[i];
    if (c == 0xf2 || c == 0xf3) rep = 1;
    else if (c == 0x66 || c == 0x67 || c == 0xf0 || c == 0x2e || c == 0x36 || c == 0x3e || c == 0x26 || c == 0x64 || c == 0x65 || (c >= 0x40 && c <= 0x4f)) continue;
    else break;
  }
  uint8_t op = b[i];
  return rep && ((op >= 0xa4 && op <= 0xa7) || (op >= 0xaa && op <= 0xaf) || (op >= 0x6c && op <= 0x6f));
}

/* IN/OUT at rip: returns 1 and fills in the port I/O if it is one. */
static int decode_io(const uint8_t *b, const struct user_regs_struct *r, int *is_out, int *size, uint16_t *port, int *len) {
  int i = 0, opsize16 = 0;
  if (b[0] == 0x66) opsize16 = 1, i = 1;
  uint8_t op = b[i];
  *size = (op & 1) ? (opsize16 ? 2 : 4) : 1;
  switch (op) {
  case 0xe4: case 0xe5: case 0xe6: case 0xe7: *port = b[i + 1]; *len = i + 2; break;
  case 0xec: case 0xed: case 0xee: case 0xef: *port = (uint16_t)r->rdx; *len = i + 1; break;
  default: return 0;
  }
  *is_out = (op & 2) != 0;
  return 1;
}

static uint64_t parse_hex(const char *s) { return strtoull(s, NULL, 16); }

static void parse_map(char *arg, struct map *m) {
  char *a = strtok(arg, ":"), *s = strtok(NULL, ":"), *f = strtok(NULL, "");
  if (!a || !s) { fprintf(stderr, "tracer: bad range %s\n", arg); exit(2); }
  m->addr = parse_hex(a);
  m->size = parse_hex(s);
  m->file = f;
}

int main(int argc, char **argv) {
  struct user_regs_struct init;
  memset(&init, 0, sizeof init);
  int have[18] = {0};
  uint64_t vals[18] = {0};
  static const char *names[18] = {"rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9",
                                  "r10", "r11", "r12", "r13", "r14", "r15", "rip", "rflags"};
  uint64_t max = ~0ULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--map") && i + 1 < argc) parse_map(argv[++i], &maps[nmaps++]);
    else if (!strcmp(argv[i], "--dump") && i + 1 < argc) parse_map(argv[++i], &dumps[ndumps++]);
    else if (!strcmp(argv[i], "--max") && i + 1 < argc) max = strtoull(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "--reg") && i + 1 < argc) {
      char *eq = strchr(argv[++i], '=');
      int found = 0;
      if (eq) {
        *eq = 0;
        for (int k = 0; k < 18; k++)
          if (!strcmp(argv[i], names[k])) have[k] = 1, vals[k] = parse_hex(eq + 1), found = 1;
      }
      if (!found) { fprintf(stderr, "tracer: bad --reg %s\n", argv[i]); return 2; }
    } else {
      fprintf(stderr, "tracer: unknown argument %s\n", argv[i]);
      return 2;
    }
  }
  static char obuf[1 << 20];
  setvbuf(stdout, obuf, _IOFBF, sizeof obuf);

  child = fork();
  if (child < 0) die("fork");
  if (child == 0) child_main();
  int status;
  if (waitpid(child, &status, 0) < 0 || !WIFSTOPPED(status)) die("child did not stop");
  if (WSTOPSIG(status) != SIGSTOP) { fprintf(stderr, "tracer: child setup failed (signal %d)\n", WSTOPSIG(status)); kill(child, SIGKILL); return 2; }
  ptrace(PTRACE_SETOPTIONS, child, 0, PTRACE_O_EXITKILL);

  struct user_regs_struct r;
  if (ptrace(PTRACE_GETREGS, child, 0, &r) < 0) die("GETREGS");
  unsigned long long *slots[18] = {&r.rax, &r.rcx, &r.rdx, &r.rbx, &r.rsp, &r.rbp, &r.rsi, &r.rdi, &r.r8, &r.r9,
                         &r.r10, &r.r11, &r.r12, &r.r13, &r.r14, &r.r15, &r.rip, &r.eflags};
  for (int k = 0; k < 17; k++) *slots[k] = have[k] ? vals[k] : 0;
  r.eflags = have[17] ? (vals[17] | 0x202) : 0x202; /* IF is always 1 in user mode */
  r.fs_base = 0; /* nothing of the tracer's libc is reachable from the code anyway */
  if (ptrace(PTRACE_SETREGS, child, 0, &r) < 0) die("SETREGS");
  struct user_fpregs_struct fp;
  if (ptrace(PTRACE_GETFPREGS, child, 0, &fp) < 0) die("GETFPREGS");
  memset(fp.xmm_space, 0, sizeof fp.xmm_space);
  fp.mxcsr = 0x1f80;
  if (ptrace(PTRACE_SETFPREGS, child, 0, &fp) < 0) die("SETFPREGS");

  uint64_t records = 0;
  int done = 0;
  while (!done) {
    if (records >= max) { emit(K_MAX, 0, &r); break; }
    uint8_t code[16] = {0};
    if (peek_bytes(r.rip, code, 16) < 0) {
      /* Fetch would fault; let the step report it. */
      memset(code, 0, sizeof code);
    }
    if (code[0] == 0xcc) { emit(K_INT3, 0, &r); break; }
    int rep = is_rep_string(code);
    uint64_t start_rip = r.rip;
    for (;;) {
      if (ptrace(PTRACE_SINGLESTEP, child, 0, 0) < 0) die("SINGLESTEP");
      if (waitpid(child, &status, 0) < 0) die("waitpid");
      if (!WIFSTOPPED(status)) { fprintf(stderr, "tracer: child exited\n"); return 2; }
      if (ptrace(PTRACE_GETREGS, child, 0, &r) < 0) die("GETREGS");
      int sig = WSTOPSIG(status);
      if (sig != SIGTRAP) {
        int is_out, size, len;
        uint16_t port;
        if (sig == SIGSEGV && r.rip == start_rip && decode_io(code, &r, &is_out, &size, &port, &len)) {
          uint64_t mask = size == 4 ? 0xffffffffULL : size == 2 ? 0xffffULL : 0xffULL;
          if (is_out && port == 0xf4) { emit(K_EXIT, r.rax & mask, &r); done = 1; break; }
          r.rip += (uint64_t)len;
          if (is_out) {
            if (ptrace(PTRACE_SETREGS, child, 0, &r) < 0) die("SETREGS");
            emit(K_OUT, port | ((uint64_t)size << 16) | ((r.rax & mask) << 32), &r);
          } else {
            r.rax = size == 4 ? 0xffffffffULL : (r.rax & ~mask) | mask; /* 32-bit writes zero-extend */
            if (ptrace(PTRACE_SETREGS, child, 0, &r) < 0) die("SETREGS");
            emit(K_IN, port | ((uint64_t)size << 16), &r);
          }
          records++;
          break;
        }
        emit(K_FAULT, (uint64_t)sig, &r);
        done = 1;
        break;
      }
      if (rep && r.rip == start_rip) continue; /* one more iteration of the REP string op */
      emit(K_STEP, 0, &r);
      records++;
      break;
    }
  }
  for (int i = 0; i < ndumps; i++) {
    uint64_t padded = (dumps[i].size + 7) & ~7ULL;
    uint8_t *buf = calloc(1, padded ? padded : 8);
    if (peek_bytes(dumps[i].addr, buf, dumps[i].size) < 0) die("dump");
    struct user_regs_struct z = r;
    emit(K_DUMP, dumps[i].size, &z);
    fwrite(buf, padded, 1, stdout);
    free(buf);
  }
  fflush(stdout);
  kill(child, SIGKILL);
  waitpid(child, &status, 0);
  return 0;
}
