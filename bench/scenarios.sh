#!/bin/sh
# bench/scenarios.sh [--vm] BUILD_DIR OUTDIR — every scenario × configuration of tests/scenarios/scenario.sh,
# once each, side by side: for each scenario its four configurations run one after the other (order rotated
# from one scenario to the next), so every scenario's runs share the machine's state of that moment.
#   scenarios       leak cache burst fragment forkheavy stall
#   configurations  plain-max (memory.max only), plain-high (memory.high + memory.max), memrun (memrun's
#                   policy), unconstrained (no limit: the reference for "work completed")
# Per scenario and configuration: outcome, OOM kills, work completed relative to the unconstrained run,
# p99 latency (server scenarios), peak memory, time spent throttled. Writes into OUTDIR:
#   NAME-CONFIG.{report.json,timeline.csv,out}   scenario.sh's own files
#   summary.txt      scenario.sh's one-line summaries, one per run
#   machine.txt      one line naming the machine, kernel and cgroup mode the runs came from
#   scenarios.md     the markdown table (also printed on stdout)
# A report, not a test: exit 0 unless a tool is missing or the harness fails (a scenario that fails is a
# row saying so).
#
# --vm: run the same thing inside the cgroup v2 VM (tests/vm/run.sh: Debian's kernel under qemu TCG, busybox
# initramfs; the root is built as `make vm` builds its own: `make install DESTDIR=... PREFIX=/usr` plus the
# example binaries in /usr/libexec/memrun, the scenario script and this script). Inside the VM the summary
# lines go to the console as they come; at the end OUTDIR's files travel back as base64 of a gzipped tar
# between =====SCENARIOS-TAR-BEGIN===== and =====SCENARIOS-TAR-END===== markers, decoded here into OUTDIR.
# If the tar does not make it, summary.txt is rebuilt from the summary lines in the console log.
#
# On a v1/hybrid host there is no memory.high: scenario configurations that rely on it (plain-high, and
# memrun's soft limit) behave like plain-max there; the table marks them (†). The cgroup v2 numbers come
# from --vm.
#
# Knobs (environment): SCENARIO (default tests/scenarios/scenario.sh beside this script), MEMRUN (default
# BUILD_DIR/memrun), EXAMPLES (default BUILD_DIR/examples), BENCH_SCENARIOS (default all six),
# BENCH_CONFIGS (default all four), BENCH_SCENARIO_TIMEOUT (seconds per run, default 600; the run's
# scenario.sh is sent TERM then), BENCH_VM_SMP (default 2), MEMRUN_VM_TIMEOUT (default 5400), BENCH_NOTE.
#
# Safety: scenario.sh and memrun create cgroups beneath this shell's own cgroup only; servers use loopback.
# This script ends no process except, on timeout, the scenario.sh it started (through timeout(1)).
set -eu

VM=
if [ "${1:-}" = --vm ]; then VM=1; shift; fi
B=${1:?usage: sh bench/scenarios.sh [--vm] BUILD_DIR OUTDIR}
OUT=${2:?usage: sh bench/scenarios.sh [--vm] BUILD_DIR OUTDIR}
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/.." && pwd)
SCENARIOS=${BENCH_SCENARIOS:-leak cache burst fragment forkheavy stall}
CONFIGS=${BENCH_CONFIGS:-plain-max plain-high memrun unconstrained}
RUN_TIMEOUT=${BENCH_SCENARIO_TIMEOUT:-600}

die() { echo "bench/scenarios.sh: error: $*" >&2; exit 1; }

mkdir -p "$OUT" || die "cannot create $OUT"
OUT=$(cd "$OUT" && pwd)

# --- the markdown table from summary.txt --------------------------------------------------------------
# table SUMMARY MODE: MODE "v2" or anything else (v1/hybrid: memory.high-dependent rows are marked).
table() {
	awk -v mode="$2" -v order="$SCENARIOS" -v corder="$CONFIGS" '
	function num(s) { return s ~ /^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$/ }
	function mib(b) { return num(b) ? sprintf("%.1f", b / 1048576) : "—" }
	$1 == "scenario" {
		n = $2; c = $3; seen[n, c] = 1
		for (i = 4; i <= NF; i++) { k = $i; sub(/=.*/, "", k); v = $i; sub(/^[^=]*=/, "", v); f[n, c, k] = v }
	}
	END {
		print "| scenario | configuration | outcome | OOM kills | work vs unconstrained | p99 ms | peak MiB | throttled s |"
		print "|---|---|---|---:|---:|---:|---:|---:|"
		ns = split(order, S, " "); nc = split(corder, C, " ")
		for (i = 1; i <= ns; i++) {
			n = S[i]; first = 1
			ref = f[n, "unconstrained", "work"]
			for (j = 1; j <= nc; j++) {
				c = C[j]
				if (!seen[n, c]) continue
				w = f[n, c, "work"]
				if (!num(w)) ratio = "—"
				else if (num(ref) && ref > 0) ratio = sprintf("%.2f (%s)", w / ref, w)
				else ratio = w
				p = f[n, c, "p99_ms"]; if (!num(p) || p < 0) p = "—"
				t = f[n, c, "throttled_s"]; if (!num(t)) t = "—"
				k = f[n, c, "oom_kill"]; if (!num(k)) k = "—"
				mark = (mode != "v2" && (c == "plain-high" || c == "memrun")) ? " †" : ""
				o = f[n, c, "outcome"]; if (o == "") o = "?"
				if (f[n, c, "exit"] != "" && o != "survived") o = o " (exit " f[n, c, "exit"] ")"
				printf "| %s | %s%s | %s | %s | %s | %s | %s | %s |\n", first ? "**" n "**" : "", c, mark, o, k, ratio, p, mib(f[n, c, "peak"]), t
				first = 0
			}
		}
	}' "$1"
}

