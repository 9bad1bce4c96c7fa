/*
 * workload: CPU-bound, deterministic C that exercises what gcc emits for ordinary code:
 * sorting with function pointers, CRC32, hashing, 64-bit multiply/divide (signed and
 * unsigned), switch jump tables, recursion, struct copies, string functions, bit tricks.
 * It prints one checksum per part and a total. The same file is built natively by the
 * tests (test/difftest) and must print exactly the same lines. Nothing here may depend on
 * addresses, the platform or uninitialised data.
 */
#include <stdarg.h> /* freestanding header: va_list only */
#include "console.h"

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef long long i64;

/* Rounds of the whole workload; a global so a benchmark can change it in the image. */
volatile u32 workload_rounds = 2;

static u64 rng_state;

static u64 xorshift64(void) {
  u64 x = rng_state;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  rng_state = x;
  return x;
}

static void report(const char *name, u64 value) {
  con_puts(name);
  con_putc(' ');
  con_hex(value);
  con_putc('\n');
}

/* ---- strings ---- */
static unsigned long str_len(const char *s) {
  const char *p = s;
  while (*p) p++;
  return (unsigned long)(p - s);
}

static int str_cmp(const char *a, const char *b) {
  while (*a && *a == *b) a++, b++;
  return (int)(u8)*a - (int)(u8)*b;
}

static char *str_cpy(char *d, const char *s) {
  char *r = d;
  while ((*d++ = *s++)) {
  }
  return r;
}

static void str_reverse(char *s) {
  unsigned long n = str_len(s);
  for (unsigned long i = 0; i < n / 2; i++) {
    char t = s[i];
    s[i] = s[n - 1 - i];
    s[n - 1 - i] = t;
  }
}

static int to_decimal(i64 v, char *out) {
  char tmp[24];
  int n = 0, neg = v < 0;
  u64 u = neg ? 0 - (u64)v : (u64)v;
  do {
    tmp[n++] = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  int k = 0;
  if (neg) out[k++] = '-';
  while (n) out[k++] = tmp[--n];
  out[k] = 0;
  return k;
}

static long find_substring(const char *hay, const char *needle) {
  unsigned long n = str_len(needle);
  for (long i = 0; hay[i]; i++) {
    unsigned long j = 0;
    while (j < n && hay[i + j] == needle[j]) j++;
    if (j == n) return i;
  }
  return -1;
}

/* ---- hashing ---- */
static u32 crc_table[256];

static void crc32_init(void) {
  for (u32 i = 0; i < 256; i++) {
    u32 c = i;
    for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    crc_table[i] = c;
  }
}

static u32 crc32(const u8 *p, unsigned long n) {
  u32 c = 0xFFFFFFFFu;
  for (unsigned long i = 0; i < n; i++) c = crc_table[(c ^ p[i]) & 0xff] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

static u32 crc32_bitwise(const u8 *p, unsigned long n) {
  u32 c = 0xFFFFFFFFu;
  for (unsigned long i = 0; i < n; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1)));
  }
  return ~c;
}

