# Scenario 2: an access (read/write) watchpoint and a hardware breakpoint keep firing across
# I/O, CPUID, HLT and preemption VM exits.
#   full: every access and every breakpoint hit seen (counter up by 1 between hbreak hits).
#   none / no-guest-dr0-3: hits are missed.
# By hand (repository root): node bin/vmm-gdbstub.js serve guests/counter.elf --preempt-every 997 &
#   gdb -batch -x gdb-scripts/scenario-access-hbreak.gdb guests/counter.elf
source gdb-scripts/vmmcheck.py
vmmcheck attach --serve-args "--preempt-every 997"

awatch read_only_value
vmmcheck continue --watch read_only_value --value 0x5a5a0001 --function update_globals --name first-access
vmmcheck hits read_only_value 4 --track counter --increment 1 --name access-hits
delete
hbreak *update_globals
vmmcheck continue --breakpoint update_globals --name first-hbreak
vmmcheck hits update_globals 4 --track counter --increment 1 --name hbreak-hits
vmmcheck reg $rip &update_globals --name hbreak-pc
# The hits above really were across every kind of VM exit.
vmmcheck monitor vmexits --match "(?s)(?=.*\bio\s+[1-9])(?=.*\bcpuid\s+[1-9])(?=.*\bhlt\s+[1-9])(?=.*\bextint\s+[1-9])" --name exits-between-hits
delete
vmmcheck continue --exited 0 --name guest-exit
vmmcheck exit
