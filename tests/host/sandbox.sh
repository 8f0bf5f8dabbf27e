# sandbox.sh: --sandbox, --user and [sandbox] on a real kernel (host v1/hybrid, and cgroup v2 in
# the VM). Sourced by run.sh. Each escape is tried as root, under --sandbox and, where the point
# is that it would otherwise work, without it (the contrast).
SYSPROBE=$HELPERS/sysprobe

# The sandbox's limit file and the hierarchy holding memory, as the command sees them.
if [ $MODE = v2 ]; then
    SB_MEMFS=/sys/fs/cgroup SB_LIMIT=memory.max
else
    SB_MEMFS=/sys/fs/cgroup/memory SB_LIMIT=memory.limit_in_bytes
fi
# A value the command would write to lift or change its own limit (v1 cannot go above memsw).
if [ $MODE = v2 ]; then SB_ESCAPE=max; else SB_ESCAPE=33554432; fi

# sb_try [MEMRUN-OPTIONS...]: inside, try to change the limit and print what the file says after.
sb_try_limit() {
    mr -q --limit 64M "$@" -- sh -c "echo $SB_ESCAPE > $SB_MEMFS\$MEMRUN_CGROUP/$SB_LIMIT 2>/dev/null; echo rc=\$?; cat $SB_MEMFS\$MEMRUN_CGROUP/$SB_LIMIT"
}

t_sandbox_limit_readonly() {
    sb_try_limit --sandbox
    expect_rc 0
    grep -qx 'rc=0' "$T/out" && fail "--sandbox: the command wrote its own $SB_LIMIT: $(cat "$T/out")"
    grep -qx 67108864 "$T/out" || fail "--sandbox: $SB_LIMIT changed: $(cat "$T/out")"
    # contrast: without --sandbox, root in the sandbox can lift its own budget
    sb_try_limit
    grep -qx 'rc=0' "$T/out" || fail "contrast: without --sandbox the write failed: $(cat "$T/out")"
    grep -qx 67108864 "$T/out" && fail "contrast: $SB_LIMIT unchanged without --sandbox: $(cat "$T/out")"
    true
}

# Move itself out through a cgroup.procs that can take a process (v2: the root cgroup; v1: the
# sandbox's parent, memrun's own cgroup), then say where it is.
sb_try_move() {
    if [ $MODE = v2 ]; then to=/sys/fs/cgroup/cgroup.procs; else to="$SB_MEMFS\$(dirname \$MEMRUN_CGROUP)/cgroup.procs"; fi
    mr -q --limit 64M "$@" -- sh -c "echo \$\$ > $to 2>/dev/null; echo rc=\$?; if grep -q \"\$MEMRUN_CGROUP\$\" /proc/self/cgroup; then echo inside; else echo outside; fi"
}

t_sandbox_cannot_move_out() {
    sb_try_move --sandbox
    expect_rc 0
    grep -qx inside "$T/out" || fail "--sandbox: the command left its cgroup: $(cat "$T/out")"
    grep -qx 'rc=0' "$T/out" && fail "--sandbox: the cgroup.procs write succeeded: $(cat "$T/out")"
    sb_try_move
    grep -qx outside "$T/out" || fail "contrast: without --sandbox the command could not leave: $(cat "$T/out")"
    true
}

t_sandbox_no_remount() {
    mr -q --sandbox -- sh -c "mount -o remount,rw $SB_MEMFS 2>&1; echo rc=\$?; grep ' $SB_MEMFS ' /proc/self/mountinfo"
    expect_rc 0
    grep -qx 'rc=0' "$T/out" && fail "remount rw succeeded: $(cat "$T/out")"
    grep -q " $SB_MEMFS ro," "$T/out" || fail "$SB_MEMFS is not read-only inside: $(cat "$T/out")"
    mr -q --sandbox --report "$T/r.json" -- true
    jq -e --arg m "$SB_MEMFS" '.sandbox.read_only | index($m) != null' "$T/r.json" >/dev/null ||
        fail "report does not list $SB_MEMFS read-only: $(jq -c .sandbox "$T/r.json")"
}

