#!/bin/sh
# bench/launch.sh BUILD_DIR — what one memrun launch costs, against two baselines measured in the
# same run, interleaved round by round:
#   true          /bin/true, bare
#   memrun        BUILD_DIR/memrun -q --limit 64M -- /bin/true  (create cgroup, limit, run, collect, remove)
#   memrun --sandbox  the same with --sandbox (mount namespace, read-only remounts, seccomp filter):
#                 its cost is reported against plain memrun
#   cgroup-tools  cgcreate && cgset (64M) && cgexec /bin/true && cgdelete: the same job with libcgroup
# Prints a markdown table for the README and a line naming the machine. A report, not a test: no
# thresholds; exit 0 unless a tool is missing or a command fails.
#
# Two passes, both interleaved (every round runs every case, order rotated each round):
#   back to back  launches follow each other immediately (a CI loop, a batch of jobs);
#   cold          every launch is preceded by an idle pause (a lone launch by hand or by a service
#                 manager). On cgroup v1 this differs a lot: moving a task into a cgroup
#                 (cgroup.procs) takes cgroup_threadgroup_rwsem for writing, which waits for an RCU
#                 grace period unless another migration happened within the last grace period or so.
#
# Knobs (environment): BENCH_ROUNDS (max back-to-back rounds, default 2000), BENCH_MIN_ROUNDS
# (default 200), BENCH_SECONDS (time budget once the minimum is reached, default 40), BENCH_WARMUP
# (default 10), BENCH_COLD_ROUNDS (default 40; 0 skips the cold pass), BENCH_COLD_GAP_MS (default 100).
#
# Timing is done by bench/launch.c (built here with cc -O2 into BUILD_DIR/bench/): posix_spawn + waitpid
# per command, CLOCK_MONOTONIC around each launch. Not hyperfine: it runs all iterations of one command
# before the next (no interleaving), and would need a shell for the && chain (a whole extra launch).
#
# Safety: the cgroup-tools baseline creates cgroups only beneath this shell's own v1 memory cgroup
# (or, on cgroup v2, beneath its own cgroup when memory is already delegated there), one fresh name
# per round (bench-PID-N), and removes every one of them on exit, error or signal. It never touches
# any other cgroup, and on hybrid hosts never the unified hierarchy.
set -eu

B=${1:?usage: sh bench/launch.sh BUILD_DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
MEMRUN=$(cd "$B" && pwd)/memrun
ROUNDS=${BENCH_ROUNDS:-2000}
MIN_ROUNDS=${BENCH_MIN_ROUNDS:-200}
SECONDS_BUDGET=${BENCH_SECONDS:-40}
WARMUP=${BENCH_WARMUP:-10}
COLD_ROUNDS=${BENCH_COLD_ROUNDS:-40}
COLD_GAP_MS=${BENCH_COLD_GAP_MS:-100}
CGROOT=/sys/fs/cgroup

die() { echo "bench/launch.sh: error: $*" >&2; exit 1; }

# --- tools --------------------------------------------------------------------------------------
missing=
for t in cgcreate cgset cgexec cgdelete; do
	command -v "$t" >/dev/null 2>&1 || missing="$missing $t"
done
[ -z "$missing" ] || die "missing$missing: install the Debian package cgroup-tools (apt-get install cgroup-tools, or 'make check-deps')"
CC=${CC:-cc}
command -v "$CC" >/dev/null 2>&1 || die "no C compiler '$CC' to build the timing helper (apt-get install gcc)"
[ -x "$MEMRUN" ] || die "$MEMRUN not built: run 'make all' first"
[ -x /bin/true ] || die "/bin/true missing"

# --- where we are -------------------------------------------------------------------------------
if [ -f "$CGROOT/cgroup.controllers" ]; then
	MODE=v2
	MEMDIR=$CGROOT
	OWN=$(sed -n 's/^0::\(.*\)$/\1/p' /proc/self/cgroup)
	LIMITKEY=memory.max
elif [ -f "$CGROOT/memory/memory.limit_in_bytes" ]; then
	[ -f "$CGROOT/unified/cgroup.procs" ] && MODE="hybrid (v1 memory controller + unified v2)" || MODE=v1
	MEMDIR=$CGROOT/memory
	# "N:memory:/path" or "N:cpu,memory:/path"
	OWN=$(sed -n 's/^[0-9]*:\([^:]*,\)\{0,1\}memory\(,[^:]*\)\{0,1\}:\(.*\)$/\3/p' /proc/self/cgroup)
	LIMITKEY=memory.limit_in_bytes
else
	die "no cgroup memory controller under $CGROOT"
fi
[ -n "$OWN" ] || die "cannot find this shell's memory cgroup in /proc/self/cgroup"
case $OWN in /*) ;; *) die "odd memory cgroup path '$OWN' in /proc/self/cgroup" ;; esac
case $OWN in *" (deleted)"*|*/../*|*/..) die "unusable memory cgroup path '$OWN'" ;; esac
OWN=${OWN%/}                    # "/" becomes "", so "$OWN/bench-..." is always well formed
OWNDIR=$MEMDIR$OWN
[ -d "$OWNDIR" ] || die "own memory cgroup $OWNDIR does not exist"

