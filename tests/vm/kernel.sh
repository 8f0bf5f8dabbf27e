#!/bin/bash
# kernel.sh: owns fetching/caching Debian's cgroup-v2 kernel for the VM tests; prints the vmlinuz path.
set -euo pipefail

CACHE=${MEMRUN_VM_CACHE:-/var/cache/memrun-vm}
say() { echo "kernel.sh: $*" >&2; }
die() { say "error: $*"; exit 1; }

# Reuse a previously extracted kernel (no apt/network needed then); MEMRUN_VM_KERNEL_PKG picks a specific one.
cached() {
    local k
    if [ -n "${MEMRUN_VM_KERNEL_PKG:-}" ]; then
        k=$(find "$CACHE/$MEMRUN_VM_KERNEL_PKG/boot" -name 'vmlinuz-*' 2>/dev/null | head -n1)
    else
        k=$(readlink -f "$CACHE/vmlinuz" 2>/dev/null || true)
    fi
    [ -n "$k" ] && [ -s "$k" ] && echo "$k"
}
cached && exit 0
mkdir -p "$CACHE" || die "cannot create cache dir $CACHE"
exec 9>"$CACHE/.lock" && flock 9 || die "cannot lock $CACHE/.lock"   # concurrent first runs
cached && exit 0

for t in apt-cache apt-get dpkg-deb flock; do
    command -v "$t" >/dev/null || die "$t not found (need a Debian-like host)"
done

pkg=${MEMRUN_VM_KERNEL_PKG:-}
if [ -z "$pkg" ]; then
    find_pkg() { apt-cache depends linux-image-amd64 2>/dev/null |
                 awk '/Depends: linux-image-[0-9]/ {print $2; exit}'; }
    pkg=$(find_pkg || true)
    if [ -z "$pkg" ]; then
        say "no kernel package known to apt; running apt-get update"
        apt-get update >&2 || die "apt-get update failed"
        pkg=$(find_pkg || true)
    fi
    [ -n "$pkg" ] || die "apt-cache depends linux-image-amd64 names no linux-image-* package"
fi

work=$(mktemp -d "$CACHE/.dl.XXXXXX") || die "cannot create temp dir in $CACHE"
chmod 755 "$work"; chown _apt "$work" 2>/dev/null || true   # apt downloads as _apt (else an "unsandboxed" warning)
trap 'rm -rf "$work"' EXIT

say "downloading $pkg"
(cd "$work" && apt-get download "$pkg" >&2) || die "apt-get download $pkg failed"
deb=$(ls "$work"/*.deb 2>/dev/null | head -n1)
[ -n "$deb" ] || die "apt-get download produced no .deb"
ver=$(dpkg-deb -f "$deb" Version)

say "extracting $pkg $ver"
dest="$CACHE/$pkg"
rm -rf "$dest"
mkdir -p "$work/x"
dpkg-deb -x "$deb" "$work/x" || die "dpkg-deb -x failed"
vmlinuz=$(ls "$work"/x/boot/vmlinuz-* 2>/dev/null | head -n1)
[ -n "$vmlinuz" ] || die "no boot/vmlinuz-* in $pkg"
# Keep only boot/ (kernel, config, System.map): everything the VM needs is built in.
mkdir -p "$dest" && mv "$work/x/boot" "$dest/boot" || die "cannot populate $dest"
echo "$pkg $ver" > "$dest/VERSION"
ln -sfn "$pkg/boot/$(basename "$vmlinuz")" "$CACHE/vmlinuz"
say "cached $pkg $ver in $dest"
readlink -f "$CACHE/vmlinuz"
