#!/bin/sh
# bench/report.sh BUILD_DIR — run every benchmark and gather them into bench/results.md, with the plots as
# bench/scenario-NAME.png (what `make bench` runs). Parts, each one's markdown kept in BUILD_DIR/bench/:
#   scenarios      bench/scenarios.sh on this host             -> BUILD_DIR/bench/scenarios-host/
#   scenarios-vm   bench/scenarios.sh --vm (cgroup v2 kernel)   -> BUILD_DIR/bench/scenarios-vm/
#   launch         bench/launch.sh     (launch overhead)
#   reaction       bench/reaction.sh   (threshold crossed -> action starts)
#   limiter        bench/limiter.sh    (libmemlimit hot path, level-to-callback latency)
#   holds          bench/holds.sh      (the soft limit held: governor, fire-once, memory.high, Go's GOMEMLIMIT)
#   holds-vm       bench/holds.sh --vm (the same in the cgroup v2 VM)
#   lru            bench/lru.sh        (use the budget: an LRU cache, governed vs the best static cap)
#   lru-vm         bench/lru.sh --vm   (the same in the cgroup v2 VM, and a leak's time to die)
#   clients        bench/clients.sh    (Go and Python programs governed through their own clients)
#   allocators     bench/allocators.sh (what glibc, jemalloc, tcmalloc, mimalloc keep of freed memory, with --preload and without)
#   jvm            bench/jvm.sh (a JVM's usage over time with the JVM driver and without)
# Plots: one PNG per scenario (a panel per configuration: memory over time, level bands, soft and hard
# limits), from the cgroup v2 VM's timelines when that part ran (memory.high is real there), else from
# this host's; results.md says which.
# A part that is missing or fails leaves a line saying so in results.md; the script goes on.
#
# Knobs (environment): BENCH_SKIP (parts not to run, e.g. "scenarios-vm reaction"), BENCH_REUSE=1 (a part
# whose output already exists in BUILD_DIR/bench is not run again), BENCH_VM=0 (same as skipping
# scenarios-vm; it is also skipped without qemu-system-x86_64), BENCH_RESULTS (default bench/results.md
# beside this script), plus every knob of the scripts it runs (BENCH_ROUNDS, BENCH_REACTION_RUNS, ...).
#
# Safety: only what the scripts it runs do (each says so in its header); nothing else.
set -u

B=${1:?usage: sh bench/report.sh BUILD_DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
RESULTS=${BENCH_RESULTS:-$HERE/results.md}
SKIP=" ${BENCH_SKIP:-} "
[ "${BENCH_VM:-1}" != 0 ] || SKIP="$SKIP scenarios-vm "
command -v qemu-system-x86_64 >/dev/null 2>&1 || SKIP="$SKIP scenarios-vm-noqemu "
W=$B/bench
mkdir -p "$W" || { echo "bench/report.sh: error: cannot create $W" >&2; exit 1; }
SCENARIOS=${BENCH_SCENARIOS:-leak cache burst fragment forkheavy stall}

say() { echo "bench/report.sh: $*" >&2; }
skipped() { case $SKIP in *" $1 "*) return 0 ;; esac; return 1; }

# part NAME OUTFILE CMD...: run CMD (stdout -> OUTFILE) unless skipped or reused; OUTFILE.status says how
part() {
	name=$1 out=$2
	shift 2
	if skipped "$name"; then
		[ -s "$out" ] && [ "${BENCH_REUSE:-0}" = 1 ] && { say "$name: skipped, reusing $out"; return 0; }
		echo skipped >"$out.status"
		return 0
	fi
	if [ "${BENCH_REUSE:-0}" = 1 ] && [ -s "$out" ] && [ "$(cat "$out.status" 2>/dev/null)" = ok ]; then
		say "$name: reusing $out"
		return 0
	fi
	say "$name: $* ..."
	start=$(date +%s)
	if "$@" >"$out.tmp" 2>"$out.log"; then
		mv "$out.tmp" "$out"
		echo ok >"$out.status"
	else
		rc=$?
		mv "$out.tmp" "$out"
		echo "failed (status $rc)" >"$out.status"
		say "$name failed (status $rc); see $out.log"
	fi
	say "$name: $(($(date +%s) - start)) s"
}
status() { cat "$1.status" 2>/dev/null || echo "not run"; }

