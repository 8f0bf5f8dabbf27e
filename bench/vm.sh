#!/bin/sh
# bench/vm.sh BUILD_DIR — run bench/reaction.sh and bench/idle.sh inside the real cgroup v2 kernel of the VM
# suite (tests/vm/run.sh: Debian's kernel under qemu TCG, busybox initramfs) and print their markdown.
# The root is built like `make vm` builds its own: `make install DESTDIR=... PREFIX=/usr`, plus the
# benchmark scripts (/bench), bench/reaction.c compiled here, mlclient and leak (/usr/libexec/memrun).
# qemu runs with TCG (full emulation; nested KVM hangs on these machines): absolute times are inflated
# several-fold, and the tables say so. The VM's raw reaction results are kept in BUILD_DIR/bench/reaction-vm.txt.
#
# Knobs (environment): BENCH_VM_SMP (vCPUs, default 2, as many as the development machines have),
# BENCH_VM_IDLE_SECONDS (default 30: the idle window; results are per minute), BENCH_REACTION_RUNS,
# BENCH_BURST_RUNS (passed on), MEMRUN_VM_TIMEOUT (default 3600 s), MAKE.
set -eu

B=${1:?usage: sh bench/vm.sh BUILD_DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/.." && pwd)
SMP=${BENCH_VM_SMP:-2}
IDLE=${BENCH_VM_IDLE_SECONDS:-30}

die() { echo "bench/vm.sh: error: $*" >&2; exit 1; }

for f in memrun tests/helpers/mlclient examples/leak; do
	[ -x "$B/$f" ] || die "$B/$f missing: run 'make all' first"
done
CC=${CC:-cc}
command -v "$CC" >/dev/null 2>&1 || die "no C compiler '$CC' to build bench/reaction.c (apt-get install gcc)"

mkdir -p "$B/bench" || die "cannot create $B/bench"
# A private root and console copy: another run of this script may be going on.
ROOT=$(mktemp -d "$(cd "$B/bench" && pwd)/vm-root.XXXXXX") || die "mktemp failed"
CONSOLE=$ROOT.console
trap 'rm -rf "$ROOT" "$CONSOLE"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
"${MAKE:-make}" --no-print-directory -C "$TOP" install DESTDIR="$ROOT" PREFIX=/usr >/dev/null ||
	die "make install DESTDIR=$ROOT PREFIX=/usr failed"
mkdir -p "$ROOT/bench" "$ROOT/usr/libexec/memrun"
"$CC" -std=gnu11 -O2 -Wall -Wextra -Wconversion -Wformat=2 -pthread -o "$ROOT/usr/libexec/memrun/reaction" \
	"$HERE/reaction.c" -lm || die "cannot build bench/reaction.c"
"$CC" -std=gnu11 -O2 -Wall -Wextra -o "$ROOT/usr/libexec/memrun/wake" "$HERE/wake.c" || die "cannot build bench/wake.c"
cp "$HERE/reaction.sh" "$HERE/idle.sh" "$HERE/wake.c" "$ROOT/bench/"
cp "$B/tests/helpers/mlclient" "$B/examples/leak" "$ROOT/usr/libexec/memrun/"
# The host's coreutils timeout and sleep, so the baseline is the same program as on the host (busybox's
# timeout execs the command in its own pid and leaves the watching to a grandchild; busybox sh runs its
# own applet for a bare "timeout", hence TIMEOUT=/usr/bin/timeout below).
for t in timeout sleep; do
	p=$(command -v "$t") || die "no $t on this host (coreutils)"
	[ "$(head -c 4 "$p" | od -An -c | tr -d ' ')" = '177ELF' ] || die "$p is not an executable (coreutils)"
	cp "$p" "$ROOT/usr/bin/"
done

NOTE="Inside qemu with TCG (full emulation, no KVM), $SMP vCPU(s), 1 GiB RAM, on a host with $(nproc) CPUs and kernel $(uname -r): absolute times are inflated several-fold by the emulation; compare within a table"
cat >"$ROOT/bench/in-vm.sh" <<EOF
# Run by tests/vm/run.sh inside the VM.
export MEMRUN=/usr/bin/memrun BENCH_REACTION=/usr/libexec/memrun/reaction MLCLIENT=/usr/libexec/memrun/mlclient
export LEAK=/usr/libexec/memrun/leak WAKE=/usr/libexec/memrun/wake TIMEOUT=/usr/bin/timeout BENCH_OUT=/tmp BENCH_IDLE_SECONDS=$IDLE BENCH_NOTE="$NOTE"
${BENCH_REACTION_RUNS:+export BENCH_REACTION_RUNS=$BENCH_REACTION_RUNS}
${BENCH_BURST_RUNS:+export BENCH_BURST_RUNS=$BENCH_BURST_RUNS}
rc=0
sh /bench/reaction.sh /tmp >/tmp/reaction.md || rc=\$?
sh /bench/idle.sh /tmp >/tmp/idle.md || rc=\$?
echo "=====BENCH-MARKDOWN-BEGIN====="
cat /tmp/reaction.md /tmp/idle.md
echo "=====BENCH-MARKDOWN-END====="
echo "=====BENCH-RAW-BEGIN====="
cat /tmp/reaction.txt
echo "=====BENCH-RAW-END====="
exit \$rc
EOF

LOG=$B/bench/vm.log
echo "vm: booting the cgroup v2 VM ($SMP vCPUs, TCG); console log in $LOG ..." >&2
rc=0
MEMRUN_VM_LOG=$LOG MEMRUN_VM_SMP=$SMP MEMRUN_VM_TIMEOUT=${MEMRUN_VM_TIMEOUT:-3600} \
	"$TOP/tests/vm/run.sh" "$ROOT" -- sh /bench/in-vm.sh >"$CONSOLE" || rc=$?
[ "$rc" -eq 0 ] || die "the benchmarks inside the VM failed (status $rc); see $LOG"
echo
echo "## Inside the cgroup v2 VM"
sed -n '/=====BENCH-MARKDOWN-BEGIN=====/,/=====BENCH-MARKDOWN-END=====/p' "$CONSOLE" | sed '1d;$d' |
	sed 's|^Raw results: /tmp/reaction.txt|Raw results: '"$B"'/bench/reaction-vm.txt|'
sed -n '/=====BENCH-RAW-BEGIN=====/,/=====BENCH-RAW-END=====/p' "$CONSOLE" | sed '1d;$d' >"$B/bench/reaction-vm.txt" ||
	die "cannot write $B/bench/reaction-vm.txt"
exit 0
