# Defines `watch-symbol SYMBOL` (write) and `awatch-symbol SYMBOL` (read/write): a hardware
# watchpoint on a guest global, then the debug registers gdb's request became.
#   (gdb) source gdb-scripts/watch-symbol.gdb
#   (gdb) watch-symbol counter

define watch-symbol
  if $argc != 1
    echo usage: watch-symbol SYMBOL\n
  else
    watch $arg0
    info watchpoints
  end
end
document watch-symbol
Set a hardware write watchpoint on a guest global: watch-symbol SYMBOL.
end

define awatch-symbol
  if $argc != 1
    echo usage: awatch-symbol SYMBOL\n
  else
    awatch $arg0
    info watchpoints
  end
end
document awatch-symbol
Set a hardware access (read/write) watchpoint on a guest global: awatch-symbol SYMBOL.
end
