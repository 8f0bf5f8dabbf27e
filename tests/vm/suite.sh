#!/bin/sh
# suite.sh: owns staging and running the cgroup v2 VM suites: make install's tree, the host suite
# and the scenarios, the examples and test helpers, and the host tools they use (jq, setpriv,
# util-linux's unshare, python3), then one boot for the host suite and one for the scenarios.
# Usage (from the top directory, after make all): B=build tests/vm/suite.sh
set -eu
B=${B:-build}
root=$PWD/$B/vm-root
B=$B tests/vm/stage.sh "$root"
cp -r tests/host tests/scenarios "$root/tests/"
cp "$(command -v jq)" "$(command -v setpriv)" "$(command -v unshare)" "$root/usr/bin/"
# strace, which t_fault_limit_lowered_outside records memrun's writes with
command -v strace >/dev/null && cp "$(command -v strace)" "$root/usr/bin/"
# crun, the OCI runtime t_crun_in_place runs a container with (its libraries follow, run.sh)
command -v crun >/dev/null && cp "$(command -v crun)" "$root/usr/bin/"
# The allocators --preload knows (t_limiter_preload_allocators): where the host has them, same path.
for so in /usr/lib/*-linux-gnu/libjemalloc.so.2 /usr/lib/*-linux-gnu/libtcmalloc_minimal.so.4 \
          /usr/lib/*-linux-gnu/libmimalloc.so.2; do
    [ -e "$so" ] && mkdir -p "$root$(dirname "$so")" && cp -L "$so" "$root$so"
done
# Debian's python3 for the Python client's tests: the interpreter and its standard library without
# the parts no test imports (tests, GUI, packaging); the client is make install's, in dist-packages.
if [ -x /usr/bin/python3.11 ]; then
    cp /usr/bin/python3.11 "$root/usr/bin/" && ln -sf python3.11 "$root/usr/bin/python3"
    mkdir -p "$root/usr/lib/python3.11/lib-dynload"
    tar -C /usr/lib/python3.11 --exclude=__pycache__ --exclude=test --exclude=tests --exclude=idlelib \
        --exclude=tkinter --exclude=turtledemo --exclude=ensurepip --exclude=lib2to3 --exclude=pydoc_data \
        --exclude='config-3.11*' --exclude=site-packages --exclude=dist-packages --exclude=lib-dynload \
        -cf - . | tar -C "$root/usr/lib/python3.11" -xf -
    cp /usr/lib/python3.11/lib-dynload/_ctypes.*.so "$root/usr/lib/python3.11/lib-dynload/"
fi
# Debian's OpenJDK 17 for the JVM driver's and the JVM hint's tests: the JDK (hundreds of MiB)
# would not fit the initramfs, so jlink makes a runtime of java.base from it (about 34 MiB, cached
# in $B; HotSpot with its attach listener and diagnostic commands is all there), and JvmHold is
# compiled here (the VM has no javac).
if command -v jlink >/dev/null && command -v javac >/dev/null; then
    jre=$B/vm-jre
    if [ ! -x "$jre/bin/java" ]; then
        rm -rf "$jre"
        jlink --add-modules java.base --strip-debug --no-header-files --no-man-pages --compress=2 --output "$jre"
    fi
    mkdir -p "$root/usr/lib/jvm"
    cp -r "$jre" "$root/usr/lib/jvm/memrun-jre" && ln -sf /usr/lib/jvm/memrun-jre/bin/java "$root/usr/bin/java"
    javac -d "$root/usr/libexec/memrun" tests/helpers/JvmHold.java
fi
in_vm="env MEMRUN=/usr/bin/memrun EXAMPLES=/usr/libexec/memrun HELPERS=/usr/libexec/memrun JVM_HOLD=40"
# The host suite is the longest boot: 851 s in a CI run of 2026-12-04 and over 900 s (run.sh's
# default, no test failed by then) in a rehearsal on this machine the same day; its own timeout is
# 1800 s.
# shellcheck disable=SC2086  # $in_vm is words on purpose
MEMRUN_VM_TIMEOUT=${MEMRUN_VM_TIMEOUT:-1800} MEMRUN_VM_LOG=$B/vm.log tests/vm/run.sh "$root" -- $in_vm PRELOAD_SO=/usr/lib/memrun/libmemlimit-preload.so \
    CONFIGS=/usr/share/memrun sh /tests/host/run.sh
# shellcheck disable=SC2086
MEMRUN_VM_LOG=$B/vm-scenarios.log tests/vm/run.sh "$root" -- $in_vm sh /tests/scenarios/run.sh