# The way around a read-only mount: memrun's own root through /proc/PPID/root. Under --sandbox
# the command lacks CAP_SYS_PTRACE, so the kernel refuses it; a read-only mount namespace alone
# (the contrast, made by hand with unshare) does not stop it.
t_sandbox_proc_root_escape() {
    mr -q --limit 64M --sandbox -- sh -c "echo $SB_ESCAPE > /proc/\$PPID/root$SB_MEMFS\$MEMRUN_CGROUP/$SB_LIMIT 2>/dev/null; echo rc=\$?; cat $SB_MEMFS\$MEMRUN_CGROUP/$SB_LIMIT"
    expect_rc 0
    grep -qx 'rc=0' "$T/out" && fail "--sandbox: wrote the limit through /proc/PPID/root: $(cat "$T/out")"
    grep -qx 67108864 "$T/out" || fail "--sandbox: $SB_LIMIT changed: $(cat "$T/out")"
    mr -q --limit 64M -- unshare -m --propagation $NS_PROPAGATION sh -c "$NS_PRIVATE; mount -o remount,bind,ro $SB_MEMFS && { echo $SB_ESCAPE > $SB_MEMFS\$MEMRUN_CGROUP/$SB_LIMIT; } 2>/dev/null; echo direct=\$?; echo $SB_ESCAPE > /proc/\$PPID/root$SB_MEMFS\$MEMRUN_CGROUP/$SB_LIMIT 2>/dev/null; echo rc=\$?"
    grep -qx 'direct=0' "$T/out" && fail "contrast: the read-only mount did not stop a direct write: $(cat "$T/out")"
    grep -qx 'rc=0' "$T/out" || fail "contrast: /proc/PPID/root was no way around a read-only mount: $(cat "$T/out")"
    true
}