HOSTDIR=$W/scenarios-host
VMDIR=$W/scenarios-vm
if [ -f "$HERE/../tests/scenarios/scenario.sh" ] || [ -n "${SCENARIO:-}" ]; then
	part scenarios "$W/scenarios-host.md" sh "$HERE/scenarios.sh" "$B" "$HOSTDIR"
	if skipped scenarios-vm-noqemu; then
		echo "skipped: no qemu-system-x86_64 (apt-get install qemu-system-x86)" >"$W/scenarios-vm.md.status"
	else
		part scenarios-vm "$W/scenarios-vm.md" sh "$HERE/scenarios.sh" --vm "$B" "$VMDIR"
	fi
else
	echo "not available: tests/scenarios/scenario.sh does not exist yet" >"$W/scenarios-host.md.status"
	echo "not available: tests/scenarios/scenario.sh does not exist yet" >"$W/scenarios-vm.md.status"
fi
part launch "$W/launch.md" sh "$HERE/launch.sh" "$B"
if [ -f "$HERE/reaction.sh" ]; then
	part reaction "$W/reaction.md" sh "$HERE/reaction.sh" "$B"
else
	echo "not available: bench/reaction.sh does not exist yet" >"$W/reaction.md.status"
fi
part idle "$W/idle.md" sh "$HERE/idle.sh" "$B"
if command -v qemu-system-x86_64 >/dev/null 2>&1; then
	part reaction-vm "$W/reaction-vm.md" sh "$HERE/vm.sh" "$B"
else
	echo "skipped: no qemu-system-x86_64 (apt-get install qemu-system-x86)" >"$W/reaction-vm.md.status"
fi
part limiter "$W/limiter.md" sh "$HERE/limiter.sh" "$B"
part holds "$W/holds.md" sh "$HERE/holds.sh" "$B"
if command -v qemu-system-x86_64 >/dev/null 2>&1; then
	part holds-vm "$W/holds-vm.md" env BENCH_HOLDS_PLOT="$HERE/holds-loop.png" sh "$HERE/holds.sh" --vm "$B"
else
	echo "skipped: no qemu-system-x86_64 (apt-get install qemu-system-x86)" >"$W/holds-vm.md.status"
fi
part lru "$W/lru.md" sh "$HERE/lru.sh" "$B"
part clients "$W/clients.md" sh "$HERE/clients.sh" "$B"
part allocators "$W/allocators.md" sh "$HERE/allocators.sh" "$B"
part jvm "$W/jvm.md" sh "$HERE/jvm.sh" "$B"
if command -v qemu-system-x86_64 >/dev/null 2>&1; then
	part lru-vm "$W/lru-vm.md" sh "$HERE/lru.sh" --vm "$B"
else
	echo "skipped: no qemu-system-x86_64 (apt-get install qemu-system-x86)" >"$W/lru-vm.md.status"
fi

