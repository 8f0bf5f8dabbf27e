#!/bin/sh
# Integration tests against a real kernel: this host's v1/hybrid cgroups, or (same file) cgroup v2
# inside the qemu VM. POSIX sh so busybox runs it. Needs MEMRUN (memrun binary), EXAMPLES (dir with
# leak), jq, and root. Prints "ok"/"not ok" per test and "host: N passed, M failed, K skipped".
# shellcheck disable=SC2317  # test functions are called indirectly

MEMRUN=${MEMRUN:?set MEMRUN to the memrun binary}
EXAMPLES=${EXAMPLES:?set EXAMPLES to the directory holding the example programs}
LEAK=$EXAMPLES/leak
CACHEFILL=$EXAMPLES/cachefill
HELPERS=${HELPERS:-$EXAMPLES}
MLCLIENT=$HELPERS/mlclient
CONFIGS=${CONFIGS:?set CONFIGS to the directory holding the shipped policies}
CG=/sys/fs/cgroup
T=$(mktemp -d "${TMPDIR:-/tmp}/memrun-test.XXXXXX") || exit 1
export MEMRUN_RUNTIME_DIR="$T/run"
PASS=0 FAIL=0 SKIP=0 FAILED=""

if [ -f $CG/cgroup.controllers ]; then MODE=v2; else MODE=v1; fi
# The directory sandboxes appear in when memrun is started from this shell.
own_mem() { sed -n 's/^[0-9]*:[^:]*memory[^:]*:\(.*\)/\1/p' /proc/self/cgroup; }
if [ $MODE = v2 ]; then
    OWN=$(sed -n 's/^0:://p' /proc/self/cgroup)
    SANDBOXES=$CG${OWN%/}
else
    SANDBOXES=$CG/memory$(own_mem)
fi
memdir() { if [ $MODE = v2 ]; then echo "$CG$1"; else echo "$CG/memory$1"; fi; }

cleanup() { rm -rf "$T"; }
trap cleanup EXIT

say() { printf '%s\n' "$*"; }
fail() { say "    FAIL: $*"; TFAIL=1; }
skip() { say "    SKIP: $*"; TSKIP=1; }
expect_rc() { [ "$rc" = "$1" ] || fail "exit status $rc, expected $1${2:+ ($2)}"; }
expect_err() { grep -q -- "$1" "$T/err" || fail "stderr lacks '$1': $(head -c 600 "$T/err")"; }
expect_out() { grep -q -- "$1" "$T/out" || fail "stdout lacks '$1': $(head -c 600 "$T/out")"; }
jqr() { jq -r "$1" "$2"; }
sandboxes() { ls "$SANDBOXES" 2>/dev/null | grep -E '^(memrun-|t-)' | sort; }
# memrun with stdout/stderr captured; sets rc
# bounded: a hang is a failure (124), never a stuck CI run
mr() { timeout "${MEMRUN_TEST_TIMEOUT:-120}" "$MEMRUN" "$@" >"$T/out" 2>"$T/err"; rc=$?; }
alive() { [ -d "/proc/$1" ] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }
# Tests that change mounts do it in a mount namespace of their own whose mounts are private, so
# nothing reaches the host. unshare's --propagation private starts at "/", which in a chroot is no
# mount point (EINVAL): there the namespace keeps its propagation and NS_PRIVATE, run first inside
# it, makes /sys and /proc (all that the tests change) private itself, or stops the test.
if unshare -m --propagation private true 2>/dev/null; then NS_PROPAGATION=private; else NS_PROPAGATION=unchanged; fi
NS_PRIVATE=':'
[ $NS_PROPAGATION = private ] || NS_PRIVATE='{ mount --make-rprivate /sys && mount --make-rprivate /proc; } || exit 89'


run() {
    TFAIL=0 TSKIP=0
    before=$(sandboxes)
    # a name that is no test function is a failure, never a pass
    if command -v "$1" >/dev/null 2>&1 && [ "$(command -v "$1")" = "$1" ]; then "$1"; else fail "no such test: $1"; fi
    after=$(sandboxes)
    # new sandbox directories whose memrun is gone are leftovers; a live memrun-PID is someone
    # else's run going on beside this suite
    left=""
    for d in $(printf '%s\n' "$after" | grep -vxF "$before"); do
        case $d in memrun-*) [ -d "/proc/${d#memrun-}" ] && continue ;; esac
        # every test names its sandboxes t-...-$$: another suite's (running beside this one) are not ours
        case $d in t-*-$$) ;; t-*) continue ;; esac
        left="$left $d"
    done
    [ -z "$left" ] || fail "sandbox cgroups left behind:$left"
    if [ $TSKIP = 1 ] && [ $TFAIL = 0 ]; then SKIP=$((SKIP + 1)); say "ok - $1 # SKIP"
    elif [ $TFAIL = 0 ]; then PASS=$((PASS + 1)); say "ok - $1"
    else FAIL=$((FAIL + 1)); FAILED="$FAILED $1"; say "not ok - $1"; fi
}

# ---------------------------------------------------------------- exit status
t_exit_passthrough() {
    mr -q -- sh -c 'exit 0'; expect_rc 0
    mr -q -- sh -c 'exit 3'; expect_rc 3
    mr -q -- sh -c 'exit 124'; expect_rc 124
}
t_exit_signal() {
    mr -q -- sh -c 'kill -TERM $$'; expect_rc 143 "128+SIGTERM"
    mr -q -- sh -c 'kill -SEGV $$'; expect_rc 139 "128+SIGSEGV"
}
t_exit_126_127() {
    printf 'not a program\n' > "$T/data"; chmod 644 "$T/data"
    mr -- "$T/data"; expect_rc 126; expect_err "cannot execute"
    mr -- /nonexistent/cmd; expect_rc 127; expect_err "command not found"
    mr -- memrun-no-such-command-$$; expect_rc 127; expect_err "memrun-no-such-command-$$: command not found"
}
t_stdio_passthrough() {
    out=$(echo hello | "$MEMRUN" -q -- cat); [ "$out" = hello ] || fail "stdin/stdout not passed through: '$out'"
}