static u64 fnv1a(const u8 *p, unsigned long n) {
  u64 h = 0xcbf29ce484222325ull;
  for (unsigned long i = 0; i < n; i++) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

static u64 mix64(u64 x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return x;
}

static u32 rotl32(u32 x, int r) { return (x << r) | (x >> (32 - r)); }

static u32 murmur_like(const u32 *w, int n, u32 seed) {
  u32 h = seed;
  for (int i = 0; i < n; i++) {
    u32 k = w[i] * 0xcc9e2d51u;
    k = rotl32(k, 15) * 0x1b873593u;
    h = rotl32(h ^ k, 13) * 5 + 0xe6546b64u;
  }
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  return h;
}

/* ---- sorting ---- */
typedef int (*compare_fn)(const void *, const void *);

static int cmp_i64(const void *a, const void *b) {
  i64 x = *(const i64 *)a, y = *(const i64 *)b;
  return (x > y) - (x < y);
}

static int cmp_u32_desc(const void *a, const void *b) {
  u32 x = *(const u32 *)a, y = *(const u32 *)b;
  return (x < y) - (x > y);
}

static void swap_bytes(u8 *a, u8 *b, unsigned long size) {
  for (unsigned long i = 0; i < size; i++) {
    u8 t = a[i];
    a[i] = b[i];
    b[i] = t;
  }
}

/* Quicksort (recursive, Lomuto partition) over elements of `size` bytes. */
static void quick_sort(u8 *base, long n, unsigned long size, compare_fn cmp) {
  if (n < 2) return;
  u8 *pivot = base + (unsigned long)(n - 1) * size;
  long store = 0;
  for (long i = 0; i < n - 1; i++) {
    if (cmp(base + (unsigned long)i * size, pivot) < 0) {
      swap_bytes(base + (unsigned long)i * size, base + (unsigned long)store * size, size);
      store++;
    }
  }
  swap_bytes(base + (unsigned long)store * size, pivot, size);
  quick_sort(base, store, size, cmp);
  quick_sort(base + (unsigned long)(store + 1) * size, n - store - 1, size, cmp);
}

static void insertion_sort_u16(u16 *a, int n) {
  for (int i = 1; i < n; i++) {
    u16 v = a[i];
    int j = i - 1;
    while (j >= 0 && a[j] > v) {
      a[j + 1] = a[j];
      j--;
    }
    a[j + 1] = v;
  }
}

static void merge_sort_i32(int *a, int *tmp, int n) {
  if (n < 2) return;
  int h = n / 2;
  merge_sort_i32(a, tmp, h);
  merge_sort_i32(a + h, tmp, n - h);
  int i = 0, j = h, k = 0;
  while (i < h && j < n) tmp[k++] = a[i] <= a[j] ? a[i++] : a[j++];
  while (i < h) tmp[k++] = a[i++];
  while (j < n) tmp[k++] = a[j++];
  for (k = 0; k < n; k++) a[k] = tmp[k];
}

/* ---- structs ---- */
struct record {
  char name[12];
  i64 balance;
  u32 id;
  short delta;
  signed char flags;
  u8 kind;
  u64 history[3];
};

static struct record make_record(u32 id) {
  struct record r;
  for (int i = 0; i < 11; i++) r.name[i] = (char)('a' + (id * 7 + (u32)i) % 26);
  r.name[11] = 0;
  r.balance = (i64)(xorshift64() % 2000000) - 1000000;
  r.id = id;
  r.delta = (short)(xorshift64() & 0xffff);
  r.flags = (signed char)(xorshift64() & 0xff);
  r.kind = (u8)(id % 5);
  for (int i = 0; i < 3; i++) r.history[i] = xorshift64();
  return r;
}

static struct record apply(struct record r, int k) {
  r.balance += r.delta * (i64)k;
  r.balance -= r.flags;
  r.history[k % 3] ^= (u64)r.balance;
  return r;
}

static int cmp_record(const void *a, const void *b) {
  const struct record *x = a, *y = b;
  if (x->balance != y->balance) return x->balance < y->balance ? -1 : 1;
  return str_cmp(x->name, y->name);
}

/* ---- a bytecode interpreter (switch jump table) ---- */
enum op { OP_PUSH, OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_MOD, OP_DUP, OP_SWAP, OP_JNZ, OP_DEC, OP_XOR, OP_SHL, OP_SAR, OP_NEG, OP_HALT };

static i64 interpret(const i64 *code, int len) {
  i64 stack[32] = {0};
/* Indexes wrap so that no program can reach outside the stack. */
#define S(i) stack[(i) & 31]
  int sp = 0, pc = 0, steps = 0;
  while (pc < len && steps++ < 100000) {
    i64 a, b;
    switch ((enum op)code[pc++]) {
    case OP_PUSH: S(sp++) = code[pc++]; break;
    case OP_ADD: b = S(--sp); a = S(--sp); S(sp++) = a + b; break;
    case OP_SUB: b = S(--sp); a = S(--sp); S(sp++) = a - b; break;
    case OP_MUL: b = S(--sp); a = S(--sp); S(sp++) = (i64)((u64)a * (u64)b); break;
    case OP_DIV: b = S(--sp); a = S(--sp); S(sp++) = b ? a / b : 0; break;
    case OP_MOD: b = S(--sp); a = S(--sp); S(sp++) = b ? a % b : 0; break;
    case OP_DUP: a = S(sp - 1); S(sp++) = a; break;
    case OP_SWAP: a = S(sp - 1); S(sp - 1) = S(sp - 2); S(sp - 2) = a; break;
    case OP_JNZ: a = code[pc++]; if (S(sp - 1)) pc = (int)a; break;
    case OP_DEC: S(sp - 1)--; break;
    case OP_XOR: b = S(--sp); a = S(--sp); S(sp++) = a ^ b; break;
    case OP_SHL: b = S(--sp); a = S(--sp); S(sp++) = (i64)((u64)a << (b & 63)); break;
    case OP_SAR: b = S(--sp); a = S(--sp); S(sp++) = a >> (b & 63); break;
    case OP_NEG: S(sp - 1) = -S(sp - 1); break;
    case OP_HALT: return S(sp - 1);
    default: return -1;
    }
  }
  return sp ? S(sp - 1) : 0;
}
#undef S

/* ---- recursion ---- */
static u64 fib(int n) { return n < 2 ? (u64)n : fib(n - 1) + fib(n - 2); }

static u64 ackermann(u64 m, u64 n) {
  if (m == 0) return n + 1;
  if (n == 0) return ackermann(m - 1, 1);
  return ackermann(m - 1, ackermann(m, n - 1));
}

static u64 hanoi(int n, int from, int to, int via, u64 acc) {
  if (n == 0) return acc;
  acc = hanoi(n - 1, from, via, to, acc);
  acc = acc * 31 + (u64)(from * 3 + to);
  return hanoi(n - 1, via, to, from, acc);
}

/* ---- arithmetic ---- */
static u64 arithmetic(void) {
  u64 acc = 0;
  static const i64 values[] = {0, 1, -1, 2, -2, 7, -7, 1000003, -1000003, 0x7fffffffffffffffll,
                               -0x7fffffffffffffffll - 1, 0x123456789abcdefll, -0x0fedcba987654321ll,
                               0xffffffffll, -0x80000000ll, 255, -129};
  const int n = (int)(sizeof values / sizeof values[0]);
  for (int i = 0; i < n; i++) {
    for (int j = 0; j < n; j++) {
      i64 a = values[i], b = values[j];
      u64 ua = (u64)a, ub = (u64)b;
      acc = acc * 3 + ua * ub;
      if (b != 0 && !(a == (-0x7fffffffffffffffll - 1) && b == -1)) {
        acc ^= (u64)(a / b);
        acc += (u64)(a % b);
      }
      if (ub != 0) {
        acc += ua / ub;
        acc ^= ua % ub;
      }
      u32 a32 = (u32)ua, b32 = (u32)ub;
      int s32a = (int)a32, s32b = (int)b32;
      if (b32) acc += a32 / b32 + a32 % b32;
      if (s32b && !(s32a == (-0x7fffffff - 1) && s32b == -1)) acc ^= (u64)(i64)(s32a / s32b) + (u64)(i64)(s32a % s32b);
      unsigned __int128 wide = (unsigned __int128)ua * ub;
      acc += (u64)(wide >> 64);
      __int128 swide = (__int128)a * b;
      acc ^= (u64)(swide >> 64);
      acc += (u64)(a >> (j & 63)) + (ua >> (i & 63)) + (ua << (j & 63));
      acc += (u64)(signed char)ua + (u64)(short)ub + (u64)(int)ua;
      acc += a < b;
      acc += ua < ub ? 5 : 11;
    }
  }
  return acc;
}

static u64 bit_tricks(void) {
  u64 acc = 0;
  for (int i = 0; i < 200; i++) {
    u64 x = xorshift64();
    int pop = 0;
    for (u64 y = x; y; y &= y - 1) pop++;
    acc += (u64)pop;
    acc ^= __builtin_bswap64(x);
    acc += (u64)__builtin_clzll(x | 1);
    acc += (u64)__builtin_ctzll(x | (1ull << 63));
    acc += (x >> 17) | (x << 47);
    u32 lo = (u32)x;
    acc += __builtin_bswap32(lo);
    acc += (u64)((i64)x >> 3);
  }
  return acc;
}


/* ---- varargs, bit-fields, 128-bit, narrow arithmetic ---- */
/* A tiny formatter: %d %u %x %s %c with an accumulating hash instead of output. */
static u64 format_hash(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  u64 h = 1469598103934665603ull;
  char num[24];
  for (const char *p = fmt; *p; p++) {
    if (*p != '%') {
      h = (h ^ (u8)*p) * 1099511628211ull;
      continue;
    }
    switch (*++p) {
    case 'd': {
      int k = to_decimal(va_arg(ap, int), num);
      h = h * 31 + fnv1a((const u8 *)num, (unsigned long)k);
      break;
    }
    case 'u': h = h * 37 + va_arg(ap, unsigned); break;
    case 'x': h = h * 41 + va_arg(ap, u64); break;
    case 's': { const char *q = va_arg(ap, const char *); h = h * 43 + fnv1a((const u8 *)q, str_len(q)); break; }
    case 'c': h = h * 47 + (u8)va_arg(ap, int); break;
    default: h = h * 53 + (u8)*p; break;
    }
  }
  va_end(ap);
  return h;
}

struct packed_bits {
  unsigned a : 3;
  unsigned b : 7;
  signed c : 5;
  unsigned d : 17;
  u64 e : 40;
  u64 f : 24;
};

static u64 part_misc(void) {
  u64 acc = format_hash("x=%d y=%u z=%x s=%s c=%c %%", -12345, 4000000000u, 0xdeadbeefcafeull, "vmexit", 'Q');
  acc ^= format_hash("%d%d%d%d%d%d%d%d", 1, -2, 3, -4, 5, -6, 7, -8); /* more than the 6 register args */
  struct packed_bits pb = {0, 0, 0, 0, 0, 0};
  for (int i = 0; i < 100; i++) {
    u64 x = xorshift64();
    pb.a += (unsigned)x;
    pb.b ^= (unsigned)(x >> 7);
    pb.c = (signed)(pb.c + (int)(x >> 13) % 7);
    pb.d += (unsigned)(x >> 20);
    pb.e = pb.e * 3 + (x >> 24);
    pb.f -= x;
    acc = acc * 7 + pb.a + pb.b + (u64)(i64)pb.c + pb.d + pb.e + pb.f;
  }
  unsigned __int128 big = ((unsigned __int128)xorshift64() << 64) | xorshift64();
  for (int i = 0; i < 64; i++) {
    big += (unsigned __int128)xorshift64() << (i & 63);
    big = (big << (i % 70)) | (big >> (128 - (i % 70 ? i % 70 : 1)));
    __int128 sb = (__int128)big >> (i % 100);
    acc ^= (u64)big + (u64)(big >> 64) + (u64)sb;
  }
  for (int i = 0; i < 64; i++) {
    u64 x = xorshift64();
    acc += (u64)__builtin_popcountll(x) + (u64)__builtin_parityll(x) + (u64)__builtin_clrsbll((i64)x);
    signed char c8 = (signed char)x;
    unsigned char u8v = (unsigned char)(x >> 8);
    short s16 = (short)(x >> 16);
    unsigned short u16v = (unsigned short)(x >> 32);
    c8 = (signed char)(c8 * 3 - u8v);
    u16v = (unsigned short)((u16v << 3) | (u16v >> 13));
    s16 = (short)(s16 / 7 + s16 % 5);
    acc += (u64)(i64)c8 + u16v + (u64)(i64)s16 + (u8)(u8v >> (i & 7));
    acc += (u64)((i64)x / 1000) + (u64)((i64)x % 17) + (x / 60) + (x % 1000000007ull);
  }
  return acc;
}

/* ---- the parts ---- */
static u64 part_strings(void) {
  static const char *words[] = {"hypervisor", "watchpoint", "debug", "register", "bhyve", "vmexit",
                                "single-step", "breakpoint", "gdb", "x86-64"};
  char buf[64], num[24];
  u64 acc = 0;
  for (int i = 0; i < 10; i++) {
    str_cpy(buf, words[i]);
    str_reverse(buf);
    acc = acc * 131 + str_len(buf);
    acc += (u64)(i64)str_cmp(buf, words[(i + 3) % 10]);
    int k = to_decimal((i64)(xorshift64() % 100000) - 50000, num);
    acc += (u64)k * 7 + fnv1a((const u8 *)num, (unsigned long)k);
    acc ^= (u64)find_substring("the hypervisor switches debug registers at vmexit", words[i]);
  }
  return acc;
}

static u64 part_hash(void) {
  u8 data[512];
  u32 words[64];
  for (int i = 0; i < 512; i++) data[i] = (u8)(xorshift64() >> 24);
  for (int i = 0; i < 64; i++) words[i] = (u32)xorshift64();
  u64 acc = crc32(data, sizeof data);
  acc = (acc << 32) | crc32_bitwise(data, 96);
  acc ^= fnv1a(data, sizeof data);
  acc += mix64(acc);
  acc ^= murmur_like(words, 64, 0x9747b28cu);
  return acc;
}

static u64 part_sort(void) {
  i64 a[120];
  u32 b[80];
  u16 c[60];
  int d[100], tmp[100];
  for (int i = 0; i < 120; i++) a[i] = (i64)xorshift64();
  for (int i = 0; i < 80; i++) b[i] = (u32)xorshift64();
  for (int i = 0; i < 60; i++) c[i] = (u16)xorshift64();
  for (int i = 0; i < 100; i++) d[i] = (int)xorshift64();
  compare_fn fns[2] = {cmp_i64, cmp_u32_desc};
  quick_sort((u8 *)a, 120, sizeof a[0], fns[0]);
  quick_sort((u8 *)b, 80, sizeof b[0], fns[1]);
  insertion_sort_u16(c, 60);
  merge_sort_i32(d, tmp, 100);
  u64 acc = 0;
  for (int i = 0; i < 120; i++) acc = acc * 17 + (u64)a[i] + (i > 0 && a[i - 1] > a[i] ? 1000 : 0);
  for (int i = 0; i < 80; i++) acc = acc * 13 + b[i];
  for (int i = 0; i < 60; i++) acc = acc * 11 + c[i];
  for (int i = 0; i < 100; i++) acc = acc * 7 + (u64)(i64)d[i];
  return acc;
}

static u64 part_structs(void) {
  struct record recs[24];
  for (u32 i = 0; i < 24; i++) recs[i] = make_record(i);
  for (int k = 0; k < 5; k++) {
    for (int i = 0; i < 24; i++) recs[i] = apply(recs[i], k + i);
  }
  struct record copy[24];
  for (int i = 0; i < 24; i++) copy[23 - i] = recs[i];
  quick_sort((u8 *)copy, 24, sizeof copy[0], cmp_record);
  u64 acc = 0;
  for (int i = 0; i < 24; i++) {
    acc = acc * 29 + (u64)copy[i].balance + copy[i].id + (u64)(i64)copy[i].flags + copy[i].kind;
    acc ^= copy[i].history[i % 3] + fnv1a((const u8 *)copy[i].name, 11);
  }
  return acc;
}

static u64 part_interpreter(void) {
  /* sum of i*i for i = n..1 , with a few other ops mixed in */
  const i64 prog[] = {OP_PUSH, 0, OP_PUSH, 40, /* acc n */
                      OP_DUP, OP_DUP, OP_MUL, /* acc n n*n */
                      OP_SWAP, OP_PUSH, 3, OP_XOR, OP_PUSH, 3, OP_XOR, OP_SWAP, /* identity shuffle */
                      OP_PUSH, 0, OP_ADD, /* acc n n*n */
                      OP_SWAP, OP_DEC, OP_SWAP, /* acc n-1 n*n */
                      OP_PUSH, 0, OP_ADD, OP_JNZ, 25, OP_HALT,
                      /* 25: fold n*n into acc: rotate acc to top is awkward, so keep a running total by
                         subtract-negate pairs and rely on the final result mixing */
                      OP_NEG, OP_NEG, OP_PUSH, 7, OP_MOD, OP_SWAP, OP_JNZ, 4, OP_HALT};
  u64 acc = (u64)interpret(prog, (int)(sizeof prog / sizeof prog[0]));
  const i64 prog2[] = {OP_PUSH, 1, OP_PUSH, 20, /* x n */
                       OP_SWAP, OP_PUSH, 3, OP_MUL, OP_PUSH, 1000000007, OP_MOD, /* n x*3%p */
                       OP_PUSH, 5, OP_SHL, OP_PUSH, 2, OP_SAR, OP_PUSH, -9, OP_DIV, OP_NEG,
                       OP_SWAP, OP_DEC, OP_JNZ, 4, OP_SUB, OP_HALT};
  acc = acc * 1000003 + (u64)interpret(prog2, (int)(sizeof prog2 / sizeof prog2[0]));
  return acc;
}

static u64 part_recursion(void) {
  u64 acc = fib(17);
  acc = acc * 31 + ackermann(2, 9);
  acc = acc * 31 + hanoi(9, 1, 3, 2, 0);
  return acc;
}

int main(int cpu, int ncpus) {
  (void)ncpus;
  if (cpu != 0) return 0;
  crc32_init();
  u64 total = 0;
  for (u32 round = 0; round < workload_rounds; round++) {
    rng_state = 0x853c49e6748fea9bull + round;
    u64 parts[9];
    parts[0] = part_strings();
    parts[1] = part_hash();
    parts[2] = part_sort();
    parts[3] = part_structs();
    parts[4] = part_interpreter();
    parts[5] = part_recursion();
    parts[6] = arithmetic();
    parts[7] = bit_tricks();
    parts[8] = part_misc();
    static const char *names[9] = {"strings", "hash", "sort", "structs", "interpreter", "recursion", "arithmetic", "bits", "misc"};
    for (int i = 0; i < 9; i++) {
      report(names[i], parts[i]);
      total = mix64(total ^ parts[i]);
    }
  }
  report("total", total);
  return 0;
}
