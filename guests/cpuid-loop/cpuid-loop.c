/* cpuid-loop: CPUID (a VM exit each) ITERATIONS times, then exits 0. The VM-exit benchmark. */
#include "runtime.h"

#define ITERATIONS 100000

volatile u64 cpuid_calls;
volatile u32 cpuid_mix; /* keeps the results live */

int main(int cpu, int ncpus) {
  (void)ncpus;
  u32 a, b, c, d, mix = 0;
  for (u32 i = 0; i < ITERATIONS; i++) {
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
