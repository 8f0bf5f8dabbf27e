#!/bin/sh
# bench/reaction.sh BUILD_DIR — how long memrun takes from a usage threshold being crossed to its action
# starting, against baselines measured in the same runs. Prints markdown tables for the README and a line
# naming the machine. A report, not a test: no thresholds; exit 0 unless a tool is missing or fails.
#
# Every run is a fresh `memrun -q --policy P --limit 64M -- reaction ...`, P being one level
# (`usage = 50%`, `actions = signal:USR1`). bench/reaction.c, inside the sandbox, grows in 64 KiB steps,
# reads its own sandbox's usage after each step, and times three reactions from the step in which usage
# reached 50% of the limit (see its header):
#   memrun       its SIGUSR1 handler runs;
#   in-process   the program's own SIGUSR2 to itself right after its read shows the crossing (the floor:
#                the detection primitive the program uses plus one signal);
#   kernel       v1/hybrid only: the program's own eventfd threshold on the same cgroup fires (the kernel
#                notification memrun listens to, alone). cgroup v2 has no usage notification: memrun
#                samples memory.current on an adaptive timer there ([monitor] interval_min/interval_max).
# Scenarios, interleaved round by round (order rotated every round):
#   steady       grows at 64 KiB per ms (62.5 MiB/s) from 0.2-0.4 s after start (random, so the crossing
#                falls at a random phase of memrun's sampling timer), built-in [monitor] values;
#   steady-10ms  the same with `[monitor] interval_min = 10ms` in the policy (default: 50ms);
#   burst        idles 5.5-7.5 s (random; the v2 sampling timer has backed off to interval_max = 2s),
#                then grows as fast as it can.
#
# Knobs (environment): BENCH_REACTION_RUNS (runs of each steady scenario, default 100), BENCH_BURST_RUNS
# (default 40), MEMRUN (default BUILD_DIR/memrun), BENCH_REACTION (a prebuilt bench/reaction.c; else it
# is built here with cc into BUILD_DIR/bench/), BENCH_OUT (directory for the raw results, reaction.txt;
# default BUILD_DIR/bench), BENCH_NOTE (appended to the machine line, e.g. "qemu TCG").
#
# Safety: memrun creates each sandbox beneath this shell's own cgroup and removes it; the program arms
# its eventfd threshold on its own sandbox only. Nothing else is touched.
set -eu

B=${1:?usage: sh bench/reaction.sh BUILD_DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
MEMRUN=${MEMRUN:-$(cd "$B" && pwd)/memrun}
RUNS=${BENCH_REACTION_RUNS:-100}
BURST_RUNS=${BENCH_BURST_RUNS:-40}
OUT=${BENCH_OUT:-$B/bench}
LIMIT=64M
USAGE=50%

die() { echo "bench/reaction.sh: error: $*" >&2; exit 1; }

[ -x "$MEMRUN" ] || die "$MEMRUN not built: run 'make all' first"
mkdir -p "$OUT" || die "cannot create $OUT"
if [ -n "${BENCH_REACTION:-}" ]; then
	REACTION=$BENCH_REACTION
	[ -x "$REACTION" ] || die "BENCH_REACTION=$REACTION is not executable"
else
	CC=${CC:-cc}
	command -v "$CC" >/dev/null 2>&1 || die "no C compiler '$CC' to build bench/reaction.c (apt-get install gcc)"
	mkdir -p "$B/bench"
	REACTION=$(cd "$B" && pwd)/bench/reaction
	# Built beside, then renamed: another run may be executing the old one.
	"$CC" -std=gnu11 -O2 -Wall -Wextra -Wconversion -Wformat=2 -pthread -o "$REACTION.$$" "$HERE/reaction.c" -lm ||
		die "cannot build $REACTION from bench/reaction.c"
	mv -f "$REACTION.$$" "$REACTION" || die "cannot rename $REACTION.$$"
fi

if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
	MODE=v2
elif [ -f /sys/fs/cgroup/memory/memory.limit_in_bytes ]; then
	[ -f /sys/fs/cgroup/unified/cgroup.procs ] && MODE="hybrid (v1 memory controller + unified v2)" || MODE=v1
else
	die "no cgroup memory controller under /sys/fs/cgroup"
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/memrun-reaction.XXXXXX") || die "mktemp failed"
trap 'rm -rf "$T"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
printf '[level.high]\nusage = %s\nactions = signal:USR1\n' "$USAGE" >"$T/default.ini"
printf '[level.high]\nusage = %s\nactions = signal:USR1\n\n[monitor]\ninterval_min = 10ms\n' "$USAGE" >"$T/fast.ini"
"$MEMRUN" --check-policy "$T/fast.ini" >/dev/null || die "memrun refuses the benchmark policy $T/fast.ini"
RES=$T/reaction.txt    # private while running (runs may overlap); copied to $OUT/reaction.txt at the end
: >"$RES" || die "cannot write $RES"

# one SCENARIO: a fresh memrun, its child's result line appended to $RES
one() {
	case $1 in
	steady) pol=default.ini; set -- steady --pace 1000 --idle 200 --jitter 200 ;;
	steady-10ms) pol=fast.ini; set -- steady-10ms --pace 1000 --idle 200 --jitter 200 ;;
	burst) pol=default.ini; set -- burst --pace 0 --idle 5500 --jitter 2000 ;;
	esac
	name=$1
	shift
	rc=0
	line=$("$MEMRUN" -q --policy "$T/$pol" --limit "$LIMIT" -- "$REACTION" --usage "$USAGE" "$@") || rc=$?
	case $rc in
	0 | 3) echo "$name $line" >>"$RES" ;;
	*) die "memrun -q --policy $pol --limit $LIMIT -- reaction --usage $USAGE $* failed (status $rc)${line:+: $line}" ;;
	esac
}

