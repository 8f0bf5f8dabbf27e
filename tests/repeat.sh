#!/bin/sh
# repeat.sh: owns `make repeat` (outside make check): the host suite (host tests and scenarios)
# REPEAT_HOST times (5) and the cgroup v2 VM suites REPEAT_VM times (3), back to back, to find the
# flaky tests. Each run's log is kept in BUILD/repeat/; the summary counts runs, passes and
# failures per suite and names every test that failed, with the run it failed in.
# Usage: tests/repeat.sh BUILD_DIR   (make repeat; MAKE from the environment)
set -u
B=${1:?usage: tests/repeat.sh BUILD_DIR}
MAKE=${MAKE:-make}
W=$B/repeat
mkdir -p "$W" || exit 1
rm -f "$W"/*.log
failed=0
summary=""

# run SUITE TARGET N: make TARGET N times; counts from the "ok"/"not ok" lines of each log
run() {
    suite=$1 target=$2 n=$3 i=1 passes=0 fails=0 bad=""
    while [ $i -le "$n" ]; do
        log=$W/$suite-$i.log
        echo "repeat: $suite run $i of $n ($log)"
        $MAKE --no-print-directory "$target" B="$B" >"$log" 2>&1
        rc=$?
        p=$(grep -c '^ok - ' "$log")
        f=$(grep -c '^not ok - ' "$log")
        passes=$((passes + p)) fails=$((fails + f))
        for t in $(sed -n 's/^not ok - \([^ ]*\).*/\1/p' "$log"); do bad="$bad $t(run $i)"; done
        if [ $rc != 0 ] && [ "$f" = 0 ]; then bad="$bad make-$target-exit-$rc(run $i)"; fails=$((fails + 1)); fi
        echo "repeat: $suite run $i: $p passed, $f failed (make exit $rc)"
        i=$((i + 1))
    done
    [ $fails = 0 ] || failed=1
    summary="$summary
$suite: $n runs, $passes passed, $fails failed${bad:+:$bad}"
}

run host host "${REPEAT_HOST:-5}"
run vm vm "${REPEAT_VM:-3}"
echo "repeat: summary$summary"
exit $failed
