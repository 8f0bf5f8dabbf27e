#!/bin/sh
# scenario.sh: runs one OOM scenario under one configuration and prints one result line. POSIX sh
# (busybox runs it in the VM). The one interface the scenario suite (run.sh) and the benchmarks call.
#
# usage: scenario.sh NAME CONFIG OUTDIR
#   NAME   leak | cache | burst | fragment | forkheavy | stall
#   CONFIG plain-max      memory.max only: --soft = the limit, a policy with no levels, [stall] off
#          plain-high     memory.max + memory.high at 90%: no levels, [stall] off
#          memrun         the full product: the scenario's policy (written to OUTDIR), --preload where
#                         the program does not link libmemlimit itself
#          unconstrained  --limit max, no levels: the baseline for "work completed"
# environment: MEMRUN (memrun binary; default: memrun in PATH), EXAMPLES (directory with leak,
#   cachesrv, loadgen, burst, fragment, forkgrow; default /usr/libexec/memrun), MEMRUN_PRELOAD_LIB
#   (passed through to memrun --preload), SCENARIO_TIMEOUT (seconds, overrides each scenario's own).
# writes OUTDIR/NAME-CONFIG.{report.json,timeline.csv,out,err,ini} and prints exactly one line:
#   scenario NAME CONFIG outcome=killed|stalled|survived exit=N work=N p99_ms=X peak=BYTES throttled_s=S oom_kill=N
# (outcome=error when the run fits none of the three, e.g. the workload itself failed; exit 2 on bad usage).
#
# Definitions:
#   exit        memrun's exit status (137 = OOM-killed, 124 = the scenario's timeout fired, also
#               under busybox's timeout, which lets the command die of SIGTERM instead).
#   outcome     killed: the report says oom_kill >= 1 or the run exited 137. stalled: the timeout fired
#               (124), or the workload did not complete its work while it was throttled (throttled_s > 0).
#               survived: no OOM kill and the workload completed (exit 0; cache: loadgen lost nothing).
#   work        what the workload completed, per scenario: leak, stall: MiB allocated (what leak says
#               it holds, else the report's peak in MiB when it was stopped before); cache: requests
#               loadgen got a 200/201 for; burst: requests done (not the rejected ones); fragment: MiB
#               of large blocks held at the end (0 when it never got there); forkheavy: growth steps
#               (ops) done, summed over all processes (0 when killed: the processes never report).
#   p99_ms      loadgen's p99 latency (cache); "-" for the others.
#   peak        the report's memory.peak in bytes.
#   throttled_s time spent throttled at memory.high: the sum of the timeline's sample intervals that
#               end in a row with usage >= soft, soft < hard and psi_full > 0 (a task stalled on memory
#               while the sandbox was above its soft limit). Only memory.high throttles, so it is 0 in
#               plain-max, unconstrained and on cgroup v1. Resolution: the monitor's sampling interval.
#   oom_kill    the report's events.oom_kill.
#
# Each scenario's expected outcome, per configuration (run.sh asserts them; unconstrained always
# survives and gives the work baseline):
#   leak      leak grows 1M every 20 ms to 96M under a 64M limit; nothing can free it.
#             plain-max, plain-high, memrun: killed (exit 137, peak ~ limit); under memrun the report's
#             levels climb moderate -> high -> critical before the kill, and --expect-oom passes.
#   cache     cachesrv (links libmemlimit; an LRU with no bound) under loadgen: 3000 PUTs of 64K
#             (~190M) under a 64M limit. plain-max: killed. plain-high: killed or stalled.
#             memrun (built-in policy): survives through trims, oom_kill 0, loadgen loses nothing.
#   burst     burst: 80 requests, each an 8M buffer held 16 ticks (128M wanted at once) under 96M.
#             plain-max, plain-high: killed. memrun ([governor] target 50%, shed): survives, rejected > 0, lost = 0.
#   fragment  fragment: 48M of small blocks freed but retained by glibc, then 96M of large blocks under
#             128M. plain-max, plain-high: killed. memrun (--preload, collect at 50%): survives, the
#             preload shim's malloc_trim(0) gave the retained heap back.
#   forkheavy forkgrow: 4 processes each growing a droppable cache by 1M/20ms to 32M (128M) under 64M.
#             plain-max, plain-high: killed. memrun (trim, repeated): survives, every process trimmed.
#   stall     leak grows to 316M (above memory.high = 288M, below memory.max = 320M) and holds it 3 s,
#             no swap. plain-max: survives (no memory.high). plain-high: stalled (throttled while it
#             allocates past memory.high, it hits the 25 s timeout). memrun: nothing can be given back,
#             so the governor gives up after [governor] giveup (1 s) and lifts memory.high (the [stall]
#             raise after 2 s would come next); it completes (survived).
set -u

