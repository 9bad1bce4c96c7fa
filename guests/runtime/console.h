/* Console output used by portable guest code (workload): the guest runtime implements it
 * with port 0xE9, test/difftest's native shim with write(2). */
#ifndef GUEST_CONSOLE_H
#define GUEST_CONSOLE_H
void con_putc(char c);
void con_puts(const char *s); /* no newline added */
void con_hex(unsigned long v); /* 0x-prefixed, no leading zeros */
void con_dec(unsigned long v);
void con_sdec(long v);
#endif
