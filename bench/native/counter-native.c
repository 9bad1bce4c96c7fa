/* The counter guest's update loop as a native Linux program, for gdbserver side-by-side runs. */
volatile unsigned long counter;
volatile unsigned long read_only_value = 0x5a5a0001;
volatile unsigned long read_sum;

__attribute__((noinline)) void update_globals(unsigned long i) {
  __atomic_fetch_add(&counter, 1, __ATOMIC_SEQ_CST);
  read_sum += read_only_value + i;
}

int main(void) {
  for (unsigned long i = 1;; i++) update_globals(i);
}
