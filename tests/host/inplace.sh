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

t_in_place() {
    # util-linux's unshare (busybox's has no cgroup namespace)
    UNSHARE=
    for u in /usr/bin/unshare /bin/unshare; do
        [ -z "$UNSHARE" ] && [ -x $u ] && $u --help 2>&1 | grep -q -- '--cgroup' && UNSHARE=$u
    done
    [ -n "$UNSHARE" ] || { fail "util-linux unshare (with --cgroup) missing"; return; }
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
    [ "$(jqr .exit.oom_killed "$T/lk.json")" = true ] || fail "report: $(jq -c .exit "$T/lk.json")"
    [ "$(jqr .limits.max "$T/lk.json")" = 100663296 ] || fail "report limits: $(jq -c .limits "$T/lk.json")"
    # the command's leftovers are ended, the rest of the container is not memrun's to touch
    ctr_run sh -c "sleep 30 & \"$MEMRUN\" -q --in-place -- sh -c 'sleep 30 & echo started'; echo memrun=\$?; kill -0 \$! && echo bystander-alive; kill \$!"
    expect_out '^memrun=0$'
    expect_out '^bystander-alive$'
    ctr_teardown
}
