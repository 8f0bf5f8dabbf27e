# governor.sh: the soft limit as a control loop, on a real kernel (host v1/hybrid, and cgroup v2 in
# the VM). Sourced by run.sh. holdcache adds 1 MiB entries, 600 MiB in all, through a 128M budget and
# frees exactly what it is asked: it lives only if memrun keeps asking.
HOLDCACHE=$EXAMPLES/holdcache
FIRE_ONCE=$(dirname "$0")/fire-once.ini
# The VM is emulated (TCG): 1 MiB per 2 ms is faster than it can allocate, 5 and 20 ms are not.
if [ $MODE = v2 ]; then GOV_RATES=${GOV_RATES:-"5 20"}; else GOV_RATES=${GOV_RATES:-"2 5 20"}; fi

# survives and uses the budget: exit 0, no OOM kill, held at or under the soft limit (the report's
# limits.high) and peak at least 95% of it (the setpoint is the soft limit less 3%, not a level's
# threshold), asked more than once. SOFT_MIN_PCT: a policy that holds lower on purpose; DONE_PATTERN:
# the program's last line (holdcache's by default). The callers write the timeline to $T/tl.csv.
# - v2: memory.peak at or under the soft limit plus 2%, and the p95 of memrun's samples at or under
#   the soft limit plus the kernel's per-CPU charge stock (mm/memcontrol.c charges MEMCG_CHARGE_BATCH,
#   64 pages, ahead per CPU and memory.current counts it unused: 256 KiB a CPU, the VM has one). The
#   kernel charges past memory.high and throttles after the fact (per-CPU charge batches, reclaim on
#   the way back to user space, no penalty at all for a small overage), and the VM is emulated: a
#   vCPU stall of a few tens of ms lets the 5 ms cache allocate past the headroom before the next
#   sample. CI runs saw peaks of 1.22-1.26% over the soft limit there (at 1%, one such run in three
#   failed), and 1.6% once. p95, not p99: a run is 600-1000 samples, so its p99 is the 7th-11th
#   highest, one slow answer. The Go client answers with a collection (runtime.GC, FreeOSMemory),
#   and in the emulated VM on a loaded host that took 110-140 ms while the kernel held the program at
#   memory.high: 10 runs with two busy loops on the host showed clusters of up to 12 samples
#   1.5-1.8 MiB over, and a CI run a p99 1.9 MiB over (its peak inside the 2%). The p99 target is
#   the bench's (bench/results.md), measured on a quiet machine. Under sanitizers (memrun samples
#   and answers 2-3x slower; the hold is the real binary's promise) both bounds get 5%.
# - v1 has no memory.high: nothing slows the program while memrun or its limiter thread waits for a
#   CPU, so on a shared machine one late sample at 1 MiB per 2 ms can show in the peak. What v1 owes
#   (the governor issue's targets) is asserted instead: memory.max never reached (memory.failcnt 0,
#   peak under it) and the p99 of memrun's samples at or under the soft limit.
gov_holds() { # REPORT WHAT [SOFT_MIN_PCT [DONE_PATTERN]]
    expect_rc 0 "$2"
    [ "$(jqr .events.oom_kill "$1")" = 0 ] || fail "$2: oom_kill: $(jq -c .events "$1"); governor: $(jq -c '.governor | {giveups, gave_up_t, rounds, step_max, trim: .asks.trim}' "$1"); levels: $(jq -c '[.levels[] | "\(.t):\(.level)"]' "$1"); stderr: $(tail -3 "$T/err" | tr '\n' ' ')"
    peak=$(jqr .memory.peak "$1") soft=$(jqr .limits.high "$1") hard=$(jqr .limits.max "$1")
    if [ $MODE = v2 ]; then
        over=$((soft / 50))
        [ -n "${MEMRUN_TEST_SANITIZER:-}" ] && over=$((soft / 20))
        [ "$peak" -le $((soft + over)) ] || fail "$2: peak $peak above the soft limit $soft (+$over)"
    else
        [ "$(jqr .events.max "$1")" = 0 ] || fail "$2: memory.max reached: $(jq -c .events "$1"), peak $peak"
        [ "$peak" -lt "$hard" ] || fail "$2: peak $peak at memory.max $hard"
    fi
    over=0 pct=99
    [ $MODE = v2 ] && over=$((64 * 4096 * $(grep -c ^processor /proc/cpuinfo))) pct=95
    [ -n "${MEMRUN_TEST_SANITIZER:-}" ] && over=$((soft / 20))
    pq=$(awk -F, -v q=$pct 'NR > 1 { n++; u[n] = $2 }
        END { for (i = 2; i <= n; i++) { v = u[i]; j = i - 1; while (j > 0 && u[j] > v) { u[j+1] = u[j]; j-- } u[j+1] = v }
              print n ? u[int((n - 1) * q / 100) + 1] : 0 }' "$T/tl.csv")
    [ "$pq" -gt 0 ] && [ "$pq" -le $((soft + over)) ] ||
        fail "$2: p$pct of the samples $pq above the soft limit $soft (+$over; peak $peak; $(awk -F, -v s=$((soft + over)) 'NR > 1 { n++; if ($2 > s) c++ } END { print c + 0 " of " n " samples over" }' "$T/tl.csv"))"
    min=${3:-95}
    [ -n "${MEMRUN_TEST_SANITIZER:-}" ] && [ "$min" -gt 90 ] && min=90
    [ "$peak" -ge $((soft / 100 * min)) ] || fail "$2: peak $peak under $min% of the soft limit $soft"
    asks=$(jqr '.governor.asks.trim.asks' "$1")
    [ "$asks" -ge 3 ] || fail "$2: asked $asks times: $(jq -c .governor "$1")"
    freed=$(jqr '.governor.asks.trim.freed' "$1")
    [ "$freed" -ge $((400 * 1048576)) ] || fail "$2: trims freed only $freed bytes of 600M added"
    grep -q "${4:-holdcache: added=600 }" "$T/out" || fail "$2: the program's summary line is missing: stdout '$(tail -3 "$T/out")'"
}

t_governor_holds() {
    [ -x "$HOLDCACHE" ] || { fail "$HOLDCACHE missing"; return; }
    for ms in $GOV_RATES; do
        mr --limit 128M --report "$T/r.json" --timeline "$T/tl.csv" -- "$HOLDCACHE" --every "$ms"
        gov_holds "$T/r.json" "built-in policy, 1M per $ms ms"
    done
}

# The governor issue's other two cooperating workloads on the real kernel, as bench/holds.sh runs
# them: Go's step test (the live set, which no trim can take, stepping from 10% to 80% of the soft
# limit while the rest is evictable) and a spike (300M as fast as holdcache allocates). What the issue
# asks of them on v1 and v2: no OOM kill, memory.max never reached (memory.events "max" / v1's
# memory.failcnt 0), the budget used (peak at least 95% of the soft limit). Where under the soft
# limit they are held is the bench's to measure on a quiet machine: on v1 nothing throttles a spike
# while memrun waits for a CPU (two busy loops beside this test put its p99 2-7% over the soft limit,
# its peak 2.5% under memory.max).
gov_survives() { # REPORT WHAT DONE_PATTERN
    expect_rc 0 "$2"
    [ "$(jqr .events.oom_kill "$1")" = 0 ] || fail "$2: oom_kill: $(jq -c .events "$1"); governor: $(jq -c '.governor | {giveups, rounds, step_max}' "$1")"
    peak=$(jqr .memory.peak "$1") soft=$(jqr .limits.high "$1") hard=$(jqr .limits.max "$1")
    [ "$(jqr .events.max "$1")" = 0 ] || fail "$2: memory.max reached: $(jq -c .events "$1"), peak $peak"
    [ "$peak" -lt "$hard" ] || fail "$2: peak $peak at memory.max $hard"
    [ "$peak" -ge $((soft / 100 * 95)) ] || fail "$2: peak $peak under 95% of the soft limit $soft"
    [ "$(jqr '.governor.asks.trim.asks' "$1")" -ge 3 ] || fail "$2: asked fewer than 3 times: $(jq -c .governor "$1")"
    grep -q "$3" "$T/out" || fail "$2: the program's summary line is missing: stdout '$(tail -3 "$T/out")'"
}

t_governor_holds_step_spike() {
    [ -x "$HOLDCACHE" ] || { fail "$HOLDCACHE missing"; return; }
    mr --limit 128M --report "$T/r.json" -- "$HOLDCACHE" --every 5 --live-from 11M --live-to 92M
    gov_survives "$T/r.json" "step: live 11M -> 92M, 1M per 5 ms" "holdcache: added=600 "
    mr --limit 128M --report "$T/r.json" -- "$HOLDCACHE" --every 0 --total 300M
    gov_survives "$T/r.json" "spike: 300M as fast as it can" "holdcache: added=300 "
}

t_governor_shipped_policies() {
    ms=${GOV_RATES%% *}
    for p in web-service batch-job; do
        mr --limit 128M --policy "$CONFIGS/$p.ini" --report "$T/r.json" --timeline "$T/tl.csv" -- "$HOLDCACHE" --every "$ms"
        gov_holds "$T/r.json" "$p.ini, 1M per $ms ms"
    done
    # web-service.ini's signal:USR1 would kill holdcache (it does not handle it): skipped, said so
    mr --limit 128M --policy "$CONFIGS/web-service.ini" --report "$T/r.json" -- "$HOLDCACHE" --every "$ms" --total 300M
    expect_rc 0 "web-service.ini never signals a program to death"
    # ci-oom-repro.ini is watch-only on purpose: the OOM must happen, the same way every time
    mr --limit 128M --policy "$CONFIGS/ci-oom-repro.ini" --report "$T/r.json" -- "$HOLDCACHE" --every "$ms"
    expect_rc 137 "ci-oom-repro.ini does not intervene"
}

# The contrast: the same program under the old fire-once ladder and under plain memory.max dies.
t_governor_contrast() {
    ms=${GOV_RATES%% *}
    mr --limit 128M --policy "$FIRE_ONCE" --report "$T/r.json" -- "$HOLDCACHE" --every "$ms"
    expect_rc 137 "fire-once ladder: OOM-killed"
    [ "$(jqr .exit.oom_killed "$T/r.json")" = true ] || fail "fire-once: not an OOM kill: $(jq -c .exit "$T/r.json")"
    [ "$(jq '.governor // null' "$T/r.json")" = null ] || fail "fire-once: governor ran: $(jq -c .governor "$T/r.json")"
    printf '[memory]\nsoft = 100%%\n' > "$T/plain.ini"
    mr --limit 128M --policy "$T/plain.ini" --report "$T/r.json" -- "$HOLDCACHE" --every "$ms"
    expect_rc 137 "plain memory.max: OOM-killed"
}

# A client that frees nothing: escalated past within 3 asks, asked at most a few times a second.
t_governor_futile_client() {
    mr --limit 128M --report "$T/r.json" -- "$HOLDCACHE" --every 20 --ignore
    expect_rc 137 "nothing freed: memory.max ends it"
    [ "$(jqr .exit.oom_killed "$T/r.json")" = true ] || fail "not an OOM kill: $(jq -c .exit "$T/r.json")"
    trims=$(jqr .governor.asks.trim.asks "$T/r.json")
    dur=$(jqr .duration_s "$T/r.json")
    [ "$(jqr .governor.step_max "$T/r.json")" != trim ] || fail "never escalated past trim: $(jq -c .governor "$T/r.json")"
    awk -v n="$trims" -v d="$dur" 'BEGIN { exit !(n >= 1 && n <= 5 * d + 3) }' ||
        fail "futile client asked $trims times in ${dur}s: $(jq -c .governor "$T/r.json")"
}

# A plain leak (no limiter, nothing reclaimable) heading for the soft limit: memrun gives up at once
# (before the kernel's throttle there) and memory.max ends it; with giveup = 0s (and no stall
# escalation) it stays parked at memory.high, alive, until this test ends it.
t_governor_leak_gives_up() {
    [ $MODE = v2 ] || { skip "cgroup v2 only: v1 has no memory.high to be parked at (runs in the VM suite)"; return; }
    mr --limit 128M --report "$T/r.json" -- "$LEAK" --step 1M --interval 5
    expect_rc 137 "the leak ends by the OOM killer"
    [ "$(jqr .exit.oom_killed "$T/r.json")" = true ] || fail "not an OOM kill: $(jq -c .exit "$T/r.json")"
    [ "$(jqr .governor.giveups "$T/r.json")" = 1 ] || fail "no give-up: $(jq -c .governor "$T/r.json")"
    expect_err "giving up"
    jq -e '[.actions[] | select(.action == "giveup")] | length == 1' "$T/r.json" >/dev/null ||
        fail "no giveup action: $(jq -c .actions "$T/r.json")"
    # the contrast: never giving up, the same leak is still alive, throttled, 8 s in
    cp "$FIRE_ONCE" "$T/never.ini"
    sed -i 's/^hold = no/hold = yes\ngiveup = 0s/' "$T/never.ini"
    printf '[stall]\nenabled = no\n' >> "$T/never.ini"
    "$MEMRUN" -q --limit 128M --policy "$T/never.ini" -- "$LEAK" --step 1M --interval 5 >"$T/out" 2>"$T/err" &
    mpid=$!
    sleep 8
    alive $mpid || fail "with giveup = 0s the leak died: $(cat "$T/err")"
    kill -TERM $mpid 2>/dev/null
    wait $mpid
}

# Asks a client put off because its CPU budget was spent (libmemlimit's SKIPPED_BUDGET,
# MEMLIMIT_BUDGET) say nothing about what the program could give: the same leak beside a client that
# answers every ask futile is given up on at once for "nothing to give", beside one whose empty answers
# were put off it is not, and the report counts them (a cooperating holdcache under MEMLIMIT_BUDGET=1
# was given up on that way and OOM-killed; issue 18). v2: it gets [governor] giveup at the soft limit,
# as short answers do.
t_governor_deferred_answers() {
    mr --limit 128M --report "$T/r.json" -- sh -c "\"$MLCLIENT\" > $T/ml & sleep 0.3; exec \"$LEAK\" --step 1M --interval 20"
    expect_rc 137 "beside a futile client the leak ends by the OOM killer"
    jq -e '[.actions[] | select(.action == "giveup" and (.detail | test("nothing to give")))] | length == 1' "$T/r.json" \
        >/dev/null || fail "futile answers: no give-up for nothing to give: $(jq -c '[.actions[] | select(.action == "giveup")]' "$T/r.json")"
    [ "$(jqr .limiter.deferred "$T/r.json")" = 0 ] || fail "futile answers counted as put off: $(jq -c .limiter "$T/r.json")"
    mr --limit 128M --report "$T/r.json" -- sh -c "\"$MLCLIENT\" --deferred > $T/ml & sleep 0.3; exec \"$LEAK\" --step 1M --interval 20"
    expect_rc 137 "beside a client putting asks off the leak ends by the OOM killer"
    [ "$(jqr .limiter.deferred "$T/r.json")" -ge 2 ] || fail "report: answers put off: $(jq -c .limiter "$T/r.json")"
    jq -e '[.actions[] | select(.action == "giveup" and (.detail | test("nothing to give")))] | length == 0' "$T/r.json" \
        >/dev/null || fail "answers put off taken for nothing to give: $(jq -c '[.actions[] | select(.action == "giveup")]' "$T/r.json")"
    if [ $MODE = v2 ]; then
        jq -e '[.actions[] | select(.action == "giveup" and (.detail | test("short answers at the soft limit")))] | length == 1' \
            "$T/r.json" >/dev/null || fail "v2: no give-up for short answers: $(jq -c '[.actions[] | select(.action == "giveup")]' "$T/r.json")"
    fi
}

# The last client leaving near the soft limit is most often a program on its way out: no give-up for
# LAW_DETACH_GRACE_US (1 s). memrun used to say "nothing to give ... giving up" at holdcache's exit,
# and a report with a give-up for a program that did fine (CI saw it in t_fault_sandbox_frozen).
t_governor_client_leaves() {
    # 1M per 5 ms: usage sits at the setpoint when it leaves, where the old law gave up every time
    # (at 20 ms it is often under it, and the test would pass without the grace)
    mr -v --limit 128M --report "$T/r.json" -- "$HOLDCACHE" --total 300M --every 5 --linger 500
    expect_rc 0 "holdcache leaving memrun 500 ms before it exits"
    # -v names every ask's goal, past the report's first 32 too (it printed an unset buffer there)
    asks=$(grep -c "governor: [a-z]* asks [0-9]* limiters\? for " "$T/err")
    [ "$asks" -gt 32 ] || fail "only $asks asks logged: $(tail -3 "$T/err")"
    bad=$(grep "governor: [a-z]* asks [0-9]* limiters\? for " "$T/err" | grep -vE "for [0-9.]+[KMGT]? \(usage [0-9]+\)$" | head -3)
    [ -z "$bad" ] || fail "asks logged without their goal: $bad"
    [ "$(jqr .governor.giveups "$T/r.json")" = 0 ] ||
        fail "gave up on a program on its way out: $(jq -c '[.actions[] | select(.action == "giveup")]' "$T/r.json")"
    [ "$(jqr .limiter.clients "$T/r.json")" = 1 ] || fail "holdcache never attached: $(jq -c .limiter "$T/r.json")"
}

# A program whose library left and which then stands still above the setpoint, short of the soft limit,
# is not heading anywhere: no give-up, after the grace either. holdcache fills 600M in 2M entries
# every 5 ms under 512M, held at [governor] target = 85% (435.2M, 5.6% under the soft limit), leaves,
# touches a last 2M buffer and stands there 6 s. The law took the smoothed rate of its growth before
# it left (400 MB/s, decaying over 0.5 s) for where it was going and gave up as the grace ended, every
# time; now it also wants usage rising (LAW_RISE_MIN over its lowest of the last 0.25-0.5 s). Held at
# the built-in setpoint (3% under the soft limit) the program stood 1% short of "at the soft limit"
# (within 2%: a give-up at once, by design), and a CI run in the emulated VM saw usage move by 2M
# there 1.3 s after the last ask: that is the 2% rule, not this test's. Judged over the 3 s after the
# last ask: what happens as it exits, 6 s later, is not this test's either.
t_governor_idle_after_leaving() {
    printf '[level.moderate]\nusage = 70%%\nactions = trim\n[level.high]\nusage = 85%%\nactions = trim, collect\n[governor]\ntarget = 85%%\n' > "$T/t85.ini"
    mr --limit 512M --policy "$T/t85.ini" --timeline "$T/t.csv" --report "$T/r.json" -- \
        "$HOLDCACHE" --total 600M --entry 2M --every 5 --linger 6000 --last 2M
    expect_rc 0
    [ "$(jqr .limiter.clients "$T/r.json")" = 1 ] || fail "holdcache never attached: $(jq -c .limiter "$T/r.json")"
    left=$(awk -F, 'NR > 1 && $8 > 0 { t = $1 } END { print t + 0 }' "$T/t.csv")
    jq -e --argjson left "$left" '[.actions[] | select(.action == "giveup" and .t < $left + 3)] | length == 0' \
        "$T/r.json" >/dev/null ||
        fail "gave up on a program standing still (last ask at $left s): $(jq -c '[.actions[] | select(.action == "giveup")]' "$T/r.json")"
    # it did stand above the setpoint after it left (else this proves nothing): 1.5 s or more of
    # samples over it in a row, no ask among them
    awk -F, 'NR == 1 { next } $8 == 0 && $11 != "max" && $2 > $11 { if (!n) t1 = $1; n++; if ($1 - t1 > best) best = $1 - t1; next }
        { n = 0 } END { exit !(best >= 1.5) }' "$T/t.csv" ||
        fail "did not stand above the setpoint after leaving: $(awk -F, 'NR > 1 && NR % 10 == 0' "$T/t.csv" | tail -8)"
}

# Giving up is news for the program: its soft limit goes (SIZE_MAX) when memrun lifts memory.high, and
# comes back when memrun holds again (the allocation beside it, nothing to give, ends under the limit
# and exits; usage falls under the setpoint).
t_governor_giveup_tells_clients() {
    [ $MODE = v2 ] || { skip "cgroup v2 only: on v1 there is no memory.high to lift (runs in the VM suite)"; return; }
    mr --limit 64M --report "$T/r.json" -- sh -c \
        "\"$EXAMPLES/watchlimits\" --seconds 4 > $T/wl & sleep 0.3; \"$LEAK\" --step 1M --interval 5 --max 60M --hold 1; wait"
    expect_rc 0
    [ "$(jqr .governor.giveups "$T/r.json")" -ge 1 ] || fail "no give-up: $(jq -c .governor "$T/r.json")"
    soft=$((64 * 1048576 * 9 / 10)) none=18446744073709551615
    printf 'limits 67108864 %s\nlimits 67108864 %s\nlimits 67108864 %s\n' $soft $none $soft > "$T/want"
    head -3 "$T/wl" | cmp -s - "$T/want" || fail "watchlimits heard: $(cat "$T/wl"), want: $(cat "$T/want")"
}

# The kernel's slack first (cgroup v2): huge pages left half unmapped (what malloc_trim leaves on a
# THP-always kernel) stay charged until reclaim splits them. Over the setpoint by less than that,
# the governor hands it to memory.reclaim and asks the client for nothing.
t_governor_slack_first() {
    [ $MODE = v2 ] || { skip "cgroup v2 only: memory.reclaim (runs in the VM suite)"; return; }
    mr --limit 256M --report "$T/r.json" -- sh -c \
        "\"$HELPERS/mlclient\" --free 0 >$T/ml & sleep 0.5; \"$HELPERS/thptails\" --tails 12M --mapped 200M --rate 40 --hold 3 >$T/tt; kill \$! 2>/dev/null; wait"
    expect_rc 0
    huge=$(sed -n 's/^thptails: huge=//p' "$T/tt")
    [ "${huge:-0}" -ge 16777216 ] ||
        { fail "no huge pages (AnonHugePages ${huge:-?}, THP $(cat /sys/kernel/mm/transparent_hugepage/enabled))"; return; }
    grep -q '^thptails: ready' "$T/tt" || fail "thptails did not finish: $(cat "$T/tt")"
    n=$(jq '[.actions[] | select(.action == "reclaim" and (.detail | test("unmapped anon")))] | length' "$T/r.json")
    say "    # huge pages $huge, reclaims of the slack $n, asks of the client $(grep -c 'actions=[a-z,]*trim' "$T/ml")"
    [ "$n" -ge 1 ] || fail "no reclaim of the slack: $(jq -c '[.actions[] | [.action, .detail]]' "$T/r.json")"
    grep -q 'actions=[a-z,]*trim' "$T/ml" && fail "the client was asked: $(grep 'actions=' "$T/ml" | head -3)"
}

# A signal action is never sent to a program that does not handle it (it would die of it).
t_governor_signal_not_handled() {
    printf '[level.moderate]\nusage = 10%%\nactions = signal:USR1\n' > "$T/sig.ini"
    mr --limit 128M --policy "$T/sig.ini" --report "$T/r.json" -- "$LEAK" --step 1M --interval 10 --max 30M
    expect_rc 0 "USR1 not sent to a program without a handler"
    [ "$(jqr .governor.signals_skipped "$T/r.json")" -ge 1 ] || fail "not reported: $(jq -c .governor "$T/r.json")"
    expect_err "does not handle it"
    # the contrast: a program that catches USR1 gets it
    mr --limit 128M --policy "$T/sig.ini" -- sh -c "trap 'echo got-usr1' USR1; \"$LEAK\" --step 1M --interval 10 --max 30M; wait"
    expect_rc 0
    expect_out got-usr1
}
