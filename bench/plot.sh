#!/bin/sh
# bench/plot.sh — memory over time from memrun --timeline CSVs (memrun(1): time_s,usage,soft,hard,psi_some,
# psi_full,level), as PNG with gnuplot (Debian: gnuplot-nox):
#   sh bench/plot.sh run CSV OUT.png TITLE
#       one panel: usage (MiB), the soft and hard limits as lines (left out where 'max'), the background
#       shaded by the level after each sample (moderate yellow, high orange, critical red, any other
#       level grey; ok unshaded), PSI some avg10 (%) on the right axis when it is ever above 0.
#   sh bench/plot.sh scenario DIR NAME OUT.png
#       one image per scenario: a panel per configuration found as DIR/NAME-CONFIG.timeline.csv (plain-max,
#       plain-high, memrun, unconstrained; 2 x 2), each titled "NAME · CONFIG · OUTCOME" from DIR/summary.txt
#       (bench/scenarios.sh), with DIR/machine.txt's cgroup mode in the image title.
# Knobs (environment): PLOT_SIZE (pixels, default 800,400 for run and 960,600 for scenario), PLOT_NOTE
# (appended to the scenario image's title).
set -eu

die() { echo "bench/plot.sh: error: $*" >&2; exit 1; }
command -v gnuplot >/dev/null 2>&1 || die "missing gnuplot (apt-get install gnuplot-nox, or 'make check-deps')"
T=$(mktemp -d "${TMPDIR:-/tmp}/memrun-plot.XXXXXX") || die "mktemp failed"
trap 'rm -rf "$T"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# prep CSV PREFIX: PREFIX.dat (t usage soft hard psi_some, MiB, NaN for 'max'), PREFIX.bands (t0 t1 rgb),
# prints "YMAX PSIMAX TMAX"
prep() {
	awk -F, -v dat="$2.dat" -v bands="$2.bands" '
	function mib(v) { return v ~ /^[0-9]+$/ ? v / 1048576 : "NaN" }
	function col(l) {
		if (l == "moderate") return "0xF2D13A"
		if (l == "high") return "0xF28C28"
		if (l == "critical") return "0xD7263D"
		return "0x9A9A9A"
	}
	function band(t1) { if (lvl != "" && lvl != "ok" && t1 > t0) printf "%s %s %s %s\n", t0, t1, col(lvl), lvl > bands }
	NR == 1 { next }
	$1 !~ /^[0-9.]+$/ { next }
	{
		u = mib($2); s = mib($3); h = mib($4)
		printf "%s %s %s %s %s\n", $1, u, s, h, ($5 ~ /^[0-9.]+$/ ? $5 : 0) > dat
		if (u != "NaN" && u > y) y = u
		if (s != "NaN" && s > y) y = s
		if (h != "NaN" && h > y) y = h
		if ($5 + 0 > p) p = $5 + 0
		# the level holds from this sample to the next one
		if ($7 != lvl) { band($1); lvl = $7; t0 = $1 }
		tl = $1
	}
	END {
		band(tl)
		if (NR < 2) { printf "" > dat }
		printf "%g %g %g\n", (y > 0 ? y * 1.12 : 1), p, tl
	}' "$1"
}

