# The simulated CPU has four debug-register slots: tell gdb, so that a fifth watchpoint is
# refused up front instead of silently becoming a single-stepping software watchpoint.
set remote hardware-watchpoint-limit 4
set remote hardware-breakpoint-limit 4
