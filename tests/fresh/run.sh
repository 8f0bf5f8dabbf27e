#!/bin/bash
# run.sh: owns the fresh-machine suite: README's commands, verbatim, on a minimal Debian 12 as a
# newcomer gets it (`mmdebstrap --variant=minbase bookworm`), with the repository cloned to
# /root/memrun (mode 0700, as root's home is). What the development machines happen to have
# installed proves nothing; this does. The minbase tarball is cached under $B/fresh/ (rebuilt when
# this script changes); the apt archives the README's command downloads are kept there too, so a
# second run installs the same packages without fetching them again.
# Usage: tests/fresh/run.sh [--check]
#   README's first command (packages, build, the demo), its exit and the demo's outcomes asserted;
#   with --check also the second (`make check`) inside the same root.
# Runs in its own mount namespace: the root's /proc, /sys and /dev are bind mounts that vanish with
# it, and "/" in the root is not a mount point, as in any plain chroot.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
repo=$(cd "$here/../.." && pwd -P)
B=${B:-build}
mkdir -p "$B/fresh" && out=$(cd "$B/fresh" && pwd -P) || exit 2
say() { echo "fresh: $*"; }
passed=0 failed=0
ok() { passed=$((passed + 1)); say "  ok: $*"; }
bad() { failed=$((failed + 1)); say "  FAIL: $*"; }
check() { if eval "$2"; then ok "$1"; else bad "$1"; fi; }
finish() {
    echo "fresh: $passed passed, $failed failed"
    [ "$failed" = 0 ]
    exit
}

if [ -e /etc/memrun-fresh-root ]; then
    say "SKIP: this already runs inside the fresh-machine suite's root (the outer run is the proof)"
    echo "fresh: 0 passed, 0 failed, 1 skipped"
    exit 0
fi
[ "$(id -u)" = 0 ] || { say "error: needs root (mmdebstrap, chroot, bind mounts)"; exit 2; }
for t in mmdebstrap zstd tar git unshare chroot timeout; do
    command -v $t >/dev/null || { say "error: $t not found (make check-deps installs it)"; exit 2; }
done
mode=first
[ "${1:-}" = --check ] && mode=both

# README's commands: the first two lines of the code block under "## Try it", comments dropped.
readme_cmd() {
    awk '/^## Try it/ { t = 1; next } t && /^```/ { if (b) exit; b = 1; next } b && NF { print }' \
        "$repo/README.md" | sed -n "${1}p" | sed 's/[[:space:]]*#.*$//'
}
cmd1=$(readme_cmd 1) cmd2=$(readme_cmd 2)
[ -n "$cmd1" ] && [ -n "$cmd2" ] || { say "error: README.md has no two commands under '## Try it'"; exit 2; }

# The minimal Debian 12, from this host's apt sources for bookworm.
# The cache key: what makes the root (this variant and suite, and the host's sources for them).
mapfile -t sources < <("$repo/tests/vm/apt-sources.sh")
key=$({ echo "minbase bookworm v1"; cat "${sources[@]}" /dev/null; } | sha256sum | cut -c1-16)
tarball=$out/minbase-$key.tar.zst
if [ ! -s "$tarball" ]; then
    say "building the minbase root (mmdebstrap --variant=minbase bookworm ${sources[*]:-})"
    mmdebstrap --quiet --variant=minbase --format=tar bookworm "$out/minbase.tar.tmp" "${sources[@]}" >"$out/mmdebstrap.log" 2>&1 ||
        { cat "$out/mmdebstrap.log"; say "error: mmdebstrap failed"; exit 2; }
    zstd -q -T0 --rm -f "$out/minbase.tar.tmp" -o "$tarball.tmp" && mv "$tarball.tmp" "$tarball" || exit 2
    for old in "$out"/minbase-*.tar.zst; do [ "$old" = "$tarball" ] || rm -f "$old"; done
fi

root=$(mktemp -d "$out/root.XXXXXX") || exit 2
trap 'rm -rf --one-file-system "$root"' EXIT
tar --zstd -xpf "$tarball" -C "$root" --numeric-owner || { say "error: cannot unpack $tarball"; exit 2; }
touch "$root/etc/memrun-fresh-root"
cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
mkdir -p "$out/apt-archives/partial"

