#!/bin/sh
# install.sh: owns what `make install` puts where, and `make uninstall` takes away: memrun and
# memrunctl, the library (.so with its soname links, .a, header, memlimit.pc), the preload shim,
# the policies, the man pages and the systemd units. One list serves both directions.
# Usage: B=build DESTDIR= PREFIX= BINDIR= LIBDIR= INCLUDEDIR= MANDIR= UNITDIR= VERSION= install.sh install|uninstall
set -eu
: "${B:?}" "${PREFIX:?}" "${BINDIR:?}" "${LIBDIR:?}" "${INCLUDEDIR:?}" "${MANDIR:?}" "${UNITDIR:?}" "${VERSION:?}"
D=${DESTDIR:-}
DATA=$PREFIX/share/memrun

# MODE SOURCE DEST: one file each.
files() {
    cat <<LIST
0755 $B/memrun $BINDIR/memrun
0755 $B/memrunctl $BINDIR/memrunctl
0644 man/memrun.1 $MANDIR/man1/memrun.1
0644 man/memrunctl.1 $MANDIR/man1/memrunctl.1
0644 man/memrun.ini.5 $MANDIR/man5/memrun.ini.5
0644 man/memlimit.3 $MANDIR/man3/memlimit.3
0644 config/web-service.ini $DATA/web-service.ini
0644 config/batch-job.ini $DATA/batch-job.ini
0644 config/ci-oom-repro.ini $DATA/ci-oom-repro.ini
0755 $B/libmemlimit.so $LIBDIR/libmemlimit.so.$VERSION
0644 $B/libmemlimit.a $LIBDIR/libmemlimit.a
0644 limiter/memlimit.h $INCLUDEDIR/memlimit.h
0644 $B/memlimit.pc $LIBDIR/pkgconfig/memlimit.pc
0755 $B/libmemlimit-preload.so $LIBDIR/memrun/libmemlimit-preload.so
LIST
}
# The units name where memrun and its policies are installed.
units() { sed -e "s|@BINDIR@|$BINDIR|g" -e "s|@DATADIR@|$DATA|g" "systemd/$1"; }

case ${1:-} in
install)
    files | while read -r mode src dst; do install -D -m "$mode" "$src" "$D$dst"; done
    ln -sf "libmemlimit.so.$VERSION" "$D$LIBDIR/libmemlimit.so.0"
    ln -sf libmemlimit.so.0 "$D$LIBDIR/libmemlimit.so"
    install -d "$D$UNITDIR" "$D$DATA/systemd"
    for u in memrun-example.service memrun@.service; do units "$u" >"$D$UNITDIR/$u"; done
    units memrun-wrap.conf >"$D$DATA/systemd/memrun-wrap.conf"
    ;;
uninstall)
    files | while read -r mode src dst; do rm -f "$D$dst"; done
    rm -f "$D$LIBDIR/libmemlimit.so.0" "$D$LIBDIR/libmemlimit.so" \
        "$D$UNITDIR/memrun-example.service" "$D$UNITDIR/memrun@.service"
    rm -rf "$D$DATA"
    rmdir "$D$LIBDIR/memrun" 2>/dev/null || true
    ;;
*) echo "usage: $0 install|uninstall" >&2; exit 2 ;;
esac
