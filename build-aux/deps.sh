#!/bin/sh
# deps.sh: owns the Debian packages memrun needs, and installing them. Nothing is assumed beyond a
# minimal Debian 12 (`mmdebstrap --variant=minbase bookworm`): gcc's Recommends (libc6-dev, libc's
# headers) are named, because packages are installed without recommends.
# Usage: build-aux/deps.sh build|check|bench
#   build: to build (make deps); check: to run every test (make check-deps); bench: make bench.
# As root on Debian, installs what is missing (apt-get update first when a package is unknown);
# otherwise prints what is missing and how to get it. Every call checks again: nothing is
# remembered, so a failed or partial install is retried by the next `make deps`.
set -u
BUILD_PKGS="gcc libc6-dev make pkg-config libinih-dev libseccomp-dev libsystemd-dev libmicrohttpd-dev"
# cmocka; the cgroup v2 VM (qemu, busybox, cpio, the kernel .deb through apt); the systemd VM and
# the fresh-machine suite (mmdebstrap, zstd, git to clone the repository into it); libFuzzer's
# runtime; jq for the reports; the Prometheus parser; Go and Python for their limiter clients; the
# Debian packaging tools (dpkg-buildpackage, debhelper, dh-python, lintian) for the .debs the
# systemd VM installs; crun, the OCI runtime the cgroup v2 VM runs a container with; the allocators
# --preload knows besides glibc's (jemalloc, tcmalloc, mimalloc); OpenJDK 17 and Node, the runtimes
# the hints and the JVM driver are tested against; strace, which a fault test records memrun's writes
# with.
CHECK_PKGS="libcmocka-dev qemu-system-x86 busybox-static cpio zstd mmdebstrap git ca-certificates jq clang
libclang-rt-14-dev python3 python3-prometheus-client golang-go dpkg-dev debhelper dh-python fakeroot lintian
crun libjemalloc2 libtcmalloc-minimal4 libmimalloc2.0 openjdk-17-jdk-headless nodejs strace"
BENCH_PKGS="valgrind cgroup-tools gnuplot-nox"

case ${1:-} in
build) pkgs=$BUILD_PKGS ;;
check) pkgs="$BUILD_PKGS $CHECK_PKGS" ;;
bench) pkgs="$BUILD_PKGS $CHECK_PKGS $BENCH_PKGS" ;;
list-build) echo $BUILD_PKGS; exit 0 ;;
list-check) echo $CHECK_PKGS; exit 0 ;;
list-bench) echo $BENCH_PKGS; exit 0 ;;
*) echo "usage: $0 build|check|bench" >&2; exit 2 ;;
esac

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "deps.sh: not a Debian system: install the equivalents of: $pkgs" >&2
    exit 0   # the build's own probe (build-aux/probe.sh) says what is really missing
fi
missing=
for p in $pkgs; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "error: missing Debian packages:$missing (as root: apt-get install$missing)" >&2
    exit 1
fi
mkdir -p build
log=build/apt.log
echo "installing Debian packages:$missing"
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086
{ apt-get install -y -q --no-install-recommends $missing ||
  { apt-get update -q && apt-get install -y -q --no-install-recommends $missing; }; } >"$log" 2>&1 || {
    tail -n 30 "$log" >&2
    echo "error: could not install:$missing (the whole apt log: $log)" >&2
    exit 1
}
