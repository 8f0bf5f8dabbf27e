# libmemlimit integration tests, sourced by tests/host/run.sh (POSIX sh: busybox runs it in the VM).
# Uses run.sh's MEMRUN, EXAMPLES, T, MODE and its helpers (mr, fail, skip, expect_rc, expect_err,
# alive, jqr). Each test has its contrast: the same program under the same limit without the limiter
# (a policy with no levels, or no library) must fail the way the limiter prevents.
# Needs in $EXAMPLES: cachesrv, loadgen, fragment, prefork; PRELOAD_SO names libmemlimit-preload.so
# (default: next to $EXAMPLES). MEMRUN_TEST_PRELOAD=env forces LD_PRELOAD even when memrun has --preload.
# shellcheck disable=SC2317  # test functions are called indirectly

CACHESRV=$EXAMPLES/cachesrv
LOADGEN=$EXAMPLES/loadgen
FRAGMENT=$EXAMPLES/fragment
PREFORK=$EXAMPLES/prefork
PRELOAD_SO=${PRELOAD_SO:-$(dirname "$EXAMPLES")/libmemlimit-preload.so}

lim_need() {  # lim_need FILE...: every one must exist (make builds them): a missing one fails
    for f in "$@"; do [ -e "$f" ] || { fail "$f missing: run make"; return 1; }; done
}
lim_empty_policy() { : > "$T/empty.ini"; }  # no levels: memrun only sets the limit and reports
# trim first, shed when trimming falls behind (cachesrv's (e) and (f))
lim_trim_policy() {
    printf '[level.moderate]\nusage = 50%%\nactions = trim, shed\n[level.high]\nusage = 70%%\nactions = trim, collect, shed\n[recovery]\ndwell = 300ms\n' > "$T/trim.ini"
}

# Start memrun ARGS... -- cachesrv in the background; sets srv_pid (memrun's pid) and srv_port.
srv_start() {
    rm -f "$T/srv.out" "$T/srv.err"
    "$MEMRUN" "$@" >"$T/srv.out" 2>"$T/srv.err" &
    srv_pid=$!
    srv_port=""
    i=0
    while [ $i -lt 100 ]; do
        srv_port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$T/srv.out" 2>/dev/null)
        [ -n "$srv_port" ] && return 0
        alive $srv_pid || break
        sleep 0.05; i=$((i + 1))
    done
    fail "cachesrv did not start: $(cat "$T/srv.out" "$T/srv.err" 2>/dev/null | head -c 600)"
    kill -KILL $srv_pid 2>/dev/null; wait $srv_pid 2>/dev/null
    return 1
}
# Stop it with SIGTERM (memrun forwards it; cachesrv exits 0) unless it is already gone; sets rc.
srv_stop() {
    kill -TERM $srv_pid 2>/dev/null
    i=0; while alive $srv_pid && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
    alive $srv_pid && { fail "memrun/cachesrv ignored SIGTERM for 10s"; kill -KILL $srv_pid; }
    wait $srv_pid; rc=$?
}
# loadgen against the server; sets lg_rc and lg (its summary line).
load() {
    timeout 60 "$LOADGEN" --port "$srv_port" "$@" >"$T/lg.out" 2>"$T/lg.err"; lg_rc=$?
    lg=$(grep '^loadgen:' "$T/lg.out")
}
lg_field() { printf '%s\n' "$lg" | sed -n "s/.* $1=\([0-9.]*\).*/\1/p"; }

# (a) A cache that grows with every PUT: under memrun's levels it trims and survives; under the same
# plain limit it is OOM-killed.
t_limiter_cache_survives() {
    lim_need "$CACHESRV" "$LOADGEN" || return
    srv_start --limit 64M --report "$T/r.json" -- "$CACHESRV" 0 || return
    load --count 3000 --conns 4 --size 64K --rate 2000
    alive $srv_pid || fail "cachesrv died under load: $(cat "$T/srv.err")"
    srv_stop
    expect_rc 0 "cachesrv survived and exited 0 at SIGTERM"
    [ "$lg_rc" = 0 ] || fail "loadgen: $lg $(cat "$T/lg.err")"
    [ "$(jqr .events.oom_kill "$T/r.json")" = 0 ] || fail "oom_kill: $(jq -c .events "$T/r.json")"
    jq -e '[.actions[] | select(.action == "trim" and .clients >= 1 and .freed > 0)] | length >= 1' "$T/r.json" >/dev/null ||
        fail "no trim that freed memory: $(jq -c .actions "$T/r.json")"
    [ "$(jqr .limiter.freed "$T/r.json")" -gt 0 ] || fail "limiter.freed: $(jq -c .limiter "$T/r.json")"

    lim_empty_policy
    srv_start --limit 64M --policy "$T/empty.ini" --report "$T/r0.json" -- "$CACHESRV" 0 || return
    load --count 3000 --conns 4 --size 64K --rate 2000
    srv_stop
    expect_rc 137 "the same cache under the same plain limit is OOM-killed"
    [ "$(jqr .events.oom_kill "$T/r0.json")" -ge 1 ] || fail "contrast: no oom_kill: $(jq -c .events "$T/r0.json")"
}

