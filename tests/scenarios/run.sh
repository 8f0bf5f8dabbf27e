#!/bin/sh
# The OOM scenario suite (part of `make check`, in the cgroup v2 VM): runs every scenario of
# scenario.sh in the configurations that give its contrast (killed / stalled / survived) and asserts
# the expected outcome, plus the evidence the issue asks for (ladder climbed, rejected counted, every
# worker trimmed, the stall resolved by memrun lifting memory.high). POSIX sh: busybox runs it.
# Needs MEMRUN, EXAMPLES (leak, cachesrv, loadgen, burst, fragment, forkgrow), jq; root.
# On cgroup v1 (no memory.high) the plain-high runs and the stall scenario print SKIP: the VM runs them.
# Prints "ok - NAME CONFIG" / "not ok - NAME CONFIG" per run, and "scenarios: N passed, M failed,
# K skipped"; exits 1 when anything failed.

MEMRUN=${MEMRUN:?set MEMRUN to the memrun binary}
EXAMPLES=${EXAMPLES:?set EXAMPLES to the directory holding the example programs}
export MEMRUN EXAMPLES
HERE=$(cd "$(dirname "$0")" && pwd)
SCENARIO=$HERE/scenario.sh
T=$(mktemp -d "${TMPDIR:-/tmp}/memrun-scenarios.XXXXXX") || exit 1
export MEMRUN_RUNTIME_DIR="$T/run"
trap 'rm -rf "$T"' EXIT
PASS=0 FAIL=0 SKIP=0
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then MODE=v2; else MODE=v1; fi
echo "# memrun scenarios: $MEMRUN, cgroup $MODE, kernel $(uname -r)"

say() { printf '%s\n' "$*"; }
fail() { say "    FAIL: $*"; TFAIL=1; }
field() { printf '%s\n' "$line" | sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }

# sc NAME CONFIG EXPECTED-OUTCOME...: run one scenario, check its outcome is one of those given,
# then call check_NAME_CONFIG if it exists for the scenario-specific evidence.
sc() {
    name=$1 config=$2; shift 2
    TFAIL=0
    if [ $MODE = v1 ] && { [ "$config" = plain-high ] || [ "$name" = stall ]; }; then
        say "SKIP: $name $config: needs memory.high (cgroup v2); the VM suite runs it"
        SKIP=$((SKIP + 1)); return
    fi
    t0=$(date +%s)
    line=$(sh "$SCENARIO" "$name" "$config" "$T")
    say "# $line ($(( $(date +%s) - t0 ))s)"
    P=$T/$name-$config
    outcome=$(field outcome)
    want=" $* "
    case $want in *" $outcome "*) ;; *) fail "outcome '$outcome', expected: $*"; tail -3 "$P.err" 2>/dev/null | sed 's/^/    | /' ;; esac
    fn=check_$(printf '%s_%s' "$name" "$config" | tr - _)
    if command -v "$fn" >/dev/null 2>&1; then "$fn"; fi
    if [ $TFAIL = 0 ]; then PASS=$((PASS + 1)); say "ok - $name $config"
    else FAIL=$((FAIL + 1)); say "not ok - $name $config"; fi
}
jqr() { jq -r "$1" "$P.report.json" 2>/dev/null; }

