#!/bin/sh
# version.sh: owns memrun's version string, printed on stdout. The base is NEWS's first heading
# ("memrun 0.3.0 ..."). In a git checkout: `git describe` of the newest v* tag when there is one
# ("v0.3.0" exactly, or "0.3.0+git4.1a2b3c4" four commits after it), else the base and the commit
# ("0.3.0+git137.1a2b3c4": commits since the first, then the short hash), ".dirty" added when the
# tree has uncommitted changes. Outside git (a release tarball, the .deb's build copy): the file
# VERSION if present, else the base. Debian sorts these as intended (+ after the base, never ~).
# Usage: build-aux/version.sh [TOPDIR]
set -eu
export GIT_OPTIONAL_LOCKS=0 # asking must not refresh the index under someone else's git
top=${1:-.}
base=$(sed -n '1s/^memrun \([0-9][0-9.]*\).*/\1/p' "$top/NEWS" 2>/dev/null)
[ -n "$base" ] || base=0.0.0
if [ -f "$top/VERSION" ] && ! git -C "$top" rev-parse --git-dir >/dev/null 2>&1; then
    cat "$top/VERSION"; exit 0
fi
if ! git -C "$top" rev-parse --git-dir >/dev/null 2>&1; then
    echo "$base"; exit 0
fi
dirty=
git -C "$top" diff --quiet HEAD -- 2>/dev/null || dirty=.dirty
if d=$(git -C "$top" describe --tags --match 'v[0-9]*' 2>/dev/null); then
    # v0.3.0 | v0.3.0-4-g1a2b3c4
    echo "$d" | sed -e 's/^v//' -e 's/-\([0-9]*\)-g\([0-9a-f]*\)$/+git\1.\2/' -e "s/\$/$dirty/"
    exit 0
fi
n=$(git -C "$top" rev-list --count HEAD)
h=$(git -C "$top" rev-parse --short=7 HEAD)
echo "$base+git$n.$h$dirty"
