# Scenario 6: SVM VMCB clean bits. Once the guest has run, the VMCB's DR6/DR7 (clean bit 6)
# are cached; a guest DR7 written through the stub (`set $dr7`, gdb's own watchpoints) or
# through vmmctl takes effect only if the write marks the VMCB dirty.
#   full: the leak detector sees the physical DR7 follow each new value; gdb's watchpoint fires.
#   no-svm-dirty: the stale DR7 stays loaded (a leak is reported / hits are missed).
# On VT-x the guest DR7 is a VMCS field and there is no cache: the same script must pass.
# By hand (repository root; the vmmctl step needs the VM's --name = $VMMCHECK_VM_NAME):
#   node bin/vmm-gdbstub.js serve guests/counter.elf --backend svm --preempt-every 500 --name vmmcheck &
#   gdb -batch -x gdb-scripts/scenario-svm-clean-bits.gdb guests/counter.elf
source gdb-scripts/vmmcheck.py
vmmcheck attach --serve-args "--preempt-every 500"

break update_globals
vmmcheck continue --breakpoint update_globals --function update_globals --name first-break
vmmcheck hits update_globals 2 --track counter --increment 1 --name guest-runs

# 1. Through the stub: a guest-owned write breakpoint (DR1, 8 bytes, L1) on an address the
#    guest never touches, so only the leak detector can tell whether it was loaded.
set $dr1 = 0x1000
set $dr7 = 0x900404
vmmcheck reg $dr7 0x900404 --name stub-dr7-written
vmmcheck hits update_globals 2 --track counter --increment 1 --name guest-runs-with-stub-dr7
vmmcheck monitor leaks --match "no debug-state leaks detected" --kind leak --name stub-dr7-took-effect
set $dr7 = 0x400
vmmcheck hits update_globals 1 --track counter --increment 1 --name guest-runs-with-dr7-cleared

# 2. Through vmmctl (bhyvectl --set-dr7), while gdb holds the VM stopped.
vmmcheck vmmctl --set-dr7=0x900404 --name vmmctl-set-dr7
vmmcheck reg $dr7 0x900404 --name vmmctl-dr7-seen-by-gdb
vmmcheck hits update_globals 2 --track counter --increment 1 --name guest-runs-with-vmmctl-dr7
vmmcheck monitor leaks --match "no debug-state leaks detected" --kind leak --name vmmctl-dr7-took-effect
set $dr7 = 0x400
delete

# 3. gdb's own watchpoint is a guest DR7 write through the stub, too.
watch counter
vmmcheck hits counter 3 --increment 1 --name gdb-watch-after-guest-ran
delete
vmmcheck continue --exited 0 --name guest-exit
vmmcheck exit
