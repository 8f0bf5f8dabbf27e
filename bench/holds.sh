#!/bin/sh
# bench/holds.sh [--vm] BUILD_DIR — "the soft limit holds": one 128M budget (memory.high 115M), six
# workloads, four ways of holding them, side by side in one run, with an unconstrained baseline of
# each workload taken in the same run. Prints a markdown table on stdout.
#
#   governor    memrun's built-in policy: keeps asking while above target
#   fire-once   the same levels with [governor] hold = no: each level's actions once, on entry
#   high        memory.high = 115M and memory.max, nobody asked anything (on v1: memory.max only); the
#               default [stall] escalation still raises memory.high after 10 s of a throttled stall
#   go          Go's own GOMEMLIMIT=115MiB (GOGC=off) holding bench/gohold, the same workload in Go
#               whose dropped entries are garbage; memory.max only, memrun asks nothing
#
# Workloads (holdcache; gohold for the go arm): a cache growing 1 MiB every 2, 5 and 20 ms (600M in
# all), the step test (live set 10% -> 80% of the soft limit in 8 steps, the rest evictable), a spike
# (300M as fast as it can), fragmentation (examples/fragment with --preload: freed heap that only
# malloc_trim returns), a leak (examples/leak: nothing to give), an uncooperative client
# (holdcache --ignore). Columns: peak usage / soft limit, the median while held (the samples from the
# first at 90% of the soft limit on; - if never) and the p99, share of time above it (from
# --timeline), OOM kills, asks per second and bytes freed / asked (report), goodput (baseline wall
# time / this wall time; 0 when killed), p99 entry latency against the baseline's, the share of CPU
# spent in callbacks (Go: GC).
#
# --vm: the same inside the cgroup v2 VM (memory.high is real there), as bench/vm.sh runs things.
# Knobs: BENCH_HOLDS_RATES (default "2 5 20"; "5 20" in the VM: TCG cannot allocate 1 MiB per 2 ms),
# BENCH_HOLDS_PLOT (a PNG path: the governor's cache-5 run against memory.high's, with gnuplot; the VM
# run hands its timelines back to the host for it).
# Safety: sandboxes only beneath memrun's own cgroup; processes it started; no network.
set -u
if [ "${1:-}" = --vm ]; then VM=1; shift; else VM=0; fi
B=${1:?usage: sh bench/holds.sh [--vm] BUILD_DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/.." && pwd)
die() { echo "bench/holds.sh: error: $*" >&2; exit 1; }

# plot GOVERNOR.csv HIGH.csv OUT.png WHERE: usage against the soft and hard limits, and the asks
plot() {
	command -v gnuplot >/dev/null || { echo "bench/holds.sh: no gnuplot: no plot" >&2; return 0; }
	{ [ -s "$1" ] && [ -s "$2" ]; } || { echo "bench/holds.sh: no timelines to plot" >&2; return 0; }
	gnuplot <<GP || echo "bench/holds.sh: gnuplot failed" >&2
set terminal pngcairo size 1100,520 font ",10"
set output "$3"
set datafile separator ","
set multiplot layout 1,2 title "holdcache, 1 MiB every 5 ms, 600 MiB through a 128M budget ($4)"
set xlabel "seconds"; set ylabel "MiB"; set key top left; set yrange [0:150]
set title "memrun's governor"
plot "$1" every ::1 using 1:(\$2/1048576) with lines lw 2 title "usage", \\
     "" every ::1 using 1:(\$3/1048576) with lines dt 2 title "soft (memory.high)", \\
     "" every ::1 using 1:(\$4/1048576) with lines dt 3 title "hard (memory.max)", \\
     "" every ::1 using 1:(\$8 > 0 ? \$8/1048576 : NaN) with impulses title "asked (MiB)"
set title "memory.high alone (nobody asked; [stall] raises memory.high at 10 s)"
plot "$2" every ::1 using 1:(\$2/1048576) with lines lw 2 title "usage", \\
     "" every ::1 using 1:(\$3/1048576) with lines dt 2 title "soft (memory.high)", \\
     "" every ::1 using 1:(\$4/1048576) with lines dt 3 title "hard (memory.max)"
unset multiplot
GP
}

if [ $VM = 1 ]; then
	for f in memrun examples/holdcache examples/leak examples/fragment gohold; do [ -x "$B/$f" ] || die "$B/$f missing (make all; go build)"; done
	ROOT=$(mktemp -d "$(mkdir -p "$B/bench" && cd "$B/bench" && pwd)/holds-root.XXXXXX") || die mktemp
	trap 'rm -rf "$ROOT" "$ROOT.console"' EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	"${MAKE:-make}" --no-print-directory -C "$TOP" install DESTDIR="$ROOT" PREFIX=/usr >/dev/null || die "make install"
	mkdir -p "$ROOT/bench" "$ROOT/build/examples" "$ROOT/tests/host"
	cp "$HERE/holds.sh" "$ROOT/bench/"
	cp "$TOP/tests/host/fire-once.ini" "$ROOT/tests/host/"
	cp /usr/bin/memrun "$ROOT/build/" 2>/dev/null || cp "$ROOT/usr/bin/memrun" "$ROOT/build/"
	cp "$B/examples/holdcache" "$B/examples/leak" "$B/examples/fragment" "$ROOT/build/examples/"
	cp "$B/gohold" "$B/libmemlimit-preload.so" "$ROOT/build/"
	cp "$(command -v jq)" "$(command -v timeout)" "$ROOT/usr/bin/"
	cat >"$ROOT/bench/in-vm.sh" <<EOF
export BENCH_HOLDS_RATES="${BENCH_HOLDS_RATES:-5 20}" BENCH_HOLDS_NOTE="inside the cgroup v2 VM: Debian's kernel under qemu TCG"
export BENCH_HOLDS_KEEP=/tmp/keep
sh /bench/holds.sh /build >/tmp/holds.md; rc=\$?
echo "=====HOLDS-BEGIN====="; cat /tmp/holds.md; echo "=====HOLDS-END====="
for f in governor high; do echo "=====TL-\$f-BEGIN====="; cat /tmp/keep/\$f.csv; echo "=====TL-\$f-END====="; done
exit \$rc
EOF
	rc=0
	MEMRUN_VM_LOG=$B/bench/holds-vm.log MEMRUN_VM_TIMEOUT=${MEMRUN_VM_TIMEOUT:-3600} \
		"$TOP/tests/vm/run.sh" "$ROOT" -- sh /bench/in-vm.sh >"$ROOT.console" || rc=$?
	sed -n '/=====HOLDS-BEGIN=====/,/=====HOLDS-END=====/p' "$ROOT.console" | sed '1d;$d' | tr -d '\r'
	[ $rc = 0 ] || die "the run inside the VM failed (status $rc); see $B/bench/holds-vm.log"
	for f in governor high; do
		sed -n "/=====TL-$f-BEGIN=====/,/=====TL-$f-END=====/p" "$ROOT.console" | sed '1d;$d' | tr -d '\r' \
			>"$B/bench/holds-vm-$f.csv"
	done
	[ -z "${BENCH_HOLDS_PLOT:-}" ] ||
		plot "$B/bench/holds-vm-governor.csv" "$B/bench/holds-vm-high.csv" "$BENCH_HOLDS_PLOT" "cgroup v2 VM"
	exit 0
fi

M=$B/memrun H=$B/examples/holdcache L=$B/examples/leak G=$B/gohold F=$B/examples/fragment
FIRE=$TOP/tests/host/fire-once.ini
for f in "$M" "$H" "$L" "$F"; do [ -x "$f" ] || die "$f missing: run make"; done
command -v jq >/dev/null || die "jq missing (apt-get install jq)"
W=$(mktemp -d "${TMPDIR:-/tmp}/memrun-holds.XXXXXX") || die mktemp
trap 'rm -rf "$W"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
printf '[memory]\nsoft = 90%%\n' >"$W/high.ini"
printf '[memory]\nsoft = 100%%\n' >"$W/max.ini"
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then CG=v2; else CG=v1; fi
RATES=${BENCH_HOLDS_RATES:-2 5 20}
SOFT=$((128 * 1048576 * 9 / 10))

# the workload's arguments: NAME -> holdcache args ; gohold args ("" = no Go equivalent)
wl_c() {
	case $1 in
	cache-*) echo "--every ${1#cache-}" ;;
	step) echo "--every 5 --live-from 11M --live-to 92M" ;;
	spike) echo "--every 0 --total 300M" ;;
	uncooperative) echo "--every 5 --ignore" ;;
	esac
}
wl_go() {
	case $1 in
	cache-*) echo "-every ${1#cache-}" ;;
	step) echo "-every 5 -live-from 11M -live-to 92M" ;;
	spike) echo "-every 0 -total 300M" ;;
	*) echo "" ;;
	esac
}
prog() { # WORKLOAD ARM -> the command
	if [ "$1" = leak ]; then echo "$L --step 1M --interval 5"; return; fi
	if [ "$1" = fragment ]; then echo "$F"; return; fi
	if [ "$2" = go ]; then echo "env GOGC=off GOMEMLIMIT=$SOFT $G $(wl_go "$1")"; else echo "$H $(wl_c "$1")"; fi
}
field() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" "$2" | tail -1; }

