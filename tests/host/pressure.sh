# pressure.sh: MEMORY_PRESSURE_WATCH as memrun's own socket (runner/control/psrv.h). sd-event's
# sd_event_add_memory_pressure (libsystemd >= 254; Debian 12 has 252) and GLib's memory monitor
# follow what it names. sdwatch (tests/helpers/sdwatch.c) is a real sd-event program, linked against
# bookworm-backports' libsystemd 254 (build-aux/libsystemd-bpo.sh); pwatch (tests/helpers/pwatch.c)
# reads the protocol the same way without libsystemd, for what sd-event cannot be made to do (a bad
# trigger, an outsider). Both drop half their cache on each event and trim malloc, as sd-event's
# default handler does. On the host (v1/hybrid) and in the cgroup v2 VM. Sourced by run.sh.
PWATCH=$HELPERS/pwatch
SDWATCH=$HELPERS/sdwatch

# sd-event itself follows memrun's socket: libsystemd's sd_event_add_memory_pressure() connects,
# writes its trigger, and dispatches the program's handler on every governor ask, which holds
# 600M of allocations through 64M. The contrast: the same program watching the kernel's pressure
# file is OOM-killed.
t_pressure_watch_sdevent() {
    [ -x "$SDWATCH" ] || { skip "no sdwatch: libsystemd >= 254 could not be fetched from bookworm-backports (make's build/libsystemd-bpo.log says why)"; return; }
    mr --limit 64M --report "$T/r.json" -- "$SDWATCH" --total 600 --every-ms 10
    expect_rc 0 "sd-event on memrun's socket"
    grep -q 'kind=socket watch=on libsystemd=2[5-9][0-9]' "$T/out" ||
        fail "sd-event did not watch memrun's socket with libsystemd >= 254: $(cat "$T/out" "$T/err")"
    events=$(sed -n 's/.*events=\([0-9]*\).*/\1/p' "$T/out")
    [ "${events:-0}" -ge 1 ] || fail "sd-event dispatched no pressure event: $(cat "$T/out")"
    [ "$(jqr .pressure_watch.mode "$T/r.json")" = memrun ] || fail "report: $(jq -c .pressure_watch "$T/r.json")"
    [ "$(jqr .pressure_watch.clients "$T/r.json")" = 1 ] || fail "report clients: $(jq -c .pressure_watch "$T/r.json")"
    # sd-event writes its default trigger (some 200 ms per 2 s); on v2 memrun arms it on the sandbox
    [ $MODE != v2 ] || [ "$(jqr .pressure_watch.triggers "$T/r.json")" = 1 ] ||
        fail "sd-event's trigger not armed: $(jq -c .pressure_watch "$T/r.json")"
    [ "$(jqr .pressure_watch.pulses.governor "$T/r.json")" -ge 1 ] || fail "no governor pulse: $(jq -c .pressure_watch "$T/r.json")"
    [ "$(jqr .pressure_watch.freed "$T/r.json")" -ge $((64 * 1048576)) ] ||
        fail "what the pulses gave back is under 64M: $(jq -c .pressure_watch "$T/r.json")"
    [ "$(jqr .events.oom_kill "$T/r.json")" = 0 ] || fail "oom_kill: $(jq -c .events "$T/r.json")"
    [ "$(jqr .governor.giveups "$T/r.json")" = 0 ] || fail "the governor gave up: $(jq -c .actions "$T/r.json")"
    say "    $(cat "$T/out")"

    mr --limit 64M --pressure-watch=kernel --report "$T/k.json" -- "$SDWATCH" --total 600 --every-ms 10
    expect_rc 137 "contrast: sd-event on the kernel's pressure file"
    [ "$(jqr .pressure_watch.mode "$T/k.json")" = kernel ] || fail "contrast report: $(jq -c .pressure_watch "$T/k.json")"
}

# A program that follows only the pressure watch survives 600M through 64M when memrun's socket
# pulses on the governor's asks; the same program on the kernel's pressure file is OOM-killed (the
# kernel reports stalls, which come too late and too rarely to hold a soft limit).
t_pressure_watch_governor() {
    lim_need "$PWATCH" || return
    mr --limit 64M --report "$T/r.json" -- "$PWATCH" --total 600 --every-ms 10 --out "$T/events"
    expect_rc 0 "pwatch on memrun's socket"
    grep -q 'kind=socket' "$T/out" || fail "pwatch did not find a socket: $(cat "$T/out")"
    events=$(sed -n 's/.*events=\([0-9]*\).*/\1/p' "$T/out")
    [ "${events:-0}" -ge 1 ] || fail "pwatch heard nothing: $(cat "$T/out")"
    [ "$(jqr .pressure_watch.mode "$T/r.json")" = memrun ] || fail "report: $(jq -c .pressure_watch "$T/r.json")"
    [ "$(jqr .pressure_watch.clients "$T/r.json")" = 1 ] || fail "report clients: $(jq -c .pressure_watch "$T/r.json")"
    [ "$(jqr .pressure_watch.pulses.governor "$T/r.json")" -ge 1 ] || fail "no governor pulse: $(jq -c .pressure_watch "$T/r.json")"
    [ "$(jqr .pressure_watch.freed "$T/r.json")" -ge $((64 * 1048576)) ] ||
        fail "what the pulses gave back is under 64M: $(jq -c .pressure_watch "$T/r.json")"
    [ "$(jqr .events.oom_kill "$T/r.json")" = 0 ] || fail "oom_kill: $(jq -c .events "$T/r.json")"
    [ "$(jqr .governor.giveups "$T/r.json")" = 0 ] || fail "the governor gave up: $(jq -c .actions "$T/r.json")"
    # the socket and its directory are gone with the run
    p=$(jqr .pressure_watch.path "$T/r.json")
    [ ! -e "$p" ] && [ ! -e "${p%/pressure}" ] || fail "left behind: $(ls -la "${p%/pressure}" 2>&1)"

    mr --limit 64M --pressure-watch=kernel --report "$T/k.json" -- "$PWATCH" --total 600 --every-ms 10
    expect_rc 137 "contrast: pwatch on the kernel's pressure file"
    [ "$(jqr .pressure_watch.mode "$T/k.json")" = kernel ] || fail "contrast report: $(jq -c .pressure_watch "$T/k.json")"
    case $(jqr .pressure_watch.path "$T/k.json") in */memory.pressure|/proc/pressure/memory) ;;
        *) fail "contrast path: $(jq -c .pressure_watch "$T/k.json")" ;; esac
}

