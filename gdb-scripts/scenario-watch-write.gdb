# Scenario 1: a write watchpoint that gdb sets on a guest global fires on every change, with
# the right old and new values, across I/O, CPUID, HLT and preemption VM exits.
#   full: every hit seen, counter goes up by exactly 1 from stop to stop.
#   none / no-guest-dr0-3: hits are missed (the guest's DR0-3/DR7 are lost at VM exits).
# Run from the repository root, against a running serve:
#   node bin/vmm-gdbstub.js serve guests/counter.elf --preempt-every 997 &
#   gdb -batch -x gdb-scripts/scenario-watch-write.gdb guests/counter.elf
# or launching serve itself (extra serve options in VMMCHECK_SERVE_ARGS):
#   VMMCHECK_TARGET=launch VMMCHECK_SERVE_ARGS="--backend svm" gdb -batch -x ... guests/counter.elf
source gdb-scripts/vmmcheck.py
vmmcheck attach --serve-args "--preempt-every 997"

watch counter
vmmcheck continue --watch counter --old 0 --new 1 --function update_globals --name first-hit
vmmcheck hits counter 8 --increment 1 --name hits-across-exits
# The hits above really were across every kind of VM exit.
vmmcheck monitor vmexits --match "(?s)(?=.*\bio\s+[1-9])(?=.*\bcpuid\s+[1-9])(?=.*\bhlt\s+[1-9])(?=.*\bextint\s+[1-9])" --name exits-between-hits
delete
vmmcheck continue --exited 0 --name guest-exit
vmmcheck exit