# Baselines: each workload with no limit, no memrun.
for wl in $(for r in $RATES; do printf 'cache-%s ' "$r"; done) step spike; do
	$H $(wl_c $wl) >"$W/base-$wl.out" 2>/dev/null
	[ -x "$G" ] && env GOGC=off "$G" $(wl_go $wl) >"$W/base-go-$wl.out" 2>/dev/null
done

echo "### The soft limit holds ($CG${BENCH_HOLDS_NOTE:+, $BENCH_HOLDS_NOTE})"
echo
echo "128M budget, soft limit (memory.high) 115M; usage from memrun's --timeline (held: from the first sample at"
echo "90% of the soft limit on) and memory.peak; goodput and p99 entry latency against the same workload"
echo "unconstrained, same run. \`-\`: no Go equivalent."
echo
echo "| workload | holder | exit | peak/soft | held/soft median | p99/soft | time > soft | OOM kills | asks/s | freed/asked | goodput | p99 latency ×base | callback CPU |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for wl in $(for r in $RATES; do printf 'cache-%s ' "$r"; done) step spike fragment leak uncooperative; do
	for arm in governor fire-once high go; do
		if [ $arm = go ] && { [ ! -x "$G" ] || [ -z "$(wl_go $wl)" ]; }; then
			echo "| $wl | $arm | - | | | | | | | | | | |"
			continue
		fi
		# fragment's freed heap goes back only through malloc_trim: --preload answers trim/collect with it
		pre=""
		[ $wl = fragment ] && [ $arm != go ] && pre=--preload
		case $arm in
		governor) pol="" ;;
		fire-once) pol="--policy $FIRE" ;;
		high) pol="--policy $W/high.ini" ;;
		go) pol="--policy $W/max.ini --no-hints" ;;
		esac
		timeout 120 "$M" -q --limit 128M $pre $pol --timeline "$W/tl.csv" --report "$W/r.json" -- $(prog $wl $arm) \
			>"$W/out" 2>"$W/err"
		rc=$?
		if [ -n "${BENCH_HOLDS_KEEP:-}" ] && [ $wl = cache-5 ] && { [ $arm = governor ] || [ $arm = high ]; }; then
			mkdir -p "$BENCH_HOLDS_KEEP" && cp "$W/tl.csv" "$BENCH_HOLDS_KEEP/$arm.csv"
		fi
		[ -s "$W/r.json" ] || { echo "| $wl | $arm | $rc | (no report) | | | | | | | | | |"; continue; }
		peak=$(jq -r .memory.peak "$W/r.json")
		dur=$(jq -r .duration_s "$W/r.json")
		ooms=$(jq -r .events.oom_kill "$W/r.json")
		asks=$(jq -r '[.governor.asks // {} | .[] | .asks] | max // 0' "$W/r.json")
		asked=$(jq -r '[.governor.asks // {} | .[] | .asked] | max // 0' "$W/r.json")
		freed=$(jq -r '[.governor.asks // {} | .[] | .freed] | add // 0' "$W/r.json")
		stats=$(awk -F, -v soft=$SOFT 'NR > 1 { n++; u[n] = $2; t[n] = $1 }
			END { for (i = 2; i <= n; i++) { dt = t[i] - t[i-1]; T += dt; if (u[i] > soft) A += dt }
			      # p99 of the samples
			      for (i = 1; i <= n; i++) s[i] = u[i]; m = n
			      for (i = 2; i <= m; i++) { v = s[i]; j = i - 1; while (j > 0 && s[j] > v) { s[j+1] = s[j]; j-- } s[j+1] = v }
			      k = int((m - 1) * 0.99) + 1; printf "%.2f %.1f%%", (m ? s[k] : 0) / soft, (T > 0 ? 100 * A / T : 0)
			      # median while held: the samples from the first at 90% of the soft limit on
			      for (i = 1; i <= n && u[i] < 0.9 * soft; i++) ;
			      for (h = 0; i <= n; i++) { v = u[i]; j = h; while (j > 0 && g[j] > v) { g[j+1] = g[j]; j-- } g[j+1] = v; h++ }
			      if (h) printf " %.2f\n", g[int((h - 1) * 0.5) + 1] / soft; else print " -" }' "$W/tl.csv")
		set -- $stats
		p99=$1 above=$2 held=$3
		if [ $arm = go ]; then base=$W/base-go-$wl.out; else base=$W/base-$wl.out; fi
		wall=$(field wall_ms "$W/out") bwall=$(field wall_ms "$base" 2>/dev/null)
		lat=$(field p99_add_us "$W/out") blat=$(field p99_add_us "$base" 2>/dev/null)
		cb=$(field cb_cpu_ms "$W/out"); [ -n "$cb" ] || cb=$(field gc_cpu_ms "$W/out")
		goodput=0 latx=- cbs=-
		[ $rc = 0 ] && [ -z "$wall" ] && goodput=-   # the program does not time itself (fragment)
		[ $rc = 0 ] && [ -n "$wall" ] && [ -n "$bwall" ] && goodput=$(awk -v b="$bwall" -v w="$wall" 'BEGIN { printf "%.2f", (w > 0 ? b / w : 0) }')
		[ -n "$lat" ] && [ -n "$blat" ] && latx=$(awk -v b="$blat" -v l="$lat" 'BEGIN { printf "%.1f", (b > 0 ? l / b : 0) }')
		[ -n "$cb" ] && [ -n "$wall" ] && cbs=$(awk -v c="$cb" -v w="$wall" 'BEGIN { printf "%.2f%%", (w > 0 ? 100 * c / w : 0) }')
		ratio=-
		[ "$asked" -gt 0 ] 2>/dev/null && ratio=$(awk -v f="$freed" -v a="$asked" 'BEGIN { printf "%.2f", f / a }')
		aps=$(awk -v a="$asks" -v d="$dur" 'BEGIN { printf "%.1f", (d > 0 ? a / d : 0) }')
		pk=$(awk -v p="$peak" -v s=$SOFT 'BEGIN { printf "%.2f", p / s }')
		echo "| $wl | $arm | $rc | $pk | $held | $p99 | $above | $ooms | $aps | $ratio | $goodput | $latx | $cbs |"
	done
done
[ -z "${BENCH_HOLDS_PLOT:-}" ] || [ -z "${BENCH_HOLDS_KEEP:-}" ] ||
	plot "$BENCH_HOLDS_KEEP/governor.csv" "$BENCH_HOLDS_KEEP/high.csv" "$BENCH_HOLDS_PLOT" "$CG"
echo
echo "exit 137: OOM-killed. The leak and the uncooperative client have nothing to give: the point there"
echo "is how soon memory.max acts (the governor gives up at once when nothing is left to ask and usage heads for the soft limit)."
echo "fragment: once malloc_trim has given back its freed heap the program needs less than the soft limit;"
echo "its held median is its own size then, not where the governor holds it."
