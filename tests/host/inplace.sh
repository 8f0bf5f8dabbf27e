# inplace.sh: --in-place inside an emulated container, on the host (v1/hybrid) and in the VM (v2).
# Sourced by run.sh. The container is set up as a runtime would: a cgroup with a memory limit and no
# swap, then the command in its own cgroup and mount namespaces with the cgroup filesystem mounted
# read-only inside (its own cgroup is "/" there).

# ctr_setup: make $CTR (beneath memrun's tests' cgroup) limited to 96M and write $T/ctr.sh, which
# enters it and runs its arguments in the namespaces.
ctr_setup() {
    if [ $MODE = v2 ]; then
        grep -qw memory $CG/cgroup.subtree_control || echo +memory >$CG/cgroup.subtree_control
        CTR=$CG/t-ctr-$$
        mkdir "$CTR" || return 1
        echo 100663296 >"$CTR/memory.max" && echo 0 >"$CTR/memory.swap.max" || return 1
        printf '%s\n' "$NS_PRIVATE" >"$T/ctr-inside.sh"
        cat >>"$T/ctr-inside.sh" <<'EOF'
umount /sys/fs/cgroup || exit 91
mount -t cgroup2 -o ro,nosuid,nodev,noexec cgroup2 /sys/fs/cgroup || exit 92
exec "$@"
EOF
    else
        CTR=$SANDBOXES/t-ctr-$$
        mkdir "$CTR" || return 1
        echo 100663296 >"$CTR/memory.limit_in_bytes" || return 1
        [ ! -e "$CTR/memory.memsw.limit_in_bytes" ] || echo 100663296 >"$CTR/memory.memsw.limit_in_bytes"
        printf '%s\n' "$NS_PRIVATE" >"$T/ctr-inside.sh"
        cat >>"$T/ctr-inside.sh" <<'EOF'
umount /sys/fs/cgroup/memory || exit 91
mount -t cgroup -o memory,ro,nosuid,nodev,noexec cgroup /sys/fs/cgroup/memory || exit 92
if [ -d /sys/fs/cgroup/unified ]; then
    umount /sys/fs/cgroup/unified && mount -t cgroup2 -o ro,nosuid,nodev,noexec cgroup2 /sys/fs/cgroup/unified || exit 93
fi
exec "$@"
EOF
    fi
    cat >"$T/ctr.sh" <<EOF
echo \$\$ >"$CTR/cgroup.procs" || exit 90
exec $UNSHARE -C -m --propagation $NS_PROPAGATION sh "$T/ctr-inside.sh" "\$@"
EOF
}
ctr_run() { timeout 120 sh "$T/ctr.sh" "$@" >"$T/out" 2>"$T/err"; rc=$?; }
ctr_teardown() { sleep 0.1; rmdir "$CTR" 2>/dev/null || fail "the container cgroup is not empty: $(cat "$CTR/cgroup.procs")"; }

# ctr_unshare: util-linux's unshare into $UNSHARE (busybox's has no cgroup namespace); 1 if missing
ctr_unshare() {
    UNSHARE=
    for u in /usr/bin/unshare /bin/unshare; do
        [ -z "$UNSHARE" ] && [ -x $u ] && $u --help 2>&1 | grep -q -- '--cgroup' && UNSHARE=$u
    done
    [ -n "$UNSHARE" ] || { fail "util-linux unshare (with --cgroup) missing"; return 1; }
}
# ctr_limit BYTES: resize the container as a runtime would (docker update): v1 moves memsw with it
ctr_limit() {
    if [ $MODE = v2 ]; then
        echo "$1" >"$CTR/memory.max"
    elif [ -e "$CTR/memory.memsw.limit_in_bytes" ] && [ "$1" -gt "$(cat "$CTR/memory.limit_in_bytes")" ]; then
        echo "$1" >"$CTR/memory.memsw.limit_in_bytes" && echo "$1" >"$CTR/memory.limit_in_bytes"
    elif [ -e "$CTR/memory.memsw.limit_in_bytes" ]; then
        echo "$1" >"$CTR/memory.limit_in_bytes" && echo "$1" >"$CTR/memory.memsw.limit_in_bytes"
    else
        echo "$1" >"$CTR/memory.limit_in_bytes"
    fi
}

