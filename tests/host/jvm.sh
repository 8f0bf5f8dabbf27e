# jvm.sh: the JVM driver (supervise/jvm.c, kernel/jattach.c) against Debian's OpenJDK 17 on a real
# kernel (the host; in the cgroup v2 VM, a jlink'ed java.base runtime of the same JDK: suite.sh).
# Sourced by run.sh. JvmHold (tests/helpers/JvmHold.java) grows its heap by 120 MiB, drops it all,
# and idles: an idle JVM runs no collection, so without the driver its resident set stays where the
# peak left it. memrunctl then lowers the soft limit under it. JVM_HOLD: how long it idles (the VM,
# emulated, needs longer).
JVMHOLD_SRC=$(dirname "$0")/../helpers/JvmHold.java
jvm_ready() {
    if ! command -v java >/dev/null 2>&1; then
        skip "java not installed here (openjdk-17-jdk-headless: make check-deps installs it)"
        return 1
    fi
    # compiled by the VM suite, else here
    if [ -s "$HELPERS/JvmHold.class" ]; then jv=$HELPERS; return 0; fi
    jv=$T/jv
    [ -s "$jv/JvmHold.class" ] && return 0
    if ! command -v javac >/dev/null 2>&1; then
        skip "javac not installed here (openjdk-17-jdk-headless: make check-deps installs it)"
        return 1
    fi
    mkdir -p "$jv" && javac -d "$jv" "$JVMHOLD_SRC" 2>"$T/javac.err" && return 0
    fail "javac $JVMHOLD_SRC: $(cat "$T/javac.err")"
    return 1
}
# memrun NAME under a policy whose [governor] jvm is YES|NO, java JVM-OPTION... JvmHold 120 HOLD 1
# (HOLD: $jvm_hold, else $JVM_HOLD, else 10);
# once the heap has grown, memrunctl lowers the soft limit to 100M. Sets rc, grown (RSS at the peak)
# and held (RSS after the hold), the report in $T/NAME.json.
jvm_run() { # NAME yes|no JVM-OPTION...
    n=$1 on=$2; shift 2
    printf '[level.moderate]\nusage = 50%%\nactions = trim\n[level.high]\nusage = 70%%\nactions = collect\n[governor]\njvm = %s\n' \
        "$on" > "$T/jvm-$on.ini"
    rm -f "$T/$n.out"
    "$MEMRUN" -q --no-hints -n "$n" --policy "$T/jvm-$on.ini" --limit 512M --soft 400M --report "$T/$n.json" -- \
        ${jvm_as:-} java -Xmx200m "$@" -cp "$jv" JvmHold 120 "${jvm_hold:-${JVM_HOLD:-10}}" 1 >"$T/$n.out" 2>"$T/$n.err" &
    bg=$!
    i=0; while ! grep -q 'grown.*rss [0-9]' "$T/$n.out" 2>/dev/null && [ $i -lt 1200 ]; do sleep 0.1; i=$((i + 1)); done
    "$MEMRUNCTL" set "$n" --soft 100M >/dev/null 2>"$T/$n.ctl" || fail "memrunctl set $n: $(cat "$T/$n.ctl")"
    wait $bg; rc=$?
    grown=$(sed -n 's/.* rss \([0-9]*\)$/\1/p' "$T/$n.out")
    held=$(sed -n 's/.* rss_after_hold \([0-9]*\)$/\1/p' "$T/$n.out")
}

# The JVM of another user (nobody): the driver's command child takes its uid, keeps none of memrun's
# fds and stays undumpable, and still reaches the JVM's socket inside its root.
t_jvm_driver_other_user() {
    jvm_ready || return
    command -v setpriv >/dev/null || { fail "setpriv missing (util-linux)"; return; }
    d=$(mktemp -d /tmp/memrun-jvm.XXXXXX) && chmod 755 "$d" && cp "$jv/JvmHold.class" "$d/" && chmod 644 "$d/JvmHold.class" ||
        { fail "cannot stage JvmHold.class for nobody"; return; }
    jv_saved=$jv jv=$d jvm_as="setpriv --reuid=65534 --regid=65534 --clear-groups"
    jvm_run t-jvmu-$$ yes -XX:+UseG1GC -Djava.io.tmpdir=/tmp
    jv=$jv_saved jvm_as=
    r=$T/t-jvmu-$$.json
    [ "$rc" = 0 ] || { fail "java as nobody under the driver: rc $rc: $(cat "$T/t-jvmu-$$.out" "$T/t-jvmu-$$.err")"; rm -rf "$d"; return; }
    [ -n "$grown" ] && [ -n "$held" ] && [ "$held" -lt $((grown / 2)) ] ||
        fail "the driver did not shrink nobody's JVM: RSS $grown at the peak, $held after; .jvm $(jq -c .jvm "$r")"
    [ "$(jq '.jvm[0].answered >= 1 and .jvm[0].not_driven == null' "$r")" = true ] || fail "report: .jvm $(jq -c .jvm "$r")"
    say "    # nobody's JVM: RSS $grown at the peak, $held after the lowering"
    rm -rf "$d"
}