# The socket relays the kernel's pressure too: a client's own trigger is armed on the sandbox's
# memory.pressure. With no governor (hold = false) and memory.high far below what the program
# allocates, the throttle stalls it, the trigger fires, and the client hears it through the socket.
t_pressure_watch_kernel_relay() {
    lim_need "$PWATCH" || return
    [ $MODE = v2 ] || { skip "cgroup v2 only (memory.high throttling stalls; runs in the VM suite)"; return; }
    printf '[governor]\nhold = false\n' > "$T/nohold.ini"
    mr --policy "$T/nohold.ini" --pressure-watch=memrun --limit 512M --soft 24M --report "$T/r.json" -- \
        "$PWATCH" --total 200 --every-ms 2
    expect_rc 0
    [ "$(jqr .pressure_watch.triggers "$T/r.json")" = 1 ] || fail "no trigger armed: $(jq -c .pressure_watch "$T/r.json")"
    [ "$(jqr .pressure_watch.pulses.kernel "$T/r.json")" -ge 1 ] || fail "no kernel pressure relayed: $(jq -c .pressure_watch "$T/r.json")"
    [ "$(jqr .pressure_watch.pulses.governor "$T/r.json")" = 0 ] || fail "governor pulses without a governor: $(jq -c .pressure_watch "$T/r.json")"
    events=$(sed -n 's/.*events=\([0-9]*\).*/\1/p' "$T/out")
    [ "${events:-0}" -ge 1 ] || fail "pwatch heard nothing: $(cat "$T/out")"
}

# What the socket accepts: only the sandbox's processes; a bad trigger is survived; the option's
# values; auto names the file when nothing holds the soft limit.
t_pressure_watch_socket() {
    mr -q --limit 64M -- sh -c 'echo "$MEMORY_PRESSURE_WATCH"; [ -S "$MEMORY_PRESSURE_WATCH" ] && echo socket'
    expect_rc 0
    watch=$(sed -n 1p "$T/out")
    case $watch in "$MEMRUN_RUNTIME_DIR"/pressure.memrun-*/pressure) ;;
        *) fail "MEMORY_PRESSURE_WATCH '$watch' (expected $MEMRUN_RUNTIME_DIR/pressure.NAME.XXXXXX/pressure)" ;; esac
    expect_out '^socket$'
    # a process outside the sandbox is refused (connect succeeds, the server closes at once)
    rm -f "$T/path" # $T is shared: t_name wrote one
    mr -q --limit 64M -- sh -c 'echo "$MEMORY_PRESSURE_WATCH" > '"$T/path"'; sleep 2' &
    bg=$!
    i=0; while [ ! -s "$T/path" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    out=$(MEMORY_PRESSURE_WATCH=$(cat "$T/path") MEMORY_PRESSURE_WRITE=c29tZSAyMDAwMDAgMjAwMDAwMAA= \
        timeout 5 "$PWATCH" --total 4 --every-ms 200 2>&1)
    rc=$?
    wait $bg
    [ $rc = 2 ] && echo "$out" | grep -q 'hung up\|closed\|writing the trigger' || fail "outsider not refused (rc $rc): $out"
    # a trigger memrun cannot parse: the client still hears the governor, memrun says so under -v
    mr -v --limit 64M --report "$T/b.json" -- env MEMORY_PRESSURE_WRITE=Ym9ndXMA "$PWATCH" --total 300 --every-ms 10
    expect_rc 0 "a client whose trigger is 'bogus'"
    expect_err "wrote no trigger memrun understands"
    [ "$(jqr .pressure_watch.triggers "$T/b.json")" = 0 ] || fail "a bogus trigger armed: $(jq -c .pressure_watch "$T/b.json")"
    mr -q --pressure-watch=nonsense -- true
    expect_rc 125
    expect_err "--pressure-watch 'nonsense': expected auto, memrun or kernel"
    printf '[governor]\nhold = false\n' > "$T/nohold.ini"
    mr -q --policy "$T/nohold.ini" -- sh -c 'echo "$MEMORY_PRESSURE_WATCH"'
    case $(cat "$T/out") in */memory.pressure|/proc/pressure/memory) ;; *) fail "auto without a governor: $(cat "$T/out")" ;; esac
}
