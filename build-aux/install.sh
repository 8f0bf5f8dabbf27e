#!/bin/sh
# install.sh: owns what `make install` puts where, and `make uninstall` takes away: memrun and
# memrunctl, the library (.so with its soname links, .a, header, memlimit.pc), the preload shim,
# the policies, the man pages, the systemd units, and the Go and Python clients of the limiter
# protocol where their ecosystems look (Go: a module under $PREFIX/share/gocode/src, Debian's place
# for Go sources, to `replace memrun/memlimit =>`; Python: the interpreter's dist-packages, PYTHONDIR
# to override). One list serves both directions.
# Usage: B=build DESTDIR= PREFIX= BINDIR= LIBDIR= INCLUDEDIR= MANDIR= UNITDIR= VERSION= install.sh install|uninstall
set -eu
: "${B:?}" "${PREFIX:?}" "${BINDIR:?}" "${LIBDIR:?}" "${INCLUDEDIR:?}" "${MANDIR:?}" "${UNITDIR:?}" "${VERSION:?}"
D=${DESTDIR:-}
DATA=$PREFIX/share/memrun
GODIR=$PREFIX/share/gocode/src/memrun/memlimit
# Debian's python3 looks in /usr/lib/python3/dist-packages and /usr/local/lib/python3.X/dist-packages
if [ -z "${PYTHONDIR:-}" ]; then
    if [ "$PREFIX" = /usr ]; then
        PYTHONDIR=/usr/lib/python3/dist-packages
    else
        v=$(/usr/bin/python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || echo 3)
        PYTHONDIR=$PREFIX/lib/python$v/dist-packages
    fi
fi

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
0644 limiter/go/go.mod $GODIR/go.mod
LIST
    for f in limiter/go/*.go; do
        case $f in *_test.go) ;; *) echo "0644 $f $GODIR/${f##*/}" ;; esac
    done
    for f in limiter/python/memlimit/*.py; do echo "0644 $f $PYTHONDIR/memlimit/${f##*/}"; done
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
    rm -rf "$D$DATA" "$D$PYTHONDIR/memlimit/__pycache__"
    rmdir "$D$PYTHONDIR/memlimit" "$D$GODIR" 2>/dev/null || true
    rmdir "$D$LIBDIR/memrun" 2>/dev/null || true
    ;;
*) echo "usage: $0 install|uninstall" >&2; exit 2 ;;
esac
