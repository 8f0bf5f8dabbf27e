#!/bin/sh
# suite-run.sh: owns staging the systemd VM suite (make install's tree, suite.sh, the examples and
# helpers) and booting it under systemd 252 as PID 1 (run.sh; the root filesystem is rootfs.sh's).
# Usage (from the top directory, after make all): B=build tests/systemd/suite-run.sh
set -eu
B=${B:-build}
root=$PWD/$B/systemd-root
B=$B tests/vm/stage.sh "$root"
mkdir -p "$root/tests/systemd"
cp tests/systemd/suite.sh "$root/tests/systemd/"
B=$B MEMRUN_VM_LOG=$B/systemd-vm.log tests/systemd/run.sh "$root" /tests/systemd/suite.sh
