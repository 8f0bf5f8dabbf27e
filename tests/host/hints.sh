# hints.sh: the runtime hints (runner/supervise/hints.h): Node's, the JVM's and .NET's heap sized to
# the soft limit beside GOMEMLIMIT, each only where the user has not set it, listed in the report and
# in MEMRUN_HINTS, all off with --no-hints. Against the real runtimes (node, Debian's OpenJDK 17) where
# installed. Hints are environment, not a kernel interface: these run on the host (the busybox VM
# carries no JVM or Node), and print SKIP where the runtime is missing. Sourced by run.sh.

# A runtime present here, or a SKIP naming how to get it.
hint_runtime() {
    command -v "$1" >/dev/null 2>&1 && return 0
    skip "$1 not installed ($2): the hint is checked against the real runtime only"
    return 1
}

t_hints_report_and_env() {
    mr -q --limit 256M --report "$T/r.json" -- sh -c 'echo "$MEMRUN_HINTS|$GOMEMLIMIT|$NODE_OPTIONS|$JAVA_TOOL_OPTIONS|$DOTNET_GCHeapHardLimit"'
    expect_rc 0
    soft=$(jqr .limits.high "$T/r.json")
    [ "$(cat "$T/out")" = "GOMEMLIMIT,NODE_OPTIONS,JAVA_TOOL_OPTIONS,DOTNET_GCHeapHardLimit|$soft|--max-old-space-size=172|-Xmx166m -XX:SoftMaxHeapSize=149m|0x$(printf %x $((soft / 4 * 3)))" ] ||
        fail "environment: $(cat "$T/out") (soft $soft)"
    [ "$(jq -r '.hints | keys_unsorted | join(",")' "$T/r.json")" = "GOMEMLIMIT,NODE_OPTIONS,JAVA_TOOL_OPTIONS,DOTNET_GCHeapHardLimit" ] ||
        fail "report hints: $(jq -c .hints "$T/r.json")"
    # the user's own settings win: nothing of theirs is replaced; theirs are not listed as memrun's
    NODE_OPTIONS="--max-old-space-size=999 --trace-warnings" JAVA_TOOL_OPTIONS=-Xmx1g GOMEMLIMIT=1GiB \
        DOTNET_GCHeapHardLimitPercent=50 mr -q --limit 256M --report "$T/r.json" -- \
        sh -c 'echo "$MEMRUN_HINTS|$GOMEMLIMIT|$NODE_OPTIONS|$JAVA_TOOL_OPTIONS|${DOTNET_GCHeapHardLimit:-unset}"'
    [ "$(cat "$T/out")" = "|1GiB|--max-old-space-size=999 --trace-warnings|-Xmx1g|unset" ] || fail "user's settings: $(cat "$T/out")"
    [ "$(jq -c .hints "$T/r.json")" = "{}" ] || fail "report lists the user's: $(jq -c .hints "$T/r.json")"
    # NODE_OPTIONS without a heap size keeps what it has and gains ours
    NODE_OPTIONS=--trace-warnings mr -q --limit 256M -- sh -c 'echo "$NODE_OPTIONS"'
    [ "$(cat "$T/out")" = "--trace-warnings --max-old-space-size=172" ] || fail "NODE_OPTIONS appended: $(cat "$T/out")"
    # --no-hints: none of them, and none listed
    mr -q --no-hints --limit 256M --report "$T/r.json" -- sh -c 'echo "${MEMRUN_HINTS:-none}|${GOMEMLIMIT:-none}|${NODE_OPTIONS:-none}|${JAVA_TOOL_OPTIONS:-none}"'
    [ "$(cat "$T/out")" = "none|none|none|none" ] || fail "--no-hints: $(cat "$T/out")"
    [ "$(jq -c .hints "$T/r.json")" = "{}" ] || fail "--no-hints report: $(jq -c .hints "$T/r.json")"
}

# Node: V8's heap limit fits under the soft limit with the hint; without it V8 sizes itself to the
# machine and its limit lies above the soft limit (above the whole 256M budget here).
t_hints_node() {
    hint_runtime node "apt-get install nodejs" || return
    js='console.log(require("v8").getHeapStatistics().heap_size_limit)'
    mr -q --limit 256M --report "$T/r.json" -- node -e "$js"
    expect_rc 0 "node with hints"
    soft=$(jqr .limits.high "$T/r.json") lim=$(cat "$T/out")
    [ "$lim" -le "$soft" ] || fail "with the hint V8's heap limit $lim is above the soft limit $soft"
    mr -q --no-hints --limit 256M -- node -e "$js"
    lim0=$(cat "$T/out")
    [ "$lim0" -gt "$soft" ] || fail "contrast: without hints V8's heap limit $lim0 is not above the soft limit $soft"
    say "    # V8 heap limit: $lim with the hint, $lim0 without (soft $soft)"
}

# The JVM: its heap sized to the budget, not to HotSpot's small-container default (half of the
# limit it sees); SoftMaxHeapSize under it. Read from the JVM itself (-XX:+PrintFlagsFinal).
t_hints_java() {
    hint_runtime java "apt-get install openjdk-17-jdk-headless" || return
    flag() { sed -n "s/^ *size_t $1 *= *\([0-9]*\) .*/\1/p" "$T/out"; }
    mr -q --limit 256M --report "$T/r.json" -- java -XX:+PrintFlagsFinal -version
    expect_rc 0 "java with hints"
    soft=$(jqr .limits.high "$T/r.json") max=$(flag MaxHeapSize) smax=$(flag SoftMaxHeapSize)
    expect_err "Picked up JAVA_TOOL_OPTIONS: -Xmx166m"
    [ -n "$max" ] && [ "$max" = $((166 << 20)) ] || fail "MaxHeapSize with the hint: '$max'"
    [ -n "$smax" ] && [ "$smax" -lt "$max" ] || fail "SoftMaxHeapSize '$smax' not under MaxHeapSize '$max'"
    mr -q --no-hints --limit 256M -- java -XX:+PrintFlagsFinal -version
    max0=$(flag MaxHeapSize)
    [ -n "$max0" ] && [ "$max0" -lt "$max" ] || fail "contrast: HotSpot's own default '$max0' is not below the hint's '$max'"
    say "    # MaxHeapSize: $max with the hint, $max0 HotSpot's default (soft $soft)"
}
