# Dumps the debug state of the selected vCPU: the guest's own DR0-7 as gdb sees them, then
# the stub's report of every layer (guest view, debugger slots, effective, physical).
#   (gdb) source gdb-scripts/dump-debug-state.gdb
info registers dr0 dr1 dr2 dr3 dr6 dr7
monitor dr