if [ $# -ne 3 ]; then
    echo "usage: scenario.sh NAME CONFIG OUTDIR" >&2
    exit 2
fi
NAME=$1 CONFIG=$2 OUTDIR=$3
MEMRUN=${MEMRUN:-memrun}
EXAMPLES=${EXAMPLES:-/usr/libexec/memrun}
case $NAME in leak|cache|burst|fragment|forkheavy|stall) ;; *) echo "scenario.sh: unknown scenario '$NAME'" >&2; exit 2 ;; esac
case $CONFIG in plain-max|plain-high|memrun|unconstrained) ;; *) echo "scenario.sh: unknown config '$CONFIG'" >&2; exit 2 ;; esac
mkdir -p "$OUTDIR" || exit 2

P=$OUTDIR/$NAME-$CONFIG
REPORT=$P.report.json TIMELINE=$P.timeline.csv OUT=$P.out ERR=$P.err INI=$P.ini
rm -f "$REPORT" "$TIMELINE" "$OUT" "$ERR" "$INI" "$P.lg"

# ---------------------------------------------------------------- per-scenario parameters
TIMEOUT=60 LIMIT=64M PRELOAD=""
POLICY_MEMRUN=""   # the memrun config's policy, on top of the plain ones; "" = built-in
case $NAME in
leak)
    CMD="$EXAMPLES/leak --max 96M --interval 20"
    # The built-in levels; the stall check shortened so the throttling above memory.high (no swap:
    # nothing to reclaim) is escalated quickly and the leak goes on to its OOM kill.
    POLICY_MEMRUN='[level.moderate]
usage = 70%
psi_some = 10%
actions = trim
[level.high]
usage = 85%
actions = trim, collect, reclaim
[level.critical]
usage = 95%
psi_full = 5%
actions = shed
[stall]
psi_full = 5%
duration = 2s'
    ;;
cache)
    CMD="$EXAMPLES/cachesrv 0"
    ;;
burst)
    LIMIT=96M
    CMD="$EXAMPLES/burst --requests 80 --size 8M --hold 16 --tick 25"
    POLICY_MEMRUN='[level.moderate]
usage = 50%
actions = trim, shed
[level.high]
usage = 70%
actions = trim, collect, shed
[governor]
target = 50%            ; a burst of 8M requests at 320M/s: hold at half the budget, on purpose
[recovery]
hysteresis = 5%
dwell = 100ms
[monitor]
interval_min = 10ms
interval_max = 100ms
[stall]
duration = 2s'
    ;;
fragment)
    LIMIT=128M
    CMD="$EXAMPLES/fragment"
    PRELOAD=--preload
    POLICY_MEMRUN='[level.moderate]
usage = 50%
actions = collect
[level.high]
usage = 70%
actions = trim, collect
[stall]
duration = 2s'
    ;;
forkheavy)
    CMD="$EXAMPLES/forkgrow --workers 3 --step 1M --interval 20 --max 32M --seconds 3"
    POLICY_MEMRUN='[level.moderate]
usage = 50%
repeat = 10%
actions = trim
[level.high]
usage = 75%
repeat = 5%
actions = trim, collect
[recovery]
dwell = 200ms
[monitor]
interval_min = 10ms
interval_max = 100ms
[stall]
duration = 2s'
    ;;
stall)
    # memory.high throttling grows with the square of the overage ratio and with the pages charged
    # past it: a big enough sandbox parked ~10% above high crawls for longer than the timeout.
    TIMEOUT=25 LIMIT=320M
    CMD="$EXAMPLES/leak --max 316M --interval 2 --hold 3"
    POLICY_MEMRUN='[level.moderate]
usage = 70%
actions = trim
[level.high]
usage = 85%
actions = trim, collect
[stall]
enabled = yes
psi_full = 5%
duration = 2s
action = raise
step = 50%'
    ;;
esac
TIMEOUT=${SCENARIO_TIMEOUT:-$TIMEOUT}

# ---------------------------------------------------------------- per-config memrun arguments
NOLEVELS='[stall]
enabled = no'
case $CONFIG in
plain-max)     printf '%s\n' "$NOLEVELS" > "$INI"; set -- --limit $LIMIT --soft 100% --policy "$INI" ;;
plain-high)    printf '%s\n' "$NOLEVELS" > "$INI"; set -- --limit $LIMIT --policy "$INI" ;;
unconstrained) printf '%s\n' "$NOLEVELS" > "$INI"; set -- --limit max --policy "$INI" ;;
memrun)
    if [ -n "$POLICY_MEMRUN" ]; then
        printf '%s\n' "$POLICY_MEMRUN" > "$INI"; set -- --limit $LIMIT --policy "$INI"
    else
        set -- --limit $LIMIT
    fi
    [ -n "$PRELOAD" ] && set -- "$@" $PRELOAD
    ;;
esac
set -- "$@" --report "$REPORT" --timeline "$TIMELINE" --name "sc-$NAME-$CONFIG-$$"