# ---------------------------------------------------------------- bad input: 125, nothing left behind
bad() {  # bad EXPECTED-TEXT ARGS...
    want=$1; shift
    mr "$@" sh -c 'echo started > '"$T/started"
    expect_rc 125 "$*"; expect_err "$want"
    [ ! -e "$T/started" ] || { fail "the command ran despite: $*"; rm -f "$T/started"; }
}
t_bad_sizes() {
    for s in "" -1 1.5.5G 10X 99999999999T abc 0x10 1e3 " 1G"; do
        bad "'$s'" --limit "$s" --
    done
    bad "'5Q'" --soft 5Q --limit 1G --
    bad "'7Z'" --swap 7Z --
    bad "too large" --limit 99999999999T --
    bad "'0'" --limit 0 --
}
t_bad_options() {
    bad "above --limit" --limit 64M --soft 128M --
    bad "needs a --limit" --soft 50% --
    bad "unknown option '--frobnicate'" --frobnicate --
    bad "unknown option '-Z'" -Z --
    mr --limit; expect_rc 125; expect_err "'--limit' needs a value"
    bad "not a usable sandbox name" --name a/b --
    bad "absolute cgroup path" --cgroup relative/path --
    mr --limit 1G; expect_rc 125; expect_err "no command given"
}
t_bad_cgroup_parent() {
    bad "no such cgroup" --cgroup /memrun-test-no-such-cgroup-$$ --
}
t_missing_cgroupfs() {
    MEMRUN_CGROUP_ROOT=$T/nowhere mr -- sh -c "echo started > $T/started"
    expect_rc 125; expect_err "no cgroup filesystem at $T/nowhere"
    [ ! -e "$T/started" ] || fail "the command ran"
}
fake_tree() {  # a fake cgroupfs + proc in $T/fake; $1 = v2-nomem | v1
    rm -rf "$T/fake"; mkdir -p "$T/fake/cg" "$T/fake/proc/self"
    case $1 in
    v2-nomem)
        printf 'cpuset cpu io pids\n' > "$T/fake/cg/cgroup.controllers"
        : > "$T/fake/cg/cgroup.subtree_control"
        printf '0::/\n' > "$T/fake/proc/self/cgroup" ;;
    v1)
        mkdir -p "$T/fake/cg/memory/me"
        echo 9223372036854771712 > "$T/fake/cg/memory/memory.limit_in_bytes"
        printf '4:memory:/me\n0::/\n' > "$T/fake/proc/self/cgroup" ;;
    esac
}
t_v2_without_memory_controller() {
    fake_tree v2-nomem
    MEMRUN_CGROUP_ROOT=$T/fake/cg MEMRUN_PROC_ROOT=$T/fake/proc mr -- true
    expect_rc 125; expect_err "no memory controller"
}
t_readonly_cgroupfs() {
    fake_tree v1
    if ! mount --bind "$T/fake/cg" "$T/fake/cg" 2>/dev/null || ! mount -o remount,ro,bind "$T/fake/cg" 2>/dev/null; then
        umount "$T/fake/cg" 2>/dev/null; skip "cannot make a read-only bind mount here"; return
    fi
    MEMRUN_CGROUP_ROOT=$T/fake/cg MEMRUN_PROC_ROOT=$T/fake/proc mr -- sh -c "echo started > $T/started"
    umount "$T/fake/cg"
    expect_rc 125; expect_err "read-only"
    [ ! -e "$T/started" ] || fail "the command ran"
    [ -z "$(ls "$T/fake/cg/memory/me")" ] || fail "left something in the fake tree: $(ls "$T/fake/cg/memory/me")"
}

# ---------------------------------------------------------------- limits as the sandbox sees them
t_limits_visible() {
    mr -q --limit 64M -- sh -c 'echo "$MEMRUN_CGROUP"; cat /proc/self/cgroup'
    expect_rc 0
    path=$(head -1 "$T/out")
    grep -q ":$path\$" "$T/out" || fail "the command is not in its sandbox $path: $(cat "$T/out")"
    if [ $MODE = v2 ]; then
        mr -q --limit 64M -- sh -c 'd=/sys/fs/cgroup$MEMRUN_CGROUP; cat $d/memory.max $d/memory.high $d/memory.swap.max $d/memory.oom.group'
        # memory.high is kept in pages: 90% of 64M rounded down to a page
        want=$(printf '67108864\n%s\n0\n1' $((67108864 * 9 / 10 / 4096 * 4096)))
        [ "$(cat "$T/out")" = "$want" ] || fail "v2 limits: got '$(tr '\n' ' ' < "$T/out")', want '$(echo $want)'"
        mr -q --limit 64M --soft 32M --swap 16M -- sh -c 'd=/sys/fs/cgroup$MEMRUN_CGROUP; cat $d/memory.high $d/memory.swap.max'
        [ "$(tr '\n' ' ' < "$T/out")" = "33554432 16777216 " ] || fail "--soft/--swap: $(cat "$T/out")"
        # v2 starts the command inside the sandbox with clone3(CLONE_INTO_CGROUP), no fallback
        mr -v -- true; grep -q "falling back to fork" "$T/err" && fail "clone3 path not taken: $(cat "$T/err")"
    else
        mr -q --limit 64M -- sh -c 'cat /sys/fs/cgroup/memory$MEMRUN_CGROUP/memory.limit_in_bytes'
        [ "$(cat "$T/out")" = 67108864 ] || fail "memory.limit_in_bytes: $(cat "$T/out")"
        if [ -f "$SANDBOXES/memory.memsw.limit_in_bytes" ]; then
            mr -q --limit 64M --swap 16M -- sh -c 'cat /sys/fs/cgroup/memory$MEMRUN_CGROUP/memory.memsw.limit_in_bytes'
            [ "$(cat "$T/out")" = $((64 * 1048576 + 16 * 1048576)) ] || fail "memsw: $(cat "$T/out")"
        fi
    fi
}
t_environment() {
    mr -q --limit 100M --soft 50M -- sh -c 'echo "$MEMRUN_LIMIT $MEMRUN_SOFT_LIMIT $GOMEMLIMIT $MEMRUN_HINTS"'
    [ "$(cat "$T/out")" = "104857600 52428800 52428800 GOMEMLIMIT,NODE_OPTIONS,JAVA_TOOL_OPTIONS,DOTNET_GCHeapHardLimit" ] ||
        fail "env: $(cat "$T/out")"
    # the user's own GOMEMLIMIT is kept and not called a hint (nor is a stale MEMRUN_HINTS passed on)
    GOMEMLIMIT=1GiB MEMRUN_HINTS=GOMEMLIMIT mr -q --no-hints --limit 100M -- sh -c 'echo "$GOMEMLIMIT ${MEMRUN_HINTS-unset}"'
    [ "$(cat "$T/out")" = "1GiB unset" ] || fail "an existing GOMEMLIMIT was overwritten or called a hint: $(cat "$T/out")"
    GOMEMLIMIT=1GiB mr -q --limit 100M -- sh -c 'echo "$GOMEMLIMIT ${MEMRUN_HINTS-unset}"'
    [ "$(cat "$T/out")" = "1GiB NODE_OPTIONS,JAVA_TOOL_OPTIONS,DOTNET_GCHeapHardLimit" ] ||
        fail "an existing GOMEMLIMIT was overwritten or called a hint: $(cat "$T/out")"
    mr -q --no-hints --limit 100M -- sh -c 'echo "${GOMEMLIMIT-unset} ${MEMRUN_HINTS-unset}"'
    [ "$(cat "$T/out")" = "unset unset" ] || fail "--no-hints still exported GOMEMLIMIT: $(cat "$T/out")"
}
t_name() {
    rm -f "$T/path"  # $T is shared, and the redirection inside is the background child's
    "$MEMRUN" -q --name t-named-$$ -- sh -c 'echo "$MEMRUN_CGROUP" > '"$T/path"'; sleep 1' &
    pid=$!
    i=0; while [ ! -s "$T/path" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
    case $(cat "$T/path") in */t-named-$$) ;; *) fail "sandbox path $(cat "$T/path") not named t-named-$$" ;; esac
    mr --name t-named-$$ -- true
    expect_rc 125 "the name is in use"; expect_err "already exists"
    wait $pid || fail "the first memrun failed"
}