# ctr_followed OUT ERR REPORT HARD: after two resizes, watchlimits (OUT) heard three limits, one
# line per change, the soft limit keeping its share (90% of the container's limit, memrun's
# default); the report ends at HARD; memrun (ERR) wrote nothing to the container's cgroup
ctr_followed() {
    [ "$(grep -c '^limits ' "$1")" = 3 ] || fail "one line per change, want 3: $(cat "$1")"
    awk '/^limits / { r = $3 / $2; if (r < 0.899 || r > 0.901) bad = 1 } END { exit bad }' "$1" ||
        fail "the soft limit did not keep its share: $(cat "$1")"
    [ "$(jqr .limits.max "$3")" = "$4" ] || fail "report limits: $(jq -c .limits "$3")"
    ! grep -q "Read-only\|cannot set" "$2" || fail "it wrote to the container's cgroup: $(cat "$2")"
}

t_in_place() {
    ctr_unshare || return
    ctr_setup || { fail "cannot set up the container cgroup"; return; }
    # without --in-place: the read-only cgroupfs is an error that says what to do; nothing is tried
    ctr_run "$MEMRUN" --limit 64M -- true
    expect_rc 125
    expect_err "--in-place"
    grep -q "cannot remove" "$T/err" && fail "it tried to remove what it never made: $(cat "$T/err")"
    # the limit is the container's
    ctr_run "$MEMRUN" -q --in-place --report "$T/ip.json" -- sh -c 'echo $MEMRUN_LIMIT'
    expect_rc 0
    expect_out '^100663296$'
    [ "$(jqr .limits.max "$T/ip.json")" = 100663296 ] || fail "report limits: $(jq -c .limits "$T/ip.json")"
    [ "$(jqr .cgroup.path "$T/ip.json")" = / ] || fail "report cgroup: $(jq -c .cgroup "$T/ip.json")"
    # a cooperating cache is governed through the container's limit
    ctr_run "$MEMRUN" --in-place --report "$T/hc.json" -- "$EXAMPLES/holdcache" --total 400M --entry 1M --every 5
    expect_rc 0 "holdcache in the container"
    [ "$(jqr .events.oom_kill "$T/hc.json")" = 0 ] || fail "holdcache OOM-killed: $(jq -c .events "$T/hc.json")"
    [ "$(jqr .governor.asks.trim.freed "$T/hc.json")" -gt 0 ] 2>/dev/null || fail "not governed: $(jq -c .governor "$T/hc.json")"
    # a leak: the kernel kills it at the container's limit, memrun says so
    ctr_run "$MEMRUN" --in-place --report "$T/lk.json" -- "$LEAK" --max 200M
    expect_rc 137 "leak in the container"
    expect_err "OOM"
    ! grep -q "Read-only\|cannot set" "$T/err" || fail "it wrote to the container's cgroup: $(grep -m1 "Read-only\|cannot set" "$T/err")"
    [ "$(jqr .exit.oom_killed "$T/lk.json")" = true ] || fail "report: $(jq -c .exit "$T/lk.json")"
    [ "$(jqr .limits.max "$T/lk.json")" = 100663296 ] || fail "report limits: $(jq -c .limits "$T/lk.json")"
    # the command's leftovers are ended, the rest of the container is not memrun's to touch
    ctr_run sh -c "sleep 30 & \"$MEMRUN\" -q --in-place -- sh -c 'sleep 30 & echo started'; echo memrun=\$?; kill -0 \$! && echo bystander-alive; kill \$!"
    expect_out '^memrun=0$'
    expect_out '^bystander-alive$'
    ctr_teardown
}

