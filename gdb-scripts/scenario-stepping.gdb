# Scenario 7: `stepi` through VM exits (OUT, CPUID, HLT) and a guest timer interrupt: every
# step ends as a plain step, the guest reaches its end, and the guest never sees the
# debugger's TF (its RFLAGS.TF reads 0 and it exits normally).
# On vmx and svm a stepi into the interrupt stops at the vector entry (as an MTF step), so the
# handler is stepped too: both backends step through the same addresses.
# By hand (repository root):
#   node bin/vmm-gdbstub.js serve guests/stepper.elf &
#   gdb -batch -x gdb-scripts/scenario-stepping.gdb guests/stepper.elf
source gdb-scripts/vmmcheck.py
vmmcheck attach

break step_start
vmmcheck continue --breakpoint step_start --name at-step-start
delete
vmmcheck stepi --count 60 --until step_out --name straight-line-loop-call
vmmcheck stepi --count 4 --until step_cpuid --name step-over-io-exit
vmmcheck stepi --count 4 --until step_hlt --name step-over-cpuid-exit
vmmcheck stepi --count 400 --until step_end --name step-over-hlt-and-interrupt
vmmcheck expr "*(unsigned long *)&step_ticks" 1 --name timer-interrupt-taken
vmmcheck reg $eflags 0 --mask 0x100 --name guest-tf-clear --kind tf-leak
vmmcheck continue --exited 0 --name guest-exit
vmmcheck exit
