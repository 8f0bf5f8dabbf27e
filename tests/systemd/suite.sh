#!/bin/bash
# suite.sh: memrun under a real systemd (252, PID 1, cgroup v2), run inside the VM by
# tests/systemd/run.sh. Each case asserts what systemd itself reports (systemctl show, journalctl)
# and, where the contrast is the point, the same check on the bare service.
# Prints "ok - NAME" / "not ok - NAME" and "systemd: N passed, M failed"; exit 1 if any failed.
set -u
MEMRUN=${MEMRUN:-/usr/bin/memrun}
H=${HELPERS:-/usr/libexec/memrun}
U=/run/systemd/system
PASS=0 FAIL=0 FAILED=""
T=$(mktemp -d /tmp/sdtest.XXXXXX)
export SYSTEMD_PAGER= SYSTEMD_COLORS=0

say() { printf '%s\n' "$*"; }
fail() { say "    FAIL: $*"; TFAIL=1; }
show() { systemctl show -P "$2" "$1"; }
# wait_for UNIT PROP VALUE [SECONDS]: poll until systemctl show says so (bounded; a hang fails)
# (deadlines in seconds of the clock: under TCG one systemctl call can take a good part of one)
wait_for() {
    local end=$((SECONDS + ${4:-30}))
    while [ $SECONDS -le $end ]; do
        [ "$(show "$1" "$2")" = "$3" ] && return 0
        sleep 0.1
    done
    return 1
}
# wait_match UNIT PROP GLOB [SECONDS]: the same, for a shell pattern
wait_match() {
    local end=$((SECONDS + ${4:-30}))
    while [ $SECONDS -le $end ]; do
        # shellcheck disable=SC2053 # the pattern is meant
        [[ "$(show "$1" "$2")" == $3 ]] && return 0
        sleep 0.1
    done
    return 1
}
unit() { cat >"$U/$1"; systemctl daemon-reload; }
gone() { systemctl stop "$@" 2>/dev/null; systemctl reset-failed "$@" 2>/dev/null; true; }
run() {
    TFAIL=0
    "$1"
    if [ $TFAIL = 0 ]; then PASS=$((PASS + 1)); say "ok - $1"; else FAIL=$((FAIL + 1)); FAILED="$FAILED $1"; say "not ok - $1"; fi
}
# the wrapped form of a command, or the bare one
wrap() { if [ "$1" = memrun ]; then shift; echo "$MEMRUN --limit 64M -- $*"; else shift; echo "$*"; fi; }

# ---------------------------------------------------------------- Type=notify, STATUS=, reload, stop
t_notify() {
    for how in bare memrun; do
        u=sd-notify-$how.service
        rm -f "$T/go"
        unit "$u" <<EOF
[Service]
Type=notify
Delegate=yes
Environment=SDSERVICE_READY_FILE=$T/go
ExecStart=$(wrap $how $H/sdservice notify)
ExecReload=/bin/kill -HUP \$MAINPID
EOF
        systemctl start --no-block "$u"
        wait_match "$u" StatusText "starting*" 30 || fail "$how: no STATUS=starting: $(show $u StatusText)"
        [ "$(show $u ActiveState)" = activating ] || fail "$how: active before READY=1: $(show $u ActiveState)"
        touch "$T/go"
        wait_for "$u" ActiveState active 30 || fail "$how: never active: $(systemctl status $u 2>&1 | head -20)"
        st=$(show $u StatusText)
        case $st in *serving*) ;; *) fail "$how: StatusText '$st' lacks the service's STATUS=serving" ;; esac
        if [ $how = memrun ]; then
            [ "$(cat /proc/$(show $u MainPID)/comm)" = memrun ] || fail "memrun: MainPID is not memrun"
            wait_match "$u" StatusText "serving (memrun: ok, * of 64M)" 10 ||
                fail "memrun: StatusText '$(show $u StatusText)' lacks memrun's part"
            systemctl status "$u" 2>&1 | grep -q 'Status: "serving (memrun: ok' || fail "systemctl status shows no memrun STATUS"
        fi
        systemctl reload "$u" || fail "$how: reload failed"
        wait_match "$u" StatusText "reloaded 1*" 10 || fail "$how: after reload: '$(show $u StatusText)'"
        [ "$(show $u ActiveState)" = active ] || fail "$how: not active after reload"
        cg=/sys/fs/cgroup/system.slice/$u
        systemctl stop "$u"
        [ "$(show $u Result)" = success ] || fail "$how: stop: Result=$(show $u Result)"
        [ ! -d "$cg" ] || fail "$how: $cg left after stop"
        journalctl -q -u "$u" --no-pager | grep -qi "left-over process" && fail "$how: systemd saw left-over processes"
        journalctl -q -u "$u" --no-pager | grep -q "sdservice: stopping" || fail "$how: the service never saw SIGTERM"
        gone "$u"
    done
}

