#!/bin/sh
# bench/idle.sh BUILD_DIR — what memrun itself costs while its sandbox idles: its own CPU time (per minute,
# as a share of one core, with its wake-ups) and its memory (VmRSS, VmHWM), against a plain wrapper
# measured in the same run. Prints markdown tables for the README and a line naming the machine. A
# report, not a test: no thresholds; exit 0 unless a tool is missing or fails.
#
# Started together, measured over the same window (SETTLE s after start, for N s; the children live
# N + SETTLE + 2 s, so the second reading is taken 2 s before they exit):
#   memrun           memrun -q --limit 256M -- sleep T                 (built-in policy)
#   memrun-50ms      the same with the built-in levels and [monitor] interval_min = interval_max = 50ms:
#                    a sandbox that sits near a threshold, sampled at the default interval_min all the time
#   memrun-10ms      the same at 10ms
#   memrun-100ms     the same at 100ms: what an idle sandbox costs on cgroup v2, where the sampler never
#                    backs off past 100 ms (no usage notification there; one pread of the usage file)
#   memrun-parked    memrun -q --limit 256M -- leak --max 166M --hold T: built-in policy, the sandbox parked
#                    at 65% of its limit, 5% below the moderate threshold (the timer samples faster there)
#   memrun+1client   memrun -q --limit 256M -- mlclient --exit-after T (one limiter client attached)
#   memrun+16clients memrun -q --limit 256M -- sh -c '16 x mlclient &; wait'
#   timeout          timeout 1000 sleep T: a wrapper that only forks, waits and forwards signals (baseline)
#   wake             bench/wake.c: a periodic 100 ms timerfd and one pread of a usage file, nothing else --
#                    the floor of any 100 ms sampler on this machine (the baseline of memrun-100ms); built
#                    with cc here, or taken from WAKE (bench/vm.sh builds it on the host)
# Only the supervising process is measured (memrun, timeout), never its children. CPU comes from
# /proc/PID/schedstat (nanoseconds on CPU; utime+stime ticks from /proc/PID/stat where it is missing),
# wake-ups from voluntary_ctxt_switches, memory from /proc/PID/status.
#
# Knobs (environment): BENCH_IDLE_SECONDS (N, default 60), MEMRUN (default BUILD_DIR/memrun), MLCLIENT
# (default BUILD_DIR/tests/helpers/mlclient), LEAK (default BUILD_DIR/examples/leak), TIMEOUT (the timeout
# program, default timeout from PATH; busybox's applet would not do: it execs the command in its own pid),
# BENCH_NOTE (appended to the machine line).
#
# Safety: memrun creates its sandboxes beneath this shell's own cgroup; on exit, error or signal this
# script ends only the processes it started, by pid.
# shellcheck disable=SC2016,SC2154 # backquotes are markdown in labels; pid_NAME variables are set by eval
set -eu

B=${1:?usage: sh bench/idle.sh BUILD_DIR}
MEMRUN=${MEMRUN:-$(cd "$B" && pwd)/memrun}
MLCLIENT=${MLCLIENT:-$(cd "$B" && pwd)/tests/helpers/mlclient}
LEAK=${LEAK:-$(cd "$B" && pwd)/examples/leak}
TIMEOUT=${TIMEOUT:-timeout}
N=${BENCH_IDLE_SECONDS:-60}
SETTLE=5
LIFE=$((N + SETTLE + 2))

die() { echo "bench/idle.sh: error: $*" >&2; exit 1; }

[ -x "$MEMRUN" ] || die "$MEMRUN not built: run 'make all' first"
[ -x "$MLCLIENT" ] || die "$MLCLIENT not built: run 'make all' first"
[ -x "$LEAK" ] || die "$LEAK not built: run 'make all' first"
for t in "$TIMEOUT" sleep awk; do
	command -v "$t" >/dev/null 2>&1 || die "$t not found"
done
[ -r /proc/self/status ] || die "/proc is not mounted"
HZ=$(getconf CLK_TCK 2>/dev/null) || HZ=100

if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
	MODE=v2
elif [ -f /sys/fs/cgroup/memory/memory.limit_in_bytes ]; then
	[ -f /sys/fs/cgroup/unified/cgroup.procs ] && MODE="hybrid (v1 memory controller + unified v2)" || MODE=v1
