#!/bin/sh
# bench/allocators.sh BUILD_DIR — what each allocator keeps of memory the program freed, with and
# without memrun --preload (limiter/memlimit_heap.c), in one run. Prints a markdown table on stdout
# and writes bench/allocators.png (gnuplot) beside this script.
#
# The program: examples/fragment (--pin-every 1024): builds 48 MiB of 256-byte blocks, frees all but
# a pin every 256 KiB, then allocates 96 MiB of 1 MiB blocks, and reports its resident set. Under
# memrun --limit 512M --soft 112M (nothing is OOM-killed; the governor asks above its setpoint, just
# under 112M) once plain and once with --preload, on glibc's malloc and on jemalloc, tcmalloc and mimalloc
# (Debian's libjemalloc2, libtcmalloc-minimal4, libmimalloc2.0, LD_PRELOADed as operators do).
# Retained = the sandbox's peak less what the program holds live (96 MiB + the pins): the freed
# memory still charged to it at its worst. Also: what the asks freed (the report's actions).
# Safety: sandboxes only beneath memrun's own cgroup; processes it started; no network.
set -u
B=${1:?usage: sh bench/allocators.sh BUILD_DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
die() { echo "bench/allocators.sh: error: $*" >&2; exit 1; }
M=$B/memrun F=$B/examples/fragment
for f in "$M" "$F"; do [ -x "$f" ] || die "$f missing: run make"; done
W=$(mktemp -d "${TMPDIR:-/tmp}/memrun-alloc.XXXXXX") || die mktemp
trap 'rm -rf "$W"' EXIT

# run NAME SO PRELOAD: exit, final usage and retained (MiB, one decimal), MiB the asks freed
run() {
	so=$2 pre=$3
	env ${so:+LD_PRELOAD=$so} "$M" -q --limit 512M --soft 112M --report "$W/r.json" $pre -- \
		"$F" --pin-every 1024 --hold 1 >"$W/out" 2>"$W/err"
	rc=$?
	# the sandbox's peak: the live data plus what of the freed memory was still charged then
	rss=$(jq '.memory.peak / 1048576 * 10 | floor / 10' "$W/r.json" 2>/dev/null)
	live=$(sed -n 's/^fragment: holding \([0-9]*\) MiB of large blocks and \([0-9]*\) pins.*/\1 \2/p' "$W/out")
	freed=$(jq '[.actions[] | select(.action == "trim" or .action == "collect") | .freed] | add // 0' "$W/r.json" 2>/dev/null)
	set -- $live
	# live: the large blocks and the pins (256 bytes each)
	ret=$(awk -v r="${rss:-0}" -v l="${1:-0}" -v p="${2:-0}" 'BEGIN { printf "%.1f", r - l - p * 256 / 1048576 }')
	echo "${rc} ${rss:-?} ${ret} $(( ${freed:-0} / 1048576 ))"
}

echo "| allocator | retained, plain (MiB) | retained, --preload (MiB) | freed by the asks (MiB) | release |"
echo "|---|---:|---:|---:|---|"
: >"$W/plot.dat"
i=0
for a in glibc:: jemalloc:libjemalloc.so.2:jemalloc_purge tcmalloc:libtcmalloc_minimal.so.4:tcmalloc_release \
         mimalloc:libmimalloc.so.2:mimalloc_collect; do
	name=${a%%:*} rest=${a#*:} lib=${rest%%:*} how=${rest#*:}
	so=
	if [ -n "$lib" ]; then
		so=$(ls /usr/lib/*-linux-gnu/"$lib" /usr/lib/"$lib" 2>/dev/null | head -1)
		[ -n "$so" ] || { echo "| $name | not installed | | | |"; continue; }
	fi
	[ -n "$how" ] || how=malloc_trim
	set -- $(run "$name" "$so" "")
	prc=$1 pret=$3
	set -- $(run "$name" "$so" --preload)
	wrc=$1 wret=$3 wfreed=$4
	[ "$prc" = 0 ] && [ "$wrc" = 0 ] || echo "<!-- $name: exit $prc plain, $wrc with --preload -->"
	echo "| $name | $pret | $wret | $wfreed | \`$how\` |"
	echo "$i $name $pret $wret" >>"$W/plot.dat"
	i=$((i + 1))
done
echo
echo "fragment frees 47.9 MiB of small blocks, then allocates 96 MiB of large ones under a 112M soft limit;"
echo "\"retained\" is what of the freed memory was still charged at the peak. mimalloc's release is mostly its being"
echo "told at start to decommit at once (its collection is per thread), so its asks find little left to free."
if command -v gnuplot >/dev/null 2>&1 && [ -s "$W/plot.dat" ]; then
	gnuplot <<GP >/dev/null 2>&1 && echo && echo "![retained memory per allocator](allocators.png)"
set terminal pngcairo size 760,360 noenhanced
set output "$HERE/allocators.png"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set ylabel "still charged at the peak (MiB)"
set yrange [0:*]
set key top right
set title "examples/fragment: what each allocator keeps of 48 MiB freed"
plot "$W/plot.dat" using 3:xtic(2) title "plain", "" using 4 title "memrun --preload"
GP
fi
