# Scenario 3 (with gdb attached): the guest's own debugger keeps working while gdb watches
# another variable; selfwatch prints PASS/FAIL lines and exits 0 only if all its checks pass.
# (The verify matrix also runs selfwatch with no gdb: `vmm-gdbstub run guests/selfwatch.elf`.)
#   full: exit status 0.  none / left-out parts: the guest's own checks fail (exit status != 0).
# By hand (repository root):
#   node bin/vmm-gdbstub.js serve guests/selfwatch.elf --preempt-every 1000 --host-scenario host-watch &
#   gdb -batch -x gdb-scripts/scenario-selfwatch.gdb guests/selfwatch.elf
source gdb-scripts/vmmcheck.py
vmmcheck attach --serve-args "--preempt-every 1000 --host-scenario host-watch"

watch ticks
vmmcheck hits ticks 3 --increment 1 --name gdb-watch-beside-guest
delete
vmmcheck continue --exited 0 --name guest-checks --kind guest-checks-failed
vmmcheck exit