check_killed_report() {  # exit 137, oom_kill >= 1, peak within 10% of the limit
    [ "$(field exit)" = 137 ] || fail "exit $(field exit), expected 137"
    [ "$(field oom_kill)" -ge 1 ] 2>/dev/null || fail "oom_kill $(field oom_kill)"
    max=$(jqr .limits.max); peak=$(field peak)
    [ "$peak" -ge $((max * 9 / 10)) ] 2>/dev/null || fail "peak $peak not near the limit $max"
}
check_leak_plain_max() { check_killed_report; }
check_leak_plain_high() { check_killed_report; }
check_leak_memrun() {
    check_killed_report
    [ "$(jqr .exit.oom_killed)" = true ] || fail "exit.oom_killed not true"
    ladder=$(jqr '[.levels[].level] | join(" ")')
    case " $ladder " in *" moderate "*"high "*"critical "*) ;; *) fail "levels did not climb moderate -> high -> critical: '$ladder'" ;; esac
    # every level entered before the kill: the kill is the end of the run
    dur=$(jqr .duration_s)
    awk -v d="$dur" -v l="$(jqr '[.levels[].t] | max')" 'BEGIN { exit !(l <= d) }' || fail "levels after the end"
    # and --expect-oom turns the same run into a pass
    timeout 60 "$MEMRUN" -q --limit 64M --expect-oom -- "$EXAMPLES/leak" --max 96M --interval 20 >"$T/eo.out" 2>&1
    eo=$?
    [ $eo = 0 ] || fail "--expect-oom exited $eo: $(cat "$T/eo.out")"
}
check_cache_memrun() {
    [ "$(field oom_kill)" = 0 ] || fail "oom_kill $(field oom_kill)"
    jq -e '[.actions[] | select(.action == "trim" and .freed > 0)] | length >= 1' "$P.report.json" >/dev/null 2>&1 ||
        fail "no trim freed anything: $(jq -c .actions "$P.report.json" 2>/dev/null | head -c 400)"
    grep -q '^loadgen: .* lost=0 ' "$P.out" || fail "loadgen: $(grep '^loadgen:' "$P.out")"
}
check_burst_memrun() {
    s=$(grep '^burst: requests=' "$P.out")
    rej=$(printf '%s\n' "$s" | sed -n 's/.* rejected=\([0-9]*\).*/\1/p')
    lost=$(printf '%s\n' "$s" | sed -n 's/.* lost=\([0-9]*\).*/\1/p')
    [ "${rej:-0}" -gt 0 ] || fail "nothing rejected: '$s'"
    [ "$lost" = 0 ] || fail "lost requests: '$s'"
    [ "$(field oom_kill)" = 0 ] || fail "oom_kill $(field oom_kill)"
    [ "$(field work)" -gt 0 ] 2>/dev/null || fail "no request done: '$s'"
}
check_fragment_memrun() {
    [ "$(field oom_kill)" = 0 ] || fail "oom_kill $(field oom_kill)"
    jq -e '[.actions[] | select((.action == "collect" or .action == "trim") and .freed > 0)] | length >= 1' \
        "$P.report.json" >/dev/null 2>&1 || fail "the preload shim freed nothing: $(jq -c .actions "$P.report.json" 2>/dev/null | head -c 400)"
}
check_forkheavy_memrun() {
    [ "$(field oom_kill)" = 0 ] || fail "oom_kill $(field oom_kill)"
    procs=$(grep -c '^forkgrow: pid=[0-9]* ops=' "$P.out")
    trimmed=$(sed -n 's/^forkgrow: pid=\([0-9]*\) trim freed=[1-9][0-9]*$/\1/p' "$P.out" | sort -u | wc -l)
    [ "$procs" = 4 ] || fail "$procs of 4 processes finished"
    [ "$trimmed" = 4 ] || fail "$trimmed of 4 processes trimmed something"
}
check_stall_plain_high() {
    [ "$(field exit)" = 124 ] || awk -v t="$(field throttled_s)" 'BEGIN { exit !(t >= 5) }' ||
        fail "neither timed out nor throttled long: $line"
}
# Nothing to give back and parked at memory.high: the governor gives up after [governor] giveup and
# lifts memory.high (before the built-in [stall] escalation's 10 s could raise it), and the program,
# which fits under memory.max, completes.
check_stall_memrun() {
    jq -e '[.actions[] | select(.action == "giveup" or .action == "stall-raise")] | length >= 1' "$P.report.json" \
        >/dev/null 2>&1 || fail "memory.high never lifted: $(jq -c .actions "$P.report.json" 2>/dev/null | head -c 400)"
    [ "$(jq -r '.governor.giveups // 0' "$P.report.json")" -ge 1 ] ||
        fail "the governor did not give up: $(jq -c .governor "$P.report.json" 2>/dev/null | head -c 400)"
    grep -q '^leak: holding' "$P.out" || fail "leak did not complete"
}

START=$(date +%s)
sc leak plain-max killed
sc leak plain-high killed
sc leak memrun killed
sc cache plain-max killed
sc cache plain-high killed stalled
sc cache memrun survived
sc burst plain-max killed
sc burst plain-high killed
sc burst memrun survived
sc fragment plain-max killed
sc fragment plain-high killed
sc fragment memrun survived
sc forkheavy plain-max killed
sc forkheavy plain-high killed
sc forkheavy memrun survived
sc stall plain-max survived
sc stall plain-high stalled
sc stall memrun survived
say "# $(( $(date +%s) - START ))s"
say "scenarios: $PASS passed, $FAIL failed, $SKIP skipped"
[ $FAIL = 0 ]
