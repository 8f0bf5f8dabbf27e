// Package memlimit is the Go client of memrun's limiter: the protocol libmemlimit speaks
// (limiter/memlimit_proto.h, version 1), in Go's standard library alone.
//
// Under memrun the governor holds the program under its soft limit by asking it, as often as it
// takes, to trim caches (the functions given to RegisterCache, toward a goal in bytes), to collect
// (RegisterCollector's, then runtime.GC and debug.FreeOSMemory) or to shed load (Shedding, and
// Handler for HTTP servers). What each ask freed is measured from the Go runtime's own accounting
// (runtime/metrics: the memory it holds from the OS before and after, or the heap the forced
// collection freed when the program's own allocations took that back at once), not taken from the
// callbacks, and sent back so memrun knows when to escalate. Callbacks run one at a time in the
// client's goroutine; they must not call Shutdown. MEMLIMIT_DEBUG=1 logs each ask to stderr.
//
// The client also owns the Go runtime's memory limit while memrun runs the program:
// debug.SetMemoryLimit(soft limit - memory that is not Go's), re-derived whenever memrun's limits
// change (memrunctl set) and every second as non-Go memory moves -- unless the user set GOMEMLIMIT
// themselves (memrun's own hint is told apart by MEMRUN_HINTS). Shutdown restores the limit found
// at Init.
//
// Without memrun, MEMLIMIT=SIZE holds the program under SIZE in-process: the runtime's limit is set
// to SIZE and the caches are asked for the excess over SIZE less max(3%, 1 MiB), sampled every
// 100 ms. That is the simplest form of memrun's law (limiter/memlimit_law.c): memrun's governor is
// the full law (escalation, prediction, PSI, give-up), and a program that can run under memrun
// should.
//
//	memlimit.RegisterCache("sessions", func(l memlimit.Level, goal uint64) uint64 {
//		return sessions.evictBytes(goal) // bytes it dropped
//	})
//	if err := memlimit.Init(); err != nil {
//		log.Print(err) // memrun's endpoint unreachable: runs unmanaged
//	}
//	http.Handle("/", memlimit.Handler(mux)) // 503 + Retry-After while memrun asks to shed
package memlimit