# ---------------------------------------------------------------- OOM
t_oom_137_and_report() {
    mr --limit 64M --report "$T/r.json" -- "$LEAK"
    expect_rc 137; expect_err "OOM: the kernel OOM killer ended"; expect_err "limit 64M"
    # the governor gave up on the leak; the kill's drop in usage is no recovery
    ! grep -q "holding the soft limit again" "$T/err" || fail "a resume announced after the OOM kill: $(cat "$T/err")"
    jq -e . "$T/r.json" >/dev/null || { fail "report is not JSON"; return; }
    [ "$(jqr .exit.oom_killed "$T/r.json")" = true ] || fail "exit.oom_killed not true"
    [ "$(jqr .exit.code "$T/r.json")" = 137 ] || fail "exit.code $(jqr .exit.code "$T/r.json")"
    [ "$(jqr .exit.signal "$T/r.json")" = SIGKILL ] || fail "exit.signal $(jqr .exit.signal "$T/r.json")"
    [ "$(jqr .events.oom_kill "$T/r.json")" -ge 1 ] || fail "events.oom_kill < 1"
    [ "$(jqr .limits.max "$T/r.json")" = 67108864 ] || fail "limits.max"
    peak=$(jqr .memory.peak "$T/r.json")
    [ "$peak" -ge $((67108864 * 9 / 10)) ] && [ "$peak" -le 67108864 ] || fail "peak $peak not near the 64M limit"
    [ "$(jqr .cgroup.version "$T/r.json")" = "$([ $MODE = v2 ] && echo 2 || echo 1)" ] || fail "cgroup.version"
    if [ -r /dev/kmsg ]; then
        [ "$(jqr .exit.oom_victim.comm "$T/r.json")" = leak ] || fail "victim not named leak: $(jq -c .exit "$T/r.json")"
        expect_err "ended leak (pid [0-9]*)"
    fi
}
t_expect_oom() {
    mr -q --expect-oom --limit 48M -- "$LEAK"; expect_rc 0 "OOM expected and happened"
    mr -q --expect-oom --limit 48M -- true; expect_rc 1 "no OOM"; expect_err "was not OOM-killed"
    mr -q --expect-oom --limit 48M -- sh -c 'exit 4'; expect_rc 4
}
t_no_oom_under_limit() {
    mr --limit 64M --report - -- "$LEAK" --max 16M
    expect_rc 0
    # the leak prints a line first; the JSON report follows it on stdout
    expect_out "leak: holding"
    sed -n '/^{/,$p' "$T/out" > "$T/r.json"
    jq -e . "$T/r.json" >/dev/null 2>&1 || { fail "--report - did not print JSON to stdout: $(head -c 300 "$T/out")"; return; }
    [ "$(jqr .exit.oom_killed "$T/r.json")" = false ] || fail "oom_killed"
    [ "$(jqr .events.oom_kill "$T/r.json")" = 0 ] || fail "oom_kill"
    [ "$(jqr .memory.peak "$T/r.json")" -ge 16777216 ] || fail "peak below what leak touched"
    expect_err "exited 0 after"
}
t_report_odd_command() {
    nl='
'
    bad=$(printf 'x\377y')
    mr -q --report "$T/r.json" -- sh -c 'exit 0' "quote\"back\\slash" "tab	nl$nl" "$bad" 'ünï'
    expect_rc 0
    jq -e . "$T/r.json" >/dev/null || { fail "report with odd argv is not JSON"; return; }
    [ "$(jq -r '.command[3]' "$T/r.json")" = "quote\"back\\slash" ] || fail "quotes/backslash: $(jq -c .command "$T/r.json")"
    [ "$(jq -r '.command[5]' "$T/r.json")" = "$(printf 'x\357\277\275y')" ] || fail "invalid UTF-8 not replaced by U+FFFD"
    [ "$(jq -r '.command[6]' "$T/r.json")" = 'ünï' ] || fail "UTF-8 mangled"
}
t_quiet_and_summary() {
    mr -q -- true; [ ! -s "$T/err" ] || fail "-q printed: $(cat "$T/err")"
    mr --limit 64M -- true; expect_err "exited 0 after .* peak .* of 64M"
}

