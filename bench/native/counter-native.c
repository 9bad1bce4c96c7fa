/*
 * The benchmark program: the counter guest's update loop with nothing else in it. Built
 * natively for gdbserver, and freestanding (-DGUEST) as a guest ELF for our VM, so both
 * sides run the same instructions between stops.
 */
volatile unsigned long counter;
volatile unsigned long read_only_value = 0x5a5a0001;
volatile unsigned long read_sum;

__attribute__((noinline)) void update_globals(unsigned long i) {
  __atomic_fetch_add(&counter, 1, __ATOMIC_SEQ_CST);
  read_sum += read_only_value + i;
}

#ifdef GUEST
void guest_entry(void) {
  for (unsigned long i = 1;; i++) update_globals(i);
}
#else
int main(void) {
  for (unsigned long i = 1;; i++) update_globals(i);
}
#endif
