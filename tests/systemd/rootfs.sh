#!/bin/bash
# rootfs.sh: owns the systemd VM's root filesystem: Debian 12 (systemd 252 as PID 1) built with
# mmdebstrap from this host's own apt sources, packed as a zstd newc cpio that the kernel unpacks
# as its initramfs (no root=; Debian has no /etc/initrd-release, so systemd runs as the real
# system). Cached: rebuilt only when this script changes. The host's apt sources for bookworm are
# used, whatever their files are called (tests/vm/apt-sources.sh). Prints the cpio's path.
# Usage: tests/systemd/rootfs.sh OUTDIR
set -euo pipefail
say() { echo "rootfs.sh: $*" >&2; }
die() { say "error: $*"; exit 1; }

out=${1:?usage: rootfs.sh OUTDIR}
mkdir -p "$out"
out=$(cd "$out" && pwd -P)
key=$(sha256sum "$0" | cut -c1-16)
img=$out/rootfs-$key.cpio.zst
[ -s "$img" ] && { echo "$img"; exit 0; }
for t in mmdebstrap cpio zstd; do command -v $t >/dev/null || die "$t not found (apt-get install mmdebstrap cpio zstd)"; done
[ "$(id -u)" = 0 ] || die "building the rootfs needs root (mmdebstrap in root mode)"

# What the suite needs inside: systemd and its user manager, D-Bus, a login user, and what memrun
# links (inih, seccomp, libmicrohttpd: the .debs' dependencies, installed with dpkg), jq for the
# reports, bash for /dev/tcp.
pkgs=systemd,systemd-sysv,dbus,dbus-user-session,libpam-systemd,util-linux,procps,passwd,login,kmod
pkgs=$pkgs,libinih1,libseccomp2,libmicrohttpd12,jq,bash,coreutils
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
mapfile -t sources < <("$here/../vm/apt-sources.sh")
root=$(mktemp -d "$out/.root.XXXXXX")
trap 'rm -rf "$root"' EXIT
say "mmdebstrap bookworm ($pkgs) from ${sources[*]:-the default mirror}"
mmdebstrap --variant=apt --include="$pkgs" \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --customize-hook='chroot "$1" passwd -d root' \
    --customize-hook='chroot "$1" useradd -m -u 1000 -s /bin/bash user' \
    --customize-hook='ln -sf /lib/systemd/systemd "$1/init"' \
    --customize-hook='echo memrun-vm > "$1/etc/hostname"' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
    --customize-hook='for u in getty@tty1 serial-getty@ttyS0 console-getty systemd-timesyncd apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer; do ln -sf /dev/null "$1/etc/systemd/system/$u.service"; ln -sf /dev/null "$1/etc/systemd/system/$u"; done' \
    bookworm "$root" "${sources[@]}" >&2 || die "mmdebstrap failed"
say "packing $img"
(cd "$root" && find . -print0 | cpio --null -o -H newc --quiet | zstd -q -T0 -6) >"$img.tmp" || die "packing failed"
mv "$img.tmp" "$img"
rm -f "$out"/rootfs-*.cpio.zst.old
for old in "$out"/rootfs-*.cpio.zst; do [ "$old" = "$img" ] || rm -f "$old"; done
say "$(du -h "$img" | cut -f1) in $img"
echo "$img"