# In a plain chroot "/" is no mount point, so making every mount private from "/" fails (EINVAL):
# --sandbox then makes private each mount it changes, and holds the limit all the same (a fresh
# Debian set up with mmdebstrap and entered with chroot is such a place).
t_sandbox_in_chroot() {
    command -v chroot >/dev/null && command -v unshare >/dev/null || { skip "no chroot or unshare here"; return; }
    # Binding a tree into a plain directory needs a namespace whose every mount is private.
    if [ $NS_PROPAGATION != private ]; then
        skip "this suite runs in a chroot itself ('/' is no mount point): every --sandbox test here is this case"
        return
    fi
    mkdir -p "$T/chroot" || { fail "mkdir"; return; }
    # every top-level directory bound in (memrun, the examples and $T keep their paths); the
    # root itself stays a plain directory; all of it vanishes with the mount namespace
    enter='set -e; r=$1; shift
        for d in /*; do n=${d#/}; if [ -L "$d" ]; then cp -P "$d" "$r/$n"; elif [ -d "$d" ]; then mkdir -p "$r/$n"; mount --rbind "$d" "$r/$n"; fi; done
        exec chroot "$r" "$@"'
    timeout 120 unshare -m --propagation private sh -c "$enter" enter "$T/chroot" "$MEMRUN" -q --limit 64M --sandbox -- \
        sh -c "echo roots=\$(awk '\$5 == \"/\"' /proc/self/mountinfo | wc -l); echo $SB_ESCAPE > $SB_MEMFS\$MEMRUN_CGROUP/$SB_LIMIT 2>/dev/null; echo rc=\$?; cat $SB_MEMFS\$MEMRUN_CGROUP/$SB_LIMIT" \
        >"$T/out" 2>"$T/err"
    rc=$?
    expect_rc 0 "--sandbox in a chroot: $(head -c 300 "$T/err")"
    expect_out '^roots=0$'
    grep -qx 'rc=0' "$T/out" && fail "--sandbox in a chroot: the command wrote its own $SB_LIMIT: $(cat "$T/out")"
    grep -qx 67108864 "$T/out" || fail "--sandbox in a chroot: $SB_LIMIT changed: $(cat "$T/out")"
    rm -rf --one-file-system "$T/chroot" 2>/dev/null
    true
}

t_sandbox_namespaces() {
    mr -q --sandbox -- "$SYSPROBE" unshare-net unshare-user clone-newns setns clone3 unshare-files
    expect_rc 0
    for want in unshare-net=EPERM unshare-user=EPERM clone-newns=EPERM setns=EPERM clone3=ENOSYS unshare-files=ok; do
        grep -qx "$want" "$T/out" || fail "--sandbox: want $want: $(tr '\n' ' ' <"$T/out")"
    done
    mr -q --sandbox -- sh -c 'unshare -m true 2>/dev/null; echo m=$?; unshare -U true 2>/dev/null; echo U=$?'
    grep -qx 'm=0' "$T/out" && fail "--sandbox: unshare -m worked"
    grep -qx 'U=0' "$T/out" && fail "--sandbox: unshare -U worked"
    # The contrast needs a machine that gives this process namespaces at all: a chrooted process
    # gets no user namespace from the kernel, with or without memrun.
    if ! unshare -U true 2>/dev/null || ! unshare -n true 2>/dev/null; then
        skip "contrast: this machine refuses namespaces to this process without memrun too ($(unshare -U true 2>&1 | head -n1))"
        return
    fi
    mr -q -- "$SYSPROBE" unshare-net unshare-user clone-newns setns
    for want in unshare-net=ok unshare-user=ok clone-newns=ok setns=EBADF; do
        grep -qx "$want" "$T/out" || fail "contrast: want $want without --sandbox: $(tr '\n' ' ' <"$T/out")"
    done
}

t_sandbox_errno_and_kill() {
    printf '[sandbox]\nenabled = yes\nsyscall_filter = ~uname swapon\nsyscall_action = errno:EACCES\n' >"$T/eacces.ini"
    mr -q -p "$T/eacces.ini" -- "$SYSPROBE" uname swapon bpf
    expect_rc 0
    for want in uname=EACCES swapon=EACCES bpf=EINVAL; do
        grep -qx "$want" "$T/out" || fail "errno:EACCES: want $want: $(tr '\n' ' ' <"$T/out")"
    done
    printf '[sandbox]\nenabled = yes\nsyscall_filter = ~uname\nsyscall_action = kill\n' >"$T/kill.ini"
    mr -p "$T/kill.ini" --report "$T/k.json" -- "$SYSPROBE" uname
    expect_rc 159 "killed by SIGSYS"
    expect_err "killed by SIGSYS (a system call the sandbox's seccomp filter denies)"
    [ "$(jqr .exit.signal "$T/k.json")" = SIGSYS ] || fail "report: $(jq -c .exit "$T/k.json")"
    [ "$(jqr .sandbox.seccomp.action "$T/k.json")" = kill ] || fail "report: $(jq -c .sandbox "$T/k.json")"
    # an allow-list that lacks uname: uname gets the action, the rest runs
    printf '[sandbox]\nenabled = yes\nsyscall_filter = @system-service ~uname\n' >"$T/bad-allow.ini"
    mr -p "$T/bad-allow.ini" -- true
    expect_rc 125
    expect_err "bad-allow.ini:3: \[sandbox\] syscall_filter: '~uname': '~' only starts the list"
}

t_sandbox_ordinary_workloads() {
    mr -q --limit 256M --sandbox -- sh -c 'seq 1 2000 | sort -rn | head -1; for i in 1 2 3; do /bin/true || exit 9; done; echo forked'
    expect_rc 0
    expect_out '^2000$'
    expect_out '^forked$'
    printf '[sandbox]\nenabled = yes\nsyscall_filter = @system-service\n' >"$T/allow.ini"
    mr -q --limit 256M -p "$T/allow.ini" -- sh -c 'seq 1 2000 | sort -rn | head -1; ls / >/dev/null && echo listed'
    expect_rc 0
    expect_out '^2000$'
    expect_out '^listed$'
    # the governor's reference workload: its trims reach it through the sandbox
    mr --limit 128M --sandbox --report "$T/h.json" -- "$EXAMPLES/holdcache" --total 300M --entry 1M --every 5
    expect_rc 0 "holdcache under --sandbox"
    [ "$(jqr .events.oom_kill "$T/h.json")" = 0 ] || fail "holdcache OOM-killed under --sandbox"
    [ "$(jqr '.governor.asks.trim.freed' "$T/h.json")" -gt 0 ] || fail "no trim reached holdcache: $(jq -c .governor "$T/h.json")"
}

t_sandbox_user() {
    mr -q --sandbox --user nobody --report "$T/u.json" -- sh -c 'id -u; id -g; id -G; echo "$USER $HOME"'
    expect_rc 0
    [ "$(sed -n 1p "$T/out")" = 65534 ] && [ "$(sed -n 2p "$T/out")" = 65534 ] && [ "$(sed -n 3p "$T/out")" = 65534 ] ||
        fail "--user nobody: $(tr '\n' ' ' <"$T/out")"
    [ "$(jqr .sandbox.user.uid "$T/u.json")" = 65534 ] || fail "report: $(jq -c .sandbox.user "$T/u.json")"
    [ "$(jqr '.sandbox.capabilities | length' "$T/u.json")" = 0 ] || fail "report: capabilities kept: $(jq -c .sandbox.capabilities "$T/u.json")"
    mr -q --sandbox --user nobody -- sh -c 'grep -E "^Cap(Eff|Prm|Bnd)" /proc/self/status'
    [ "$(grep -c ':.0000000000000000$' "$T/out")" = 3 ] || fail "capabilities left: $(tr '\n' ' ' <"$T/out")"
    # What nobody runs lives in a directory nobody may enter: neither the suite's own directory nor
    # the checkout (under /root, mode 0700, on a fresh machine) may be reachable for nobody.
    sdir=$(mktemp -d "${TMPDIR:-/tmp}/memrun-nobody.XXXXXX") && chmod 755 "$sdir" || { fail "mktemp"; return; }
    cp "$EXAMPLES/holdcache" "$sdir/holdcache" || { fail "cp holdcache"; return; }
    # a setuid-root binary does not make root again under no_new_privs
    suid=$sdir/suid-sysprobe
    cp "$SYSPROBE" "$suid" && chown 0:0 "$suid" && chmod 4755 "$suid"
    mr -q --sandbox --user nobody -- "$suid" euid
    expect_out '^euid=65534$'
    mr -q --user nobody -- "$suid" euid
    if grep -qx 'euid=0' "$T/out"; then :; elif grep -q "[ ,]nosuid" /proc/self/mountinfo && [ -n "$(findmnt -no OPTIONS -T "$sdir" 2>/dev/null | grep nosuid)" ]; then
        skip "contrast: $sdir is on a nosuid mount"
    else fail "contrast: without no_new_privs the setuid binary did not make euid 0: $(cat "$T/out")"; fi
    mr -q --user nosuch-user-x -- true
    expect_rc 125
    expect_err "user 'nosuch-user-x': no such user"
    mr -q --user 'a b' -- true
    expect_rc 125
    expect_err "--user 'a b'"
    # the limiter still reaches a dropped user
    mr --limit 128M --sandbox --user nobody --report "$T/h.json" -- "$sdir/holdcache" --total 300M --entry 1M --every 5
    expect_rc 0 "holdcache as nobody"
    [ "$(jqr '.governor.asks.trim.freed' "$T/h.json")" -gt 0 ] || fail "no trim reached holdcache as nobody"
    rm -rf "$sdir"
}

t_sandbox_pressure_watch() {
    # memrun's socket (the default): a dropped user reaches it, in its private directory, from the
    # sandbox's mount namespace, and follows the governor through it
    sdir=$(mktemp -d "${TMPDIR:-/tmp}/memrun-nobody.XXXXXX") && chmod 755 "$sdir" || { fail "mktemp"; return; }
    cp "$HELPERS/pwatch" "$sdir/pwatch" || { fail "cp pwatch"; return; }
    MEMRUN_RUNTIME_DIR=$sdir/run mr -q --sandbox --user nobody --limit 64M --report "$T/r.json" -- \
        "$sdir/pwatch" --total 300 --every-ms 10
    expect_rc 0 "pwatch as nobody under --sandbox"
    expect_out 'kind=socket'
    [ "$(jqr .pressure_watch.pulses.governor "$T/r.json")" -ge 1 ] || fail "no pulse: $(jq -c .pressure_watch "$T/r.json")"
    [ "$(stat -c %a "$sdir/run")" = 711 ] || fail "runtime directory: $(stat -c %a "$sdir/run")"
    # a runtime directory inside a directory nobody cannot enter (0700; not $T, which the v2 tests
    # open to all): said, and the file instead
    closed=$(mktemp -d "${TMPDIR:-/tmp}/memrun-closed.XXXXXX") && chmod 700 "$closed" || { fail "mktemp"; return; }
    MEMRUN_RUNTIME_DIR=$closed/run mr --sandbox --user nobody --limit 64M --report "$T/r.json" -- sh -c 'echo "$MEMORY_PRESSURE_WATCH"'
    expect_rc 0
    expect_err "nobody cannot reach the pressure watch socket"
    [ "$(jqr .pressure_watch.mode "$T/r.json")" = kernel ] || fail "fallback: $(jq -c .pressure_watch "$T/r.json")"
    rm -rf "$sdir" "$closed"
    # the kernel's file: it stays writable under --sandbox for the program's own trigger
    mr -q --sandbox --pressure-watch=kernel -- sh -c 'echo "$MEMORY_PRESSURE_WATCH"; printf "some 150000 2000000\0" > "$MEMORY_PRESSURE_WATCH" && echo armed'
    watch=$(sed -n 1p "$T/out")
    case $watch in /sys/fs/cgroup/*) ;; *) skip "no per-cgroup memory.pressure here (watch is $watch)"; return ;; esac
    expect_out '^armed$'
}

t_sandbox_cgroup_namespace() {
    printf '[sandbox]\nenabled = yes\ncgroup_namespace = yes\n' >"$T/cgns.ini"
    mr -q -p "$T/cgns.ini" -- cat /proc/self/cgroup
    expect_rc 0
    if [ $MODE = v2 ]; then expect_out '^0::/$'; else expect_out ':memory:/$'; fi
}

t_sandbox_bad_specs() {
    i=0
    for spec in 'syscall_filter = ~@nosuch' 'syscall_filter = ~mount nosuchcall' 'syscall_action = errno:ENOPE' \
        'syscall_action = maybe' 'architectures = vax' 'keep_caps = CAP_FLY' 'syscall_filter = ~' 'user = a:b' \
        'syscall_filter = ~mount mount'; do
        i=$((i + 1))
        printf '[sandbox]\nenabled = yes\n%s\n' "$spec" >"$T/bad$i.ini"
        mr -p "$T/bad$i.ini" -- true
        expect_rc 125 "$spec"
        grep -q "bad$i.ini:3: \[sandbox\]" "$T/err" || fail "$spec: no FILE:LINE: $(cat "$T/err")"
    done
    mr --check-policy "$T/bad1.ini"
    expect_rc 125
    expect_err "'@nosuch' is not a syscall group"
    printf '[sandbox]\nenabled = yes\n' >"$T/good.ini"
    mr --check-policy "$T/good.ini"
    expect_rc 0
    expect_out 'syscall filter (built in): denies [0-9]* syscalls'
    expect_out '@mount .* syscalls on this architecture'
}

# Rootless: an unprivileged user with a delegated cgroup owns its sandbox's memory.max, so without
# --sandbox the command can lift its own limit; with it the read-only mount is made inside a user
# namespace that maps only that user, and the write fails.
t_sandbox_rootless() {
    [ $MODE = v2 ] || { skip "cgroup v2 only: a delegated cgroup for an unprivileged user (runs in the VM suite)"; return; }
    [ -x /usr/bin/setpriv ] || { fail "/usr/bin/setpriv missing"; return; }
    d=$CG/t-rootless-$$
    # (inside the VM: the root cgroup hands memory down, as a service manager's would)
    grep -qw memory $CG/cgroup.subtree_control || echo +memory >$CG/cgroup.subtree_control || { fail "+memory at the root"; return; }
    mkdir "$d" || { fail "mkdir $d"; return; }
    chown 65534:65534 "$d" "$d/cgroup.procs" "$d/cgroup.subtree_control" "$d/cgroup.threads" || { fail chown; rmdir "$d"; return; }
    chmod 777 "$T"
    for s in plain sandbox; do
        opt=; [ $s = sandbox ] && opt=--sandbox
        sh -c "echo \$\$ > $d/cgroup.procs; exec /usr/bin/setpriv --reuid=65534 --regid=65534 --clear-groups env MEMRUN_RUNTIME_DIR=$T/userrun \"$MEMRUN\" -q --limit 64M $opt --report $T/$s.json -- sh -c 'id -u; echo max > /sys/fs/cgroup\$MEMRUN_CGROUP/memory.max 2>/dev/null; echo write=\$?; cat /sys/fs/cgroup\$MEMRUN_CGROUP/memory.max'" >"$T/$s.out" 2>"$T/$s.err"
        echo "exit=$?" >>"$T/$s.out"
    done
    grep -qx 65534 "$T/plain.out" || fail "not run as 65534: $(cat "$T/plain.out" "$T/plain.err")"
    grep -qx max "$T/plain.out" || fail "contrast: the delegated user could not lift its own limit: $(cat "$T/plain.out" "$T/plain.err")"
    grep -qx 67108864 "$T/sandbox.out" || fail "--sandbox (rootless): memory.max changed: $(cat "$T/sandbox.out" "$T/sandbox.err")"
    grep -qx 'exit=0' "$T/sandbox.out" || fail "--sandbox (rootless) failed: $(cat "$T/sandbox.out" "$T/sandbox.err")"
    grep -qx 'write=0' "$T/sandbox.out" && fail "--sandbox (rootless): the write succeeded"
    [ "$(jqr .sandbox.user_namespace "$T/sandbox.json")" = true ] || fail "report: $(jq -c .sandbox "$T/sandbox.json" 2>&1)"
    sleep 0.1
    rmdir "$d" 2>/dev/null || fail "left $d: $(find "$d" -mindepth 1 -type d)"
}