CGTOOLS=1
if [ "$MODE" = v2 ] && ! grep -qw memory "$OWNDIR/cgroup.subtree_control" 2>/dev/null; then
	# Enabling +memory would change our own cgroup (and v2 forbids it while we sit in it): skip.
	CGTOOLS=
	echo "note: cgroup v2 without memory delegated in $OWN: the cgroup-tools baseline is skipped" >&2
fi

PREFIX=bench-$$-                # + w<N> (back-to-back pass) or c<N> (cold pass): unique per launch

# shellcheck disable=SC2317 # called from the EXIT trap
# Remove every cgroup this run created (only ours: beneath our own cgroup, named bench-$$-*).
cleanup() {
	[ -n "$CGTOOLS" ] || return 0
	for d in "$OWNDIR/$PREFIX"*; do
		[ -d "$d" ] || continue
		n=${d##*/}
		case $n in "$PREFIX"[wc][0-9]*) ;; *) continue ;; esac
		if ! cgdelete "memory:$OWN/$n" 2>/dev/null; then
			sleep 0.05
			rmdir "$d" 2>/dev/null || echo "bench/launch.sh: warning: could not remove cgroup $d" >&2
		fi
	done
}
trap 'cleanup' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# --- the timing helper --------------------------------------------------------------------------
mkdir -p "$B/bench"
HELPER=$B/bench/launch
"$CC" -std=gnu11 -O2 -Wall -Wextra -Wconversion -Wformat=2 -o "$HELPER" "$HERE/launch.c" -lm ||
	die "cannot build $HELPER from bench/launch.c"

# --- measure ------------------------------------------------------------------------------------
# Sanity first: memrun once, so a broken build or host fails loudly before the clock runs.
"$MEMRUN" -q --limit 64M -- /bin/true || die "memrun -q --limit 64M -- /bin/true failed (status $?)"

# measure TAG HELPER-OPTION...: run the helper on the three cases (baseline first, memrun second);
# %N is the helper's round number, TAG keeps the two passes' cgroup names apart.
measure() {
	name="$OWN/$PREFIX$1%N"
	shift
	set -- "$@" -c true /bin/true ';' -c memrun "$MEMRUN" -q --limit 64M -- /bin/true ';' \
		-c "memrun --sandbox" "$MEMRUN" -q --limit 64M --sandbox -- /bin/true ';'
	if [ -n "$CGTOOLS" ]; then
		set -- "$@" -c cgroup-tools \
			cgcreate -g "memory:$name" '&&' \
			cgset -r "$LIMITKEY=64M" "$name" '&&' \
			cgexec -g "memory:$name" /bin/true '&&' \
			cgdelete "memory:$name" ';'
	fi
	"$HELPER" "$@"
}

WARM=$(mktemp)
COLD=$(mktemp)
trap 'rm -f "$WARM" "$COLD"; cleanup' EXIT

echo "back to back: up to $ROUNDS interleaved rounds (at least $MIN_ROUNDS, then until ${SECONDS_BUDGET}s) ..." >&2
rc=0
measure w -n "$ROUNDS" -m "$MIN_ROUNDS" -t "$SECONDS_BUDGET" -w "$WARMUP" -o "$B/bench/launch-warm.csv" \
	>"$WARM" || rc=$?
[ "$rc" -eq 0 ] || die "the back-to-back timing run failed (status $rc)"
if [ "$COLD_ROUNDS" -gt 0 ]; then
	echo "cold: $COLD_ROUNDS interleaved rounds, ${COLD_GAP_MS} ms idle before each launch ..." >&2
	measure c -n "$COLD_ROUNDS" -m "$COLD_ROUNDS" -w 2 -g "$COLD_GAP_MS" -o "$B/bench/launch-cold.csv" \
		>"$COLD" || rc=$?
	[ "$rc" -eq 0 ] || die "the cold timing run failed (status $rc)"
fi

CPU=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n 1)
echo
echo "### Launch cost: memrun vs /bin/true vs cgroup-tools"
echo
echo "Machine: $(nproc) CPUs${CPU:+ ($CPU)}, kernel $(uname -r), cgroup $MODE; $(date -u '+%Y-%m-%d %H:%M UTC')."
# shellcheck disable=SC2016 # backquotes are markdown here
printf 'Commands: `/bin/true`; `memrun -q --limit 64M -- /bin/true`; the same with `--sandbox`'
# shellcheck disable=SC2016
[ -z "$CGTOOLS" ] || printf '; `cgcreate -g memory:P && cgset -r %s=64M P && cgexec -g memory:P /bin/true && cgdelete memory:P` (P: a fresh cgroup beneath the benchmark'"'"'s own memory cgroup; the four tools are spawned directly, no shell)' "$LIMITKEY"
printf '. Each launch is timed from spawn to reap by bench/launch.c.\n'
echo
echo "#### Back to back (launches follow each other immediately)"
echo
cat "$WARM"
if [ "$COLD_ROUNDS" -gt 0 ]; then
	echo
	echo "#### Cold (${COLD_GAP_MS} ms idle before each launch, like a lone launch)"
	echo
	cat "$COLD"
fi
exit 0