# (b) MEMLIMIT=SIZE standalone: no memrun levels (empty policy, no endpoint), the library computes
# levels from the process's own memory and keeps it alive; without MEMLIMIT it dies.
t_limiter_standalone() {
    lim_need "$CACHESRV" "$LOADGEN" || return
    lim_empty_policy
    # standalone sampling is 100 ms..1 s: a paced load, the kind of growth it is made for
    srv_start --limit 64M --policy "$T/empty.ini" --report "$T/r.json" -- \
        env -u MEMRUN_LIMITER MEMLIMIT=40M "$CACHESRV" 0 || return
    load --count 1500 --conns 4 --size 64K --rate 300
    alive $srv_pid || fail "cachesrv died: $(cat "$T/srv.err")"
    srv_stop
    expect_rc 0 "standalone MEMLIMIT kept it alive"
    grep -q "limiter: standalone" "$T/srv.err" || fail "not in standalone mode: $(cat "$T/srv.err")"
    trimmed=$(sed -n 's/.* trimmed_bytes=\([0-9]*\).*/\1/p' "$T/srv.err")
    [ "${trimmed:-0}" -gt 0 ] || fail "standalone trimmed nothing: $(cat "$T/srv.err")"
    [ "$(jqr .events.oom_kill "$T/r.json")" = 0 ] || fail "oom_kill: $(jq -c .events "$T/r.json")"
    [ "$lg_rc" = 0 ] || fail "loadgen: $lg"

    srv_start --limit 64M --policy "$T/empty.ini" -- env -u MEMRUN_LIMITER -u MEMLIMIT "$CACHESRV" 0 || return
    load --count 1500 --conns 4 --size 64K --rate 300
    srv_stop
    expect_rc 137 "without MEMLIMIT the same plain limit kills it"
}

# (c) fragment: freed-but-retained glibc heap. With the preload shim, "collect" runs malloc_trim(0)
# and it survives; without, the same policy and limit end in an OOM kill.
t_limiter_preload_fragment() {
    lim_need "$FRAGMENT" || return
    printf '[level.moderate]\nusage = 50%%\nactions = collect\n[level.high]\nusage = 70%%\nactions = trim, collect\n' > "$T/collect.ini"
    if [ "${MEMRUN_TEST_PRELOAD:-}" != env ] && "$MEMRUN" --help 2>&1 | grep -q -- --preload; then
        mr --limit 128M --policy "$T/collect.ini" --report "$T/r.json" --preload -- "$FRAGMENT"
    else
        lim_need "$PRELOAD_SO" || return
        mr --limit 128M --policy "$T/collect.ini" --report "$T/r.json" -- env LD_PRELOAD="$PRELOAD_SO" "$FRAGMENT"
    fi
    expect_rc 0 "fragment survives with the preload"
    expect_out "fragment: holding"
    [ "$(jqr .events.oom_kill "$T/r.json")" = 0 ] || fail "oom_kill: $(jq -c .events "$T/r.json")"
    jq -e '[.actions[] | select((.action == "collect" or .action == "trim") and .freed > 0)] | length >= 1' "$T/r.json" >/dev/null ||
        fail "the shim freed nothing: $(jq -c .actions "$T/r.json")"

    mr --limit 128M --policy "$T/collect.ini" --report "$T/r0.json" -- "$FRAGMENT"
    expect_rc 137 "fragment without the preload is OOM-killed"
    [ "$(jqr .events.oom_kill "$T/r0.json")" -ge 1 ] || fail "contrast: no oom_kill"
}

