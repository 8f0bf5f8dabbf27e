// gohold: holdcache's workload in Go, for the "soft limit holds" benchmark: an --entry sized buffer
// (touched) every --every ms, --total in all. What it does not keep becomes garbage, which Go's
// runtime collects; with GOGC=off and GOMEMLIMIT set it is Go's own soft limit that holds the heap.
// --live-from/--live-to: the live set steps between those sizes in 8 equal steps over the run.
//
// stdout, one line at the end (holdcache's format):
//   gohold: added=N live=SIZE p99_add_us=N max_add_us=N gc_cpu_ms=N wall_ms=N
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

func size(s string) uint64 {
	mult := uint64(1)
	switch {
	case strings.HasSuffix(s, "G"):
		mult, s = 1<<30, strings.TrimSuffix(s, "G")
	case strings.HasSuffix(s, "M"):
		mult, s = 1<<20, strings.TrimSuffix(s, "M")
	case strings.HasSuffix(s, "K"):
		mult, s = 1<<10, strings.TrimSuffix(s, "K")
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		fmt.Fprintf(os.Stderr, "gohold: bad size %q\n", s)
		os.Exit(2)
	}
	return v * mult
}

func main() {
	total := flag.String("total", "600M", "bytes allocated in all")
	entry := flag.String("entry", "1M", "bytes per entry")
	every := flag.Int("every", 5, "ms between entries")
	liveFrom := flag.String("live-from", "0", "live set at the start")
	liveTo := flag.String("live-to", "0", "live set at the end")
	flag.Parse()
	tot, sz, lf, lt := size(*total), size(*entry), size(*liveFrom), size(*liveTo)

	var live [][]byte
	var liveBytes uint64
	lat := make([]int64, 0, tot/sz+1)
	start := time.Now()
	for in := uint64(0); in < tot; in += sz {
		want := lf
		if lt > lf {
			want = lf + (lt-lf)*(in*8/tot)/7
		}
		t0 := time.Now()
		b := make([]byte, sz)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 0xa5
		}
		lat = append(lat, time.Since(t0).Microseconds())
		if liveBytes < want {
			live = append(live, b)
			liveBytes += sz
		}
		time.Sleep(time.Duration(*every) * time.Millisecond)
	}
	wall := time.Since(start)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	fmt.Printf("gohold: added=%d live=%dM p99_add_us=%d max_add_us=%d gc_cpu_ms=%d wall_ms=%d\n", len(lat),
		liveBytes>>20, lat[(len(lat)-1)*99/100], lat[len(lat)-1],
		int64(ms.GCCPUFraction*float64(wall.Milliseconds())), wall.Milliseconds())
	runtime.KeepAlive(live)
}