else
	die "no cgroup memory controller under /sys/fs/cgroup"
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/memrun-idle.XXXXXX") || die "mktemp failed"
PIDS=
# shellcheck disable=SC2317 # called from the EXIT trap
cleanup() {
	for p in $PIDS; do
		kill "$p" 2>/dev/null || true
	done
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

BUILTIN_LEVELS='[level.moderate]
usage    = 70%
psi_some = 10%
actions  = trim

[level.high]
usage   = 85%
actions = trim, collect, reclaim

[level.critical]
usage    = 95%
psi_full = 5%
actions  = trim, collect, reclaim, shed
'
WAKE=${WAKE:-}
if [ -z "$WAKE" ] && command -v "${CC:-cc}" >/dev/null 2>&1; then
	"${CC:-cc}" -O2 -o "$T/wake" "$(dirname "$0")/wake.c" && WAKE=$T/wake
fi
USAGE_FILE=/proc/self/statm
for f in /sys/fs/cgroup/memory.current /sys/fs/cgroup/memory/memory.usage_in_bytes; do
	[ -r "$f" ] && { USAGE_FILE=$f; break; }
done
for iv in 100ms 50ms 10ms; do
	printf '%s\n[monitor]\ninterval_min = %s\ninterval_max = %s\n' "$BUILTIN_LEVELS" "$iv" "$iv" >"$T/pin-$iv.ini"
	"$MEMRUN" --check-policy "$T/pin-$iv.ini" >/dev/null || die "memrun refuses $T/pin-$iv.ini"
done

# Sanity first: a broken build fails before the long wait.
"$MEMRUN" -q --limit 256M -- true || die "memrun -q --limit 256M -- true failed (status $?)"

# start NAME CMD...: run in the background, remember the pid as pid_NAME
start() {
	name=$1
	shift
	"$@" &
	eval "pid_$name=$!"
	PIDS="$PIDS $!"
}
echo "idle: $N s window after ${SETTLE} s of settling; all cases run at the same time ..." >&2
start memrun "$MEMRUN" -q --limit 256M -- sleep "$LIFE"
start memrun50 "$MEMRUN" -q --limit 256M --policy "$T/pin-50ms.ini" -- sleep "$LIFE"
start memrun10 "$MEMRUN" -q --limit 256M --policy "$T/pin-10ms.ini" -- sleep "$LIFE"
start memrun100 "$MEMRUN" -q --limit 256M --policy "$T/pin-100ms.ini" -- sleep "$LIFE"
start parked "$MEMRUN" -q --limit 256M -- "$LEAK" --step 16M --interval 0 --max 166M --hold "$LIFE" >/dev/null
start client1 "$MEMRUN" -q --limit 256M -- "$MLCLIENT" --exit-after "$LIFE" >"$T/client1.out"
start client16 "$MEMRUN" -q --limit 256M -- sh -c \
	'i=0; while [ $i -lt 16 ]; do "$0" --exit-after "$1" & i=$((i + 1)); done; wait' "$MLCLIENT" "$LIFE" >"$T/client16.out"
start timeout "$TIMEOUT" 1000 sleep "$LIFE"
CASES="memrun memrun100 memrun50 memrun10 parked client1 client16 timeout"
if [ -n "$WAKE" ]; then
	start wake "$WAKE" "$USAGE_FILE" "$LIFE"
	CASES="$CASES wake"
else
	echo "idle: no C compiler and no WAKE: the bare 100 ms loop baseline is not measured" >&2
fi

# snap PID: "ns vcs rss hwm anon file shmem" of one process (CPU in ns; RSS figures in KiB)
snap() {
	[ -r "/proc/$1/stat" ] || die "process $1 is gone before its reading"
	if [ -r "/proc/$1/schedstat" ]; then
		read -r ns _ <"/proc/$1/schedstat"
	else
		# shellcheck disable=SC2046 # fields after the command name
		set -- "$1" $(sed 's/^.*) //' "/proc/$1/stat")
		ns=$(((${13} + ${14}) * (1000000000 / HZ)))
	fi
	awk -v ns="$ns" '
		/^voluntary_ctxt_switches:/ { v = $2 } /^VmRSS:/ { r = $2 } /^VmHWM:/ { h = $2 }
		/^RssAnon:/ { a = $2 } /^RssFile:/ { f = $2 } /^RssShmem:/ { m = $2 }
		END { printf "%s %s %s %s %s %s %s\n", ns, v, r, h, a, f, m }' "/proc/$1/status"
}
uptime_cs() { awk '{ printf "%d\n", $1 * 100 }' /proc/uptime; }
# child_of PID: the first process whose parent is PID
child_of() {
	for s in /proc/[0-9]*/stat; do
		# shellcheck disable=SC2046
		set -- $(sed 's/^\([0-9]*\) .*) [A-Za-z] \([0-9]*\) .*/\1 \2/' "$s" 2>/dev/null) || continue
		[ "${2:-}" != "$want" ] || { echo "$1"; return 0; }
	done
	return 1
}

sleep "$SETTLE"
u1=$(uptime_cs)
for c in $CASES; do
	eval "p=\$pid_$c"
	snap "$p" >"$T/$c.1"
done
sleep "$N"
u2=$(uptime_cs)
for c in $CASES; do
	eval "p=\$pid_$c"
	snap "$p" >"$T/$c.2"
done
want=$pid_timeout
sleep_pid=$(child_of) && snap "$sleep_pid" >"$T/sleep.2" || sleep_pid=
want=$pid_client1
ml_pid=$(child_of) && snap "$ml_pid" >"$T/mlclient.2" || ml_pid=

for c in $CASES; do
	eval "p=\$pid_$c"
	rc=0
	wait "$p" || rc=$?
	[ "$rc" -eq 0 ] || die "case $c (pid $p) exited with status $rc"
done
PIDS=
n1=$(grep -c '^welcome' "$T/client1.out" || true)
n16=$(grep -c '^welcome' "$T/client16.out" || true)
[ "$n1" -eq 1 ] || die "the limiter client did not attach (mlclient said: $(head -c 300 "$T/client1.out"))"
[ "$n16" -eq 16 ] || die "only $n16 of 16 limiter clients attached"

label() {
	case $1 in
	memrun) echo '`memrun --limit 256M -- sleep` (built-in policy)' ;;
	memrun50) echo 'the same, sampling pinned at 50 ms (`interval_min = interval_max = 50ms`)' ;;
	memrun10) echo 'the same, sampling pinned at 10 ms' ;;
	memrun100) echo 'the same, sampling pinned at 100 ms (what an idle sandbox does on cgroup v2)' ;;
	parked) echo 'memrun, sandbox parked at 65% of its limit (`leak --max 166M`; built-in moderate: 70%)' ;;
	client1) echo '`memrun --limit 256M -- mlclient` (1 limiter client attached)' ;;
	client16) echo 'memrun, 16 limiter clients attached' ;;
	timeout) echo '`timeout 1000 sleep` (wrapper baseline)' ;;
	wake) echo 'bare 100 ms loop: timerfd + one `pread` of the usage file (`bench/wake.c`; baseline of the 100 ms row)' ;;
	sleep) echo '`sleep` (the child of `timeout`)' ;;
	mlclient) echo '`mlclient` (the limiter client)' ;;
	esac
}

