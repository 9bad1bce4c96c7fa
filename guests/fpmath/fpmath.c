/*
 * fpmath: floating-point and vectorised integer C built with gcc's default x86-64 flags
 * (SSE2 scalar doubles/floats, and the SSE2 integer loops gcc -O2 vectorises). It prints
 * one line per part: decimal renderings and the exact bit patterns of the results. The
 * same file built natively must print exactly the same lines (test/guests). Entry is
 * fp_main (fpstart.S enables SSE first); nothing may depend on addresses or the platform.
 */
#include "console.h"

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef long long i64;

static u64 checksum;

static u64 bits_of(double d) {
  union { double d; u64 u; } v = {.d = d};
  return v.u;
}

static u32 bits_of_f(float f) {
  union { float f; u32 u; } v = {.f = f};
  return v.u;
}

static void mix(u64 v) {
  checksum = (checksum ^ v) * 0x100000001b3ULL;
}

/* Prints d with 6 decimals (round half away from zero), using double arithmetic. */
static void put_double(double d) {
  if (d != d) { con_puts("nan"); return; }
  if (d < 0) { con_putc('-'); d = -d; }
  if (d > 1e18) { con_puts("inf-ish"); return; }
  u64 ip = (u64)d;
  double frac = d - (double)ip;
  u64 f = (u64)(frac * 1000000.0 + 0.5);
  if (f >= 1000000) { ip++; f -= 1000000; }
  con_dec(ip);
  con_putc('.');
  char buf[6];
  for (int i = 5; i >= 0; i--) { buf[i] = (char)('0' + f % 10); f /= 10; }
  for (int i = 0; i < 6; i++) con_putc(buf[i]);
}

static void report(const char *name, double d) {
  con_puts(name);
  con_putc(' ');
  put_double(d);
  con_putc(' ');
  con_hex(bits_of(d));
  con_putc('\n');
  mix(bits_of(d));
}

static void report_int(const char *name, u64 v) {
  con_puts(name);
  con_putc(' ');
  con_hex(v);
  con_putc('\n');
  mix(v);
}

/* ---- scalar doubles ---- */
static double newton_sqrt(double x) {
  if (x <= 0) return 0;
  double g = x > 1 ? x / 2 : 1;
  for (int i = 0; i < 60; i++) g = 0.5 * (g + x / g);
  return g;
}

static double exp_taylor(double x) {
  double term = 1, sum = 1;
  for (int n = 1; n < 40; n++) {
    term *= x / n;
    sum += term;
  }
  return sum;
}

static double pi_leibniz(int n) {
  double s = 0;
  for (int k = 0; k < n; k++) s += (k & 1 ? -4.0 : 4.0) / (2 * k + 1);
  return s;
}

static double fabs_d(double x) { return x < 0 ? -x : x; }

static double integrate(double (*f)(double), double a, double b, int n) {
  double h = (b - a) / n, s = 0.5 * (f(a) + f(b));
  for (int i = 1; i < n; i++) s += f(a + i * h);
  return s * h;
}

static double poly(double x) { return x * x * x - 2 * x + 1; }
static double recip(double x) { return 1.0 / (1.0 + x * x); }

/* ---- floats ---- */
static float dot_f(const float *a, const float *b, int n) {
  float s = 0;
  for (int i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}

static float fmin_f(float a, float b) { return a < b ? a : b; }
static float fmax_f(float a, float b) { return a > b ? a : b; }

/* ---- matrices ---- */
static void matmul4(double r[4][4], const double a[4][4], const double b[4][4]) {
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++) {
      double s = 0;
      for (int k = 0; k < 4; k++) s += a[i][k] * b[k][j];
      r[i][j] = s;
    }
}

/* ---- vectorised integer loops ---- */
static u32 ia[256], ib[256], ic[256];
static u16 ha[256];
static u8 ba[1024];
static u64 qa[128];
static double da[64], db[64];
static float fa[64], fb[64];

static u64 rng = 0x9e3779b97f4a7c15ULL;
static u64 next_rand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static void fill(void) {
  for (int i = 0; i < 256; i++) {
    ia[i] = (u32)next_rand();
    ib[i] = (u32)next_rand();
    ha[i] = (u16)next_rand();
  }
  for (int i = 0; i < 1024; i++) ba[i] = (u8)next_rand();
  for (int i = 0; i < 128; i++) qa[i] = next_rand();
  for (int i = 0; i < 64; i++) {
    da[i] = (double)(i64)(next_rand() >> 20) / 1048576.0 - 4e9;
    db[i] = (double)(next_rand() & 0xffff) / 256.0;
    fa[i] = (float)(next_rand() & 0xfffff) / 1024.0f - 300.0f;
    fb[i] = (float)(i + 1) * 0.125f;
  }
}