# (c2) The same fragmenting program on the allocators operators LD_PRELOAD (Debian's libjemalloc2,
# libtcmalloc-minimal4, libmimalloc2.0): --preload finds which one serves malloc and uses its own
# release (jemalloc's arena purge, tcmalloc's ReleaseFreeMemory; mimalloc told at start to decommit
# what it frees at once: its collection is per thread). Each survives with --preload and is
# OOM-killed without; jemalloc's and tcmalloc's releases are asks that free, in the report.
t_limiter_preload_allocators() {
    lim_need "$FRAGMENT" || return
    printf '[level.moderate]\nusage = 50%%\nactions = collect\n[level.high]\nusage = 70%%\nactions = trim, collect\n' > "$T/collect.ini"
    tried=0
    for a in libjemalloc.so.2:jemalloc_purge libtcmalloc_minimal.so.4:tcmalloc_release libmimalloc.so.2:mimalloc_collect; do
        lib=${a%%:*} handler=${a#*:}
        so=$(ls /usr/lib/*-linux-gnu/$lib /usr/lib/$lib 2>/dev/null | head -1)
        [ -n "$so" ] || { say "    ($lib not installed: apt-get install libjemalloc2 libtcmalloc-minimal4 libmimalloc2.0)"; continue; }
        tried=$((tried + 1))
        # As operators do, the allocator is in LD_PRELOAD when memrun starts and memrun adds its shim.
        # A sanitized memrun cannot start that way (the ASan runtime must come first in the library
        # list): there the allocator goes in front of the shim inside the sandbox, the same order.
        if [ -n "${MEMRUN_TEST_SANITIZER:-}" ]; then
            MEMLIMIT_DEBUG=1 mr --limit 128M --policy "$T/collect.ini" --report "$T/r.json" --preload -- \
                sh -c 'LD_PRELOAD="$0:$LD_PRELOAD" exec "$@"' "$so" "$FRAGMENT" --pin-every 1024
        else
            LD_PRELOAD=$so MEMLIMIT_DEBUG=1 mr --limit 128M --policy "$T/collect.ini" --report "$T/r.json" --preload -- \
                "$FRAGMENT" --pin-every 1024
        fi
        expect_rc 0 "$lib: fragment survives with --preload"
        grep -q "preload: malloc is ${handler%%_*}'s; trim and collect answered by $handler" "$T/err" ||
            fail "$lib: the shim did not find its allocator: $(grep 'preload:' "$T/err" | head -3)"
        [ "$(jqr .events.oom_kill "$T/r.json")" = 0 ] || fail "$lib: oom_kill: $(jq -c .events "$T/r.json")"
        if [ "$handler" != mimalloc_collect ]; then
            jq -e '[.actions[] | select((.action == "collect" or .action == "trim") and .freed >= 33554432)] | length >= 1' \
                "$T/r.json" >/dev/null || fail "$lib: the release freed under 32M: $(jq -c .actions "$T/r.json")"
        fi
        mr --limit 128M --policy "$T/collect.ini" --report "$T/r0.json" -- env LD_PRELOAD="$so" "$FRAGMENT" --pin-every 1024
        expect_rc 137 "$lib: fragment without --preload is OOM-killed"
    done
    [ $tried -gt 0 ] || skip "none of jemalloc, tcmalloc, mimalloc installed"
}

# (d) A pre-forked program: the parent initializes, then forks three workers; all four processes must
# receive the levels. Contrast: with no levels in the policy, none arrive (the file stays empty).
t_limiter_prefork() {
    lim_need "$PREFORK" || return
    printf '[level.moderate]\nusage = 40%%\nactions = trim\n[level.high]\nusage = 60%%\nactions = trim, collect\n' > "$T/lim.ini"
    rm -f "$T/levels"
    # 4 processes x 12M = 48M: usage climbs past 40% and 60% of 64M
    mr --policy "$T/lim.ini" --limit 64M --report "$T/r.json" -- "$PREFORK" --out "$T/levels" --max 12M --seconds 4
    expect_rc 0
    pids=$(awk '$2 >= 1 { print $1 }' "$T/levels" 2>/dev/null | sort -u | wc -l)
    [ "$pids" = 4 ] || fail "$pids of 4 processes got a level: $(cat "$T/levels" 2>/dev/null)"
    for l in 1 2; do
        [ "$(awk -v l=$l '$2 == l { print $1 }' "$T/levels" | sort -u | wc -l)" = 4 ] ||
            fail "not every process got level $l: $(tr '\n' ' ' < "$T/levels")"
    done
    [ "$(jqr .limiter.clients "$T/r.json")" -ge 4 ] || fail "limiter.clients: $(jq -c .limiter "$T/r.json")"

    lim_empty_policy
    rm -f "$T/levels"
    mr --policy "$T/empty.ini" --limit 64M -- "$PREFORK" --out "$T/levels" --max 12M --seconds 2
    expect_rc 0
    [ ! -s "$T/levels" ] || fail "contrast: levels arrived with no levels in the policy: $(cat "$T/levels")"
}

# (e) cachesrv under load with a limit below its working set (2000 keys x 64K = 125M under 64M).
# With shedding the only thing asked, it stays up, sheds (503s) and loses no accepted request. With
# trim first, the governor sheds only if trimming falls behind: it stays up and loses nothing.
# Contrast: without levels it is OOM-killed and requests in flight are lost. The load is paced at 4000
# requests/s (about 180 MB/s of PUTs): what this test is about is the policy's choice, trim or shed;
# the unpaced burst is t_limiter_cachesrv_burst's.
t_limiter_cachesrv_sheds() {
    lim_need "$CACHESRV" "$LOADGEN" || return
    lim_trim_policy
    srv_start --limit 64M --policy "$T/trim.ini" --report "$T/r.json" -- "$CACHESRV" 0 || return
    load --count 6000 --conns 8 --size 64K --keys 2000 --get 30 --rate 4000
    alive $srv_pid || fail "cachesrv died under load (trim first): $(cat "$T/srv.err")"
    srv_stop
    expect_rc 0
    [ "$(lg_field lost)" = 0 ] || fail "trim first: lost requests: $lg"
    [ "$(jqr .events.oom_kill "$T/r.json")" = 0 ] || fail "trim first: oom_kill: $(jq -c .events "$T/r.json")"
    [ "$(jqr .governor.asks.trim.freed "$T/r.json")" -gt 0 ] || fail "trim first: nothing trimmed: $(jq -c .governor "$T/r.json")"

    # Shedding only, from half the budget on: an operator's choice, held there by [governor] target.
    printf '[level.moderate]\nusage = 50%%\nactions = shed\n[level.high]\nusage = 70%%\nactions = shed\n[recovery]\ndwell = 300ms\n[governor]\ntarget = 50%%\n' > "$T/shed.ini"
    srv_start --limit 64M --policy "$T/shed.ini" --report "$T/r.json" -- "$CACHESRV" 0 || return
    load --count 6000 --conns 8 --size 64K --keys 2000 --get 30 --rate 4000
    alive $srv_pid || fail "cachesrv died under load: $(cat "$T/srv.err")"
    srv_stop
    expect_rc 0
    [ "$lg_rc" = 0 ] || fail "loadgen failed: $lg $(cat "$T/lg.err")"
    [ "$(lg_field lost)" = 0 ] || fail "lost requests: $lg"
    [ "$(lg_field sent)" = 6000 ] || fail "not every request was sent: $lg"
    n503=$(lg_field 503)
    [ "${n503:-0}" -gt 0 ] || fail "no 503 while shedding: $lg"
    [ "$(jqr .events.oom_kill "$T/r.json")" = 0 ] || fail "oom_kill: $(jq -c .events "$T/r.json")"
    rej=$(sed -n 's/.* rejected_503=\([0-9]*\).*/\1/p' "$T/srv.err")
    [ "$rej" = "$n503" ] || fail "cachesrv counted $rej 503s, loadgen $n503"

    lim_empty_policy
    srv_start --limit 64M --policy "$T/empty.ini" -- "$CACHESRV" 0 || return
    load --count 6000 --conns 8 --size 64K --keys 2000 --get 30 --rate 4000
    srv_stop
    expect_rc 137 "without levels the same load OOM-kills it"
    [ "$lg_rc" = 1 ] || fail "contrast: loadgen saw nothing wrong: $lg"
}

# (f) The same cache and load unpaced: 8 connections of 64K PUTs from idle, about 0.6 GB/s on this
# host (kernel 6.18). On v1 no memory.high slows the burst: only memrun's next sample stops it, and
# the 6.4 MiB between the soft limit and memory.max go in about 10 ms. Before the sampler followed
# the law's fast-rising allocation estimate (2026-12-05), 2 runs of 3 were OOM-killed here (the
# smoothed rate, rising over 0.5 s, had memrun sample 20-27 ms apart while the cache refilled).
# What v1 owes: memory.max never reached, nothing lost. On v2 the kernel throttles at memory.high.
t_limiter_cachesrv_burst() {
    lim_need "$CACHESRV" "$LOADGEN" || return
    lim_trim_policy
    srv_start --limit 64M --policy "$T/trim.ini" --report "$T/r.json" -- "$CACHESRV" 0 || return
    load --count 6000 --conns 8 --size 64K --keys 2000 --get 30
    alive $srv_pid || fail "cachesrv died under the unpaced burst: $(tail -3 "$T/srv.err")"
    srv_stop
    expect_rc 0 "an unpaced burst from idle"
    [ "$(lg_field lost)" = 0 ] || fail "lost requests: $lg"
    [ "$(jqr .events.oom_kill "$T/r.json")" = 0 ] || fail "oom_kill: $(jq -c .events "$T/r.json")"
    peak=$(jqr .memory.peak "$T/r.json") hard=$(jqr .limits.max "$T/r.json")
    [ "$peak" -lt "$hard" ] || fail "peak $peak at memory.max $hard"
    [ "$(jqr .governor.asks.trim.freed "$T/r.json")" -gt 0 ] || fail "nothing trimmed: $(jq -c .governor "$T/r.json")"
    echo "    # unpaced: $(lg_field ok) of $(lg_field sent) ok, peak $peak of soft $(jqr .limits.high "$T/r.json")"
}