# The repository as committed, or, in a working tree with changes, those changes as one commit
# that is not recorded anywhere (a temporary index): the suite tests what the developer has.
rev=HEAD
if [ -n "$(git -C "$repo" status --porcelain 2>/dev/null)" ]; then
    idx=$(mktemp) && cp "$repo/.git/index" "$idx" 2>/dev/null
    tree=$(GIT_INDEX_FILE=$idx git -C "$repo" add -A && GIT_INDEX_FILE=$idx git -C "$repo" write-tree)
    rev=$(GIT_AUTHOR_NAME=fresh GIT_AUTHOR_EMAIL=fresh@localhost GIT_COMMITTER_NAME=fresh \
          GIT_COMMITTER_EMAIL=fresh@localhost git -C "$repo" commit-tree "$tree" -p HEAD -m "working tree")
    rm -f "$idx"
    say "the working tree has changes: testing them as $rev"
fi
git clone -q "$repo" "$root/root/memrun" && git -C "$root/root/memrun" checkout -q "$rev" ||
    { say "error: cannot clone $repo into the root"; exit 2; }
say "root $(stat -c %a "$root/root") /root, checkout $(git -C "$root/root/memrun" rev-parse --short HEAD)"

# One README command in the root, as a newcomer's root shell has it: run in a mount namespace of
# its own that binds /proc, /sys and /dev in (and the apt archive cache).
in_root() { # LOG TIMEOUT COMMAND
    local log=$1 limit=$2 cmd=$3
    unshare -m --propagation private bash -c '
        set -e
        r=$1
        for d in proc sys dev; do mount --rbind "/$d" "$r/$d"; done
        mount --bind "$2" "$r/var/cache/apt/archives"
        exec timeout -k 10 "$3" chroot "$r" /usr/bin/env -i HOME=/root USER=root LOGNAME=root SHELL=/bin/bash \
            TERM=dumb PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
            /bin/bash -c "cd /root/memrun && $4"' \
        fresh "$root" "$out/apt-archives" "$limit" "$cmd" </dev/null >"$log" 2>&1
}

# readme LOG TIMEOUT COMMAND: run it in the root, say how it went; its exit status in $rc.
readme() {
    say "# $3   (log: $1)"
    local start
    start=$(date +%s)
    in_root "$1" "$2" "$3"
    rc=$?
    say "exit $rc after $(($(date +%s) - start)) s"
}

log1=$out/first.log
readme "$log1" 1800 "$cmd1"
check "README's first command exits 0" '[ $rc = 0 ]'
# The demo: held (0), the same program OOM-killed under a plain limit (137), the leak (137), and
# the --expect-oom form (0).
statuses=$(grep -o '^\[exit status [0-9]*\]' "$log1" | grep -o '[0-9]*' | tr '\n' ' ')
check "the demo's four runs exit 0 137 137 0 (got: ${statuses:-none})" '[ "$statuses" = "0 137 137 0 " ]'
check "the governed cache is held: 'memrun: exited 0 after'" 'grep -q "^memrun: exited 0 after .*; peak .* of 128M" "$log1"'
check "holdcache added its 600M" 'grep -q "^holdcache: added=600 " "$log1"'
check "the unheld cache is OOM-killed and named" \
    'grep -q "^memrun: OOM: the kernel OOM killer ended holdcache (pid [0-9]*) .*: limit 128M" "$log1"'
check "the leak is OOM-killed and named" \
    'grep -q "^memrun: OOM: the kernel OOM killer ended leak (pid [0-9]*) .*: limit 64M" "$log1"'
check "the leak's JSON report says oom_killed" 'grep -q "\"oom_killed\": *true" "$log1"'
if [ "$failed" != 0 ]; then
    say "the last lines of $log1:"
    tail -n 40 "$log1" | sed 's/^/    /'
fi

if [ $mode = both ] && [ "$rc" = 0 ]; then
    log2=$out/check.log
    readme "$log2" 5400 "$cmd2"
    rc2=$rc
    say "its closing lines:"
    grep -E '^[a-z-]+: [0-9]+ passed|^make check:|all targets ran|SKIP' "$log2" | sed 's/^/    /'
    check "README's second command exits 0" '[ $rc2 = 0 ]'
    [ "$rc2" = 0 ] || tail -n 60 "$log2" | sed 's/^/    /'
fi
finish