# ---------------------------------------------------------------- WatchdogSec=
t_watchdog() {
    for how in bare memrun; do
        u=sd-wd-$how.service
        unit "$u" <<EOF
[Service]
Type=notify
Delegate=yes
WatchdogSec=2
ExecStart=$(wrap $how $H/sdservice notify)
EOF
        systemctl start "$u" || fail "$how: start"
        sleep 5   # more than two watchdog periods: it must still be up, pinging through memrun
        [ "$(show $u ActiveState)" = active ] || fail "$how: the pinging service died: $(show $u Result)"
        systemctl stop "$u"; gone "$u"
        u=sd-wd-stop-$how.service
        unit "$u" <<EOF
[Service]
Type=notify
Delegate=yes
WatchdogSec=2
ExecStart=$(wrap $how $H/sdservice notify --stop-pinging-after 1)
EOF
        systemctl start "$u" || fail "$how: start (stops pinging)"
        wait_for "$u" Result watchdog 30 || fail "$how: a service that stopped pinging was not killed by the watchdog: $(show $u Result) $(show $u ActiveState)"
        gone "$u"
    done
}

# ---------------------------------------------------------------- socket activation
t_socket() {
    port=7701
    for how in bare memrun; do
        s=sd-sock-$how
        port=$((port + 1))
        unit "$s.socket" <<EOF
[Socket]
ListenStream=127.0.0.1:$port
EOF
        unit "$s.service" <<EOF
[Service]
Type=notify
Delegate=yes
ExecStart=$(wrap $how $H/sdservice listen)
EOF
        systemctl start "$s.socket" || fail "$how: socket"
        exec 9<>/dev/tcp/127.0.0.1/$port || { fail "$how: connect"; continue; }
        read -r -t 30 line <&9
        exec 9>&-
        case $line in "hello from sdservice "*) ;; *) fail "$how: the socket answered '$line': $(journalctl -q -u $s.service --no-pager | tail -5)" ;; esac
        [ "$(show $s.service ActiveState)" = active ] || fail "$how: service not active"
        [ $how = bare ] || [ "$(cat /proc/$(show $s.service MainPID)/comm)" = memrun ] || fail "memrun is not the main process"
        systemctl stop "$s.socket" "$s.service"; gone "$s.socket" "$s.service"
    done
}

