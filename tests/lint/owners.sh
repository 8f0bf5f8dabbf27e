#!/bin/sh
# owners.sh: one owner per kernel interface (docs/ARCHITECTURE.md), and the owners are folders. No
# file of runner/ outside runner/cgroup/ (cgroupfs) and runner/kernel/ (pressure, /proc/PID,
# /dev/kmsg) opens, reads or writes a cgroupfs, /proc or /sys file by name; util.c holds the helpers
# they use. Prints one line per offending call and "lint: N passed, M failed".
cd "$(dirname "$0")/../.." || exit 2
pass=0 fail=0
calls='(^|[^a-z_])(open|openat|faccessat|fopen|read_at|write_at|read_u64_at|stat|fstatat)\('
# A /proc/PID file's name, however it is built, is runner/kernel/proc.c's.
pidfile='"%d/(cgroup|status|statm|stat|oom_score_adj)"'
kernel='"(memory\.|cgroup\.|/proc|/sys/|/dev/kmsg|[^"]*/(cgroup|status|statm)")'
for f in runner/*.c runner/*/*.c; do
    case $f in runner/cgroup/*.c | runner/kernel/*.c | runner/util.c) continue ;; esac
    hits=$(grep -nE "$calls[^;]*$kernel|$pidfile" "$f" || true)
    if [ -n "$hits" ]; then
        printf '%s\n' "$hits" | sed "s|^|not ok - $f:|"
        fail=$((fail + 1))
    else
        pass=$((pass + 1))
    fi
done
# The checker checks: calls it must catch (a cgroupfs file, and a /proc/PID file through a proc fd).
probe=$(printf 'x = openat(fd, "memory.max", O_RDONLY);\nn = read_at(proc_fd, "%%d/cgroup", buf, size);\n' |
    grep -cE "$calls[^;]*$kernel|$pidfile")
if [ "$probe" = 2 ]; then pass=$((pass + 1)); else echo "not ok - the pattern misses a direct openat of memory.max or a read of PID/cgroup"; fail=$((fail + 1)); fi
echo "lint: $pass passed, $fail failed"
[ $fail = 0 ]
