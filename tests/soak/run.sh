#!/bin/sh
# soak/run.sh: owns `make soak` (outside make check): memrun supervising for SOAK_MINUTES (30) with
# everything that could make it grow going on at once, and its own resources sampled each minute.
#   - sandbox "soak-cache": a governed cache (holdcache: asked to trim all the time) beside a loop of
#     limiter clients (mlclient) attaching for 3 s and leaving; its limit changed live every 20 s
#     (memrunctl set: 256M <-> 192M, a lowering below usage and a raise), --metrics and --timeline on;
#   - a second sandbox: a leak started, OOM-killed (137 asserted) and started again, every 30 s.
# Each minute: soak-cache's memrun's VmRSS and open fds (less one per limiter client attached at that
# moment: clients come and go), its status (memrunctl status --json) and --metrics sizes. Asserted at the end: RSS within 512 KiB of the first minute's, the same fd count
# every minute, the status and metrics sizes flat, every leak run 137, the cache never OOM-killed
# and exit 0. Writes BUILD/soak/soak.csv, bench/soak.md (table and figures) and bench/soak.png.
# Usage: tests/soak/run.sh BUILD_DIR   (root; cgroups only beneath this shell's own)
set -u
B=${1:?usage: tests/soak/run.sh BUILD_DIR}
MIN=${SOAK_MINUTES:-30}
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
MEMRUN=$TOP/$B/memrun MEMRUNCTL=$TOP/$B/memrunctl EX=$TOP/$B/examples H=$TOP/$B/tests/helpers
W=$TOP/$B/soak
say() { echo "soak: $*"; }
die() { say "error: $*"; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (cgroups)"
for f in "$MEMRUN" "$MEMRUNCTL" "$EX/holdcache" "$EX/leak" "$H/mlclient"; do [ -x "$f" ] || die "$f missing: run make"; done
rm -rf "$W" && mkdir -p "$W" || die "cannot create $W"
export MEMRUN_RUNTIME_DIR="$W/run"

pids=""
cleanup() { for p in $pids; do kill "$p" 2>/dev/null; done; touch "$W/stop"; }
trap cleanup EXIT INT TERM

# the governed cache, and clients that come and go, in one sandbox (run for MIN minutes and a bit)
total=$(( (MIN * 60 + 120) * 1000 / 5 / 2 ))M   # 512K every 5 ms
"$MEMRUN" --limit 256M -n soak-cache --report "$W/cache.json" --metrics "$W/m.prom" --timeline "$W/cache.csv" -- sh -c \
    "\"$EX/holdcache\" --total $total --entry 512K --every 5 > $W/holdcache.out & hc=\$!
     while [ ! -e $W/stop ] && kill -0 \$hc 2>/dev/null; do \"$H/mlclient\" --exit-after 3 > /dev/null; sleep 1; done
     kill \$hc 2>/dev/null; wait \$hc; exit 0" >"$W/cache.out" 2>"$W/cache.err" &
mp=$!
pids="$pids $mp"
sleep 2
kill -0 $mp 2>/dev/null || die "memrun for the cache did not start: $(cat "$W/cache.err")"

# the leak, again and again, in a second sandbox
(
    n=0
    while [ ! -e "$W/stop" ]; do
        "$MEMRUN" -q --limit 64M -n soak-leak -- "$EX/leak" --max 1G --step 4M --interval 5 >/dev/null 2>>"$W/leak.err"
        echo $? >>"$W/leak.rc"
        n=$((n + 1))
        i=0; while [ $i -lt 30 ] && [ ! -e "$W/stop" ]; do sleep 1; i=$((i + 1)); done
    done
) &
pids="$pids $!"

# limits changed live every 20 s
(
    hi=1
    while [ ! -e "$W/stop" ]; do
        i=0; while [ $i -lt 20 ] && [ ! -e "$W/stop" ]; do sleep 1; i=$((i + 1)); done
        [ -e "$W/stop" ] && break
        if [ $hi = 1 ]; then l=192M; hi=0; else l=256M; hi=1; fi
        "$MEMRUNCTL" set soak-cache --limit $l >>"$W/set.log" 2>&1; echo "$l $?" >>"$W/set.rc"
    done
) &
pids="$pids $!"

echo "minute,rss_kib,fds,status_bytes,metrics_bytes,usage" >"$W/soak.csv"
m=0
while [ $m -le "$MIN" ]; do
    kill -0 $mp 2>/dev/null || die "memrun for the cache ended early: $(tail -5 "$W/cache.err")"
    rss=$(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' /proc/$mp/status)
    # memrun's own fds: each attached limiter client holds one while it is attached (they come and
    # go every 4 s), so the count is taken between two statuses that agree on the clients, less them
    for try in 1 2 3 4 5; do
        c1=$("$MEMRUNCTL" status soak-cache --json 2>/dev/null | jq -r .clients)
        all=$(ls /proc/$mp/fd | wc -l)
        st=$("$MEMRUNCTL" status soak-cache --json 2>/dev/null)
        c2=$(printf '%s' "$st" | jq -r .clients)
        [ -n "$c1" ] && [ "$c1" = "$c2" ] && break
        sleep 0.2
    done
    fds=$((all - ${c2:-0}))
    usage=$(printf '%s' "$st" | jq -r .usage 2>/dev/null)
    echo "$m,$rss,$fds,$(printf '%s' "$st" | wc -c),$(wc -c <"$W/m.prom" 2>/dev/null || echo 0),${usage:-0}" >>"$W/soak.csv"
    say "minute $m: rss ${rss} KiB, fds $fds, usage ${usage:-?}"
    [ $m = "$MIN" ] && break
    sleep 60
    m=$((m + 1))
done
touch "$W/stop"
wait $mp; crc=$?
for p in $pids; do wait "$p" 2>/dev/null; done
trap - EXIT INT TERM

fail=0
bad() { say "FAIL: $*"; fail=1; }
[ $crc = 0 ] || bad "the cache's memrun exited $crc: $(tail -3 "$W/cache.err")"
[ "$(jq -r .events.oom_kill "$W/cache.json")" = 0 ] || bad "the cache was OOM-killed: $(jq -c .events "$W/cache.json")"
# the first minute is the baseline: startup (libc, the report log touched) is done by then
base=$(sed -n '3p' "$W/soak.csv" | cut -d, -f2)
maxrss=$(tail -n +3 "$W/soak.csv" | cut -d, -f2 | sort -n | tail -1)
fds=$(tail -n +3 "$W/soak.csv" | cut -d, -f3 | sort -u | wc -l)
ssz=$(tail -n +3 "$W/soak.csv" | cut -d, -f4 | sort -n | sed -n '1p;$p' | paste -sd' ')
msz=$(tail -n +3 "$W/soak.csv" | cut -d, -f5 | sort -n | sed -n '1p;$p' | paste -sd' ')
grow=$((maxrss - base))
[ $grow -le 512 ] || bad "memrun's RSS grew by $grow KiB (minute 1: $base KiB, max $maxrss KiB)"
[ "$fds" = 1 ] || bad "memrun's fd count changed: $(tail -n +2 "$W/soak.csv" | cut -d, -f3 | paste -sd' ')"
set -- $ssz; [ $(( $2 - $1 )) -le 64 ] || bad "status size not flat: $ssz"
set -- $msz; [ $(( $2 - $1 )) -le 64 ] || bad "metrics size not flat: $msz"
leaks=$(wc -l <"$W/leak.rc"); leak137=$(grep -c '^137$' "$W/leak.rc")
[ "$leaks" -ge 1 ] && [ "$leaks" = "$leak137" ] || bad "leak runs: $leaks, of them 137: $leak137 ($(sort "$W/leak.rc" | uniq -c | paste -sd' '))"
sets=$(wc -l <"$W/set.rc"); setok=$(grep -c ' 0$' "$W/set.rc")
[ "$sets" -ge 1 ] && [ "$sets" = "$setok" ] || bad "limit changes: $sets, ok: $setok ($(tail -3 "$W/set.log"))"
asks=$(jq -r '[.governor.asks[] | .asks] | add' "$W/cache.json")
clients=$(jq -r .limiter.clients "$W/cache.json")

# the figures, and a plot: memrun's RSS and fds per minute
{
    echo "## Soak: memrun supervising for $MIN minutes (\`make soak\`)"
    echo
    echo "Run $(date -u +%Y-%m-%dT%H:%MZ) on $(uname -r), cgroup $(jq -r .cgroup.mode "$W/cache.json"), commit $(git -C "$TOP" describe --always --dirty 2>/dev/null)."
    echo "A governed cache (holdcache, 512K every 5 ms) with limiter clients attaching and leaving every 4 s,"
    echo "its limit changed every 20 s (256M <-> 192M); a leak OOM-killed and restarted every 30 s in a second sandbox."
    echo
    echo "| figure | value |"
    echo "|---|---|"
    echo "| memrun's RSS, minute 1 / max after | $base KiB / $maxrss KiB (+$grow KiB; bound 512) |"
    echo "| memrun's open fds, less attached clients | $(tail -n +2 "$W/soak.csv" | cut -d, -f3 | sort -u | paste -sd/) (distinct values over the run) |"
    echo "| status / metrics size, min max | $ssz / $msz bytes |"
    echo "| limit changes (memrunctl set), ok | $sets, $setok |"
    echo "| leak runs, exit 137 | $leaks, $leak137 |"
    echo "| limiter clients attached over the run | $clients |"
    echo "| governor asks | $asks |"
    echo "| the cache | exit $crc, OOM kills $(jq -r .events.oom_kill "$W/cache.json") |"
    echo
    echo "![memrun's RSS and fds over the soak](soak.png)"
    echo
    echo "Per minute (\`$B/soak/soak.csv\`):"
    echo
    echo '```'
    cat "$W/soak.csv"
    echo '```'
    echo
    [ $fail = 0 ] && echo "Result: pass." || echo "Result: FAIL."
} >"$TOP/bench/soak.md"
# bench/results.md carries the last soak between its markers (bench/report.sh keeps it there too)
R=$TOP/bench/results.md
if [ -f "$R" ]; then
    awk -v f="$TOP/bench/soak.md" '
        /^<!-- soak:/ { print; while ((getline l < f) > 0) print l; skip = 1; found = 1; next }
        /^<!-- \/soak -->/ { skip = 0 }
        !skip { print }
        END { if (!found) { print ""; print "<!-- soak: written by tests/soak/run.sh (make soak) -->";
              while ((getline l < f) > 0) print l; print "<!-- /soak -->" } }' "$R" >"$R.tmp" && mv "$R.tmp" "$R"
fi
if command -v gnuplot >/dev/null 2>&1; then
    gnuplot <<GP || say "gnuplot failed: no plot"
set terminal pngcairo size 900,420 noenhanced
set output "$TOP/bench/soak.png"
set datafile separator ","
set key outside bottom center horizontal
set xlabel "minute"
set ylabel "RSS (KiB)"
set y2label "open fds"
set ytics nomirror
set y2tics
set yrange [0:*]
set y2range [0:100]
set title "memrun over a $MIN-minute soak"
plot "$W/soak.csv" every ::1 using 1:2 with linespoints title "memrun VmRSS (KiB)", \
     "" every ::1 using 1:3 axes x1y2 with steps title "memrun open fds"
GP
else
    say "no gnuplot (apt-get install gnuplot-nox): no plot"
fi
say "RSS $base -> max $maxrss KiB (+$grow), fds $(tail -n +2 "$W/soak.csv" | cut -d, -f3 | sort -u | paste -sd/), $sets limit changes, $leaks leaks (137: $leak137), $clients clients"
[ $fail = 0 ] && say "pass" || say "FAIL"
exit $fail
