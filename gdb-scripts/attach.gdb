# Attach to a running `vmm-gdbstub serve` on the default transport (tcp 127.0.0.1:1234),
# with the remote limits set. Run gdb from the repository root:
#   node bin/vmm-gdbstub.js serve guests/counter.elf &
#   gdb -x gdb-scripts/attach.gdb guests/counter.elf
# Other transports: `target remote /path/to.sock` or
#   `target remote | node bin/vmm-gdbstub.js serve guests/counter.elf --gdb stdio`.
target remote :1234
