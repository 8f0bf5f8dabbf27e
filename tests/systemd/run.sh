#!/bin/bash
# run.sh: owns booting Debian 12 with systemd 252 as PID 1 (cgroup v2) under qemu (TCG) and running
# one test script in it as a systemd service. The root filesystem is rootfs.sh's cached cpio; TREE
# (memrun's `make install` tree and the tests) goes in a second cpio the kernel unpacks on top.
# Usage: tests/systemd/run.sh TREE SCRIPT   (SCRIPT: a path inside TREE, run as root by bash)
# Exit status: the script's (124 = timeout, 125 = no exit marker / harness failure).
set -uo pipefail
say() { echo "run.sh: $*" >&2; }
die() { say "error: $*"; exit 125; }

[ $# = 2 ] || die "usage: $0 TREE SCRIPT"
tree=$(cd "$1" && pwd -P) || die "TREE '$1' is not a directory"
script=$2
[ -f "$tree$script" ] || die "$tree$script does not exist"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
B=${B:-build}
TIMEOUT=${MEMRUN_VM_TIMEOUT:-600}
LOG=${MEMRUN_VM_LOG:-$B/systemd-vm.log}
MEM=${MEMRUN_VM_MEM:-1536}
for t in qemu-system-x86_64 cpio zstd timeout; do command -v $t >/dev/null || die "$t not found"; done

kernel=$("$here/../vm/kernel.sh") || die "kernel.sh failed"
rootfs=$("$here/rootfs.sh" "$B/systemd-vm") || die "rootfs.sh failed"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/memrun-systemd-vm.XXXXXX") || die "mktemp failed"
trap 'rm -rf "$tmp"' EXIT
o=$tmp/overlay
mkdir -p "$o/etc/systemd/system/multi-user.target.wants" || die mkdir
cp -a "$tree/." "$o/" || die "copying $tree failed"
# The test runs as a service once the system is up, its output on the serial console (kept in a
# script: systemd would expand the $ of shell code in ExecStart=).
cat >"$o/memrun-vm-run" <<RUN
#!/bin/bash
cd /
bash $script
rc=\$?
echo
echo "MEMRUN-VM-EXIT=\$rc"
systemctl poweroff --force --force
RUN
chmod 755 "$o/memrun-vm-run"
cat >"$o/etc/systemd/system/memrun-test.service" <<UNIT
[Unit]
Description=memrun systemd VM suite
After=multi-user.target

[Service]
Type=exec
ExecStart=/memrun-vm-run
StandardOutput=tty
StandardError=tty
TTYPath=/dev/ttyS0
UNIT
ln -s ../memrun-test.service "$o/etc/systemd/system/multi-user.target.wants/memrun-test.service"
initrd=$tmp/initrd
cp "$rootfs" "$initrd" || die "copying $rootfs failed"
(cd "$o" && find . -print0 | cpio --null -o -H newc -R 0:0 --quiet | zstd -q -1) >>"$initrd" ||
    die "packing the overlay failed"
say "kernel $kernel, initramfs $(du -m "$initrd" | cut -f1) MiB, timeout ${TIMEOUT}s, log $LOG"

. "$here/../vm/boot.sh"
vm_boot "$kernel" "$initrd" "$MEM" 2 \
    "console=ttyS0 quiet panic=-1 psi=1 systemd.unified_cgroup_hierarchy=1 systemd.show_status=0 ${MEMRUN_VM_APPEND:-}"
