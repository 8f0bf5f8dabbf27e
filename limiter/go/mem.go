package memlimit

import (
	"bytes"
	"math"
	"math/big"
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

// gcFrees is the cumulative bytes of heap objects the collector has freed (/gc/heap/frees).
func gcFrees() uint64 {
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

// ParseSize reads a size as MEMLIMIT= takes it, with memrun's own parser's rules (config/size.c):
// a decimal number ("512", "1.5"), then nothing or b, k/kb/kib, m/mb/mib, g/gb/gib, t/tb/tib in any
// case, binary multiples, at most 2^63-1 bytes; "max" or "infinity" is None (no limit).
func ParseSize(text string) (uint64, error) {
	if strings.EqualFold(text, "max") || strings.EqualFold(text, "infinity") {
		return None, nil
	}
	i := 0
	for i < len(text) && text[i] >= '0' && text[i] <= '9' {
		i++
	}
	intPart, frac := text[:i], ""
	if intPart == "" || len(intPart) > 20 {
		return 0, &sizeError{text}
	}
	if i < len(text) && text[i] == '.' {
		j := i + 1
		for j < len(text) && text[j] >= '0' && text[j] <= '9' {
			j++
		}
		if frac = text[i+1 : j]; frac == "" {
			return 0, &sizeError{text}
		}
		i = j
	}
	if len(frac) > 18 { // the C parser keeps 18 fractional digits
		frac = frac[:18]
	}
	shift, ok := sizeUnits[strings.ToLower(text[i:])]
	if !ok {
		return 0, &sizeError{text}
	}
	// (int.frac << shift), truncated, exactly as the C parser's 128-bit arithmetic does
	v, _ := new(big.Int).SetString(intPart+frac, 10)
	v.Lsh(v, shift)
	v.Quo(v, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(len(frac))), nil))
	if !v.IsInt64() {
		return 0, &sizeError{text}
	}
	return v.Uint64(), nil
}

var sizeUnits = map[string]uint{"": 0, "b": 0, "k": 10, "kb": 10, "kib": 10, "m": 20, "mb": 20, "mib": 20,
	"g": 30, "gb": 30, "gib": 30, "t": 40, "tb": 40, "tib": 40}

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
	exact    bool  // standalone: the limit is MEMLIMIT itself, nothing subtracted
}

// userSetGOMEMLIMIT: GOMEMLIMIT is set and is not memrun's hint. memrun lists the variables it set
// in MEMRUN_HINTS, and sets GOMEMLIMIT to the soft limit in bytes; a value that differs from
// MEMRUN_SOFT_LIMIT was put there after memrun (memrun ... -- env GOMEMLIMIT=100MiB prog), by the
// user, even though MEMRUN_HINTS still names the variable.
func userSetGOMEMLIMIT() bool {
	v := os.Getenv("GOMEMLIMIT")
	if v == "" {
		return false
	}
	for _, h := range strings.Split(os.Getenv("MEMRUN_HINTS"), ",") {
		if strings.TrimSpace(h) == "GOMEMLIMIT" {
			return v != os.Getenv("MEMRUN_SOFT_LIMIT")
		}
	}
	return true
}

func (o *limitOwner) start(exact bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.own, o.exact = !userSetGOMEMLIMIT(), exact
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
	if o.exact {
		debug.SetMemoryLimit(int64(o.soft))
		o.set = int64(o.soft)
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
