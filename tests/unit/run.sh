#!/bin/sh
# run.sh: owns running the cmocka unit test binaries and totalling their results.
# Usage: tests/unit/run.sh BINARY...   Prints each binary's output, then "unit: N passed, M failed";
# exits non-zero if any test failed or any binary crashed or printed no cmocka summary.
[ $# -gt 0 ] || { echo "usage: $0 BINARY..." >&2; exit 2; }

passed=0 failed=0 skipped=0 bad_bins=""
out=$(mktemp "${TMPDIR:-/tmp}/memrun-unit-out.XXXXXX") || exit 2
trap 'rm -f "$out"' EXIT INT TERM

# count PATTERN: the N of the first "[ TAG ] N test(s)" summary line in $out, 0 if none.
count() {
    n=$(grep -o "\[  $1  *\] [0-9][0-9]* test(s)" "$out" | head -n 1 | sed 's/.*\] \([0-9]*\) test.*/\1/')
    echo "${n:-0}"
}

for bin in "$@"; do
    name=$(basename "$bin")
    echo "=== $name"
    if [ ! -x "$bin" ]; then
        echo "run.sh: $bin: not an executable" >&2
        failed=$((failed + 1)); bad_bins="$bad_bins $name"
        continue
    fi
    "$bin" >"$out" 2>&1
    rc=$?
    cat "$out"
    total=$(grep -o '\[==========\] Running [0-9][0-9]* test(s)' "$out" | head -n 1 | sed 's/[^0-9]//g')
    total=${total:-0}
    p=$(count PASSED); f=$(count FAILED); s=$(count SKIPPED)
    if [ "$rc" -gt 128 ] || [ "$total" -eq 0 ] || [ $((p + f + s)) -lt "$total" ]; then
        # Crashed (signal, sanitizer abort) or stopped early: every test not accounted for failed.
        missing=$((total - p - f - s))
        [ "$missing" -gt 0 ] || missing=1
        f=$((f + missing))
        echo "run.sh: $name exited with status $rc after $((p + f + s - missing)) of $total test(s): counting $missing as failed" >&2
        bad_bins="$bad_bins $name"
    elif [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "run.sh: $name exited with status $rc but reported no failure: counting 1 failed" >&2
        f=1; bad_bins="$bad_bins $name"
    fi
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
done

[ -z "$bad_bins" ] || echo "run.sh: binaries that failed or crashed:$bad_bins"
[ "$skipped" -eq 0 ] || echo "unit: $skipped skipped"
echo "unit: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