cgmode() {
	if [ -f /sys/fs/cgroup/cgroup.controllers ]; then echo v2
	elif [ -f /sys/fs/cgroup/memory/memory.limit_in_bytes ]; then
		if [ -f /sys/fs/cgroup/unified/cgroup.procs ]; then echo hybrid; else echo v1; fi
	else echo none
	fi
}

legend() { # MODE
	echo
	echo "Work: the scenario's own count of work done (scenario.sh's work=), as a ratio to the unconstrained run of the same"
	echo "scenario, raw count in parentheses. p99: request latency of the server scenarios (— elsewhere). Peak: the"
	echo "sandbox's peak memory. Throttled: time spent throttled above memory.high (cgroup v2; 0 where there is none)."
	if [ "$1" != v2 ]; then
		echo "† This host has no memory.high (cgroup $1): plain-high behaves as plain-max, and memrun's soft limit is"
		echo "enforced only by its levels and actions, without kernel throttling. The cgroup v2 numbers are in the VM table."
	fi
}

# --- VM mode: build a root, run this script inside, bring the files back -------------------------------
if [ -n "$VM" ]; then
	SCEN=${SCENARIO:-$TOP/tests/scenarios/scenario.sh}
	[ -f "$SCEN" ] || die "$SCEN does not exist (tests/scenarios/scenario.sh not written yet?)"
	[ -x "$B/memrun" ] || die "$B/memrun not built: run 'make all' first"
	ROOT=$(mkdir -p "$B/bench" && cd "$B/bench" && pwd)/scenarios-vm-root
	rm -rf "$ROOT"
	"${MAKE:-make}" --no-print-directory -C "$TOP" install DESTDIR="$ROOT" PREFIX=/usr >/dev/null ||
		die "make install DESTDIR=$ROOT PREFIX=/usr failed"
	mkdir -p "$ROOT/bench" "$ROOT/tests" "$ROOT/usr/libexec/memrun"
	cp -r "$(dirname "$SCEN")" "$ROOT/tests/scenarios"
	cp "$HERE/scenarios.sh" "$ROOT/bench/"
	cp "${EXAMPLES:-$B/examples}"/* "$ROOT/usr/libexec/memrun/"
	[ ! -d "$B/tests/helpers" ] || cp "$B"/tests/helpers/* "$ROOT/usr/libexec/memrun/" 2>/dev/null || true
	# What `make vm` adds, and the host's coreutils timeout (busybox's execs the command in its own pid).
	for t in jq setpriv timeout; do
		p=$(command -v "$t") || die "no $t on this host"
		cp "$p" "$ROOT/usr/bin/"
	done
	SMP=${BENCH_VM_SMP:-2}
	NOTE="inside qemu with TCG (full emulation, no KVM), $SMP vCPU(s), 1 GiB RAM, on a host with $(nproc) CPUs and kernel $(uname -r): times and work counts are slowed by the emulation; compare within a scenario"
	cat >"$ROOT/bench/in-vm.sh" <<EOF
# Run by tests/vm/run.sh inside the VM.
export MEMRUN=/usr/bin/memrun EXAMPLES=/usr/libexec/memrun HELPERS=/usr/libexec/memrun SCENARIO=/tests/scenarios/scenario.sh
export CONFIGS=/usr/share/memrun BENCH_NOTE="$NOTE"
export BENCH_SCENARIOS="$SCENARIOS" BENCH_CONFIGS="$CONFIGS" BENCH_SCENARIO_TIMEOUT=$RUN_TIMEOUT
rc=0
sh /bench/scenarios.sh /usr /tmp/scen >/tmp/scenarios.md || rc=\$?
dmesg -n 1 2>/dev/null
echo "=====SCENARIOS-TAR-BEGIN====="
tar -C /tmp/scen -cf - . | gzip -9 | base64
echo "=====SCENARIOS-TAR-END====="
exit \$rc
EOF
	LOG=$OUT/vm.log
	echo "scenarios: booting the cgroup v2 VM ($SMP vCPUs, TCG); console log in $LOG ..." >&2
	rc=0
	MEMRUN_VM_LOG=$LOG MEMRUN_VM_SMP=$SMP MEMRUN_VM_TIMEOUT=${MEMRUN_VM_TIMEOUT:-5400} \
		"$TOP/tests/vm/run.sh" "$ROOT" -- sh /bench/in-vm.sh >/dev/null || rc=$?
	sed -n '/=====SCENARIOS-TAR-BEGIN=====/,/=====SCENARIOS-TAR-END=====/p' "$LOG" |
		sed '1d;$d' | grep -E '^[A-Za-z0-9+/=]+$' >"$OUT/vm-tar.b64" || true
	if [ -s "$OUT/vm-tar.b64" ] && base64 -d "$OUT/vm-tar.b64" | tar -C "$OUT" -xzf -; then
		rm -f "$OUT/vm-tar.b64"
	else
		echo "bench/scenarios.sh: warning: no usable tar from the VM; summary rebuilt from the console" >&2
		grep '^scenario [a-z]' "$LOG" >"$OUT/summary.txt" || true
		kv=$(sed -n 's/.*Linux version \([^ ]*\).*/\1/p' "$LOG" | head -n 1)
		echo "VM: kernel ${kv:-?}, cgroup v2; $NOTE" >"$OUT/machine.txt"
	fi
	[ "$rc" -eq 0 ] || echo "bench/scenarios.sh: warning: the VM run ended with status $rc; see $LOG" >&2
	[ -s "$OUT/summary.txt" ] || die "no scenario results came back from the VM; see $LOG"
	table "$OUT/summary.txt" v2 >"$OUT/scenarios.md"
	legend v2 >>"$OUT/scenarios.md"
	cat "$OUT/scenarios.md"
	exit 0
