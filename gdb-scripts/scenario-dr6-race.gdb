# Scenario 5a: the VT-x DR6 race. A host kernel debugger single-steps the VM-entry path; the
# fix clears the host's TF before loading the guest's DR6, so the guest's DR6 stays intact.
#   full: guest DR6 = 0xffff0ff0 at every stop.
#   no-tf-guard / no-guest-dr6 / none: the guest's DR6 is corrupted (BS, bit 14, from the
#   host's single-step trap).   On SVM the race does not exist (DR6 is in the VMCB).
# Guest DR6 is read at software-breakpoint stops (int3 does not touch DR6).
# By hand (repository root):
#   node bin/vmm-gdbstub.js serve guests/counter.elf --preempt-every 500 --host-scenario kdb-step &
#   gdb -batch -x gdb-scripts/scenario-dr6-race.gdb guests/counter.elf
source gdb-scripts/vmmcheck.py
vmmcheck attach --serve-args "--preempt-every 500 --host-scenario kdb-step"

break update_globals
vmmcheck continue --breakpoint update_globals --function update_globals --name first-break
vmmcheck hits update_globals 2 --track counter --increment 1 --name guest-runs
vmmcheck reg $dr6 0xffff0ff0 --name guest-dr6-intact --kind dr6-corrupted
vmmcheck hits update_globals 3 --track counter --increment 1 --name guest-runs-more
vmmcheck reg $dr6 0xffff0ff0 --name guest-dr6-still-intact --kind dr6-corrupted
delete
vmmcheck continue --exited 0 --name guest-exit
vmmcheck exit
