#!/bin/sh
# bench/lru.sh [--vm] BUILD_DIR — "use the budget": a multi-threaded LRU cache (bench/lru.c: 4 workers,
# values of 1-64 KiB in glibc's arenas, a 100 µs backend behind every miss) under a 256M budget (soft
# limit 230.4M), held by memrun's governor against the best static cap an operator could choose: the
# largest cap that keeps the same promise (exit 0, no OOM kill, peak at or under the soft limit), found
# by bisection in the same run, each probe a full run. Two workloads: steady, and the same with 64M of
# request buffers for a second every 4 s (memory that is not the cache's: a static cap must leave room
# for it, the governor makes room when it comes). Then a leak with nothing to give: how long from
# reaching the soft limit to the OOM kill (the kernel's throttle at memory.high must not delay it).
# Prints a markdown table on stdout.
#
# Three governed caches: one that keeps the size it was trimmed to as its cap and grows it back slowly,
# fast while far under the soft limit (lru --adapt), one that keeps it too but grows into the room under the soft limit it reads from
# memlimit_limits() (lru --room: the two patterns memlimit(3) describes), and one that evicts what
# memrun asks and otherwise grows without bound (memrun asks again and again, each time handing the
# heap back).
#
# After the bisection, the best static cap and the three governed caches run again, interleaved,
# BENCH_LRU_ROUNDS times (default 2): each row sums their requests and hits over the rounds (hit rate =
# hits / requests), takes the highest peak and p99 and the mean median; the ratios are to the static
# cap's rounds, so a machine slower in one minute than the next moves every arm alike. A static cap
# that breaks the promise in its rounds (the probe was lucky) is lowered by 2% and all arms run again
# (at most twice), said under the table.
#
# Columns: held/soft is usage over the soft limit in the measured half (median and p99 of memrun's
# --timeline samples); peak/soft from memory.peak; hit rate and requests (throughput) from lru's own
# count of the measured half, and their ratio to the best static cap's of the same workload; page
# faults, lru's minor faults in the measured half (what moving memory back and forth costs), with the
# cost of one measured below the table (lru --fault-cost).
#
# --vm: the same inside the cgroup v2 VM (memory.high is real there), as bench/holds.sh --vm does.
# Knobs: BENCH_LRU_SECONDS (default 20 per run), BENCH_LRU_PROBES (bisection probes, default 6),
# BENCH_LRU_ROUNDS (interleaved rounds, default 2).
# Safety: sandboxes only beneath memrun's own cgroup; processes it started; no network.
set -u
if [ "${1:-}" = --vm ]; then VM=1; shift; else VM=0; fi
B=${1:?usage: sh bench/lru.sh [--vm] BUILD_DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/.." && pwd)
die() { echo "bench/lru.sh: error: $*" >&2; exit 1; }

if [ $VM = 1 ]; then
	for f in memrun lru examples/leak; do [ -x "$B/$f" ] || die "$B/$f missing (make all $B/lru)"; done
	ROOT=$(mktemp -d "$(mkdir -p "$B/bench" && cd "$B/bench" && pwd)/lru-root.XXXXXX") || die mktemp
	trap 'rm -rf "$ROOT" "$ROOT.console"' EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	"${MAKE:-make}" --no-print-directory -C "$TOP" install DESTDIR="$ROOT" PREFIX=/usr >/dev/null || die "make install"
	mkdir -p "$ROOT/bench" "$ROOT/build/examples"
	cp "$HERE/lru.sh" "$ROOT/bench/"
	cp "$ROOT/usr/bin/memrun" "$ROOT/build/"
	cp "$B/lru" "$ROOT/build/"
	cp "$B/examples/leak" "$ROOT/build/examples/"
	cp "$(command -v jq)" "$(command -v timeout)" "$ROOT/usr/bin/"
	cat >"$ROOT/bench/in-vm.sh" <<EOF
export BENCH_LRU_SECONDS="${BENCH_LRU_SECONDS:-20}" BENCH_LRU_PROBES="${BENCH_LRU_PROBES:-6}" BENCH_LRU_ROUNDS="${BENCH_LRU_ROUNDS:-2}"
export BENCH_LRU_NOTE="inside the cgroup v2 VM: Debian's kernel under qemu TCG"
sh /bench/lru.sh /build >/tmp/lru.md; rc=\$?
echo "=====LRU-BEGIN====="; cat /tmp/lru.md; echo "=====LRU-END====="
exit \$rc
EOF
	rc=0
	MEMRUN_VM_LOG=$B/bench/lru-vm.log MEMRUN_VM_TIMEOUT=${MEMRUN_VM_TIMEOUT:-3600} \
		"$TOP/tests/vm/run.sh" "$ROOT" -- sh /bench/in-vm.sh >"$ROOT.console" || rc=$?
	sed -n '/=====LRU-BEGIN=====/,/=====LRU-END=====/p' "$ROOT.console" | sed '1d;$d' | tr -d '\r'
	[ $rc = 0 ] || die "the run inside the VM failed (status $rc); see $B/bench/lru-vm.log"
	exit 0
fi

M=$B/memrun P=$B/lru L=$B/examples/leak
for f in "$M" "$P" "$L"; do [ -x "$f" ] || die "$f missing: run make all $B/lru"; done
command -v jq >/dev/null || die "jq missing (apt-get install jq)"
W=$(mktemp -d "${TMPDIR:-/tmp}/memrun-lru.XXXXXX") || die mktemp
trap 'rm -rf "$W"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
S=${BENCH_LRU_SECONDS:-20}
PROBES=${BENCH_LRU_PROBES:-6}
ROUNDS=${BENCH_LRU_ROUNDS:-2}
MiB=1048576
SOFT=$((256 * MiB * 9 / 10))
# The static arm: memory.high at the same soft limit, nobody asked anything.
printf '[memory]\nsoft = 90%%\n[governor]\nhold = no\n[stall]\nenabled = no\n' >"$W/static.ini"
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then CG=v2; else CG=v1; fi

# run NAME ARGS...: lru under memrun, then measure NAME
run() {
	name=$1
	shift
	timeout $((S * 3 + 30)) "$M" -q --limit 256M --timeline "$W/$name.csv" --report "$W/$name.json" -- \
		"$P" --seconds "$S" "$@" >"$W/$name.out" 2>"$W/$name.err"
	echo $? >"$W/$name.rc"
	measure "$name"
}
# measure NAME: sets rc, peak, ooms, med, p99, rate, reqs, wait from a run's files
measure() {
	name=$1
	rc=$(cat "$W/$name.rc")
	peak=$(jq -r '.memory.peak // 0' "$W/$name.json" 2>/dev/null || echo 0)
	ooms=$(jq -r '.events.oom_kill // 0' "$W/$name.json" 2>/dev/null || echo 0)
	# median and p99 of the samples of the measured half, over the soft limit
	set -- $(awk -F, -v soft=$SOFT -v half=$((S / 2)) 'NR > 1 && $1 + 0 >= half { n++; u[n] = $2 }
		END { for (i = 2; i <= n; i++) { v = u[i]; j = i - 1; while (j > 0 && u[j] > v) { u[j+1] = u[j]; j-- } u[j+1] = v }
		      if (!n) { print "0 0"; exit }
		      printf "%.3f %.3f\n", u[int((n - 1) * 0.5) + 1] / soft, u[int((n - 1) * 0.99) + 1] / soft }' "$W/$name.csv")
	med=$1 p99=$2
	rate=$(sed -n 's/.*hit_rate=\([0-9.]*\).*/\1/p' "$W/$name.out")
	reqs=$(sed -n 's/.*requests=\([0-9]*\).*/\1/p' "$W/$name.out")
	wait=$(sed -n 's/.*max_lock_wait_us=\([0-9]*\).*/\1/p' "$W/$name.out")
	flt=$(sed -n 's/.*minflt=\([0-9]*\).*/\1/p' "$W/$name.out")
	[ -n "$flt" ] || flt=0
	[ -n "$rate" ] || rate=0
	[ -n "$reqs" ] || reqs=0
	[ -n "$wait" ] || wait=-
}
# rounds ARM: the names of an arm's runs in the rounds (attempt $a) of workload $wl (busybox's seq has no -f)
rounds() { for r in $(seq 1 "$ROUNDS"); do echo "a$a-r$r-$1-$wl"; done; }
# gather NAME...: the rounds of one arm, as measure does for one run (sums, max, mean)
gather() {
	[ $# -gt 0 ] || die "gather: no runs"
	set -- $(for name in "$@"; do
		measure "$name"
		echo "$rc $peak $ooms $med $p99 $rate $reqs $wait $flt"
	done | awk '{ if ($1 != 0) rc = $1; if ($2 > peak) peak = $2; ooms += $3; med += $4; if ($5 > p99) p99 = $5
		      hits += $6 * $7; reqs += $7; if ($8 != "-" && $8 > wait) wait = $8; flt += $9; n++ }
		END { printf "%d %d %d %.3f %.3f %.4f %d %d %d\n", rc, peak, ooms, med / n, p99, reqs ? hits / reqs : 0, reqs, wait, flt }')
	rc=$1 peak=$2 ooms=$3 med=$4 p99=$5 rate=$6 reqs=$7 wait=$8 flt=$9
}
# of_soft BYTES: BYTES over the soft limit, 3 decimals
of_soft() { awk -v p="$1" -v s=$SOFT 'BEGIN { printf "%.3f", p / s }'; }
kept() { [ "$rc" = 0 ] && [ "$ooms" = 0 ] && [ "$peak" -le $SOFT ]; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
row() { # WORKLOAD ARM CAP
	out=ok
	[ "$rc" = 0 ] || out="exit $rc"
	[ "$ooms" = 0 ] || out="$out, $ooms OOM kill(s)"
	[ "$peak" -le $SOFT ] || out="$out, peak over soft"
	pk=$(of_soft "$peak")
	echo "| $1 | $2 | $3 | $out | $pk | $med | $p99 | $rate | $(ratio "$rate" "$brate") | $reqs | $(ratio "$reqs" "$breqs") | $flt | $wait |"
}

echo "### Use the budget: an LRU cache, governed vs the best static cap ($CG${BENCH_LRU_NOTE:+, $BENCH_LRU_NOTE})"
echo
echo "256M budget, soft limit 230.4M; ${S} s per run, the second half measured; the static cap bisected over"
echo "$PROBES full runs between 32M and the soft limit (kept: exit 0, no OOM kill, peak ≤ soft), then it and the"
echo "governed caches run $ROUNDS times, interleaved (requests and hits summed, highest peak and p99, mean median)."
echo
echo "| workload | holder | cap | outcome | peak/soft | held/soft median | held/soft p99 | hit rate | ×static | requests | ×static | page faults | max lock wait µs |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
NOTES=""
for wl in steady spike; do
	args=""
	[ $wl = spike ] && args="--spike 64M"
	# the best static cap: bisection on whole MiB
	lo=32 hi=$((SOFT / MiB)) best=""
	for i in $(seq 1 "$PROBES"); do
		cap=$(((lo + hi) / 2))
		run "static-$wl-$cap" --cap "${cap}M" $args
		if kept; then lo=$cap best=$cap; else hi=$cap; fi
	done
	if [ -z "$best" ]; then
		echo "| $wl | best static cap | none kept the promise | | | | | | | | | | |"
		brate=0 breqs=0
	fi
	# the rounds: the static cap and the governed caches, interleaved. The cap must keep the promise
	# in the rounds too: one that breaks it there (a peak over the soft limit the probe happened not to
	# reach) is not the best cap that keeps it, so the rounds run again, all arms, with the cap 2% lower
	# (at most twice; said under the table).
	a=0
	while :; do
		a=$((a + 1))
		for r in $(seq 1 "$ROUNDS"); do
			[ -z "$best" ] || run "a$a-r$r-static-$wl" --cap "${best}M" $args
			run "a$a-r$r-adapt-$wl" --adapt $args
			run "a$a-r$r-room-$wl" --room $args
			run "a$a-r$r-evict-$wl" $args
		done
		[ -n "$best" ] || break
		gather $(rounds static)
		kept && break
		lower=$((best * 98 / 100))
		after="all arms ran again with ${lower}M"
		[ $a -le 2 ] || after="its row and the ratios to it are of a cap that broke it"
		NOTES="$NOTES$wl: the cap ${best}M broke the promise in the rounds (exit $rc, $ooms OOM kill(s), peak/soft $(of_soft "$peak")); $after.

"
		[ $a -le 2 ] || break
		best=$lower
	done
	if [ -n "$best" ]; then
		brate=$rate breqs=$reqs
		row $wl "best static cap" "${best}M"
	fi
	gather $(rounds adapt)
	row $wl "governor, cache keeps its trimmed size" "-"
	gather $(rounds room)
	row $wl "governor, cache grows into the room" "-"
	gather $(rounds evict)
	row $wl "governor, cache only evicts what is asked" "-"
done
echo
[ -z "$NOTES" ] || printf '%s' "$NOTES"
# What a page the kernel took back costs when an insert touches it again (the price of moving memory)
fc=$("$P" --fault-cost | sed -n 's/.*fault_us=\([0-9.]*\).*/\1/p')
echo "Page faults: lru's minor faults in the measured halves, summed over the rounds. Faulting in one fresh 4 KiB"
echo "page costs ${fc:-?} µs here (\`lru --fault-cost\`: 64 MiB touched a page at a time, best of 3)."
echo
# The leak: from reaching the soft limit (first timeline sample at or over it) to the end of the run
for i in 1 2 3; do
	timeout 60 "$M" -q --limit 64M --timeline "$W/leak.csv" --report "$W/leak.json" -- "$L" --step 1M --interval 5 \
		>/dev/null 2>&1
	soft=$((64 * MiB * 9 / 10))
	t=$(awk -F, -v soft=$soft 'NR > 1 && $2 >= soft { print $1; exit }' "$W/leak.csv")
	g=$(jq -r '[.actions[] | select(.action == "giveup")][0].t // "-"' "$W/leak.json")
	d=$(jq -r .duration_s "$W/leak.json")
	k=$(jq -r .exit.oom_killed "$W/leak.json")
	if [ -n "$t" ]; then dt=$(awk -v d="$d" -v t="$t" 'BEGIN { printf "%.2f s", d - t }'); else dt="never reached"; fi
	echo "leak $i (64M, 1 MiB per 5 ms, nothing to give): OOM-killed $k after ${d} s; soft limit reached at ${t:--} s, gave up at $g s; from the soft limit to the end: $dt"
	echo
done
