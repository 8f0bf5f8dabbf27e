#!/bin/sh
# demo: memrun's main job on the bundled examples — a cache that keeps growing, held under its
# budget because memrun keeps asking it to give back (the same program dies under a plain limit);
# a leak the OOM killer ends (explained, exit 137, JSON report); and the CI form with --expect-oom.
B=${1:-build}
M=$B/memrun
L=$B/examples/leak
H=$B/examples/holdcache
[ "$(id -u)" = 0 ] || echo "note: memrun needs root or a delegated cgroup; see README" >&2
show() { printf '\n$ %s\n' "$*"; "$@"; echo "[exit status $?]"; }

printf '%s\n' "# holdcache adds 600M to a cache, 1M every 5 ms; it frees whatever it is asked for."
show "$M" --limit 128M --report "$B/demo-hold.json" -- "$H" --every 5
printf '\n$ jq -c .governor %s\n' "$B/demo-hold.json"
if command -v jq >/dev/null; then jq -c .governor "$B/demo-hold.json"; else grep -A3 '"governor"' "$B/demo-hold.json"; fi
printf '\n%s\n' "# The same program under a plain memory.max (no levels: nobody asks it anything):"
printf '[memory]\nsoft = 100%%\n' > "$B/demo-plain.ini"
show "$M" --limit 128M --policy "$B/demo-plain.ini" -- "$H" --every 5

printf '\n%s\n' "# A leak cannot give anything back: the OOM killer ends it, and memrun says exactly how."
show "$M" --limit 64M --report "$B/demo-report.json" -- "$L"
printf '\n$ cat %s\n' "$B/demo-report.json"; cat "$B/demo-report.json"
show "$M" -q --limit 64M --expect-oom -- "$L"
