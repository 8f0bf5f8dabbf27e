#!/bin/sh
# probe.sh: owns "can this machine build memrun?": compiles and links a program that includes libc's
# headers and those of every library memrun builds against, with the build's own compiler and
# flags. On failure it shows the compiler's words and what to install. Run before the first compile.
# Usage: CC=cc CFLAGS=... LDFLAGS=... build-aux/probe.sh OUTDIR
set -u
out=${1:?usage: probe.sh OUTDIR}
mkdir -p "$out" || exit 1
CC=${CC:-cc}
for lib in inih libseccomp libmicrohttpd; do
    pkg-config --exists "$lib" 2>/dev/null || {
        case $lib in inih) dev=libinih-dev ;; libseccomp) dev=libseccomp-dev ;; *) dev=libmicrohttpd-dev ;; esac
        echo "error: $lib not found by pkg-config: run 'make deps' (Debian: apt-get install $dev pkg-config)" >&2
        exit 1
    }
done
cat >"$out/probe.c" <<'C'
#include <errno.h>
#include <stdio.h>
#include <sys/mount.h>
#include <ini.h>
#include <seccomp.h>
#include <microhttpd.h>
#include <systemd/sd-bus.h>
int main(void)
{
        scmp_filter_ctx f = seccomp_init(SCMP_ACT_ALLOW);
        seccomp_release(f);
        return ini_parse_string("", NULL, NULL) + (errno == 0 ? 0 : 1) + (int)sizeof(sd_bus_error) +
               (MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES ? 0 : 1);
}
C
# shellcheck disable=SC2046,SC2086
if ! $CC ${CPPFLAGS:-} ${CFLAGS:-} ${LDFLAGS:-} -o "$out/probe" "$out/probe.c" \
        $(pkg-config --cflags --libs inih libseccomp libmicrohttpd) >"$out/probe.log" 2>&1; then
    cat "$out/probe.log" >&2
    echo "error: $CC cannot build a program with libc's, inih's, libseccomp's, libmicrohttpd's and sd-bus's headers:" \
        "run 'make deps' (Debian: apt-get install $("$(dirname "$0")"/deps.sh list-build))" >&2
    exit 1
fi
rm -f "$out/probe" "$out/probe.c" "$out/probe.log"
