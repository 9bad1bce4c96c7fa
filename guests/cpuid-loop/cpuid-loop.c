/* cpuid-loop: CPUID (a VM exit each) cpuid_iterations times, then exits 0. The VM-exit
 * benchmark; cpuid_iterations is a global so a benchmark can change it in the image. */
#include "runtime.h"

volatile u32 cpuid_iterations = 100000;

volatile u64 cpuid_calls;
volatile u32 cpuid_mix; /* keeps the results live */

int main(int cpu, int ncpus) {
  (void)ncpus;
  u32 a, b, c, d, mix = 0;
  u32 n = cpuid_iterations;
  for (u32 i = 0; i < n; i++) {
    cpuid(i & 1, &a, &b, &c, &d);
    mix ^= a + b + c + d;
    cpuid_calls++;
  }
  if (cpu == 0) {
    con_puts("cpuid-loop: ");
    con_dec(cpuid_calls);
    con_puts(" cpuid exits\n");
  }
  cpuid_mix = mix;
  return 0;
}
