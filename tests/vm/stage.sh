#!/bin/sh
# stage.sh: owns the tree a VM suite boots with: make install's tree (PREFIX=/usr) in ROOT, and the
# examples and test helpers in ROOT/usr/libexec/memrun. The suite's own scripts are its caller's.
# Usage (from the top directory, after make all): B=build tests/vm/stage.sh ROOT
set -eu
B=${B:-build}
root=${1:?usage: stage.sh ROOT}
rm -rf "$root"
make --no-print-directory install DESTDIR="$root" PREFIX=/usr >/dev/null
mkdir -p "$root/tests" "$root/usr/libexec/memrun"
find "$B/examples" "$B/tests/helpers" -maxdepth 1 -type f -perm -u+x -exec cp {} "$root/usr/libexec/memrun/" \;
