#!/bin/sh
# bench/jvm.sh BUILD_DIR — a JVM's resident set over time with memrun's JVM driver and without it, in
# one run. Prints a markdown table on stdout and writes bench/jvm.png (gnuplot) beside this script.
#
# The program: tests/helpers/JvmHold.java on Debian's OpenJDK 17 (G1, -Xmx500m): after a second it
# allocates 300 MiB in 256 KiB arrays, drops them all and idles 12 s (an idle JVM runs no collection).
# memrun --limit 1G --soft 900M, and once the heap has grown memrunctl lowers the soft limit to 200M.
# With [governor] jvm = yes the governor's trim and collect reach the JVM over its attach socket
# (System.trim_native_heap, GC.run); with jvm = no nothing asks it. The sandbox's usage comes from
# memrun's --timeline (one row per sample). Safety: sandboxes only beneath memrun's own cgroup;
# processes it started; no network.
set -u
B=${1:?usage: sh bench/jvm.sh BUILD_DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
die() { echo "bench/jvm.sh: error: $*" >&2; exit 1; }
M=$B/memrun C=$B/memrunctl
for f in "$M" "$C"; do [ -x "$f" ] || die "$f missing: run make"; done
command -v java >/dev/null && command -v javac >/dev/null || die "java/javac missing (apt-get install openjdk-17-jdk-headless)"
W=$(mktemp -d "${TMPDIR:-/tmp}/memrun-jvm.XXXXXX") || die mktemp
trap 'rm -rf "$W"' EXIT
javac -d "$W" "$HERE/../tests/helpers/JvmHold.java" || die "javac JvmHold.java"

# run yes|no: the timeline in $W/ON.csv, the report in $W/ON.json, the program's lines in $W/ON.out;
# the lowering's time (s since the start) in $W/ON.t
run() {
	on=$1 n=bench-jvm-$1-$$
	printf '[level.moderate]\nusage = 50%%\nactions = trim\n[level.high]\nusage = 70%%\nactions = collect\n[governor]\njvm = %s\n' \
		"$on" >"$W/$on.ini"
	start=$(date +%s.%N)
	"$M" -q --no-hints -n "$n" --policy "$W/$on.ini" --limit 1G --soft 900M --report "$W/$on.json" \
		--timeline "$W/$on.csv" -- java -Xmx500m -XX:+UseG1GC -cp "$W" JvmHold 300 12 1 >"$W/$on.out" 2>"$W/$on.err" &
	pid=$!
	i=0; while ! grep -q 'grown.*rss [0-9]' "$W/$on.out" 2>/dev/null && [ $i -lt 600 ]; do sleep 0.05; i=$((i + 1)); done
	"$C" set "$n" --soft 200M >/dev/null || die "memrunctl set $n"
	awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f\n", b - a }' >"$W/$on.t"
	wait $pid || die "memrun ($on) exited $?: $(cat "$W/$on.err")"
}
run yes
run no

# the usage at the end of the hold, and how long after the lowering the usage first came under 200M
# (looked for in the 10 s after it: the JVM idles 12 s, then exits and the usage falls anyway)
row() {
	on=$1 what=$2
	t=$(cat "$W/$on.t")
	peak=$(jq '.memory.peak / 1048576 | floor' "$W/$on.json")
	held=$(sed -n 's/.* rss_after_hold \([0-9]*\)$/\1/p' "$W/$on.out")
	under=$(awk -F, -v t="$t" 'NR > 1 && $1 >= t && $1 < t + 10 && $2 < 200 * 1048576 { printf "%.1f", $1 - t; exit }' "$W/$on.csv")
	asks=$(jq '[.jvm[]?.answered] | add // 0' "$W/$on.json")
	freed=$(jq '[.jvm[]?.freed] | add // 0 | . / 1048576 | floor' "$W/$on.json")
	echo "| $what | $peak | $((held / 1048576)) | ${under:-not within 10 s} | $asks | $freed |"
}
echo "| JVM | sandbox peak (MiB) | JVM RSS after the hold (MiB) | under 200M, s after the lowering | JVM commands answered | their RSS drop (MiB) |"
echo "|---|---:|---:|---:|---:|---:|"
row yes "driven (\`[governor] jvm = yes\`)"
row no "not driven (\`jvm = no\`)"
echo
echo "JvmHold grows by 300 MiB of garbage and idles; at the mark memrunctl lowers the soft limit from 900M to"
echo "200M. $(jq -r '[.actions[] | select(.action | test("^jvm-")) | "\(.action) \(.ms | floor) ms: \(.detail)"] | join("; ")' "$W/yes.json")."
if command -v gnuplot >/dev/null 2>&1; then
	gnuplot <<GP >/dev/null 2>&1 && echo && echo "![the JVM's usage over time, driven and not](jvm.png)"
set terminal pngcairo size 760,360 noenhanced
set output "$HERE/jvm.png"
set datafile separator ","
set xlabel "seconds since the start"
set ylabel "sandbox usage (MiB)"
set yrange [0:*]
set key top right
set title "JvmHold (OpenJDK 17, G1): soft limit lowered 900M -> 200M at the mark"
set arrow from $(cat "$W/yes.t"), graph 0 to $(cat "$W/yes.t"), graph 1 nohead dashtype 2
plot "$W/yes.csv" every ::1 using 1:(\$2/1048576) with lines lw 2 title "driven (jvm = yes)", \
     "$W/no.csv" every ::1 using 1:(\$2/1048576) with lines lw 2 title "not driven (jvm = no)", \
     200 with lines dashtype 3 title "soft limit after the lowering"
GP
fi
