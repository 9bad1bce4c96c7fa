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
__attribute__((noreturn, used)) void guest_main(void) {
  for (unsigned long i = 1;; i++) update_globals(i);
}

/*
 * The guest's entry, as a process's _start: its CFI marks the outermost frame (no return
 * address), so a debugger's unwinder stops here, as it stops at _start in the native
 * process, instead of reading past the top of the guest's stack (the end of its RAM).
 */
__asm__(".globl guest_entry\n"
        "guest_entry:\n"
        ".cfi_startproc\n"
        ".cfi_undefined rip\n"
        "  xor %ebp, %ebp\n"
        "  call guest_main\n"
        ".cfi_endproc\n");
#else
int main(void) {
  for (unsigned long i = 1;; i++) update_globals(i);
}
#endif
