package memlimit

import (
	"bytes"
	"math"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
)

// goMem reads what the Go runtime mapped (/memory/classes/total) and what of it it has handed back
// to the OS with madvise (heap/released).
func goMem() (total, released uint64) {
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 || s[1].Value.Kind() != metrics.KindUint64 {
		return 0, 0
	}
	return s[0].Value.Uint64(), s[1].Value.Uint64()
}

// gcFreed is the cumulative bytes of heap objects the collector has freed (/gc/heap/frees).
func gcFreed() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/frees:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// goHeld is the memory the Go runtime holds from the OS and has not released.
func goHeld() uint64 {
	t, r := goMem()
	if r > t {
		return 0
	}
	return t - r
}

var pageSize = uint64(os.Getpagesize())

// rss is the process's resident memory (/proc/self/statm), 0 when it cannot be read.
func rss() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := bytes.Fields(b)
	if len(f) < 2 {
		return 0
	}
	n, err := strconv.ParseUint(string(f[1]), 10, 64)
	if err != nil {
		return 0
	}
	return n * pageSize
}

// ParseSize reads a size as MEMLIMIT= takes it: bytes, or with a binary K, M, G or T suffix
// (KiB, KB, decimals such as 1.5G accepted).
func ParseSize(text string) (uint64, error) {
	s := strings.TrimSpace(text)
	for _, suf := range []string{"iB", "B", "i"} {
		if len(s) > len(suf) && strings.HasSuffix(s, suf) && strings.ContainsRune("KMGTkmgt", rune(s[len(s)-len(suf)-1])) {
			s = s[:len(s)-len(suf)]
			break
		}
	}
	mult := 1.0
	if n := len(s); n > 0 {
		if i := strings.IndexByte("KMGT", strings.ToUpper(s[n-1:])[0]); i >= 0 {
			mult = math.Pow(1024, float64(i+1))
			s = s[:n-1]
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) || v*mult >= math.MaxUint64 {
		return 0, &sizeError{text}
	}
	return uint64(v * mult), nil
}

type sizeError struct{ text string }

func (e *sizeError) Error() string { return "memlimit: not a size: " + strconv.Quote(e.text) }

// limitOwner keeps debug.SetMemoryLimit at the soft limit less the memory that is not Go's, when
// the user did not set GOMEMLIMIT. memrun sets GOMEMLIMIT itself as a hint and lists it in
// MEMRUN_HINTS: that one is ours to replace.
type limitOwner struct {
	mu       sync.Mutex
	own      bool
	original int64 // the limit in force at Init, restored by Shutdown
	soft     uint64
	set      int64 // what we set last (0: nothing yet)
}

func userSetGOMEMLIMIT() bool {
	if os.Getenv("GOMEMLIMIT") == "" {
		return false
	}
	for _, h := range strings.Split(os.Getenv("MEMRUN_HINTS"), ",") {
		if strings.TrimSpace(h) == "GOMEMLIMIT" {
			return false
		}
	}
	return true
}

func (o *limitOwner) start() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.own = !userSetGOMEMLIMIT()
	o.original = debug.SetMemoryLimit(-1)
	o.soft = None
}

// update re-derives the limit for soft limit soft (None: none, the limit goes back to the original).
func (o *limitOwner) update(soft uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.own {
		return
	}
	o.soft = soft
	o.applyLocked()
}

// refresh follows non-Go memory as it moves (called every second while attached).
func (o *limitOwner) refresh() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.own && o.soft != None {
		o.applyLocked()
	}
}

func (o *limitOwner) applyLocked() {
	if o.soft == None || o.soft > math.MaxInt64 {
		debug.SetMemoryLimit(o.original)
		o.set = 0
		return
	}
	held, res := goHeld(), rss()
	var other uint64
	if res > held {
		other = res - held // cgo, C libraries, thread stacks the runtime does not count
	}
	limit := o.soft - min64(other, o.soft)
	if floor := o.soft / 4; limit < floor {
		limit = floor // never starve the heap to nothing for a burst of foreign memory
	}
	// move only on a change worth it: every SetMemoryLimit makes the pacer recompute
	if o.set == 0 || absDiff(uint64(o.set), limit) >= 1<<20 {
		debug.SetMemoryLimit(int64(limit))
		o.set = int64(limit)
	}
}

func (o *limitOwner) stop() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.own && o.set != 0 {
		debug.SetMemoryLimit(o.original)
	}
	o.set = 0
}

func min64(a, b uint64) uint64 {
	if a < b {
		return a
	}
	return b
}

func absDiff(a, b uint64) uint64 {
	if a > b {
		return a - b
	}
	return b - a
}

// freeOS hands the heap's free pages back: a forced GC first (the heap shrinks only through one).
func freeOS() { debug.FreeOSMemory() }