# The container resized while memrun runs in place (docker update, a Kubernetes in-place resize):
# memrun follows the enclosing limit down and up, says so, and an attached client hears each change
# through memlimit_on_limits (watchlimits prints "limits HARD SOFT"); the soft limit keeps its share.
t_in_place_follows_ceiling() {
    ctr_unshare || return
    ctr_setup || { fail "cannot set up the container cgroup"; return; }
    # emptied here: the redirection below is the background child's, and wait_line must not read
    # what an earlier test left in $T/wl (t_ctl_set_reaches_clients heard "limits 100663296")
    : >"$T/wl"
    timeout 60 sh "$T/ctr.sh" "$MEMRUN" --in-place --report "$T/r.json" -- "$EXAMPLES/watchlimits" --seconds 8 \
        >"$T/wl" 2>"$T/err" &
    p=$!
    wait_line "$T/wl" '^limits 100663296 ' || fail "at start: $(cat "$T/wl" "$T/err")"
    ctr_limit 67108864 || fail "cannot lower the container's limit"
    wait_line "$T/wl" '^limits 67108864 ' || fail "the lowering not heard: $(cat "$T/wl" "$T/err")"
    ctr_limit 117440512 || fail "cannot raise the container's limit"
    wait_line "$T/wl" '^limits 117440512 ' || fail "the raise not heard: $(cat "$T/wl" "$T/err")"
    wait $p
    rc=$?
    expect_rc 0 "watchlimits in the resized container"
    expect_err "the enclosing cgroup's limit was changed to 64M (it was 96M): following it"
    expect_err "the enclosing cgroup's limit was changed to 112M (it was 64M): following it"
    ctr_followed "$T/wl" "$T/err" "$T/r.json" 117440512
    ctr_teardown
}

# --in-place under a real OCI runtime: Debian's crun, from a plain bundle (crun spec, a rootfs
# directory), run with --no-pivot (the VM's root is an initramfs, where pivot_root cannot work). crun
# makes the container's cgroup with its memory limit, a cgroup namespace, and cgroupfs read-only
# inside; without --in-place memrun stops (125) naming it; with it, memrun finds the limit there (the
# soft limit 90% of it), governs a cooperating cache and reports a leak's OOM kill.
# The host (v1/hybrid) is not crun's to touch: it runs in the cgroup v2 VM.
crun_bundle() {  # crun_bundle DIR ARGS...: a bundle whose process is ARGS, 128M, the host's /usr and /lib*
    b=$1; shift
    mkdir -p "$b/rootfs/proc" "$b/rootfs/sys" "$b/rootfs/dev" "$b/rootfs/tmp" "$b/rootfs/run" "$b/rootfs/out" || return 1
    for d in usr lib lib64 bin sbin; do [ -e "/$d" ] && mkdir -p "$b/rootfs/$d"; done
    (cd "$b" && crun spec) || return 1
    args=$(printf '%s\n' "$@" | jq -R . | jq -sc .)
    mounts=$(for d in usr lib lib64 bin sbin; do
        [ -e "/$d" ] && printf '{"destination":"/%s","type":"bind","source":"/%s","options":["rbind","ro"]}\n' $d $d
    done; printf '{"destination":"/out","type":"bind","source":"%s","options":["rbind","rw"]}\n' "$b/out")
    mkdir -p "$b/out"
    jq --argjson args "$args" --argjson extra "$(printf '%s\n' "$mounts" | jq -sc .)" '
        .process.terminal = false | .process.args = $args | .root.readonly = false |
        .process.env += ["MEMRUN_RUNTIME_DIR=/run/memrun"] |
        .mounts += $extra |
        .linux.resources.memory = { "limit": 134217728, "swap": 134217728 } |
        .linux.namespaces |= map(select(.type != "network"))' "$b/config.json" >"$b/config.new" &&
        mv "$b/config.new" "$b/config.json"
}
crun_run() {  # crun_run NAME ARGS...: the container's exit status in rc, its output in $T/out, $T/err
    id=memrun-t-$1-$$; shift
    rm -rf "$T/b-$id"
    crun_bundle "$T/b-$id" "$@" || { fail "cannot make the bundle: $(cat "$T/b-$id/config.json" 2>&1 | head -c 300)"; rc=-1; return; }
    timeout 120 crun run --no-pivot -b "$T/b-$id" "$id" >"$T/out" 2>"$T/err" </dev/null
    rc=$?
    crun delete -f "$id" >/dev/null 2>&1
    OUT=$T/b-$id/out
}

