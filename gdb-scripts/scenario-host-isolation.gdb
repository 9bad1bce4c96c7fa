# Scenario 4: host isolation. A host thread with its own hardware watchpoints on host data is
# switched in on preemption and I/O exits; its watchpoints must keep firing, and no guest
# value may ever reach the host's registers (the leak detector, `monitor leaks`). The verify
# matrix also runs the guest without gdb (`run --json`) to count the host watchpoint hits.
#   full: no leaks, host watchpoints fire.  none / left-out parts: leaks are reported.
# By hand (repository root):
#   node bin/vmm-gdbstub.js serve guests/counter.elf --preempt-every 500 --host-scenario host-watch &
#   gdb -batch -x gdb-scripts/scenario-host-isolation.gdb guests/counter.elf
source gdb-scripts/vmmcheck.py
vmmcheck attach --serve-args "--preempt-every 500 --host-scenario host-watch"

# Let the guest run through exits with a gdb watchpoint in the guest's DR0-3 and DR7.
watch counter
vmmcheck hits counter 4 --increment 1 --name guest-watch
vmmcheck monitor leaks --match "no debug-state leaks detected" --kind leak --name no-leaks
vmmcheck hits counter 4 --increment 1 --name guest-watch-more
vmmcheck monitor leaks --match "no debug-state leaks detected" --kind leak --name still-no-leaks
delete
vmmcheck continue --exited 0 --name guest-exit
vmmcheck exit