# Sanity first, so a broken build or host fails before the long part.
one steady
: >"$RES"

rounds=$RUNS
[ "$BURST_RUNS" -le "$rounds" ] || rounds=$BURST_RUNS
echo "reaction: $rounds interleaved rounds ($RUNS steady, $RUNS steady-10ms, $BURST_RUNS burst runs; about $((BURST_RUNS * 7 + RUNS * 2 * 17 / 20)) s) ..." >&2
start=$(date +%s)
r=0
while [ "$r" -lt "$rounds" ]; do
	set --
	[ "$r" -ge "$RUNS" ] || set -- steady steady-10ms
	[ "$r" -ge "$BURST_RUNS" ] || set -- "$@" burst
	i=0
	n=$#
	while [ "$i" -lt "$n" ]; do   # rotate: round r starts with its (r mod n)-th scenario
		k=$(((r + i) % n + 1))
		eval "s=\${$k}"
		# shellcheck disable=SC2154 # s is set by the eval above
		one "$s"
		i=$((i + 1))
	done
	r=$((r + 1))
	[ $((r % 10)) -ne 0 ] || echo "reaction: $r/$rounds rounds, $(($(date +%s) - start)) s" >&2
done

CPU=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n 1)
echo
echo "### Reaction latency: usage threshold crossed → memrun's action starts"
echo
echo "Machine: $(nproc) CPUs${CPU:+ ($CPU)}, kernel $(uname -r), cgroup $MODE; $(date -u '+%Y-%m-%d %H:%M UTC')${BENCH_NOTE:+. $BENCH_NOTE}."
# shellcheck disable=SC2016 # backquotes are markdown here
echo 'Each run: `memrun -q --policy P --limit 64M -- reaction` with P = `[level.high] usage = 50%, actions = signal:USR1`'
echo "(steady-10ms adds \`[monitor] interval_min = 10ms\`; the default is 50ms). Times are from the start of the"
echo "64 KiB step in which the sandbox's usage reached 32 MiB to: memrun's SIGUSR1 handler running (memrun);"
echo "the program's own SIGUSR2 to itself right after its usage read showed the crossing (in-process);"
if [ "$MODE" = v2 ]; then
	echo "cgroup v2 has no usage notification, so there is no kernel-eventfd baseline: memrun samples memory.current."
else
	echo "its own eventfd threshold on the same cgroup waking a blocked thread (kernel eventfd: the notification memrun uses, alone)."
fi
echo "steady: 64 KiB per ms after 0.2-0.4 s idle; burst: 5.5-7.5 s idle, then as fast as it can (idle times random);"
echo "step = median time of one 64 KiB step"
echo "(touch 16 pages + read usage), the resolution of the crossing time. p99 is by nearest rank (the maximum below 100 runs)."
echo
"$REACTION" --summarize "$RES" || die "reaction --summarize failed"
cp "$RES" "$OUT/reaction.txt.$$" || die "cannot write $OUT/reaction.txt.$$"
mv -f "$OUT/reaction.txt.$$" "$OUT/reaction.txt" || die "cannot rename $OUT/reaction.txt.$$"
echo
echo "Raw results: $OUT/reaction.txt (one line per run)."
exit 0