t_crun_in_place() {
    [ $MODE = v2 ] || { skip "crun runs in the cgroup v2 VM (this host is $MODE: crun would make cgroups outside memrun's tests' own)"; return; }
    command -v crun >/dev/null || { fail "crun missing (apt-get install crun; tests/vm/suite.sh stages it)"; return; }
    crun --version | head -1 | sed 's/^/    # /'
    before=$(ls /sys/fs/cgroup | sort)
    # without --in-place: crun's read-only cgroupfs is the error that names --in-place
    crun_run plain "$MEMRUN" --limit 64M -- true
    expect_rc 125 "memrun without --in-place under crun"
    expect_err "--in-place"
    # the container's limit, found from inside; the soft limit derived from it (90%, no memory.high)
    crun_run limit "$MEMRUN" -q --in-place --report /out/r.json -- sh -c 'echo limit=$MEMRUN_LIMIT soft=$MEMRUN_SOFT_LIMIT'
    expect_rc 0 "memrun --in-place under crun"
    expect_out '^limit=134217728 '
    [ "$(jqr .limits.max "$OUT/r.json")" = 134217728 ] || fail "report limits: $(jq -c .limits "$OUT/r.json")"
    [ "$(jqr .limits.high "$OUT/r.json")" = $((134217728 / 10 * 9 + 134217728 % 10 * 9 / 10)) ] ||
        fail "soft limit not 90% of the container's: $(jq -c .limits "$OUT/r.json")"
    expect_out " soft=$(jqr .limits.high "$OUT/r.json")$"
    [ "$(jqr .cgroup.path "$OUT/r.json")" = / ] || fail "report cgroup (the namespace's root): $(jq -c .cgroup "$OUT/r.json")"
    say "    # report: $(jq -c '{cgroup, limits}' "$OUT/r.json")"
    # a cooperating cache governed under the container's limit
    crun_run cache "$MEMRUN" --in-place --report /out/hc.json -- "$EXAMPLES/holdcache" --total 500M --entry 1M --every 5
    expect_rc 0 "holdcache under crun"
    [ "$(jqr .events.oom_kill "$OUT/hc.json")" = 0 ] || fail "holdcache OOM-killed: $(jq -c .events "$OUT/hc.json")"
    [ "$(jqr .governor.asks.trim.freed "$OUT/hc.json")" -gt 0 ] 2>/dev/null || fail "not governed: $(jq -c .governor "$OUT/hc.json")"
    say "    # holdcache: peak $(jqr .memory.peak "$OUT/hc.json") of $(jqr .limits.max "$OUT/hc.json"), trim asks $(jqr .governor.asks.trim.asks "$OUT/hc.json")"
    # a leak: OOM-killed at the container's limit, 137 through crun, the limit in the report
    crun_run leak "$MEMRUN" --in-place --report /out/lk.json -- "$LEAK" --max 300M
    expect_rc 137 "a leak under crun"
    expect_err "OOM"
    # the governor gave up on it (nothing to ask): memory.high is the container's, never written
    ! grep -q "Read-only\|cannot set" "$T/err" || fail "it wrote to the container's cgroup: $(grep -m1 "Read-only\|cannot set" "$T/err")"
    [ "$(jqr .exit.oom_killed "$OUT/lk.json")" = true ] || fail "report: $(jq -c .exit "$OUT/lk.json")"
    [ "$(jqr .limits.max "$OUT/lk.json")" = 134217728 ] || fail "report limits: $(jq -c .limits "$OUT/lk.json")"
    grep "OOM" "$T/err" | head -1 | sed 's/^/    # /'
    # nothing left: crun delete took the containers' cgroups
    [ "$(ls /sys/fs/cgroup | sort)" = "$before" ] || fail "left in /sys/fs/cgroup: $(ls /sys/fs/cgroup | sort | tr '\n' ' ')"
}