# ---------------------------------------------------------------- process tree
t_signal_forwarding() {
    : >"$T/out"
    "$MEMRUN" -q -- sh -c 'trap "echo got-usr1; exit 7" USR1; echo ready; while :; do sleep 0.05; done' >"$T/out" 2>"$T/err" &
    pid=$!
    i=0; while ! grep -q ready "$T/out" && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
    kill -USR1 $pid; wait $pid; rc=$?
    expect_rc 7 "USR1 forwarded"; expect_out got-usr1
    : >"$T/out"  # the first run's "ready" is in it, and the redirection below is done in the background
    "$MEMRUN" -q -- sh -c 'echo ready; while :; do sleep 0.05; done' >"$T/out" 2>"$T/err" &
    pid=$!
    i=0; while ! grep -q ready "$T/out" && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
    kill -TERM $pid; wait $pid; rc=$?
    expect_rc 143 "TERM forwarded, the command died of it"
}
t_grandchildren_killed() {
    mr -q -- sh -c "sleep 1000 & echo \$! > $T/gc; sleep 1000 & exit 0"
    expect_rc 0
    gc=$(cat "$T/gc")
    [ -n "$gc" ] || { fail "no grandchild pid"; return; }
    if alive "$gc"; then fail "grandchild $gc survived its sandbox"; kill -9 "$gc"; fi
}
# A program may make cgroups of its own inside its sandbox, as a container runtime does: their
# processes are the sandbox's (--wait-all waits for them, signals reach them), and the directories go
# with the sandbox. The command makes app/worker below its own cgroup (v1: the memory hierarchy's;
# v2: the unified one), moves a worker there and exits; the worker stops only on SIGTERM.
t_program_subcgroups() {
    cat > "$T/sub.sh" <<'EOF'
cg=$(sed -n 's/^[0-9]*:memory:\(.*\)/\1/p' /proc/self/cgroup) base=/sys/fs/cgroup/memory
[ -n "$cg" ] || { cg=$(sed -n 's/^0::\(.*\)/\1/p' /proc/self/cgroup) base=/sys/fs/cgroup; }
mkdir -p "$base$cg/app/worker" || exit 3
echo "$base$cg/app/worker" > "$1/worker"
sh -c 'echo $$ > "$0/cgroup.procs" || exit 4; trap "echo term > $1/term; exit 0" TERM
       echo $$ > "$1/ready"; while :; do sleep 0.05; done' "$base$cg/app/worker" "$1" &
exit 0
EOF
    rm -f "$T/ready" "$T/term" "$T/worker"
    "$MEMRUN" -q --wait-all --name t-sub-$$ -- sh "$T/sub.sh" "$T" >"$T/out" 2>"$T/err" &
    mpid=$!
    i=0; while [ ! -s "$T/ready" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
    w=$(cat "$T/ready" 2>/dev/null)
    [ -n "$w" ] || { fail "the worker never started: $(cat "$T/err")"; kill $mpid; wait $mpid; return; }
    grep -qx "$w" "$(cat "$T/worker")/cgroup.procs" || fail "the worker is not in $(cat "$T/worker")"
    sleep 0.3
    alive $mpid || fail "memrun --wait-all ended while a process of the program's own cgroup lived"
    kill -TERM $mpid
    i=0; while alive $mpid && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
    if alive $mpid; then fail "memrun still waits after SIGTERM"; kill -KILL $mpid; fi
    wait $mpid; rc=$?
    expect_rc 0 "the command exited 0; --wait-all forwarded TERM and waited"
    [ -s "$T/term" ] || fail "SIGTERM did not reach the worker in the program's own cgroup"
    if alive "$w"; then fail "the worker $w survived"; kill -KILL "$w"; fi
    [ ! -e "$SANDBOXES/t-sub-$$" ] || fail "the sandbox was left behind: $(find "$SANDBOXES/t-sub-$$" -maxdepth 2 -type d)"
    [ ! -e "$(cat "$T/worker")" ] || fail "the program's cgroup was left behind"
    # (the worker's shell may say "Terminated" of its sleep; memrun itself must say nothing)
    ! grep -q '^memrun' "$T/err" || fail "memrun said: $(cat "$T/err")"
}
t_memrun_sigkilled() {
    # $T is shared: t_grandchildren_killed left a (dead) pid in $T/gc, which the poll below would take
    rm -f "$T/child" "$T/gc"
    "$MEMRUN" -q --name t-stale-$$ -- sh -c "echo \$\$ > $T/child; sleep 1000 & echo \$! > $T/gc; wait" &
    mpid=$!
    i=0; while { [ ! -s "$T/gc" ] || [ ! -s "$T/child" ]; } && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
    child=$(cat "$T/child"); gc=$(cat "$T/gc")
    [ -d "$SANDBOXES/t-stale-$$" ] || fail "sandbox not where expected: $SANDBOXES/t-stale-$$"
    kill -KILL $mpid; wait $mpid 2>/dev/null
    i=0; while alive "$child" && [ $i -lt 100 ]; do sleep 0.02; i=$((i + 1)); done
    alive "$child" && fail "the command outlived a SIGKILLed memrun (PR_SET_PDEATHSIG)"
    [ -d "$SANDBOXES/t-stale-$$" ] || fail "expected the stale sandbox to remain until the next memrun"
    mr -q -- true; expect_rc 0
    [ -d "$SANDBOXES/t-stale-$$" ] && fail "the next memrun did not remove the stale sandbox"
    i=0; while alive "$gc" && [ $i -lt 100 ]; do sleep 0.02; i=$((i + 1)); done
    if alive "$gc"; then fail "a process of the stale sandbox survived the sweep"; kill -9 "$gc"; fi
    [ -z "$(ls "$MEMRUN_RUNTIME_DIR" 2>/dev/null)" ] || fail "sandbox records left: $(ls "$MEMRUN_RUNTIME_DIR")"
}
t_many_runs_leave_nothing() {
    n=${MEMRUN_TEST_RUNS:-200}
    i=0 bad=0
    while [ $i -lt "$n" ]; do
        "$MEMRUN" -q --limit 32M -- true || bad=$((bad + 1))
        i=$((i + 1))
    done
    [ $bad = 0 ] || fail "$bad of $n runs failed"
    [ -z "$(ls "$MEMRUN_RUNTIME_DIR" 2>/dev/null)" ] || fail "sandbox records left: $(ls "$MEMRUN_RUNTIME_DIR")"
}

# ---------------------------------------------------------------- placement
t_explicit_cgroup() {
    if [ $MODE = v2 ]; then parent=/t-explicit-$$; else parent=$(own_mem)/t-explicit-$$; fi
    mkdir "$(memdir "$parent")" || { fail "cannot create $parent"; return; }
    mr -q --cgroup "$parent" --limit 64M -- sh -c 'echo "$MEMRUN_CGROUP"'
    expect_rc 0
    case $(cat "$T/out") in "$parent"/memrun-*) ;; *) fail "sandbox $(cat "$T/out") not beneath $parent" ;; esac
    [ -z "$(find "$(memdir "$parent")" -mindepth 1 -type d)" ] || fail "sandbox left beneath $parent"
    rmdir "$(memdir "$parent")"
}
t_v2_delegated_supervisor_split() {
    [ $MODE = v2 ] || { skip "cgroup v2 only (runs in the VM suite)"; return; }
    d=$CG/t-deleg-$$
    mkdir "$d" || { fail "mkdir $d"; return; }
    # memrun alone in a delegated cgroup: it moves itself to supervisor/, the command goes beside it
    sh -c "echo \$\$ > $d/cgroup.procs; exec \"$MEMRUN\" -q --limit 64M -- sh -c 'echo \$MEMRUN_CGROUP; cat /sys/fs/cgroup/t-deleg-$$/supervisor/cgroup.procs'" >"$T/out" 2>"$T/err"
    rc=$?
    expect_rc 0
    [ "$(head -1 "$T/out")" = "/t-deleg-$$/memrun-$(sed -n 2p "$T/out")" ] || fail "not split: $(cat "$T/out" "$T/err")"
    [ -z "$(find "$d" -mindepth 1 -type d)" ] || fail "left beneath $d: $(find "$d" -mindepth 1 -type d)"
    grep -q memory "$d/cgroup.subtree_control" && fail "+memory left enabled in $d"
    rmdir "$d"
}
t_v2_memrun_subtree() {
    [ $MODE = v2 ] || { skip "cgroup v2 only (runs in the VM suite)"; return; }
    d=$CG/t-busy-$$
    mkdir "$d" || { fail "mkdir $d"; return; }
    # memrun shares its cgroup with another process: as root without systemd it uses /memrun/
    sh -c "echo \$\$ > $d/cgroup.procs; sleep 5 & \"$MEMRUN\" -q --limit 64M -- sh -c 'echo \$MEMRUN_CGROUP'; r=\$?; kill \$!; exit \$r" >"$T/out" 2>"$T/err"
    rc=$?
    expect_rc 0
    case $(cat "$T/out") in /memrun/memrun-*) ;; *) fail "not in /memrun: $(cat "$T/out" "$T/err")" ;; esac
    [ ! -d $CG/memrun ] || fail "/memrun left behind"
    sleep 0.1; rmdir "$d"
}
t_v2_not_delegated() {
    [ $MODE = v2 ] || { skip "cgroup v2 only (runs in the VM suite)"; return; }
    d=$CG/t-user-$$
    mkdir "$d" || { fail "mkdir $d"; return; }
    chmod 777 "$T"
    sh -c "echo \$\$ > $d/cgroup.procs; sleep 5 & /usr/bin/setpriv --reuid=65534 --regid=65534 --clear-groups env MEMRUN_RUNTIME_DIR=$T/userrun \"$MEMRUN\" -- true; r=\$?; kill \$!; exit \$r" >"$T/out" 2>"$T/err"
    rc=$?
    expect_rc 125; expect_err "Delegate=yes"
    sleep 0.1; rmdir "$d"
}
t_v2_readonly_cgroupfs() {
    [ $MODE = v2 ] || { skip "cgroup v2 only (runs in the VM suite)"; return; }
    mount -o remount,ro $CG || { fail "cannot remount $CG read-only"; return; }
    mr -- sh -c "echo started > $T/started"
    mount -o remount,rw $CG
    expect_rc 125; expect_err "read-only"
    [ ! -e "$T/started" ] || fail "the command ran"
}


