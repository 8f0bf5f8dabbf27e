#!/bin/sh
# suite-run.sh: owns staging the systemd VM suite and booting it under systemd 252 as PID 1 (run.sh;
# the root filesystem is rootfs.sh's): memrun goes in as the Debian packages `make deb` built (in
# /debs, installed by suite.sh with dpkg as an operator would), the examples and test helpers in
# /usr/libexec/memrun, and suite.sh itself.
# Usage (from the top directory, after make all deb): B=build tests/systemd/suite-run.sh
set -eu
B=${B:-build}
root=$PWD/$B/systemd-root
rm -rf "$root"
mkdir -p "$root/tests/systemd" "$root/usr/libexec/memrun" "$root/debs"
find "$B/examples" "$B/tests/helpers" -maxdepth 1 -type f -perm -u+x -exec cp {} "$root/usr/libexec/memrun/" \;
n=0
for p in memrun libmemlimit0 libmemlimit-dev; do
    for f in "$B"/deb/${p}_*.deb; do [ -f "$f" ] && cp "$f" "$root/debs/" && n=$((n + 1)); done
done
[ $n = 3 ] || { echo "suite-run.sh: error: want memrun, libmemlimit0 and libmemlimit-dev in $B/deb (make deb), found $n" >&2; exit 1; }
cp tests/systemd/suite.sh "$root/tests/systemd/"
B=$B MEMRUN_VM_LOG=$B/systemd-vm.log tests/systemd/run.sh "$root" /tests/systemd/suite.sh
