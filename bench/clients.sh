#!/bin/sh
# bench/clients.sh BUILD_DIR — Go and Python programs governed through their own clients of the
# limiter protocol (limiter/go, limiter/python), on this host, in one run with their baselines.
# Prints a markdown table on stdout.
#
# The same cache in each language: 1 MiB entries, one every BENCH_CLIENTS_EVERY ms (default 2),
# 600 MiB in all, through a 128M budget (soft limit 115.2M).
#   Go      examples/gocache: with the client (memrun asks, the client trims the cache and owns
#           the runtime's memory limit), under GOMEMLIMIT alone (memrun's hint, no client: -no-client),
#           and unconstrained (no memrun, no limit: the baseline).
#   Python  examples/pycache.py (Debian's python3): with the client, registering nothing, and
#           unconstrained.
# Columns: exit (137: OOM-killed), peak and held/soft (median and p99 of memrun's samples over the
# soft limit), goodput (the baseline's wall time / this one's; 0 when killed), and the CPU the
# program spent giving memory back (Go: GC, from GCCPUFraction; Python: the trim callbacks), as a
# share of its wall time.
# Safety: sandboxes only beneath memrun's own cgroup; processes it started; no network.
set -u
B=${1:?usage: sh bench/clients.sh BUILD_DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/.." && pwd)
die() { echo "bench/clients.sh: error: $*" >&2; exit 1; }
M=$B/memrun GC=$B/examples/gocache PC=$B/examples/pycache.py PY=${PYTHON:-/usr/bin/python3}
for f in "$M" "$GC" "$PC" "$PY"; do [ -x "$f" ] || die "$f missing: run make all clients"; done
EVERY=${BENCH_CLIENTS_EVERY:-2}
SOFT=$((128 * 1048576 * 9 / 10))
W=$(mktemp -d "${TMPDIR:-/tmp}/memrun-clients.XXXXXX") || die mktemp
trap 'rm -rf "$W"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
export PYTHONPATH="$TOP/limiter/python"
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then CG=v2; else CG=v1; fi

field() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" "$2" | tail -1; }

# row LANG ARM BASE_OUT CMD...: one run under memrun (or none for the baseline), one table row
row() {
	lang=$1 arm=$2 base=$3
	shift 3
	if [ "$arm" = unconstrained ]; then
		timeout 300 "$@" >"$W/out" 2>"$W/err"
		rc=$?
		pk=- med=- p99=-
	else
		timeout 300 "$M" -q --limit 128M --timeline "$W/tl.csv" --report "$W/r.json" -- "$@" >"$W/out" 2>"$W/err"
		rc=$?
		peak=$(jq -r '.memory.peak // 0' "$W/r.json" 2>/dev/null || echo 0)
		pk=$(awk -v p="$peak" -v s=$SOFT 'BEGIN { printf "%.3f", p / s }')
		set -- $(awk -F, -v soft=$SOFT 'NR > 1 { n++; u[n] = $2 }
			END { for (i = 2; i <= n; i++) { v = u[i]; j = i - 1; while (j > 0 && u[j] > v) { u[j+1] = u[j]; j-- } u[j+1] = v }
			      if (!n) { print "- -"; exit }
			      printf "%.3f %.3f\n", u[int((n - 1) * 0.5) + 1] / soft, u[int((n - 1) * 0.99) + 1] / soft }' "$W/tl.csv")
		med=$1 p99=$2
	fi
	[ "$arm" = unconstrained ] && cp "$W/out" "$base"   # the baseline: goodput 1 by definition
	wall=$(field wall_ms "$W/out") bwall=$(field wall_ms "$base" 2>/dev/null)
	cpu=$(field gc_cpu_ms "$W/out"); [ -n "$cpu" ] || cpu=$(field trim_cpu_ms "$W/out")
	goodput=0 cpus=-
	[ $rc = 0 ] && [ -n "$wall" ] && [ -n "$bwall" ] && goodput=$(awk -v b="$bwall" -v w="$wall" 'BEGIN { printf "%.2f", (w > 0 ? b / w : 0) }')
	[ -n "$cpu" ] && [ -n "$wall" ] && cpus=$(awk -v c="$cpu" -v w="$wall" 'BEGIN { printf "%.1f%%", (w > 0 ? 100 * c / w : 0) }')
	echo "| $lang | $arm | $rc | $pk | $med | $p99 | $goodput | $cpus |"
}

echo "### Go and Python programs, governed through their clients ($CG)"
echo
echo "The same cache in each language, 1 MiB entries every $EVERY ms, 600 MiB through a 128M budget (soft"
echo "limit 115.2M); goodput against the same program unconstrained, same run."
echo
echo "| language | holder | exit | peak/soft | held/soft median | held/soft p99 | goodput | CPU giving back |"
echo "|---|---|---|---|---|---|---|---|"
row Go unconstrained "$W/base-go" "$GC" -every "${EVERY}ms"
row Go "memrun + client" "$W/base-go" "$GC" -every "${EVERY}ms"
row Go "GOMEMLIMIT alone" "$W/base-go" "$GC" -every "${EVERY}ms" -no-client
row Python unconstrained "$W/base-py" "$PY" "$PC" --every "$EVERY"
row Python "memrun + client" "$W/base-py" "$PY" "$PC" --every "$EVERY"
row Python "memrun, nothing registered" "$W/base-py" "$PY" "$PC" --every "$EVERY" --no-register
echo
echo "GOMEMLIMIT alone: memrun's hint, no client. A live cache is not garbage: the GC works harder"
echo "and cannot drop it, so the program meets memory.max as it would without memrun."