# ---------------------------------------------------------------- policies, levels, actions
t_check_policy() {
    for f in "$CONFIGS"/*.ini; do
        mr --check-policy "$f"; expect_rc 0 "$f"
        grep -qi "level" "$T/out" || fail "--check-policy $f printed no plan: $(head -c 300 "$T/out")"
    done
    mr --check-policy "$CONFIGS/web-service.ini" --limit 1G; expect_rc 0
    grep -q "1G" "$T/out" || fail "the command-line --limit does not show in the plan"
    printf '[memory]\nlimit = 1G\n\n[level.moderate]\nusage = 70 percent\nactions = trim\n' > "$T/bad.ini"
    mr --check-policy "$T/bad.ini"; expect_rc 125; expect_err "$T/bad.ini:5"; expect_err "70 percent"
    printf '[level.moderate]\nusage = 70%%\nbogus = 1\n' > "$T/bad.ini"
    mr --check-policy "$T/bad.ini"; expect_rc 125; expect_err "$T/bad.ini:3"; expect_err "bogus"
    printf '[nonsense]\n' > "$T/bad.ini"
    mr --check-policy "$T/bad.ini"; expect_rc 125; expect_err "nonsense"
    mr --check-policy "$T/no-such.ini"; expect_rc 125; expect_err "no-such.ini"
}
t_bad_policy_leaves_nothing() {
    printf '[level.high]\nusage = 85%%\nactions = trim, frobnicate\n' > "$T/bad.ini"
    mr --policy "$T/bad.ini" --limit 64M -- sh -c "echo started > $T/started"
    expect_rc 125; expect_err "$T/bad.ini:3"; expect_err "frobnicate"
    [ ! -e "$T/started" ] || fail "the command ran"
}
t_ladder_with_hooks() {
    : > "$T/hooks"
    {
        printf '[level.moderate]\nusage = 40%%\n'
        printf 'actions = exec:echo "moderate $MEMRUN_LEVEL $MEMRUN_USAGE $MEMRUN_LIMIT $MEMRUN_CGROUP" >> %s/hooks\n' "$T"
        printf '[level.high]\nusage = 60%%\nactions = exec:echo "high $MEMRUN_LEVEL" >> %s/hooks\n' "$T"
        printf '[level.critical]\nusage = 80%%\nactions = exec:echo "critical $MEMRUN_LEVEL" >> %s/hooks\n' "$T"
    } > "$T/ladder.ini"
    mr --policy "$T/ladder.ini" --limit 64M --report "$T/r.json" -- "$LEAK" --step 1M --interval 30 --max 56M --hold 1
    expect_rc 0
    [ "$(cut -d' ' -f1,2 "$T/hooks" | tr '\n' ' ')" = "moderate moderate high high critical critical " ] ||
        fail "hooks ran out of order or not at all: $(cat "$T/hooks")"
    # shellcheck disable=SC2046
    set -- $(head -1 "$T/hooks")
    [ "${4:-}" = 67108864 ] || fail "MEMRUN_LIMIT in the hook: '${4:-}'"
    [ "${3:-0}" -ge $((64 * 1048576 * 40 / 100)) ] || fail "MEMRUN_USAGE below the threshold: '${3:-}'"
    case ${5:-} in */memrun-*) ;; *) fail "MEMRUN_CGROUP in the hook: '${5:-}'" ;; esac
    [ "$(jq -r '[.levels[].level] | join(" ")' "$T/r.json")" = "moderate high critical" ] ||
        fail "report levels: $(jq -c .levels "$T/r.json")"
    [ "$(jq -r '[.actions[] | select(.action == "exec") | .status] | join(" ")' "$T/r.json")" = "0 0 0" ] ||
        fail "report exec actions: $(jq -c .actions "$T/r.json")"
}
t_hook_timeout() {
    printf '[level.moderate]\nusage = 10%%\nactions = exec:sleep 30\n[monitor]\nhook_timeout = 500ms\n' > "$T/slow.ini"
    mr --policy "$T/slow.ini" --limit 16M --report "$T/r.json" -- "$LEAK" --step 1M --max 4M --hold 2
    expect_rc 0
    [ "$(jq -r '.actions[0].status' "$T/r.json")" = 124 ] || fail "hook not timed out: $(jq -c .actions "$T/r.json")"
    expect_err "ran past 0.5s: killed"
}
t_signal_action() {
    printf '[level.moderate]\nusage = 10%%\nactions = signal:USR1\n' > "$T/sig.ini"
    mr --policy "$T/sig.ini" --limit 16M --report "$T/r.json" -- sh -c \
        'trap "echo got-usr1; kill \$!; exit 5" USR1; "$0" --step 1M --max 4M --hold 60 & wait' "$LEAK"
    expect_rc 5 "the trap ran"; expect_out got-usr1
    jq -r '.actions[0].action + " " + .actions[0].detail' "$T/r.json" | grep -q "^signal SIGUSR1 to pid [0-9]" ||
        fail "report: $(jq -c .actions "$T/r.json")"
}
t_limiter_client() {
    printf '[level.moderate]\nusage = 40%%\nactions = trim\n[level.high]\nusage = 60%%\nactions = trim, collect\n[level.critical]\nusage = 80%%\nactions = shed\n' > "$T/lim.ini"
    # Levels reach the client as they are entered; asks come above the setpoint (the soft limit 57.6M
    # less 3%), and a client that gives back a sliver is escalated: trim, trim+collect, then shedding,
    # which this policy allows at critical only.
    mr --policy "$T/lim.ini" --limit 64M --report "$T/r.json" -- sh -c \
        "\"$MLCLIENT\" --free 64K > $T/ml & sleep 0.3; \"$LEAK\" --step 1M --interval 30 --max 58M --hold 1; sleep 0.3"
    expect_rc 0
    for l in moderate high critical; do
        grep -q "level=$l" "$T/ml" || fail "client did not hear $l: $(cat "$T/ml")"
    done
    grep -q "level=critical.*actions=trim " "$T/ml" || fail "client was not asked to trim: $(cat "$T/ml")"
    grep -q "level=critical.*actions=trim,collect " "$T/ml" || fail "no escalation to collect: $(cat "$T/ml")"
    grep -q "level=critical.*actions=.*shed" "$T/ml" || fail "no escalation to shed: $(cat "$T/ml")"
    grep -q "level=moderate.*actions=trim" "$T/ml" && fail "asked at moderate, far under the setpoint: $(cat "$T/ml")"
    [ "$(jqr .limiter.clients "$T/r.json")" -ge 1 ] || fail "limiter.clients: $(jq -c .limiter "$T/r.json")"
    [ "$(jqr .limiter.freed "$T/r.json")" -ge 65536 ] || fail "limiter.freed: $(jq -c .limiter "$T/r.json")"
    [ "$(jq -r '[.actions[] | select(.action == "trim")][0] | "\(.clients) \(.freed)"' "$T/r.json")" = "1 65536" ] ||
        fail "trim entry: $(jq -c '.actions' "$T/r.json")"
}
t_hostile_clients() {
    printf '[level.moderate]\nusage = 40%%\nactions = trim\n[level.high]\nusage = 60%%\nactions = collect\n[level.critical]\nusage = 80%%\nactions = shed\n' > "$T/lim.ini"
    mr --policy "$T/lim.ini" --limit 64M --report "$T/r.json" -- sh -c \
        "\"$MLCLIENT\" --garbage > /dev/null 2>&1 & \"$MLCLIENT\" --flood 200000 > /dev/null 2>&1 & \
         \"$MLCLIENT\" --never-read > /dev/null 2>&1 & \"$MLCLIENT\" --bad-version > /dev/null 2>&1 & \
         \"$MLCLIENT\" > $T/ml & sleep 0.3; \"$LEAK\" --step 1M --interval 30 --max 56M; sleep 0.5"
    expect_rc 0
    [ "$(jq -r '[.levels[].level] | join(" ")' "$T/r.json")" = "moderate high critical" ] ||
        fail "the ladder was not climbed with hostile clients attached: $(jq -c .levels "$T/r.json")"
    for l in moderate high critical; do
        grep -q "level=$l" "$T/ml" || fail "the well-behaved client missed $l: $(cat "$T/ml")"
    done
}
t_timeline() {
    mr -q --limit 64M --timeline "$T/tl.csv" --report "$T/r.json" -- "$LEAK" --step 1M --interval 20 --max 56M
    expect_rc 0
    [ "$(head -1 "$T/tl.csv")" = "time_s,usage,soft,hard,psi_some,psi_full,level,asked,freed,step,setpoint" ] ||
        fail "header: $(head -1 "$T/tl.csv")"
    rows=$(($(wc -l < "$T/tl.csv") - 1))
    [ "$rows" -ge 5 ] || fail "only $rows rows"
    # every row: 11 fields, increasing time, the limits of the run, a known level and governor step, a
    # setpoint under the soft limit (max once given up)
    awk -F, -v hard=67108864 'NR > 1 {
        if (NF != 11 || $4 != hard || $1 + 0 < prev || $7 !~ /^(ok|moderate|high|critical)$/ ||
            $8 !~ /^[0-9]+$/ || $9 !~ /^[0-9]+$/ || $10 !~ /^(-|none|trim|collect|reclaim|shed|exhausted|gaveup)$/ ||
            !($11 == "max" ? $10 == "gaveup" : $11 + 0 > 0 && $11 + 0 < $3 + 0)) {
            print "bad row " NR ": " $0; bad = 1 }
        prev = $1 + 0 } END { exit bad }' "$T/tl.csv" > "$T/awk" || fail "$(cat "$T/awk")"
    # the levels the report lists all appear in the timeline
    for l in $(jq -r '.levels[].level' "$T/r.json"); do
        awk -F, -v l="$l" '$7 == l { f = 1 } END { exit !f }' "$T/tl.csv" || fail "level $l of the report is not in the timeline"
    done
    max=$(awk -F, 'NR > 1 && $2 > m { m = $2 } END { print m + 0 }' "$T/tl.csv")
    [ "$max" -ge $((40 * 1048576)) ] || fail "timeline never saw the usage grow: max $max"
}
t_pressure_environment() {
    mr -q --limit 64M -- sh -c 'echo "$MEMORY_PRESSURE_WATCH"; echo "$MEMORY_PRESSURE_WRITE"; echo "$MEMRUN_LIMITER"'
    expect_rc 0
    watch=$(sed -n 1p "$T/out"); write=$(sed -n 2p "$T/out"); ep=$(sed -n 3p "$T/out")
    # memrun's socket (the built-in policy holds the soft limit); pressure.sh has the rest
    case $watch in */pressure.memrun-*/pressure) ;; *) fail "MEMORY_PRESSURE_WATCH '$watch'" ;; esac
    [ "$write" = "c29tZSAyMDAwMDAgMjAwMDAwMAA=" ] || fail "MEMORY_PRESSURE_WRITE '$write' (systemd's default is some 200ms/2s)"
    case $ep in @memrun-*) ;; *) fail "MEMRUN_LIMITER '$ep'" ;; esac
}
t_reclaim() {
    printf '[level.moderate]\nusage = 40%%\nactions = reclaim\n[governor]\ntarget = 35%%\n' > "$T/rec.ini"
    # ~60M of reclaimable dentries, then anon memory to cross 40% of 256M: reclaim must take the dentries
    # (held at 35% on purpose: the soft limit's setpoint is far above what this test allocates)
    mr -v --policy "$T/rec.ini" --limit 256M --report "$T/r.json" -- sh -c \
        "\"$CACHEFILL\" --count 200000; \"$LEAK\" --step 1M --interval 20 --max 60M --hold 2"
    expect_rc 0
    entry=$(jq -c '[.actions[] | select(.action == "reclaim")][0]' "$T/r.json")
    [ "$entry" != null ] || { fail "no reclaim action: $(jq -c .actions "$T/r.json")"; return; }
    if [ $MODE = v2 ]; then
        freed=$(echo "$entry" | jq -r .freed)
        [ "$freed" -ge 4194304 ] || fail "memory.reclaim freed only $freed bytes: $entry"
        case $(echo "$entry" | jq -r .status) in 0|11) ;; *) fail "reclaim status: $entry" ;; esac
    else
        echo "$entry" | grep -q unsupported || fail "v1 has no memory.reclaim; expected 'unsupported': $entry"
    fi
}
t_stall_escalation() {
    [ $MODE = v2 ] || { skip "cgroup v2 only: v1 has no memory.high to stall on (runs in the VM suite)"; return; }
    printf '[stall]\npsi_full = 5%%\nduration = 2s\naction = raise\nstep = 100%%\n' > "$T/stall.ini"
    # 60M of anon memory under memory.high = 40M and no swap: the kernel can only throttle it
    mr -v --policy "$T/stall.ini" --limit 200M --soft 40M --report "$T/r.json" -- "$LEAK" --step 1M --interval 0 --max 60M
    expect_rc 0 "the program finished once memory.high was raised"
    jq -e '[.actions[] | select(.action == "stall-raise")] | length >= 1' "$T/r.json" >/dev/null ||
        fail "no stall-raise action: $(jq -c .actions "$T/r.json") $(tail -5 "$T/err")"
    [ "$(jqr .events.high "$T/r.json")" -ge 1 ] || fail "no memory.high events: it never was throttled"
    expect_err "stall: throttled at memory.high"
}
t_stall_kill() {
    [ $MODE = v2 ] || { skip "cgroup v2 only (runs in the VM suite)"; return; }
    printf '[stall]\npsi_full = 5%%\nduration = 2s\naction = kill\n' > "$T/stall.ini"
    mr --policy "$T/stall.ini" --limit 200M --soft 40M --report "$T/r.json" -- "$LEAK" --step 1M --interval 0 --max 60M --hold 30
    expect_rc 137 "killed by the stall policy"
    jq -e '[.actions[] | select(.action == "stall-kill")] | length == 1' "$T/r.json" >/dev/null ||
        fail "no stall-kill action: $(jq -c .actions "$T/r.json")"
    [ "$(jqr .exit.oom_killed "$T/r.json")" = false ] || fail "a stall kill is not an OOM kill"
}

