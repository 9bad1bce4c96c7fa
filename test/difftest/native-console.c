/* Native (Linux) console for guests/workload: the same con_* interface as the guest
 * runtime, over write(2), so that the native program prints exactly what the guest prints. */
#include <unistd.h>
#include "console.h"

void con_putc(char c) { (void)!write(1, &c, 1); }

void con_puts(const char *s) {
  while (*s) con_putc(*s++);
}

void con_hex(unsigned long v) {
  char buf[16];
  int n = 0;
  con_puts("0x");
  do {
    buf[n++] = "0123456789abcdef"[v & 15];
    v >>= 4;
  } while (v);
  while (n) con_putc(buf[--n]);
}

void con_dec(unsigned long v) {
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
    con_dec(-(unsigned long)v);
  } else {
    con_dec((unsigned long)v);
  }
}

int workload_main(int cpu, int ncpus);

int main(void) { return workload_main(0, 1); }
