# Scenario 5b (VT-x): the "determined debugger" of the FreeBSD commit message sets a
# breakpoint after the guest DR6 load and then single-steps: the TF guard cannot stop that,
# and the guest's DR6 is corrupted even with the full fix. This is a documented limitation:
# the check passes when the corruption IS seen (it proves the simulation reproduces it).
# By hand (repository root):
#   node bin/vmm-gdbstub.js serve guests/counter.elf --preempt-every 500 --host-scenario kdb-determined &
#   gdb -batch -x gdb-scripts/scenario-dr6-determined.gdb guests/counter.elf
source gdb-scripts/vmmcheck.py
vmmcheck attach --serve-args "--preempt-every 500 --host-scenario kdb-determined"

break update_globals
vmmcheck continue --breakpoint update_globals --function update_globals --name first-break
vmmcheck hits update_globals 3 --track counter --increment 1 --name guest-runs
vmmcheck reg $dr6 0x4000 --mask 0x4000 --name determined-debugger-sets-guest-dr6-bs --kind dr6-intact
delete
vmmcheck continue --exited 0 --name guest-exit
vmmcheck exit