# libmemlimit: cache trims, standalone MEMLIMIT=, --preload, pre-fork, shedding under load
. "$(dirname "$0")/limiter.sh"
# the governor: the soft limit held as a control loop
. "$(dirname "$0")/governor.sh"
# the sandbox: --sandbox, --user, [sandbox]
. "$(dirname "$0")/sandbox.sh"
# operating memrun: memrunctl and --metrics
. "$(dirname "$0")/ctl.sh"
# the other clients of the limiter protocol: Python (limiter/python), Go (limiter/go)
. "$(dirname "$0")/python.sh"
. "$(dirname "$0")/golang.sh"
# the runtime hints: GOMEMLIMIT, NODE_OPTIONS, JAVA_TOOL_OPTIONS, DOTNET_GCHeapHardLimit
. "$(dirname "$0")/hints.sh"
# containers: --in-place
. "$(dirname "$0")/inplace.sh"
# outputs that cannot be written: --report, --timeline, --metrics
. "$(dirname "$0")/faults.sh"
# --metrics-listen: the exposition over HTTP
. "$(dirname "$0")/httpmetrics.sh"
# MEMORY_PRESSURE_WATCH as memrun's socket: sd-event-style programs follow the governor
. "$(dirname "$0")/pressure.sh"
# the JVM driver: HotSpot's attach mechanism, GC.run and System.trim_native_heap when the governor asks
. "$(dirname "$0")/jvm.sh"

