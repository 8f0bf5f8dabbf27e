#!/bin/sh
# suite-run.sh: owns staging the systemd VM suite (make install's tree, suite.sh, the examples and
# helpers) and booting it under systemd 252 as PID 1 (run.sh; the root filesystem is rootfs.sh's).
# Usage (from the top directory, after make all): B=build tests/systemd/suite-run.sh
set -eu
B=${B:-build}
root=$PWD/$B/systemd-root
rm -rf "$root"
make --no-print-directory install DESTDIR="$root" PREFIX=/usr >/dev/null
mkdir -p "$root/tests/systemd" "$root/usr/libexec/memrun"
cp tests/systemd/suite.sh "$root/tests/systemd/"
find "$B/examples" "$B/tests/helpers" -maxdepth 1 -type f -perm -u+x -exec cp {} "$root/usr/libexec/memrun/" \;
B=$B MEMRUN_VM_LOG=$B/systemd-vm.log tests/systemd/run.sh "$root" /tests/systemd/suite.sh