# panel PREFIX TITLE: the gnuplot commands for one panel
panel() {
	# shellcheck disable=SC2046 # prep prints three numbers
	set -- "$1" "$2" $(prep "$1.csv" "$1")
	ymax=$3 psimax=$4
	[ -s "$1.bands" ] || echo "0 0 0xFFFFFF ok" >"$1.bands"   # no level entered: an empty band, no warning
	cat <<EOF
set title "$2" noenhanced
set xlabel "seconds"
set ylabel "MiB"
set yrange [0:$ymax]
set xrange [0:*]
set key below horizontal font ",8" samplen 1.5 height 0.2 maxrows 1
set grid ytics lc rgb "#dddddd"
EOF
	if awk -v p="$psimax" 'BEGIN { exit !(p > 0) }'; then
		echo "set y2label 'PSI some avg10 %'; set y2range [0:$(awk -v p="$psimax" 'BEGIN { printf "%g", p * 1.15 }')]; set y2tics; set ytics nomirror"
		psi=", '$1.dat' using 1:5 axes x1y2 with lines lw 1 dt 3 lc rgb '#555555' title 'PSI some %'"
	else
		echo 'unset y2label; unset y2tics; set ytics mirror'
		psi=
	fi
	cat <<EOF
plot '$1.bands' using ((\$1+\$2)/2):(0):1:2:(0):($ymax):3 with boxxyerror fs transparent solid 0.28 noborder lc rgb variable notitle, \\
     NaN with boxes fs solid 0.5 noborder lc rgb "#F2D13A" title "moderate", \\
     NaN with boxes fs solid 0.5 noborder lc rgb "#F28C28" title "high", \\
     NaN with boxes fs solid 0.5 noborder lc rgb "#D7263D" title "critical", \\
     '$1.dat' using 1:2 with lines lw 2 lc rgb "#1f4e9c" title "usage", \\
     '$1.dat' using 1:3 with lines lw 1.5 dt 2 lc rgb "#2a9d3a" title "soft", \\
     '$1.dat' using 1:4 with lines lw 1.5 lc rgb "#000000" title "hard"$psi
EOF
}

mode=${1:-}
case $mode in
run)
	[ $# -eq 4 ] || die "usage: sh bench/plot.sh run CSV OUT.png TITLE"
	[ -s "$2" ] || die "$2: no timeline"
	cp "$2" "$T/p.csv"
	{
		echo "set terminal pngcairo size ${PLOT_SIZE:-800,400} font 'DejaVu Sans,9'"
		echo "set output '$3'"
		panel "$T/p" "$4"
	} >"$T/plot.gp"
	gnuplot "$T/plot.gp" || die "gnuplot failed on $2"
	;;
scenario)
	[ $# -eq 4 ] || die "usage: sh bench/plot.sh scenario DIR NAME OUT.png"
	dir=$2 name=$3
	n=0
	for c in plain-max plain-high memrun unconstrained; do
		[ -s "$dir/$name-$c.timeline.csv" ] && n=$((n + 1))
	done
	[ "$n" -gt 0 ] || die "no $dir/$name-*.timeline.csv"
	if [ "$n" -le 1 ]; then lay="1,1"; elif [ "$n" -eq 2 ]; then lay="1,2"; else lay="2,2"; fi
	machine=$(sed -n 's/.*cgroup \(v2\|v1\|hybrid\).*/cgroup \1/p' "$dir/machine.txt" 2>/dev/null | head -n 1)
	kernel=$(sed -n 's/^[^;]*kernel \([^ ,;:]*\).*/kernel \1/p' "$dir/machine.txt" 2>/dev/null | head -n 1)
	{
		echo "set terminal pngcairo size ${PLOT_SIZE:-960,600} font 'DejaVu Sans,9'"
		echo "set output '$4'"
		echo "set multiplot layout $lay title \"$name: memory over time by configuration${machine:+ ($machine${kernel:+, $kernel})}${PLOT_NOTE:+ $PLOT_NOTE}\" noenhanced font ',11'"
		i=0
		for c in plain-max plain-high memrun unconstrained; do
			f=$dir/$name-$c.timeline.csv
			[ -s "$f" ] || continue
			i=$((i + 1))
			cp "$f" "$T/p$i.csv"
			o=$(awk -v n="$name" -v c="$c" '$1 == "scenario" && $2 == n && $3 == c {
				for (i = 4; i <= NF; i++) { if ($i ~ /^outcome=/) o = substr($i, 9); if ($i ~ /^oom_kill=/) k = substr($i, 10) }
				s = o; if (k ~ /^[1-9]/) s = s ", " k " OOM kill" (k > 1 ? "s" : "") }
				END { print s }' "$dir/summary.txt" 2>/dev/null || true)
			panel "$T/p$i" "$name · $c · ${o:-?}"
		done
		echo "unset multiplot"
	} >"$T/plot.gp"
	gnuplot "$T/plot.gp" || die "gnuplot failed on $dir/$name-*"
	;;
*) die "usage: sh bench/plot.sh run CSV OUT.png TITLE | scenario DIR NAME OUT.png" ;;
esac