CPU=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n 1)
echo
echo "### Idle cost: memrun's own CPU time and memory while the sandbox idles"
echo
echo "Machine: $(nproc) CPUs${CPU:+ ($CPU)}, kernel $(uname -r), cgroup $MODE; $(date -u '+%Y-%m-%d %H:%M UTC')${BENCH_NOTE:+. $BENCH_NOTE}."
echo "All cases run at the same time; CPU is the supervising process's own (not its children's), from"
echo "/proc/PID/schedstat over the same $(awk -v c=$((u2 - u1)) 'BEGIN { printf "%.1f", c / 100 }') s window"
echo "(${SETTLE} s after start, ending 2 s before the children exit); wake-ups are voluntary context switches."
echo
echo "| process | CPU in window (ms) | CPU per minute (ms) | % of one core | wake-ups per minute | CPU since start (ms) |"
echo "|---|---:|---:|---:|---:|---:|"
for c in $CASES; do
	# shellcheck disable=SC2046
	set -- $(cat "$T/$c.1") $(cat "$T/$c.2")
	awk -v l="$(label "$c")" -v ns1="$1" -v v1="$2" -v ns2="$8" -v v2="$9" -v cs=$((u2 - u1)) 'BEGIN {
		w = cs / 100; d = (ns2 - ns1) / 1e6
		printf "| %s | %.3f | %.3f | %.4f%% | %.0f | %.2f |\n", l, d, d * 60 / w, d / (w * 1000) * 100, (v2 - v1) * 60 / w, ns2 / 1e6 }'
done
# shellcheck disable=SC2046
set -- $(cat "$T/memrun.1") $(cat "$T/memrun.2") $(cat "$T/timeout.1") $(cat "$T/timeout.2")
echo
awk -v m1="$1" -v m2="$8" -v t1="${15}" -v t2="${22}" -v cs=$((u2 - u1)) 'BEGIN {
	w = cs / 100; m = (m2 - m1) / 1e6 * 60 / w; t = (t2 - t1) / 1e6 * 60 / w
	printf "| ratio | CPU per minute |\n|---|---:|\n"
	printf "| memrun − timeout | %+.3f ms (%+.4f%% of one core) |\n", m - t, (m - t) / 600
	if (t > 0) printf "| memrun / timeout | %.1fx |\n", m / t
	else printf "| memrun / timeout | – (timeout used no measurable CPU) |\n" }'

echo
echo "Memory, read at the end of the window, 2 s before the children exit (VmHWM: the peak since start):"
echo
echo "| process | VmRSS (KiB) | VmHWM (KiB) | RssAnon (KiB) | RssFile (KiB) | RssShmem (KiB) |"
echo "|---|---:|---:|---:|---:|---:|"
rows="memrun parked client1 client16 timeout"
[ -z "$sleep_pid" ] || rows="$rows sleep"
[ -z "$ml_pid" ] || rows="$rows mlclient"
for c in $rows; do
	# shellcheck disable=SC2046
	set -- $(cat "$T/$c.2")
	echo "| $(label "$c") | $3 | $4 | $5 | $6 | $7 |"
done
exit 0