# ---------------------------------------------------------------- run
say "# memrun integration tests: $MEMRUN, cgroup $MODE, sandboxes in $SANDBOXES, kernel $(uname -r)"
[ "$(id -u)" = 0 ] || { say "SKIP: integration tests need root (cgroup creation)"; say "host: 0 passed, 0 failed, 1 skipped"; exit 1; }
command -v jq >/dev/null || { say "jq is required (apt-get install jq)"; exit 1; }
for b in "$LEAK" "$CACHEFILL" "$MLCLIENT" "$HELPERS/sysprobe"; do [ -x "$b" ] || { say "$b missing: run make"; exit 1; }; done

ALL_TESTS="t_exit_passthrough t_exit_signal t_exit_126_127 t_stdio_passthrough t_bad_sizes \
    t_bad_options t_bad_cgroup_parent t_missing_cgroupfs t_v2_without_memory_controller t_readonly_cgroupfs \
    t_limits_visible t_environment t_name t_oom_137_and_report t_expect_oom t_no_oom_under_limit \
    t_report_odd_command t_quiet_and_summary t_signal_forwarding t_grandchildren_killed t_program_subcgroups t_memrun_sigkilled \
    t_explicit_cgroup t_v2_delegated_supervisor_split t_v2_memrun_subtree t_v2_not_delegated \
    t_v2_readonly_cgroupfs t_check_policy t_bad_policy_leaves_nothing t_ladder_with_hooks t_hook_timeout \
    t_signal_action t_limiter_client t_hostile_clients t_timeline t_pressure_environment t_reclaim t_stall_escalation \
    t_stall_kill t_limiter_cache_survives t_limiter_standalone t_limiter_preload_fragment t_limiter_preload_allocators t_limiter_prefork \
    t_limiter_cachesrv_sheds t_limiter_cachesrv_burst t_governor_holds t_governor_holds_step_spike t_governor_shipped_policies t_governor_contrast \
    t_governor_futile_client t_governor_leak_gives_up t_governor_deferred_answers t_governor_client_leaves t_governor_idle_after_leaving \
    t_governor_giveup_tells_clients t_governor_slack_first t_governor_signal_not_handled \
    t_sandbox_limit_readonly t_sandbox_cannot_move_out t_sandbox_no_remount t_sandbox_proc_root_escape \
    t_sandbox_in_chroot t_sandbox_namespaces t_sandbox_errno_and_kill t_sandbox_ordinary_workloads t_sandbox_user \
    t_sandbox_pressure_watch t_sandbox_cgroup_namespace t_sandbox_bad_specs t_sandbox_rootless \
    t_ctl_ls_status t_ctl_set t_ctl_set_reaches_clients t_ctl_set_lower_below_usage t_ctl_probe t_metrics t_in_place t_in_place_follows_ceiling t_crun_in_place t_crun_update_followed \
    t_metrics_http t_metrics_http_bad_listen \
    t_python_cache_survives t_python_unmodified_run t_python_live_limits \
    t_go_cache_survives t_go_limit_follows t_go_http_sheds t_go_users_gomemlimit \
    t_hints_report_and_env t_hints_node t_hints_java \
    t_output_full_filesystem t_output_dev_full t_output_metrics_missing_dir t_output_closed_pipe \
    t_fault_client_stopped t_fault_memrun_stopped t_fault_sandbox_frozen t_fault_limit_changed_outside t_fault_limit_lowered_outside \
    t_pressure_watch_governor t_pressure_watch_sdevent t_pressure_watch_kernel_relay t_pressure_watch_socket \
    t_jvm_driver t_jvm_driver_other_user t_jvm_not_driven \
    t_many_runs_leave_nothing"
ALL_TESTS=$(echo $ALL_TESTS)
# A test written and never listed would pass by not running: every t_ function must be in the list.
for t in $(sed -n 's/^\(t_[a-z0-9_]*\)() *{.*/\1/p' "$(dirname "$0")"/*.sh); do
    case " $ALL_TESTS " in *" $t "*) ;; *) say "not ok - $t is defined but not in run.sh's list"; FAIL=$((FAIL + 1)); FAILED="$FAILED $t" ;; esac
done
for t in ${MEMRUN_TESTS:-$ALL_TESTS}; do
    run "$t"
done
say "host: $PASS passed, $FAIL failed, $SKIP skipped"
[ -z "$FAILED" ] || say "failed:$FAILED"
[ $FAIL = 0 ]
