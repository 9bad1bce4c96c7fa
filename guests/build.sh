#!/usr/bin/env bash
# Rebuilds every built-in guest ELF (npm run guests). The ELFs are committed; rebuild after
# changing a source. Output: guests/<name>.elf
set -euo pipefail
cd "$(dirname "$0")"

CC=${CC:-gcc}
CFLAGS_ABI="-ffreestanding -nostdlib -static -fno-pic -no-pie -mno-red-zone -mgeneral-regs-only -fno-stack-protector"
# Debug paths relative to the repository root (gdb started there finds the sources), and
# the same bytes whatever the checkout directory.
CFLAGS="$CFLAGS_ABI -g -fdebug-prefix-map=$PWD=guests -Wall -Wextra -Iruntime"
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

runtime_objs() { # $1 = -O level
  local o=$1 objs=()
  for s in start isr mem; do
    $CC $CFLAGS -c runtime/$s.S -o "$OUT/$s$o.o"
    objs+=("$OUT/$s$o.o")
  done
  $CC $CFLAGS $o -c runtime/runtime.c -o "$OUT/runtime$o.o"
  objs+=("$OUT/runtime$o.o")
  echo "${objs[@]}"
}

link() { # $1 = output name, rest = objects
  local name=$1
  shift
  $CC $CFLAGS -T runtime/guest.ld -Wl,--build-id=none -o "$name.elf" "$@" -lgcc
  echo "built guests/$name.elf"
}

build_c() { # $1 = output name, $2 = -O level, rest = C/asm sources
  local name=$1 o=$2
  shift 2
  local objs=()
  for src in "$@"; do
    local obj="$OUT/$name-$(basename "$src").o"
    $CC ${GUEST_CFLAGS:-$CFLAGS} $o -c "$src" -o "$obj"
    objs+=("$obj")
  done
  # shellcheck disable=SC2046
  link "$name" "${objs[@]}" $(runtime_objs "$o")
}

build_c counter -O0 counter/counter.c
build_c selfwatch -O1 selfwatch/selfwatch.c selfwatch/probes.S
build_c workload-O0 -O0 workload/workload.c
build_c workload-O2 -O2 workload/workload.c
build_c workload-O1 -O1 workload/workload.c
build_c workload-Os -Os workload/workload.c
build_c cpuid-loop -O1 cpuid-loop/cpuid-loop.c
build_c stepper -O0 stepper/stepper.S
# fpmath: its own code with gcc's default x86-64 flags (SSE2 scalar and vector code), still
# freestanding and static; the runtime keeps the ABI flags. fpstart.S enables SSE.
GUEST_CFLAGS="${CFLAGS/-mgeneral-regs-only /}" build_c fpmath -O2 fpmath/fpmath.c fpmath/fpstart.S
# hhkernel: a higher-half kernel with its own page tables, linker script and start-up code
# (no runtime); -mcmodel=kernel for code linked at 0xffffffff80000000.
$CC $CFLAGS_ABI -g -fdebug-prefix-map=$PWD=guests -Wall -Wextra -O1 -mcmodel=kernel -c hhkernel/hhkernel.c -o "$OUT/hhkernel.o"
$CC $CFLAGS_ABI -g -fdebug-prefix-map=$PWD=guests -c hhkernel/boot.S -o "$OUT/hhboot.o"
$CC $CFLAGS_ABI -mcmodel=kernel -T hhkernel/hhkernel.ld -Wl,--build-id=none -o hhkernel.elf "$OUT/hhboot.o" "$OUT/hhkernel.o"
echo "built guests/hhkernel.elf"
# hobby: a Multiboot v1 kernel (32-bit entry, its own switch to long mode, higher half, local
# APIC timer, UART, a second CPU started with INIT-SIPI-SIPI); ELF64, loaded by p_paddr.
$CC $CFLAGS_ABI -g -fdebug-prefix-map=$PWD=guests -Wall -Wextra -O1 -mcmodel=kernel -c hobby/hobby.c -o "$OUT/hobby.o"
$CC $CFLAGS_ABI -g -fdebug-prefix-map=$PWD=guests -c hobby/boot.S -o "$OUT/hobbyboot.o"
$CC $CFLAGS_ABI -mcmodel=kernel -T hobby/hobby.ld -Wl,--build-id=none -Wl,--no-warn-rwx-segments -o hobby.elf "$OUT/hobbyboot.o" "$OUT/hobby.o"
echo "built guests/hobby.elf"