# ---------------------------------------------------------------- run
P99=-
START=$(date +%s)
if [ "$NAME" = cache ]; then
    # cachesrv in the background, loadgen against it, then SIGTERM (memrun forwards it; cachesrv exits 0)
    # shellcheck disable=SC2086
    timeout "$TIMEOUT" "$MEMRUN" "$@" -- $CMD >"$OUT" 2>"$ERR" &
    pid=$!
    port="" i=0
    while [ $i -lt 400 ]; do
        port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$OUT" 2>/dev/null)
        [ -n "$port" ] && break
        kill -0 $pid 2>/dev/null || break
        sleep 0.05; i=$((i + 1))
    done
    if [ -n "$port" ]; then
        timeout "$TIMEOUT" "$EXAMPLES/loadgen" --port "$port" --count 3000 --conns 4 --size 64K --rate 2000 \
            --grace 5 >"$P.lg" 2>&1
        lg_rc=$?
        cat "$P.lg" >> "$OUT"
        kill -TERM $pid 2>/dev/null
    else
        lg_rc=1
        echo "scenario.sh: cachesrv did not start" >> "$ERR"
        kill -TERM $pid 2>/dev/null
    fi
    wait $pid; rc=$?
    lg=$(grep '^loadgen:' "$P.lg" 2>/dev/null | tail -1)
    lgf() { printf '%s\n' "$lg" | sed -n "s/.* $1=\([0-9.]*\).*/\1/p"; }
    WORK=$(lgf ok); P99=$(lgf p99_ms)
    : "${WORK:=0}" "${P99:=-}"
    # the server survived only if it served every request it got
    if [ $rc = 0 ] && [ "$lg_rc" != 0 ]; then COMPLETE=no; else COMPLETE=yes; fi
else
    # shellcheck disable=SC2086
    timeout "$TIMEOUT" "$MEMRUN" "$@" -- $CMD >"$OUT" 2>"$ERR"
    rc=$?
    COMPLETE=yes
fi
# GNU timeout exits 124 when it fires; busybox's (the VM's) execs the command and lets it die of the
# SIGTERM (143, or whatever memrun makes of it). Either way, a run that lasted the whole timeout and
# was ended by a signal timed out: say 124.
ELAPSED=$(( $(date +%s) - START ))
case $rc in 124|143) [ $ELAPSED -ge $((TIMEOUT - 1)) ] && rc=124 ;; esac

# ---------------------------------------------------------------- measure
num() { case $1 in ''|*[!0-9]*) echo 0 ;; *) echo "$1" ;; esac; }
if [ -s "$REPORT" ] && jq -e . "$REPORT" >/dev/null 2>&1; then
    PEAK=$(num "$(jq -r '.memory.peak // 0' "$REPORT")")
    OOMK=$(num "$(jq -r '.events.oom_kill // 0' "$REPORT")")
else
    PEAK=0 OOMK=0   # no report: memrun was killed by the timeout before writing it
fi
THROTTLED=$(awk -F, 'NR > 1 {
        t = $1 + 0
        if (prev != "" && $3 != "max" && $4 != "max" && $3 + 0 < $4 + 0 && $2 + 0 >= $3 + 0 && $6 + 0 > 0)
            s += t - prev
        prev = t
    } END { printf "%.2f", s + 0 }' "$TIMELINE" 2>/dev/null)
: "${THROTTLED:=0.00}"

case $NAME in
leak|stall)
    WORK=$(sed -n 's/^leak: holding \([0-9]*\) bytes$/\1/p' "$OUT" | tail -1)
    if [ -n "$WORK" ]; then WORK=$((WORK / 1048576)); else WORK=$((PEAK / 1048576)); fi ;;
burst)
    WORK=$(sed -n 's/^burst: .*done=\([0-9]*\).*/\1/p' "$OUT" | tail -1) ;;
fragment)
    WORK=$(sed -n 's/^fragment: holding \([0-9]*\) MiB.*/\1/p' "$OUT" | tail -1) ;;
forkheavy)
    WORK=$(sed -n 's/^forkgrow: pid=[0-9]* ops=\([0-9]*\).*/\1/p' "$OUT" | awk '{ s += $1 } END { print s + 0 }') ;;
esac
WORK=$(num "${WORK:-0}")

if [ "$OOMK" -ge 1 ] || [ $rc = 137 ]; then OUTCOME=killed
elif [ $rc = 124 ]; then OUTCOME=stalled
elif [ $rc = 0 ] && [ $COMPLETE = yes ]; then OUTCOME=survived
elif awk -v t="$THROTTLED" 'BEGIN { exit !(t > 0) }'; then OUTCOME=stalled
else OUTCOME=error
fi

echo "scenario $NAME $CONFIG outcome=$OUTCOME exit=$rc work=$WORK p99_ms=$P99 peak=$PEAK throttled_s=$THROTTLED oom_kill=$OOMK"