# The container resized by its runtime while memrun runs in place: `crun update --memory`, what
# `docker update` and a Kubernetes in-place resize come down to. memrun reads the new limit back
# from the container's cgroup and the program hears it (watchlimits: one "limits HARD SOFT" line per
# change, the soft limit 90% of the container's limit); memrun writes nothing there.
t_crun_update_followed() {
    [ $MODE = v2 ] || { skip "crun runs in the cgroup v2 VM (this host is $MODE: crun would make cgroups outside memrun's tests' own)"; return; }
    command -v crun >/dev/null || { fail "crun missing (apt-get install crun; tests/vm/suite.sh stages it)"; return; }
    id=memrun-t-update-$$ b=$T/b-memrun-t-update-$$
    rm -rf "$b"
    before=$(ls /sys/fs/cgroup | sort)
    crun_bundle "$b" "$MEMRUN" --in-place --report /out/r.json -- "$EXAMPLES/watchlimits" --seconds 20 ||
        { fail "cannot make the bundle"; return; }
    : >"$T/cu.out"  # the redirection below is the background child's
    timeout 120 crun run --no-pivot -b "$b" "$id" >"$T/cu.out" 2>"$T/cu.err" </dev/null &
    p=$!
    i=0; while ! grep -q '^limits 134217728 ' "$T/cu.out" && alive $p && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
    grep -q '^limits 134217728 ' "$T/cu.out" || {
        fail "at start: $(cat "$T/cu.out" "$T/cu.err")"
        kill $p 2>/dev/null; wait $p; crun delete -f "$id" >/dev/null 2>&1; return
    }
    # --memory-swap is memory plus swap for crun (cgroup v2: memory.swap.max = the difference): no swap
    crun update --memory 100663296 --memory-swap 100663296 "$id" 2>"$T/cu.upd" ||
        fail "crun update 96M: $(cat "$T/cu.upd")"
    wait_line "$T/cu.out" '^limits 100663296 ' || fail "the lowering not heard: $(cat "$T/cu.out" "$T/cu.err")"
    crun update --memory 167772160 --memory-swap 167772160 "$id" 2>"$T/cu.upd" ||
        fail "crun update 160M: $(cat "$T/cu.upd")"
    wait_line "$T/cu.out" '^limits 167772160 ' || fail "the raise not heard: $(cat "$T/cu.out" "$T/cu.err")"
    wait $p
    rc=$?
    crun delete -f "$id" >/dev/null 2>&1
    expect_rc 0 "watchlimits in a container crun resized"
    [ "$(ls /sys/fs/cgroup | sort)" = "$before" ] || fail "left in /sys/fs/cgroup: $(ls /sys/fs/cgroup | sort | tr '\n' ' ')"
    grep -q "changed to 96M (it was 128M): following it" "$T/cu.err" &&
        grep -q "changed to 160M (it was 96M): following it" "$T/cu.err" ||
        fail "memrun did not say it followed both: $(cat "$T/cu.err")"
    ctr_followed "$T/cu.out" "$T/cu.err" "$b/out/r.json" 167772160
    grep "following it" "$T/cu.err" | sed 's/^/    # /'
}
