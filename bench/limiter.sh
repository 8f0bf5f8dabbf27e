#!/bin/sh
# bench/limiter.sh BUILD_DIR — what libmemlimit costs a program, against baselines measured in the same
# run, interleaved round by round (details in bench/limiter.c's header):
#   hot path   memlimit_level() and memlimit_shedding(), called through libmemlimit.so (PLT, as a program
#              linked with -lmemlimit calls them) and through libmemlimit.a (a direct call), against a
#              relaxed atomic load of an int in the benchmark itself: ns/call over interleaved rounds, and
#              instructions/call counted by valgrind --tool=callgrind (repeatable on a noisy machine).
#   latency    from a fake memrun in the benchmark sending a LEVEL (actions = trim, laid out as
#              runner/control/lsrv.c sends it) to the registered cache callback starting, with the library's
#              dispatcher thread (memlimit_start_thread) and in event-loop mode (poll memlimit_fd(),
#              memlimit_dispatch()), against the raw wake-up of a thread blocked in recv() on a
#              SOCK_SEQPACKET socketpair by a 64-byte message (and, for reference, blocked in poll() on
#              an epoll fd holding that socket, the wake-up chain the library uses): p50/p90/p99.
# Prints markdown tables for the README and a line naming the machine. A report, not a test: no
# thresholds; exit 0 unless a tool is missing or fails.
#
# Knobs (environment): BENCH_LIMITER_CALLS (calls of each hot-path case, default 100000000),
# BENCH_LIMITER_ROUNDS (hot-path rounds, default 20), BENCH_LIMITER_IR_CALLS (calls counted under
# callgrind, default 1000000), BENCH_LIMITER_LEVELS (levels per latency path, default 2000),
# BENCH_LIMITER_LEVEL_ROUNDS (default 20), BENCH_LIMITER_GAP_US (idle gap before each level, MIN:MAX
# microseconds, default 200:700), BENCH_OUT (directory for raw results, default BUILD_DIR/bench),
# BENCH_NOTE (appended to the machine line).
#
# Build: bench/limiter.c with cc -O2, linked against BUILD_DIR/libmemlimit.so (found at run time through
# an rpath to BUILD_DIR/bench/limiter-lib/libmemlimit.so.0, a symlink to it) and against a copy of
# BUILD_DIR/libmemlimit.a whose public symbols are renamed memlimit_* -> bench_static_memlimit_*
# (objcopy --redefine-syms), so both libraries live in one process and are measured in the same rounds.
#
# Safety: everything happens inside the benchmark process: its fake memrun listens on a fresh abstract
# socket (@memlimit-bench-PID-...), nothing else is touched; no cgroup, no other process.
set -eu

B=${1:?usage: sh bench/limiter.sh BUILD_DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
CALLS=${BENCH_LIMITER_CALLS:-100000000}
ROUNDS=${BENCH_LIMITER_ROUNDS:-20}
IR_CALLS=${BENCH_LIMITER_IR_CALLS:-1000000}
LEVELS=${BENCH_LIMITER_LEVELS:-2000}
LEVEL_ROUNDS=${BENCH_LIMITER_LEVEL_ROUNDS:-20}
GAP=${BENCH_LIMITER_GAP_US:-200:700}
OUT=${BENCH_OUT:-$B/bench}

die() { echo "bench/limiter.sh: error: $*" >&2; exit 1; }

# --- tools --------------------------------------------------------------------------------------
CC=${CC:-cc}
command -v "$CC" >/dev/null 2>&1 || die "no C compiler '$CC' to build bench/limiter.c (apt-get install gcc)"
for t in objcopy nm; do
	command -v "$t" >/dev/null 2>&1 || die "missing $t (apt-get install binutils)"
done
command -v valgrind >/dev/null 2>&1 || die "missing valgrind for the instruction counts (apt-get install valgrind)"
if [ ! -f "$B/libmemlimit.so" ] || [ ! -f "$B/libmemlimit.a" ]; then
	die "$B/libmemlimit.so or .a not built: run 'make all' first"
fi
case $IR_CALLS in '' | *[!0-9]*) die "BENCH_LIMITER_IR_CALLS must be a number" ;; esac
[ "$IR_CALLS" -ge 1000 ] || die "BENCH_LIMITER_IR_CALLS too small (at least 1000)"

ABS=$(cd "$B" && pwd)
mkdir -p "$B/bench/limiter-lib" "$OUT" || die "cannot create $B/bench or $OUT"
OUTABS=$(cd "$OUT" && pwd)

