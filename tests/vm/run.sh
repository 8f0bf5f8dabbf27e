#!/bin/bash
# run.sh: owns building the busybox initramfs from ROOTDIR and running CMD in a real cgroup-v2 kernel under qemu (TCG).
# Usage: tests/vm/run.sh ROOTDIR -- CMD [ARG...]    exit status = CMD's status inside the VM
#        (124 = wall-clock timeout, 125 = no exit marker / harness failure)
set -uo pipefail

say() { echo "run.sh: $*" >&2; }
die() { say "error: $*"; exit 125; }

[ $# -ge 3 ] && [ "$2" = "--" ] || die "usage: $0 ROOTDIR -- CMD [ARG...]"
rootdir=$1; shift 2
[ -d "$rootdir" ] || die "ROOTDIR '$rootdir' is not a directory"
rootdir=$(cd "$rootdir" && pwd -P)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
TIMEOUT=${MEMRUN_VM_TIMEOUT:-900}
LOG=${MEMRUN_VM_LOG:-build/vm.log}
MEM=${MEMRUN_VM_MEM:-1024}
SMP=${MEMRUN_VM_SMP:-1}

for t in qemu-system-x86_64 cpio gzip ldd timeout; do
    command -v "$t" >/dev/null || die "$t not found (apt-get install qemu-system-x86 cpio)"
done
BUSYBOX=${MEMRUN_VM_BUSYBOX:-/bin/busybox}
[ -x "$BUSYBOX" ] || die "$BUSYBOX not found (apt-get install busybox-static)"
ldd "$BUSYBOX" >/dev/null 2>&1 && die "$BUSYBOX is dynamically linked; need busybox-static"

kernel=$("$here/kernel.sh") || die "kernel.sh failed"
[ -f "$kernel" ] || die "kernel.sh printed '$kernel', which is not a file"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/memrun-vm.XXXXXX") || die "mktemp failed"
trap 'rm -rf "$tmp"' EXIT
r=$tmp/root

# 1. busybox with all its applets in /bin.
mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,root,etc,memrun-vm} || die "mkdir failed"
cp "$BUSYBOX" "$r/bin/busybox" || die "copying busybox failed"
for a in $("$BUSYBOX" --list); do
    [ "$a" = busybox ] || ln -s busybox "$r/bin/$a"
done
for a in sh mount mkdir cat echo sleep kill ps grep sed awk head tail wc seq dd ls rm rmdir \
         test poweroff timeout env id tr cut sort od printf mktemp cp mv ln stat find xargs \
         date true false yes; do
    [ -e "$r/bin/$a" ] || die "busybox lacks the '$a' applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$r/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$r/etc/group"

# 2. The caller's tree on top.
cp -a "$rootdir/." "$r/" || die "copying $rootdir failed"

# 3. Shared libraries of every ELF file in ROOTDIR, plus the dynamic loader.
libpath=$(find "$rootdir" -type f -name '*.so*' -printf '%h\n' 2>/dev/null | sort -u | paste -sd:)
copy_lib() {   # copy host file $1 to the same path in the image (following symlinks)
    [ -e "$r$1" ] && return 0
    mkdir -p "$r$(dirname "$1")" && cp -L "$1" "$r$1" || die "copying library $1 failed"
}
needed=$tmp/needed
: > "$needed"
while IFS= read -r -d '' f; do
    [ "$(head -c 4 "$f" | od -An -c | tr -d ' ')" = '177ELF' ] || continue
    out=$(LD_LIBRARY_PATH=$libpath ldd "$f" 2>&1) || continue   # static / not an executable
    if grep -q 'not found' <<<"$out"; then
        die "$f: missing shared libraries on the host:"$'\n'"$(grep 'not found' <<<"$out")"
    fi
    awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' <<<"$out" >> "$needed"
done < <(find "$rootdir" -type f -print0)
if [ -s "$needed" ]; then
    copy_lib /lib64/ld-linux-x86-64.so.2
    sort -u "$needed" | while IFS= read -r lib; do
        case "$lib" in "$rootdir"/*) continue ;; esac   # shipped in ROOTDIR already
        copy_lib "$lib"
    done || exit 125
fi

# 4. The command, as a sourced "set -- 'arg' ..." line (safe for any byte but NUL).
{
    printf 'set --'
    for a in "$@"; do printf " '%s'" "${a//\'/\'\\\'\'}"; done
    printf '\n'
} > "$r/memrun-vm/cmd"

# 5. /init
cat > "$r/init" <<'INIT'
#!/bin/busybox sh
# /init of the memrun VM initramfs: mounts, runs the command, reports status, powers off.
export PATH=/usr/bin:/usr/sbin:/bin:/sbin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=755 tmpfs /run
# loopback only (tests run servers on 127.0.0.1); no other interface is configured
ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up
cd /
. /memrun-vm/cmd
"$@"
status=$?
echo
echo "MEMRUN-VM-EXIT=$status"
poweroff -f
INIT
chmod 755 "$r/init"

initrd=$tmp/initrd.gz
(cd "$r" && find . -print0 | cpio --null -o -H newc -R 0:0 --quiet | gzip -1 > "$initrd") ||
    die "building the initramfs failed"
say "kernel $kernel, initramfs $(du -k "$initrd" | cut -f1) KiB, timeout ${TIMEOUT}s, log $LOG"

. "$here/boot.sh"
vm_boot "$kernel" "$initrd" "$MEM" "$SMP" "console=ttyS0 quiet panic=-1 psi=1 ${MEMRUN_VM_APPEND:-}"