# --- plots: from the VM's timelines when there are any, else from this host's -------------------------
PLOTDIR='' PLOTFROM=''
if [ "$(status "$W/scenarios-vm.md")" = ok ] && ls "$VMDIR"/*.timeline.csv >/dev/null 2>&1; then
	PLOTDIR=$VMDIR PLOTFROM="the cgroup v2 VM run"
elif [ "$(status "$W/scenarios-host.md")" = ok ] && ls "$HOSTDIR"/*.timeline.csv >/dev/null 2>&1; then
	PLOTDIR=$HOSTDIR PLOTFROM="this host's run (no memory.high: plain-high behaves as plain-max)"
fi
PLOTS=
if [ -n "$PLOTDIR" ]; then
	for n in $SCENARIOS; do
		ls "$PLOTDIR/$n"-*.timeline.csv >/dev/null 2>&1 || continue
		rm -f "$HERE/scenario-$n.png"
		if sh "$HERE/plot.sh" scenario "$PLOTDIR" "$n" "$HERE/scenario-$n.png" 2>"$W/plot-$n.log"; then
			PLOTS="$PLOTS $n"
		else
			say "plot for $n failed; see $W/plot-$n.log"
		fi
	done
fi

# --- results.md ------------------------------------------------------------------------------------
# section TITLE FILE: the part's markdown, or a line saying why there is none
section() {
	s=$(status "$2")
	if [ "$s" = ok ] && [ -s "$2" ]; then
		cat "$2"
	elif [ -s "$2" ] && [ "${s#failed}" != "$s" ]; then
		echo "_$1: the run failed ($s); partial output:_"
		echo
		cat "$2"
	else
		echo "_$1: $s._"
	fi
}

CPU=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n 1)
{
	echo "# memrun benchmark results"
	echo
	echo "Generated by \`make bench\` (bench/report.sh) on $(date -u '+%Y-%m-%d %H:%M UTC')."
	if [ -s "$HOSTDIR/machine.txt" ]; then
		echo "Host: $(cat "$HOSTDIR/machine.txt")."
	else
		echo "Host: $(nproc) CPUs${CPU:+ ($CPU)}, kernel $(uname -r)."
	fi
	if [ "$(status "$W/scenarios-vm.md")" = ok ] && [ -s "$VMDIR/machine.txt" ]; then
		echo "cgroup v2 numbers: $(cat "$VMDIR/machine.txt")."
	fi
	echo
	echo "## Use the budget (bench/lru.sh)"
	echo
	section "bench/lru.sh --vm" "$W/lru-vm.md"
	echo
	section "bench/lru.sh" "$W/lru.md"
	echo
	echo "## Go and Python programs (bench/clients.sh)"
	echo
	section "bench/clients.sh" "$W/clients.md"
	echo
	echo "## Allocators and --preload (bench/allocators.sh)"
	echo
	section "bench/allocators.sh" "$W/allocators.md"
	echo
	echo "## A JVM driven from outside (bench/jvm.sh)"
	echo
	section "bench/jvm.sh" "$W/jvm.md"
	echo
	echo "## The soft limit holds (bench/holds.sh)"
	echo
	section "bench/holds.sh --vm" "$W/holds-vm.md"
	echo
	section "bench/holds.sh" "$W/holds.md"
	echo
	echo "## Scenarios: one run each, side by side"
	echo
	echo "\`bench/scenarios.sh\` runs tests/scenarios/scenario.sh for every scenario under every configuration once, the"
	echo "four configurations of a scenario one after the other (order rotated per scenario). Configurations: plain-max"
	echo "(memory.max only), plain-high (memory.high at 90% + memory.max), memrun (memrun's policy for the scenario),"
	echo "unconstrained (no limit; the reference for work completed). Scenario definitions: tests/scenarios/scenario.sh."
	echo
	echo "### cgroup v2 (memory.high available)"
	echo
	section "cgroup v2 scenarios (bench/scenarios.sh --vm)" "$W/scenarios-vm.md"
	echo
	echo "### This host"
	echo
	section "host scenarios (bench/scenarios.sh)" "$W/scenarios-host.md"
	echo
	if [ -n "$PLOTS" ]; then
		echo "### Memory over time"
		echo
		echo "From $PLOTFROM. Usage (blue), soft limit (green, dashed), hard limit (black); the background is shaded by"
		echo "memrun's level after each sample (moderate yellow, high orange, critical red); PSI some (dotted, right axis)"
		echo "where there was pressure. In plain-max the soft line lies under the hard one (soft = limit)."
		echo
		for n in $PLOTS; do
			echo "![$n](scenario-$n.png)"
			echo
		done
	fi
	echo "## Launch overhead (bench/launch.sh)"
	echo
	section "bench/launch.sh" "$W/launch.md"
	echo
	echo "## Reaction latency (bench/reaction.sh)"
	echo
	section "bench/reaction.sh" "$W/reaction.md"
	echo
	echo "## Idle cost (bench/idle.sh)"
	echo
	section "bench/idle.sh" "$W/idle.md"
	echo
	echo "## Reaction latency and idle cost in the cgroup v2 VM (bench/vm.sh)"
	echo
	section "bench/vm.sh" "$W/reaction-vm.md"
	echo
	echo "## libmemlimit cost (bench/limiter.sh)"
	echo
	section "bench/limiter.sh" "$W/limiter.md"
	echo
	# make soak's own (30 minutes, not part of make bench): its last result, kept as it was
	echo "<!-- soak: written by tests/soak/run.sh (make soak) -->"
	if [ -s "$HERE/soak.md" ]; then cat "$HERE/soak.md"; else echo "## Soak"; echo; echo "Not run yet: \`make soak\`."; fi
	echo "<!-- /soak -->"
} >"$RESULTS.tmp" && mv "$RESULTS.tmp" "$RESULTS"
say "wrote $RESULTS${PLOTS:+ and bench/scenario-*.png for:$PLOTS}"
exit 0
