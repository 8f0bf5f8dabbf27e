# golang.sh: the pure-Go client of the limiter protocol (limiter/go, package memrun/memlimit) on a real
# kernel (host v1/hybrid, and cgroup v2 in the VM). Sourced by run.sh. examples/gocache is holdcache in
# Go: 1 MiB entries, 600 MiB through a 128M budget; -http serves the cache through memlimit.Handler and
# -get URL is the tests' HTTP client (curl need not exist).
GOCACHE_BIN=$EXAMPLES/gocache
go_ready() {
    [ -x "$GOCACHE_BIN" ] && return 0
    fail "$GOCACHE_BIN missing: run make"
    return 1
}
# GET PATH from the gocache serving on $go_port: "STATUS RETRY-AFTER BODY" in $go_got (RETRY-AFTER "-": none); 1 if no answer
go_get() {
    go_got=$("$GOCACHE_BIN" -get "http://127.0.0.1:$go_port$1" 2>/dev/null) || return 1
    [ -n "$go_got" ]
}
# poll (bounded: 10 s) until GET PATH answers 200 with a body for which the sh condition holds ($b)
go_wait() { # PATH CONDITION
    i=0
    while [ $i -lt 100 ]; do
        if go_get "$1"; then
            b=${go_got#200 - }
            [ "$b" != "$go_got" ] && eval "$2" && return 0
        fi
        sleep 0.1; i=$((i + 1))
    done
    return 1
}
# memrun NAME [OPTION...] serving gocache -http in the background: go_pid, go_port
go_serve() { # NAME MEMRUN-OPTION...
    n=$1; shift
    go_port=$((20000 + $$ % 1000))
    "$MEMRUN" -q -n "$n" "$@" -- "$GOCACHE_BIN" -http "127.0.0.1:$go_port" >"$T/go.out" 2>"$T/go.err" &
    go_pid=$!
    go_wait /shed 'true' || { fail "gocache -http never answered: $(cat "$T/go.out" "$T/go.err")"; go_stop; return 1; }
}
go_stop() {
    kill -TERM $go_pid 2>/dev/null
    wait $go_pid; rc=$?
}

# A Go cache registered with memlimit survives 600 MiB through 128M, held as holdcache is (at the
# governor tests' fastest rate); the same program registering nothing, or under GOMEMLIMIT alone,
# is OOM-killed.
t_go_cache_survives() {
    go_ready || return
    ms=${GOV_RATES%% *}
    mr --limit 128M --report "$T/r.json" --timeline "$T/tl.csv" -- "$GOCACHE_BIN" -every "${ms}ms"
    gov_holds "$T/r.json" "go cache, 1M per $ms ms" 95 "gocache: added=600 .* mode=memrun"
    # the client owned the runtime's limit: set, and at most the soft limit
    g=$(sed -n 's/.* gomemlimit=\([0-9]*\) .*/\1/p' "$T/out") soft=$(jqr .limits.high "$T/r.json")
    [ -n "$g" ] && [ "$g" -ge $((soft / 4)) ] && [ "$g" -le "$soft" ] || fail "Go limit $g, soft $soft: $(cat "$T/out")"
    # registering nothing, or GOMEMLIMIT alone (memrun's hint, no client): a live cache is not
    # garbage, whatever the GC does
    for how in -no-register -no-client; do
        mr --limit 128M --report "$T/r.json" -- "$GOCACHE_BIN" -every "${ms}ms" $how
        expect_rc 137 "go cache $how: OOM-killed"
        [ "$(jqr .exit.oom_killed "$T/r.json")" = true ] || fail "$how: not an OOM kill: $(jq -c .exit "$T/r.json")"
    done
}

# The client owns the Go runtime's memory limit under memrun: at or under the soft limit, and it
# follows memrunctl set up and down.
t_go_limit_follows() {
    go_ready || return
    n=t-golim-$$
    go_serve $n --limit 256M || return
    soft=$("$MEMRUNCTL" status $n --json | jq -r .soft)
    go_wait /limit '[ "$b" -gt 0 ] && [ "$b" -le "$soft" ]' || fail "Go limit not in (0, soft $soft]: $go_got"
    low=${go_got#200 - }
    "$MEMRUNCTL" set $n --limit 512M >"$T/set" 2>&1 || fail "raise: $(cat "$T/set")"
    go_wait /limit '[ "$b" -gt "$low" ]' || fail "the Go limit did not rise above $low: $go_got"
    high=${go_got#200 - }
    soft=$("$MEMRUNCTL" status $n --json | jq -r .soft)
    [ "$high" -le "$soft" ] || fail "raised Go limit $high above the new soft limit $soft"
    "$MEMRUNCTL" set $n --limit 256M >"$T/set" 2>&1 || fail "lower: $(cat "$T/set")"
    go_wait /limit '[ "$b" -lt "$high" ]' || fail "the Go limit did not fall under $high: $go_got"
    go_stop
    expect_rc 0 "gocache -http ends on SIGTERM"
}

# Shedding reaches HTTP: 503 + Retry-After while memrun asks to shed, 200 once it stops. Deterministic:
# a shed-only policy from half the budget, ~40 MiB of cache, then the limit lowered so that is over
# half of it (shed), then raised again (stop).
t_go_http_sheds() {
    go_ready || return
    printf '[level.moderate]\nusage = 50%%\nactions = shed\n[level.high]\nusage = 70%%\nactions = shed\n[recovery]\ndwell = 300ms\n[governor]\ntarget = 50%%\n' > "$T/goshed.ini"
    n=t-goshed-$$
    go_serve $n --limit 256M --policy "$T/goshed.ini" || return
    k=0
    while [ $k -lt 40 ]; do go_get "/get?k=$k" || fail "GET /get?k=$k failed"; k=$((k + 1)); done
    case $go_got in 200*) ;; *) fail "under 256M: $go_got" ;; esac
    go_get /shed; [ "$go_got" = "200 - 0" ] || fail "shedding with 40M of 256M: $go_got"
    "$MEMRUNCTL" set $n --limit 64M >"$T/set" 2>&1 || fail "lower: $(cat "$T/set")"
    go_wait /shed '[ "$b" = 1 ]' || fail "no shedding at 64M: $go_got $("$MEMRUNCTL" status $n 2>&1)"
    go_get "/get?k=1"
    case $go_got in "503 1 "*) ;; *) fail "while shedding: want 503 with Retry-After: 1, got: $go_got" ;; esac
    "$MEMRUNCTL" set $n --limit 256M >"$T/set" 2>&1 || fail "raise: $(cat "$T/set")"
    go_wait /shed '[ "$b" = 0 ]' || fail "shedding did not stop at 256M: $go_got"
    go_get "/get?k=1"
    case $go_got in "200 - hit"*) ;; *) fail "after shedding: $go_got" ;; esac
    go_stop
    expect_rc 0 "gocache -http ends on SIGTERM"
}

# The user's own GOMEMLIMIT is kept: set before memrun (memrun then sets no hint), or after it.
t_go_users_gomemlimit() {
    go_ready || return
    mr --limit 128M -- env GOMEMLIMIT=100MiB "$GOCACHE_BIN" -total 10M
    expect_rc 0
    expect_out "gocache: added=10 .* mode=memrun gomemlimit=104857600 "
    GOMEMLIMIT=100MiB mr --limit 128M -- "$GOCACHE_BIN" -total 10M
    expect_rc 0
    expect_out "gocache: added=10 .* mode=memrun gomemlimit=104857600 "
    # contrast: memrun's hint is the client's to replace, under the soft limit
    mr --limit 128M -- "$GOCACHE_BIN" -total 10M
    expect_rc 0
    g=$(sed -n 's/.* gomemlimit=\([0-9]*\) .*/\1/p' "$T/out")
    [ -n "$g" ] && [ "$g" -gt 0 ] && [ "$g" -lt 134217728 ] || fail "memrun's hint: $(cat "$T/out")"
}