# ---------------------------------------------------------------- OOM: 137, restart, journal
t_oom_restart() {
    u=sd-oom.service
    unit "$u" <<EOF
[Unit]
StartLimitIntervalSec=0
[Service]
Delegate=yes
ExecStart=$MEMRUN --limit 32M -- $H/leak
Restart=on-failure
RestartSec=1
RestartPreventExitStatus=125
EOF
    systemctl start "$u"
    end=$((SECONDS + 60))
    while [ $SECONDS -le $end ] && [ "$(show $u NRestarts)" -lt 1 ]; do sleep 0.2; done
    [ "$(show $u NRestarts)" -ge 1 ] || fail "not restarted: NRestarts=$(show $u NRestarts) Result=$(show $u Result)"
    # (ExecMainStatus is the running instance's by now: the failed one's is in the journal)
    journalctl -q -u "$u" --no-pager | grep -q "Main process exited, code=exited, status=137" ||
        fail "no 'status=137' exit in the journal: $(journalctl -q -u $u --no-pager | tail -5)"
    journalctl -q -u "$u" -p warning --no-pager | grep -q "OOM: the kernel OOM killer ended leak" ||
        fail "no OOM line at warning: $(journalctl -q -u $u --no-pager -o with-unit | tail -5)"
    journalctl -q -u "$u" -p warning --no-pager | grep -q "memrun: exited\|OOM-killed after" &&
        fail "the summary line is at warning or above"
    journalctl -q -u "$u" -p info --no-pager | grep -q "OOM-killed after" || fail "no summary line at info"
    systemctl stop "$u"; gone "$u"
    # memrun's own configuration error: not restarted
    u=sd-bad.service
    unit "$u" <<EOF
[Service]
Delegate=yes
ExecStart=$MEMRUN --limit 10X -- true
Restart=on-failure
RestartSec=1
RestartPreventExitStatus=125
EOF
    systemctl start "$u"
    wait_for "$u" ActiveState failed 20 || fail "bad option: $(show $u ActiveState)"
    sleep 3
    [ "$(show $u NRestarts)" = 0 ] || fail "exit 125 restarted: NRestarts=$(show $u NRestarts)"
    [ "$(show $u ExecMainStatus)" = 125 ] || fail "ExecMainStatus=$(show $u ExecMainStatus), want 125"
    journalctl -q -u "$u" -p err --no-pager | grep -q "'10X': not a size" || fail "the error is not at err in the journal"
    gone "$u"
}

# ---------------------------------------------------------------- --wait-all
t_wait_all() {
    for opt in --wait-all ""; do
        u=sd-fork${opt:+-wait}.service
        rm -f "$T/daemon-done"
        unit "$u" <<EOF
[Service]
Delegate=yes
ExecStart=$MEMRUN --limit 64M $opt -- /bin/sh -c '(sleep 3; touch $T/daemon-done) & echo launched'
EOF
        systemctl start "$u"
        sleep 1
        if [ -n "$opt" ]; then
            [ "$(show $u ActiveState)" = active ] || fail "--wait-all: not active while the daemon runs: $(show $u ActiveState)"
            wait_for "$u" ActiveState inactive 30 || fail "--wait-all: still $(show $u ActiveState)"
            [ -e "$T/daemon-done" ] || fail "--wait-all: the daemon was killed early"
            [ "$(show $u Result)" = success ] || fail "--wait-all: Result=$(show $u Result)"
        else
            [ "$(show $u ActiveState)" = inactive ] || fail "without --wait-all: $(show $u ActiveState)"
            sleep 3
            [ ! -e "$T/daemon-done" ] || fail "without --wait-all the daemon outlived the command"
        fi
        gone "$u"
    done
}