# --- build --------------------------------------------------------------------------------------
ln -sf "$ABS/libmemlimit.so" "$B/bench/limiter-lib/libmemlimit.so.0"
SYMS=$B/bench/limiter-static.syms
nm -g --defined-only "$B/libmemlimit.a" |
	awk '$2 == "T" && $3 ~ /^memlimit_[a-z]/ { print $3, "bench_static_" $3 }' >"$SYMS" ||
	die "nm $B/libmemlimit.a failed"
grep -q '^memlimit_level ' "$SYMS" || die "$B/libmemlimit.a does not define memlimit_level"
objcopy --redefine-syms="$SYMS" "$B/libmemlimit.a" "$B/bench/libmemlimit-static.a" ||
	die "objcopy could not make the renamed copy of $B/libmemlimit.a"
BIN=$ABS/bench/limiter
"$CC" -std=gnu11 -O2 -Wall -Wextra -Wconversion -Wformat=2 -pthread -I"$HERE/../limiter" -o "$BIN" \
	"$HERE/limiter.c" "$B/bench/libmemlimit-static.a" "$ABS/libmemlimit.so" \
	-Wl,-rpath,"$ABS/bench/limiter-lib" -lm ||
	die "cannot build $BIN from bench/limiter.c"

# --- instruction counts -------------------------------------------------------------------------
# Ir(2N) - Ir(N) over N: the cost of one loop iteration exactly, without the fixed entry/exit cost.
count() { # CASE N -> instructions collected inside bench_loop_* (the loop and everything it calls)
	f=$OUTABS/callgrind.limiter.$(echo "$1" | tr ':' '-').$2.out
	valgrind --tool=callgrind --callgrind-out-file="$f" --toggle-collect='bench_loop_*' \
		"$BIN" count "$1" "$2" >/dev/null 2>"$f.log" || die "valgrind $BIN count $1 $2 failed (see $f.log)"
	n=$(sed -n 's/^summary: *//p' "$f")
	[ -n "$n" ] || die "no summary in $f"
	echo "$n"
}
echo "instruction counts: valgrind --tool=callgrind, $IR_CALLS and $((IR_CALLS * 2)) calls of each case ..." >&2
IRARGS=
for c in $("$BIN" cases); do
	a=$(count "$c" "$IR_CALLS")
	b=$(count "$c" $((IR_CALLS * 2)))
	IRARGS="$IRARGS -I $c=$(awk -v a="$a" -v b="$b" -v n="$IR_CALLS" 'BEGIN { printf "%.4f", (b - a) / n }')"
done

# --- time ---------------------------------------------------------------------------------------
HOT=$(mktemp)
LAT=$(mktemp)
trap 'rm -f "$HOT" "$LAT"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
echo "hot path: $CALLS calls of each case in $ROUNDS interleaved rounds ..." >&2
# shellcheck disable=SC2086 # IRARGS is a list of words
"$BIN" hot -n "$CALLS" -r "$ROUNDS" $IRARGS >"$HOT" || die "the hot-path run failed"
echo "latency: $LEVELS levels per path in $LEVEL_ROUNDS interleaved rounds ..." >&2
"$BIN" latency -n "$LEVELS" -r "$LEVEL_ROUNDS" -g "$GAP" >"$LAT" || die "the latency run failed"
cp "$HOT" "$OUTABS/limiter-hot.md"
cp "$LAT" "$OUTABS/limiter-latency.md"

CPU=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n 1)
echo
echo "### libmemlimit: hot-path cost and level-to-callback latency"
echo
echo "Machine: $(nproc) CPUs${CPU:+ ($CPU)}, kernel $(uname -r); $("$CC" --version | head -n 1); $(valgrind --version); $(date -u '+%Y-%m-%d %H:%M UTC')${BENCH_NOTE:+; $BENCH_NOTE}."
echo
# shellcheck disable=SC2016 # backquotes are markdown here
echo '#### `memlimit_level()` / `memlimit_shedding()` against a plain atomic load'
echo
cat "$HOT"
echo
echo "Instructions/call: valgrind --tool=callgrind, collection on inside each benchmark loop only; (Ir for $((IR_CALLS * 2)) calls − Ir for $IR_CALLS calls) / $IR_CALLS, so the figure is one loop iteration exactly, the loop's own add/increment/compare/branch included."
echo
echo '#### Level to first callback: memrun sends LEVEL (trim) → the cache callback starts'
echo
cat "$LAT"
exit 0
