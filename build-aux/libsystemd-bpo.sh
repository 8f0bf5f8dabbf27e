#!/bin/sh
# libsystemd-bpo.sh: owns BUILD/libsystemd-bpo: Debian's libsystemd0 and libsystemd-dev from
# bookworm-backports (>= 254, the first with sd_event_add_memory_pressure), unpacked beside the build
# for the sd-event client of the pressure-watch tests (tests/helpers/sdwatch.c). Debian 12 ships
# libsystemd 252, and installing backports' libsystemd0 would replace the library systemd itself runs
# on, so nothing is installed: apt fetches the two packages (its own signature checks against
# Debian's archive keyring) through private lists under BUILD, and dpkg-deb -x unpacks them into
# BUILD/libsystemd-bpo/root. Prints the version unpacked; exits 1, saying why, when it cannot.
# Usage: build-aux/libsystemd-bpo.sh BUILD_DIR
set -eu
b=${1:?usage: libsystemd-bpo.sh BUILD_DIR}
mkdir -p "$b"
d=$(cd "$b" && pwd)/libsystemd-bpo   # absolute: apt takes relative paths from /etc/apt
if [ -s "$d/version" ] && [ -e "$d/root/usr/include/systemd/sd-event.h" ]; then
    cat "$d/version"
    exit 0
fi
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[ -r "$keyring" ] || { echo "libsystemd-bpo: $keyring missing (apt-get install debian-archive-keyring)" >&2; exit 1; }
rm -rf "$d"
mkdir -p "$d/apt/lists/partial" "$d/apt/cache/archives/partial" "$d/apt/sources.list.d" "$d/root"
printf 'deb [signed-by=%s] http://deb.debian.org/debian bookworm-backports main\n' "$keyring" \
    > "$d/apt/sources.list"
apt() {
    apt-get -q -o Dir::Etc::SourceList="$d/apt/sources.list" -o Dir::Etc::SourceParts="$d/apt/sources.list.d" \
        -o Dir::State::Lists="$d/apt/lists" -o Dir::Cache="$d/apt/cache" -o APT::Sandbox::User=root \
        -o Acquire::Retries=3 "$@"
}
apt update >"$d/apt.log" 2>&1 || { cat "$d/apt.log" >&2; echo "libsystemd-bpo: apt-get update of bookworm-backports failed" >&2; exit 1; }
(cd "$d" && apt download libsystemd0/bookworm-backports libsystemd-dev/bookworm-backports) >>"$d/apt.log" 2>&1 ||
    { cat "$d/apt.log" >&2; echo "libsystemd-bpo: downloading libsystemd0 and libsystemd-dev failed" >&2; exit 1; }
for deb in "$d"/libsystemd0_*.deb "$d"/libsystemd-dev_*.deb; do
    dpkg-deb -x "$deb" "$d/root"
done
v=$(dpkg-deb -f "$d"/libsystemd0_*.deb Version)
case $v in 25[4-9]*|2[6-9]*|[3-9]*) ;; *) echo "libsystemd-bpo: bookworm-backports has libsystemd $v, not >= 254" >&2; exit 1 ;; esac
[ -e "$d/root/usr/include/systemd/sd-event.h" ] || { echo "libsystemd-bpo: no sd-event.h in libsystemd-dev $v" >&2; exit 1; }
echo "$v" > "$d/version"
echo "$v"