fi

# --- here: run every scenario × configuration -----------------------------------------------------------
SCEN=${SCENARIO:-$TOP/tests/scenarios/scenario.sh}
[ -f "$SCEN" ] || die "$SCEN does not exist (tests/scenarios/scenario.sh not written yet?)"
MEMRUN=${MEMRUN:-$(cd "$B" && pwd)/memrun}
EXAMPLES=${EXAMPLES:-$(cd "$B" && pwd)/examples}
export MEMRUN EXAMPLES
[ -x "$MEMRUN" ] || die "$MEMRUN not built: run 'make all' first"
[ -d "$EXAMPLES" ] || die "$EXAMPLES: no example binaries (make all)"
TO=
if command -v timeout >/dev/null 2>&1; then TO="timeout -k 30 $RUN_TIMEOUT"; fi

MODE=$(cgmode)
CPU=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n 1)
case $MODE in
hybrid) MODEL="hybrid (v1 memory controller + unified v2, no memory.high)" ;;
v1) MODEL="v1 (no memory.high)" ;;
*) MODEL=$MODE ;;
esac
echo "$(nproc) CPUs${CPU:+ ($CPU)}, $(awk '/^MemTotal/ { printf "%.1f GiB RAM", $2 / 1048576 }' /proc/meminfo), kernel $(uname -r), cgroup $MODEL; $(date -u '+%Y-%m-%d %H:%M UTC')${BENCH_NOTE:+; $BENCH_NOTE}" >"$OUT/machine.txt"

SUM=$OUT/summary.txt
: >"$SUM"
nc=$(echo "$CONFIGS" | wc -w)
r=0
for n in $SCENARIOS; do
	# rotate the configuration order by one per scenario
	# shellcheck disable=SC2086 # a list of words
	set -- $CONFIGS
	i=0
	while [ "$i" -lt $((r % nc)) ]; do
		x=$1; shift; set -- "$@" "$x"; i=$((i + 1))
	done
	for c in "$@"; do
		echo "scenarios: $n $c ..." >&2
		rc=0
		start=$(date +%s)
		# shellcheck disable=SC2086 # TO is a command prefix
		line=$($TO sh "$SCEN" "$n" "$c" "$OUT" </dev/null 2>"$OUT/$n-$c.stderr" | grep '^scenario ' | tail -n 1) || rc=$?
		if [ -z "$line" ]; then
			line="scenario $n $c outcome=error exit=$rc work=NA p99_ms=NA peak=NA throttled_s=NA oom_kill=NA"
			echo "bench/scenarios.sh: warning: $n $c printed no summary line (see $OUT/$n-$c.stderr)" >&2
		fi
		echo "$line" >>"$SUM"
		echo "$line"
		echo "scenarios: $n $c took $(($(date +%s) - start)) s" >&2
	done
	r=$((r + 1))
done >&2

table "$SUM" "$MODE" >"$OUT/scenarios.md"
legend "$MODE" >>"$OUT/scenarios.md"
cat "$OUT/scenarios.md"
exit 0
