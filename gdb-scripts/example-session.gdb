# The scripted session of README.md ("Writing a scripted session"), run by its tests:
#   VMMCHECK_TARGET=launch gdb -batch -x gdb-scripts/example-session.gdb guests/counter.elf
# vmmcheck attach connects to $VMMCHECK_TARGET (unset: :1234; launch: starts serve itself).
source gdb-scripts/vmmcheck.py
vmmcheck attach
watch counter
vmmcheck continue --watch counter --old 0 --new 1 --function update_globals
vmmcheck hits counter 8 --increment 1
vmmcheck reg $dr6 0xffff0ff0
delete
vmmcheck continue --exited 0
vmmcheck exit
