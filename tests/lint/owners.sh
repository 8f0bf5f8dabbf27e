#!/bin/sh
# owners.sh: one owner per kernel interface (docs/ARCHITECTURE.md). No file of runner/ other than the
# owning modules opens, reads or writes a cgroupfs, /proc or /sys file by name: those go through
# cg_*.c (cgroupfs), psi.c (pressure), proc.c (/proc/PID), kmsg.c (/dev/kmsg), util.c (the helpers
# they use). Prints one line per offending call and "lint: N passed, M failed".
cd "$(dirname "$0")/../.." || exit 2
pass=0 fail=0
calls='(^|[^a-z_])(open|openat|faccessat|fopen|read_at|write_at|read_u64_at|stat|fstatat)\('
kernel='"(memory\.|cgroup\.|/proc|/sys/|/dev/kmsg)'
for f in runner/*.c; do
    case $f in runner/cg_*.c | runner/psi.c | runner/proc.c | runner/kmsg.c | runner/util.c) continue ;; esac
    hits=$(grep -nE "$calls[^;]*$kernel" "$f" || true)
    if [ -n "$hits" ]; then
        printf '%s\n' "$hits" | sed "s|^|not ok - $f:|"
        fail=$((fail + 1))
    else
        pass=$((pass + 1))
    fi
done
# The checker checks: a call it must catch.
probe=$(printf 'x = openat(fd, "memory.max", O_RDONLY);\n' | grep -cE "$calls[^;]*$kernel")
if [ "$probe" = 1 ]; then pass=$((pass + 1)); else echo "not ok - the pattern misses a direct openat of memory.max"; fail=$((fail + 1)); fi
echo "lint: $pass passed, $fail failed"
[ $fail = 0 ]