static u64 vec_int(void) {
  u64 h = 0;
  for (int i = 0; i < 256; i++) ic[i] = ia[i] + ib[i] * 3;
  for (int i = 0; i < 256; i++) h += ic[i];
  for (int i = 0; i < 256; i++) ic[i] = (ia[i] ^ ib[i]) >> 3;
  for (int i = 0; i < 256; i++) h = h * 31 + ic[i];
  for (int i = 0; i < 256; i++) ic[i] = (int)ia[i] > (int)ib[i] ? ia[i] : ib[i];
  for (int i = 0; i < 256; i++) h += ic[i];
  u32 mx = 0;
  for (int i = 0; i < 256; i++) mx = ia[i] > mx ? ia[i] : mx;
  h ^= mx;
  u32 cnt = 0;
  for (int i = 0; i < 256; i++) cnt += ia[i] == ib[i] || (ia[i] & 0xff) == 7;
  h += cnt;
  for (int i = 0; i < 256; i++) ha[i] = (u16)(ha[i] * 7 + (ha[i] >> 2));
  for (int i = 0; i < 256; i++) h += ha[i];
  u32 bsum = 0;
  for (int i = 0; i < 1024; i++) bsum += ba[i];
  h ^= (u64)bsum << 20;
  for (int i = 0; i < 1024; i++) ba[i] = (u8)(ba[i] + 17) ^ 0x5a;
  for (int i = 0; i < 1024; i++) h += ba[i] * (u64)(i & 7);
  for (int i = 0; i < 128; i++) qa[i] = qa[i] * 0x2545f4914f6cdd1dULL + (qa[i] >> 11);
  for (int i = 0; i < 128; i++) h ^= qa[i] + (h << 6);
  i64 sgn = 0;
  for (int i = 0; i < 256; i++) sgn += (int)ia[i] >> 5;
  h += (u64)sgn;
  return h;
}

static double vec_double(void) {
  double s = 0;
  for (int i = 0; i < 64; i++) da[i] = da[i] * 0.5 + db[i];
  for (int i = 0; i < 64; i++) s += da[i] / (db[i] + 1.0);
  double mn = da[0], mx = da[0];
  for (int i = 1; i < 64; i++) {
    mn = da[i] < mn ? da[i] : mn;
    mx = da[i] > mx ? da[i] : mx;
  }
  return s + mn - mx;
}

static float vec_float(void) {
  for (int i = 0; i < 64; i++) fa[i] = fa[i] * fb[i] - 1.5f;
  float mn = fa[0], mx = fa[0];
  for (int i = 0; i < 64; i++) { mn = fmin_f(mn, fa[i]); mx = fmax_f(mx, fa[i]); }
  return dot_f(fa, fb, 64) + mn * mx;
}

static u64 conversions(void) {
  u64 h = 0;
  static const double vals[] = {0.0, -0.0, 1.5, -1.5, 2.5, -2.5, 1e10, -1e10, 123456789.987, 3.9999999,
                                9.2e18, -9.2e18, 1e-300, 0.1, 4294967295.5, -2147483648.25};
  for (unsigned i = 0; i < sizeof vals / sizeof vals[0]; i++) {
    double v = vals[i];
    h = h * 131 + (u64)(i64)v;
    h = h * 131 + (u32)(int)(v / 4e9 * 2e9);
    float f = (float)v;
    h = h * 131 + bits_of_f(f);
    h = h * 131 + bits_of((double)f);
    h = h * 131 + (v < 1.0) + 2 * (v == 1.5) + 4 * (v >= -1.5) + 8 * (v != v);
    u64 u = (u64)(v < 0 ? -v : v);
    h = h * 131 + bits_of((double)u);
    h = h * 131 + bits_of_f((float)(i64)u);
    h = h * 131 + bits_of((double)(u32)u);
  }
  for (i64 k = -5; k < 5; k++) h = h * 7 + bits_of((double)k * 0.3) + bits_of_f((float)k / 3.0f);
  return h;
}

int fp_main(void) {
  con_puts("fpmath: start\n");
  fill();
  report("sqrt2", newton_sqrt(2.0));
  report("sqrt1e10", newton_sqrt(1e10));
  report("e", exp_taylor(1.0));
  report("exp-3", exp_taylor(-3.0));
  report("pi", pi_leibniz(100000));
  report("int-poly", integrate(poly, -1.0, 2.0, 1000));
  report("int-atan", integrate(recip, 0.0, 1.0, 2000));
  report("fabs", fabs_d(-3.25) + fabs_d(1e-5));
  double m[4][4], n[4][4], r[4][4];
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++) {
      m[i][j] = (double)(i * 4 + j) / 7.0 - 1.0;
      n[i][j] = (i == j) ? 2.0 : 0.25 * (double)(j - i);
    }
  matmul4(r, m, n);
  double tr = 0;
  for (int i = 0; i < 4; i++) for (int j = 0; j < 4; j++) tr += r[i][j] * (double)(i + 1);
  report("matmul", tr);
  float fv = vec_float();
  report("vec-float", (double)fv);
  report_int("vec-float-bits", bits_of_f(fv));
  report("vec-double", vec_double());
  report_int("vec-int", vec_int());
  report_int("conversions", conversions());
  report_int("total", checksum);
  return 0;
}