t_jvm_driver() {
    jvm_ready || return
    jvm_run t-jvm-$$ yes -XX:+UseG1GC
    [ "$rc" = 0 ] || { fail "java under the driver: rc $rc: $(cat "$T/t-jvm-$$.out" "$T/t-jvm-$$.err")"; return; }
    [ -n "$grown" ] && [ "$grown" -ge $((120 << 20)) ] || { fail "the heap never grew: $(cat "$T/t-jvm-$$.out")"; return; }
    [ -n "$held" ] && [ "$held" -lt $((grown / 2)) ] || fail "the driver did not shrink the JVM: RSS $grown at the peak, $held after"
    r=$T/t-jvm-$$.json
    [ "$(jq '.jvm | length' "$r")" = 1 ] || fail "report: .jvm $(jq -c .jvm "$r")"
    [ "$(jq '.jvm[0].answered >= 1 and .jvm[0].freed > 52428800 and .jvm[0].not_driven == null' "$r")" = true ] ||
        fail "report: .jvm $(jq -c .jvm "$r")"
    jq -e '[.actions[] | select(.action == "jvm-collect" and (.detail | test("GC.run, RSS")) and .freed > 0)] | length >= 1' \
        "$r" >/dev/null || fail "no jvm-collect that freed memory in the actions: $(jq -c '[.actions[] | select(.action | test("jvm"))]' "$r")"
    # the contrast, same program and lowering: without the driver nothing collects the idle heap
    jvm_run t-jvmoff-$$ no -XX:+UseG1GC
    [ "$rc" = 0 ] || { fail "java without the driver: rc $rc"; return; }
    [ -n "$held" ] && [ "$held" -gt $((grown * 3 / 4)) ] ||
        fail "contrast: without the driver the JVM shrank anyway ($grown -> $held): the test shows nothing"
    [ "$(jq -c .jvm "$T/t-jvmoff-$$.json")" = null ] || fail "jvm = no, yet .jvm $(jq -c .jvm "$T/t-jvmoff-$$.json")"
    say "    # JVM RSS after the lowering: $held without the driver; with it $(sed -n 's/.* rss_after_hold //p' "$T/t-jvm-$$.out")"
}

# JVMs the driver must not touch: no attach mechanism, and -Xrs (SIGQUIT, which starts the attach
# listener, would end them). They run to the end, and the report says why they were not driven.
t_jvm_not_driven() {
    jvm_ready || return
    for opt in -XX:+DisableAttachMechanism -Xrs; do
        # seen by the first scan, a second after the start: a short hold is enough
        jvm_hold=3
        jvm_run t-jvmno-$$ yes -XX:+UseG1GC "$opt"
        jvm_hold=
        [ "$rc" = 0 ] || { fail "java $opt: rc $rc (the driver must not end it): $(cat "$T/t-jvmno-$$.err")"; continue; }
        [ -n "$held" ] || fail "java $opt did not finish its hold: $(cat "$T/t-jvmno-$$.out")"
        why=$(jq -r '.jvm[0].not_driven' "$T/t-jvmno-$$.json")
        case $opt:$why in
            -XX:+DisableAttachMechanism:*DisableAttachMechanism*|-Xrs:*-Xrs*) ;;
            *) fail "java $opt: not_driven '$why'" ;;
        esac
        [ "$(jq '.jvm[0].answered' "$T/t-jvmno-$$.json")" = 0 ] || fail "java $opt was driven: $(jq -c .jvm "$T/t-jvmno-$$.json")"
    done
}