# ---------------------------------------------------------------- systemd-run --scope
t_systemd_run_scope() {
    out=$(systemd-run --quiet --scope -p Delegate=yes "$MEMRUN" -q --limit 64M -- /bin/sh -c 'cat /sys/fs/cgroup$MEMRUN_CGROUP/memory.max' 2>&1)
    [ "$out" = 67108864 ] || fail "systemd-run --scope: '$out'"
    systemctl start user@1000.service || { fail "user@1000.service"; return; }
    out=$(runuser -u user -- env XDG_RUNTIME_DIR=/run/user/1000 DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/1000/bus \
        systemd-run --user --quiet --scope -p Delegate=yes "$MEMRUN" -q --limit 64M -- /bin/sh -c 'id -u; cat /sys/fs/cgroup$MEMRUN_CGROUP/memory.max' 2>&1)
    [ "$out" = "1000
67108864" ] || fail "systemd-run --user --scope: '$out'"
    out=$(runuser -u user -- env XDG_RUNTIME_DIR=/run/user/1000 DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/1000/bus \
        systemd-run --user --quiet --scope -p Delegate=yes "$MEMRUN" -q --limit 32M -- $H/leak 2>&1)
    rc=$?
    [ $rc = 137 ] || fail "user scope leak: exit $rc: $out"
}

# ---------------------------------------------------------------- no delegation: a scope over D-Bus
t_transient_scope() {
    systemctl start user@1000.service || { fail "user@1000.service"; return; }
    ue="env XDG_RUNTIME_DIR=/run/user/1000 DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/1000/bus"
    d=$(mktemp -d /tmp/scope.XXXXXX); chmod 777 "$d"
    # the unprivileged user types memrun in a cgroup that is not delegated to it
    out=$(runuser -u user -- $ue "$MEMRUN" -v --limit 64M -- /bin/sh -c 'id -u; cat /sys/fs/cgroup$MEMRUN_CGROUP/memory.max; cat /proc/self/cgroup' 2>"$d/err")
    rc=$?
    [ $rc = 0 ] || fail "user: exit $rc: $(cat "$d/err")"
    [ "$(echo "$out" | sed -n 1p)" = 1000 ] || fail "user: not uid 1000: $out"
    [ "$(echo "$out" | sed -n 2p)" = 67108864 ] || fail "user: memory.max: $out $(cat "$d/err")"
    echo "$out" | grep -q 'user@1000.service/.*memrun-[0-9]*.scope/' || fail "user: not in a user scope: $out"
    grep -q "asking the user manager for memrun-[0-9]*.scope (Delegate=yes)" "$d/err" || fail "-v does not say what was asked: $(cat "$d/err")"
    runuser -u user -- $ue "$MEMRUN" --limit 32M --report "$d/r.json" -- $H/leak >/dev/null 2>"$d/err"
    rc=$?
    [ $rc = 137 ] || fail "user leak: exit $rc: $(cat "$d/err")"
    [ "$(jq -r .exit.oom_killed "$d/r.json" 2>&1)" = true ] || fail "user leak report: $(cat "$d/r.json" 2>&1 | head -c 300)"
    sleep 1
    left=$(runuser -u user -- $ue systemctl --user list-units --all --no-legend 'memrun-*' 2>&1)
    [ -z "$left" ] || fail "scopes left behind: $left"
    left=$(find /sys/fs/cgroup -type d -name 'memrun-[0-9]*' 2>/dev/null)
    [ -z "$left" ] || fail "cgroups left behind: $left"
    # root in a service without Delegate=yes gets a system scope
    u=sd-nodeleg.service
    unit "$u" <<EOF
[Service]
Type=exec
ExecStart=$MEMRUN --limit 64M -- /bin/sh -c 'cat /sys/fs/cgroup\$\$MEMRUN_CGROUP/memory.max'
EOF
    systemctl start "$u"
    wait_for "$u" ActiveState inactive 30 || fail "no-delegate service: $(show $u ActiveState)"
    [ "$(show $u Result)" = success ] || fail "no-delegate service: Result=$(show $u Result): $(journalctl -q -u $u --no-pager | tail -5)"
    journalctl -q -u "$u" --no-pager | grep -q 67108864 || fail "no-delegate service: $(journalctl -q -u $u --no-pager | tail -5)"
    gone "$u"
    rm -rf "$d"
}

# ---------------------------------------------------------------- the shipped units
t_shipped_units() {
    d=/usr/lib/systemd/system
    for f in memrun-example.service memrun@.service; do
        [ -f "$d/$f" ] || fail "make install did not ship $d/$f"
    done
    [ -f /usr/share/memrun/systemd/memrun-wrap.conf ] || fail "no drop-in example installed"
    # /usr/local/bin/my-service stands for the user's service: a notify service
    mkdir -p /usr/local/bin
    printf '#!/bin/sh\nexec %s/sdservice notify\n' "$H" >/usr/local/bin/my-service
    chmod 755 /usr/local/bin/my-service
    systemctl daemon-reload
    systemctl start memrun-example.service || fail "memrun-example.service did not start: $(journalctl -q -u memrun-example --no-pager | tail -5)"
    u=memrun-example.service
    [ "$(show $u ActiveState)" = active ] || fail "example: $(show $u ActiveState)"
    wait_match $u StatusText "serving (memrun: *" 10 || fail "example: StatusText '$(show $u StatusText)'"
    systemctl stop $u; gone $u
    # the template: memrun@NAME runs /usr/local/bin/NAME
    systemctl start memrun@my-service.service || fail "memrun@my-service did not start"
    u=memrun@my-service.service
    [ "$(show $u ActiveState)" = active ] || fail "template: $(show $u ActiveState)"
    [ "$(cat /proc/$(show $u MainPID)/comm)" = memrun ] || fail "template: main process is not memrun"
    systemctl stop $u; gone $u
    # the drop-in wraps an existing unit
    unit my-service.service <<EOF
[Service]
Type=notify
ExecStart=/usr/local/bin/my-service
EOF
    mkdir -p /etc/systemd/system/my-service.service.d
    cp /usr/share/memrun/systemd/memrun-wrap.conf /etc/systemd/system/my-service.service.d/memrun.conf
    systemctl daemon-reload
    systemctl start my-service.service || fail "wrapped my-service did not start"
    u=my-service.service
    [ "$(cat /proc/$(show $u MainPID)/comm)" = memrun ] || fail "drop-in: main process is not memrun"
    wait_match $u StatusText "serving (memrun: *" 10 || fail "drop-in: StatusText '$(show $u StatusText)'"
    systemctl stop $u; gone $u
    rm -rf /etc/systemd/system/my-service.service.d
}

# ---------------------------------------------------------------- the packages
# memrun comes in as the .debs make deb built (/debs), installed here with dpkg as an operator would:
# their dependencies (libinih1, libseccomp2, libmicrohttpd12) are in the root filesystem.
dpkg -i /debs/*.deb >"$T/dpkg.log" 2>&1
DPKG_RC=$?
t_debs_installed() {
    [ $DPKG_RC = 0 ] || fail "dpkg -i /debs/*.deb: exit $DPKG_RC: $(tail -5 "$T/dpkg.log")"
    for p in memrun libmemlimit0 libmemlimit-dev; do
        [ "$(dpkg-query -W -f '${Status}' $p 2>/dev/null)" = "install ok installed" ] || fail "$p is not installed"
    done
    dpkg -L memrun | grep -qx /usr/bin/memrun || fail "memrun's package has no /usr/bin/memrun: $(dpkg -L memrun | head)"
    [ "$(command -v memrun)" = /usr/bin/memrun ] || fail "memrun on PATH: $(command -v memrun)"
    v=$(dpkg-query -W -f '${Version}' memrun)
    [ "$(memrun --version)" = "memrun $v" ] || fail "memrun --version '$(memrun --version)', the package's $v"
    say "    # $(memrun --version), packages: $(ls /debs | tr '\n' ' ')"
    systemctl cat memrun@.service >/dev/null 2>&1 || fail "systemd does not find memrun@.service from the package"
    # the example unit runs /usr/local/bin/my-service, which this machine lacks: installed, never enabled or started
    [ "$(systemctl is-enabled memrun-example.service 2>&1)" = disabled ] ||
        fail "memrun-example.service is $(systemctl is-enabled memrun-example.service 2>&1) after install"
    [ "$(show memrun-example.service ActiveState)" = inactive ] ||
        fail "memrun-example.service was started by the install: $(show memrun-example.service ActiveState)"
    dpkg -L memrun | grep -q '/systemd/system/memrun@.service$' || fail "memrun@.service is not the package's"
    ls /usr/lib/*/libmemlimit.so.0 >/dev/null 2>&1 || fail "libmemlimit.so.0 missing"
    [ -f /usr/include/memlimit.h ] || fail "memlimit.h missing"
}

say "# memrun systemd suite: $(systemctl --version | head -1), $(systemctl is-system-running), kernel $(uname -r)"
for t in ${MEMRUN_SYSTEMD_TESTS:-t_debs_installed t_notify t_watchdog t_socket t_oom_restart t_wait_all t_systemd_run_scope t_transient_scope t_shipped_units}; do
    run "$t"
done
say "systemd: $PASS passed, $FAIL failed"
[ -z "$FAILED" ] || say "failed:$FAILED"
rm -rf "$T"
[ $FAIL = 0 ]
