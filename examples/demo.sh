#!/bin/sh
# demo: memrun's main job on the bundled leak example — a run that fits its budget, one the OOM
# killer ends (explained, exit 137, JSON report), and the CI form with --expect-oom.
B=${1:-build}
M=$B/memrun
L=$B/examples/leak
[ "$(id -u)" = 0 ] || echo "note: memrun needs root or a delegated cgroup; see README" >&2
show() { printf '\n$ %s\n' "$*"; "$@"; echo "[exit status $?]"; }

show "$M" --limit 64M -- "$L" --max 32M
show "$M" --limit 64M --report "$B/demo-report.json" -- "$L"
printf '\n$ cat %s\n' "$B/demo-report.json"; cat "$B/demo-report.json"
show "$M" -q --limit 64M --expect-oom -- "$L"
