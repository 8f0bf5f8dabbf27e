#!/bin/sh
# run.sh: builds the fuzz targets (fuzz_policy, fuzz_size, fuzz_psi, fuzz_proto, fuzz_kmsg, fuzz_registry,
# fuzz_sandbox, fuzz_ctl) and runs each for a bounded time.
# Usage: tests/fuzz/run.sh [TARGET...]   (from anywhere; default: every target)
# Env: FUZZ_SECONDS (per target, default 20), FUZZ_CC (default clang), B (build dir, default build),
# FUZZ_REQUIRE=libfuzzer (make check: no quiet fallback to the driver).
# With clang's libFuzzer the targets are coverage-guided (-fsanitize=fuzzer,address,undefined); without
# it they are built with $CC and tests/fuzz/driver.c (random mutations of the seed corpus, ASan/UBSan
# when the compiler has them). Exits non-zero if a target crashed; the input is kept under
# $B/fuzz/artifacts/.
# Flag variables ($SAN, $BASE ...) are word-split on purpose.
# shellcheck disable=SC2086,SC2046
set -u
cd "$(dirname "$0")/../.." || exit 2
B=${B:-build}
SECONDS_EACH=${FUZZ_SECONDS:-20}
FUZZ_CC=${FUZZ_CC:-clang}
OUT=$B/fuzz
mkdir -p "$OUT/artifacts" || exit 2

case $SECONDS_EACH in '' | *[!0-9]*) echo "run.sh: FUZZ_SECONDS must be a number of seconds" >&2; exit 2 ;; esac
# libFuzzer reads -max_total_time=0 as "no limit": 0 means run the corpus once instead.
if [ "$SECONDS_EACH" -eq 0 ]; then BOUND=-runs=0; else BOUND=-max_total_time=$SECONDS_EACH; fi

# The Makefile's warning set (WARN, with -Werror under WERROR=1) and the environment's CPPFLAGS.
WARN=${WARN:-"-Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -Wconversion"}
BASE="-std=gnu11 -iquote runner -iquote . -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer $WARN ${CPPFLAGS:-}"
INIH=$(pkg-config --cflags --libs inih 2>/dev/null || echo -linih)
SECCOMP=$(pkg-config --cflags --libs libseccomp 2>/dev/null || echo -lseccomp)

# Pick the build mode once: libFuzzer if it links, else the standalone driver.
probe=$OUT/probe
printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' >"$probe.c"
if command -v "$FUZZ_CC" >/dev/null 2>&1 &&
        "$FUZZ_CC" -fsanitize=fuzzer,address,undefined -o "$probe" "$probe.c" >/dev/null 2>&1; then
    MODE=libfuzzer
    CCX=$FUZZ_CC
    SAN="-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined"
    DRIVER=
elif [ "${FUZZ_REQUIRE:-}" = libfuzzer ]; then
    echo "run.sh: error: libFuzzer not available ($FUZZ_CC -fsanitize=fuzzer does not link; Debian: libclang-rt-14-dev, which make check-deps installs)"
    exit 2
else
    MODE=driver
    CCX=${CC:-cc}
    SAN="-fsanitize=address,undefined -fno-sanitize-recover=all"
    printf 'int main(void) { return 0; }\n' >"$probe.c"
    "$CCX" $SAN -o "$probe" "$probe.c" >/dev/null 2>&1 || SAN=
    DRIVER=tests/fuzz/driver.c
    echo "run.sh: libFuzzer not available ($FUZZ_CC -fsanitize=fuzzer does not link): using $CCX + driver.c${SAN:+ with ASan/UBSan}"
fi
rm -f "$probe" "$probe.c"

srcs() {
    case $1 in
    policy | sandbox) echo "config/policy.c config/sandbox.c config/size.c" ;;
    size) echo "config/size.c" ;;
    psi) echo "runner/kernel/psi.c runner/util.c" ;;
    proto) echo "runner/control/lsrv.c runner/kernel/proc.c runner/cgroup/cg_detect.c runner/util.c runner/log.c config/policy.c config/sandbox.c config/size.c" ;;
    kmsg) echo "runner/kernel/kmsg.c runner/util.c" ;;
    ctl) echo "runner/control/ctl.c runner/util.c runner/log.c config/size.c" ;;
    registry) echo "runner/cgroup/registry.c runner/cgroup/cg_sandbox.c runner/cgroup/cg_detect.c runner/kernel/proc.c runner/kernel/psi.c runner/log.c runner/util.c" ;;
    esac
}
libs() {
    case $1 in
    policy | proto | sandbox) echo "$INIH $SECCOMP" ;;
    esac
}

targets=${*:-policy size psi proto kmsg registry sandbox ctl}
failed=""
for t in $targets; do
    [ -f "tests/fuzz/fuzz_$t.c" ] || { echo "run.sh: no target tests/fuzz/fuzz_$t.c" >&2; exit 2; }
    bin=$OUT/fuzz_$t
    if ! $CCX $BASE $SAN ${LDFLAGS:-} -o "$bin" "tests/fuzz/fuzz_$t.c" $DRIVER $(srcs "$t") $(libs "$t"); then
        echo "fuzz: $t: build failed"
        failed="$failed $t"
        continue
    fi
    # New inputs go to a work directory, never into the seed corpus of the source tree.
    work=$OUT/corpus-$t
    mkdir -p "$work"
    seeds=tests/fuzz/corpus/$t
    [ "$t" = policy ] && cp config/*.ini "$work/" 2>/dev/null
    log=$OUT/fuzz_$t.log
    echo "fuzz: $t: $MODE, ${SECONDS_EACH}s"
    ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:abort_on_error=1} \
        "$bin" "$BOUND" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
        -artifact_prefix="$OUT/artifacts/$t-" -print_final_stats=1 "$work" "$seeds" >"$log" 2>&1
    rc=$?
    if [ $rc -ne 0 ]; then
        tail -n 40 "$log"
        echo "fuzz: $t: FAILED (exit $rc); inputs in $OUT/artifacts/, log $log"
        failed="$failed $t"
    else
        runs=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | tail -n 1)
        cov=$(grep -o 'DONE *cov: [0-9]* ft: [0-9]*' "$log" | tail -n 1 | sed 's/DONE *//')
        echo "fuzz: $t: ok: ${runs:-see $log}${cov:+, $cov}"
    fi
done
if [ -n "$failed" ]; then
    echo "fuzz: failed:$failed"
    exit 1
fi
echo "fuzz: all targets ran without a crash"
