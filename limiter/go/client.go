package memlimit

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Level is memrun's pressure level, as its report and policies name them.
type Level int

const (
	OK Level = iota
	Moderate
	High
	Critical
)

func (l Level) String() string {
	switch l {
	case OK:
		return "ok"
	case Moderate:
		return "moderate"
	case High:
		return "high"
	case Critical:
		return "critical"
	}
	return fmt.Sprintf("Level(%d)", int(l))
}

// Func frees memory toward goal bytes (0: no figure, free what you can spare) and returns what it
// believes it freed. It runs in the client's goroutine, never concurrently with another callback.
type Func func(level Level, goal uint64) uint64

type named struct {
	name string
	fn   Func
}

type client struct {
	mu             sync.Mutex // registrations, mode, conn
	caches         []named
	collectors     []named
	levelHandlers  []func(Level)
	limitsHandlers []func(hard, soft uint64)

	mode      string
	conn      *net.UnixConn
	done      chan struct{}
	wg        sync.WaitGroup
	malformed int

	level    atomic.Int32
	shedding atomic.Bool
	hard     atomic.Uint64
	soft     atomic.Uint64

	owner limitOwner
}

var c = newClient()

func newClient() *client {
	cl := &client{mode: "none"}
	cl.hard.Store(None)
	cl.soft.Store(None)
	return cl
}

// Init attaches to the memrun that launched this process ($MEMRUN_LIMITER), else holds the program
// under $MEMLIMIT standalone, else does nothing (the level stays OK). Idempotent. An error names the
// endpoint that could not be reached; the program then runs standalone if MEMLIMIT is set (as
// libmemlimit does), else unmanaged.
func Init() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mode != "none" {
		return nil
	}
	var attachErr error
	if ep := os.Getenv("MEMRUN_LIMITER"); ep != "" {
		if attachErr = c.attachLocked(ep); attachErr == nil {
			return nil
		}
	}
	if v := os.Getenv("MEMLIMIT"); v != "" {
		size, err := ParseSize(v)
		if err != nil {
			return fmt.Errorf("memlimit: MEMLIMIT=%s: %w", v, err)
		}
		if size != 0 && size != None { // 0 and "max" mean no limit: nothing to hold
			c.startStandaloneLocked(size)
		}
	}
	return attachErr
}

func (cl *client) attachLocked(endpoint string) error {
	addr, err := endpointAddr(endpoint)
	if err != nil {
		return err
	}
	conn, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: addr, Net: "unixpacket"})
	if err != nil {
		return fmt.Errorf("memlimit: cannot attach to memrun at %s: %w", endpoint, err)
	}
	// as the C client: SHED always, TRIM with caches registered, COLLECT always (the Go runtime's
	// own collection is there as malloc_trim is there for C)
	caps := uint32(actShed | actCollect)
	if len(cl.caches) > 0 {
		caps |= actTrim
	}
	hello := &message{typ: msgHello, pid: uint32(os.Getpid()), caps: caps, comm: comm()}
	if _, err := conn.Write(hello.encode()); err != nil {
		conn.Close()
		return fmt.Errorf("memlimit: cannot attach to memrun at %s: %w", endpoint, err)
	}
	cl.conn, cl.mode, cl.done, cl.malformed = conn, "memrun", make(chan struct{}), 0
	debugf("attached to memrun at %s", endpoint)
	cl.owner.start(false)
	cl.wg.Add(2)
	go cl.receive(conn)
	go cl.every(cl.done, time.Second, cl.owner.refresh)
	return nil
}

// comm is the kernel's name for the process (PR_GET_NAME, as the C client sends), at most 15 bytes.
func comm() string {
	if b, err := os.ReadFile("/proc/self/comm"); err == nil {
		if s := strings.TrimSuffix(string(b), "\n"); s != "" {
			return s
		}
	}
	s := filepath.Base(os.Args[0])
	if len(s) > 15 {
		s = s[:15]
	}
	return s
}

// RegisterCache adds a cache trimmer, run in registration order on memrun's trim asks. Register
// before Init so memrun learns this process can trim.
func RegisterCache(name string, fn func(level Level, goal uint64) uint64) error {
	return c.register(&c.caches, "cache", name, fn)
}

// RegisterCollector adds a collector, run on collect before runtime.GC and debug.FreeOSMemory.
func RegisterCollector(name string, fn func(level Level, goal uint64) uint64) error {
	return c.register(&c.collectors, "collector", name, fn)
}

func (cl *client) register(to *[]named, what, name string, fn Func) error {
	if fn == nil {
		return errors.New("memlimit: nil " + what + " function")
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	*to = append(*to, named{name, fn})
	return nil
}

// OnLevel calls fn whenever the level or the shedding state changes.
func OnLevel(fn func(Level)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.levelHandlers = append(c.levelHandlers, fn)
}

// OnLimits calls fn whenever the limits change: when the process attaches, and each time memrun's
// limits change (memrunctl set, a give-up, a resume). None: no limit.
func OnLimits(fn func(hard, soft uint64)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.limitsHandlers = append(c.limitsHandlers, fn)
}

// CurrentLevel is the latest level memrun sent (OK when not attached). Lock-free.
func CurrentLevel() Level { return Level(c.level.Load()) }

// Shedding says whether memrun asks the program to refuse new work now. Lock-free.
func Shedding() bool { return c.shedding.Load() }

// Limits are memrun's hard and soft limits in bytes (None: none, or not known yet); standalone,
// the MEMLIMIT soft limit and no hard one.
func Limits() (hard, soft uint64) { return c.hard.Load(), c.soft.Load() }

// Mode is "memrun", "standalone" or "none".
func Mode() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mode
}

// Shutdown says goodbye to memrun, stops the client's goroutines, restores the Go runtime's memory
// limit found at Init and forgets the registrations.
func Shutdown() {
	c.mu.Lock()
	conn, done := c.conn, c.done
	if conn != nil {
		_ = conn.SetWriteDeadline(time.Now().Add(100 * time.Millisecond)) // never block on memrun
		_, _ = conn.Write((&message{typ: msgBye, reason: byeNormal}).encode())
		conn.Close()
	}
	if done != nil {
		close(done)
	}
	c.mu.Unlock()
	c.wg.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.owner.stop()
	c.caches, c.collectors, c.levelHandlers, c.limitsHandlers = nil, nil, nil, nil
	c.mode, c.conn, c.done, c.malformed = "none", nil, nil, 0
	c.level.Store(int32(OK))
	c.shedding.Store(false)
	c.hard.Store(None)
	c.soft.Store(None)
}

// --- the connection ---------------------------------------------------------------------------

// every runs fn each period until done is closed: the limit's refresh, the standalone sampler.
func (cl *client) every(done chan struct{}, period time.Duration, fn func()) {
	defer cl.wg.Done()
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			fn()
		}
	}
}

type work struct {
	have, reply         bool
	level, actions, seq uint32
	goal                uint64
	shed, limitsChanged bool
}

// note keeps the newest level and shedding; an ask overtaken by a LEVEL that asks nothing is still
// answered under its own seq: memrun waits for that answer before it asks this process again.
func (w *work) note(level, actions uint32, goal uint64, seq uint32, reply bool) {
	const ask = actTrim | actCollect
	shed := actions&actShed != 0
	if w.have && w.reply && reply && actions&ask == 0 && w.actions&ask != 0 {
		w.level, w.shed = level, shed
		return
	}
	lc := w.limitsChanged
	*w = work{have: true, reply: reply, level: level, actions: actions, goal: goal, seq: seq, shed: shed, limitsChanged: lc}
}

func (cl *client) receive(conn *net.UnixConn) {
	defer cl.wg.Done()
	buf := make([]byte, 2*msgSize) // larger than a message: a long one shows as such
	resets := 0
	for {
		n, err := conn.Read(buf)
		if err != nil {
			if errors.Is(err, syscall.ECONNRESET) && resets == 0 {
				resets++
				continue // once, when memrun closed with our RESULTs unread; its BYE follows
			}
			cl.lost(conn, err.Error())
			return
		}
		if n == 0 {
			cl.lost(conn, "end of file")
			return
		}
		var w work
		if !cl.take(conn, buf[:n], &w) {
			return
		}
		// drain what else arrived already, so the newest state wins
		for more := true; more; {
			_ = conn.SetReadDeadline(time.Now())
			n, err = conn.Read(buf)
			_ = conn.SetReadDeadline(time.Time{})
			if err != nil || n == 0 {
				more = false
				if err != nil && !isTimeout(err) && !errors.Is(err, syscall.ECONNRESET) {
					cl.act(conn, &w)
					cl.lost(conn, err.Error())
					return
				}
				break
			}
			if !cl.take(conn, buf[:n], &w) {
				return
			}
		}
		cl.act(conn, &w)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// take decodes one datagram into w. false: the connection is over.
func (cl *client) take(conn *net.UnixConn, b []byte, w *work) bool {
	m, err := decode(b)
	if err != nil {
		var ve *versionError
		if errors.As(err, &ve) && ve.typ == msgBye {
			cl.lost(conn, fmt.Sprintf("memrun speaks protocol version %d", ve.version))
			return false
		}
		cl.malformed++
		debugf("dropped a malformed message from memrun (%d bytes): %v", len(b), err)
		if cl.malformed >= maxMalformed {
			cl.lost(conn, "too many malformed messages")
			return false
		}
		return true
	}
	switch m.typ {
	case msgWelcome:
		if cl.hard.Load() != m.limit || cl.soft.Load() != m.soft {
			cl.hard.Store(m.limit)
			cl.soft.Store(m.soft)
			w.limitsChanged = true
		}
		if m.seq != 0 { // the first WELCOME: the current state (seq 0 later: new limits only)
			w.note(m.level, m.actions&actShed, m.goal, m.seq, false)
		}
	case msgLevel:
		w.note(m.level, m.actions, m.goal, m.seq, true)
	case msgBye:
		cl.lost(conn, "memrun said goodbye: "+byeNames[m.reason])
		return false
	}
	return true
}

func (cl *client) lost(conn *net.UnixConn, why string) {
	cl.mu.Lock()
	if cl.conn == conn {
		conn.Close()
		cl.conn, cl.mode = nil, "none"
	}
	cl.mu.Unlock()
	debugf("memrun connection closed: %s", why)
	cl.apply(OK, false)
}

func (cl *client) act(conn *net.UnixConn, w *work) {
	if w.limitsChanged {
		hard, soft := cl.hard.Load(), cl.soft.Load()
		cl.owner.update(soft)
		for _, fn := range cl.handlers().limits {
			fn(hard, soft)
		}
	}
	if !w.have {
		return
	}
	cl.apply(Level(w.level), w.shed)
	for _, r := range cl.runActions(Level(w.level), w.actions, w.goal) {
		if !w.reply {
			continue
		}
		r.typ, r.seq = msgResult, w.seq
		_ = conn.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		_, _ = conn.Write(r.encode()) // memrun not reading: the protocol lets a RESULT be dropped
		_ = conn.SetWriteDeadline(time.Time{})
	}
}

type handlerSet struct {
	caches, collectors []named
	level              []func(Level)
	limits             []func(hard, soft uint64)
}

func (cl *client) handlers() handlerSet {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return handlerSet{cl.caches, cl.collectors, cl.levelHandlers, cl.limitsHandlers}
}

func (cl *client) apply(level Level, shed bool) {
	old, oldShed := Level(cl.level.Swap(int32(level))), cl.shedding.Swap(shed)
	if old == level && oldShed == shed {
		return
	}
	for _, fn := range cl.handlers().level {
		fn(level)
	}
}

// runActions answers one ask: one RESULT per action, freed measured from the runtime's accounting.
func (cl *client) runActions(level Level, actions uint32, goal uint64) []*message {
	var out []*message
	h := cl.handlers()
	if actions&actTrim != 0 {
		out = append(out, measured(actTrim, h.caches, level, goal, false))
	}
	if actions&actCollect != 0 {
		out = append(out, measured(actCollect, h.collectors, level, goal, true))
	}
	if actions&actShed != 0 {
		out = append(out, &message{action: actShed, callbacks: uint32(len(h.level))})
	}
	return out
}

// measured runs callbacks toward goal (in order, each with what remains of it; goal 0: all of them,
// free what you can), then gives the freed heap back to the OS, and reports what went back as the
// runtime measures it, not what the callbacks claim: a cache that drops references to memory still
// reachable elsewhere frees nothing, and memrun must learn that (FUTILE) to escalate instead of
// asking again. Two measures, the larger reported:
//   - the memory the runtime holds from the OS (total less released), before and after;
//   - the heap bytes the collection forced here freed (/gc/heap/frees), only when one was forced.
//
// The first alone reads 0 in a program that keeps allocating: its goroutines take the freed (and
// just released) pages back at once, so the drop is netted against them -- yet those allocations
// did not grow the sandbox, which is what the freed memory was for.
func measured(action uint32, fns []named, level Level, goal uint64, collect bool) *message {
	t0 := time.Now()
	held0, frees0 := goHeld(), gcFrees()
	var claimed uint64
	ran := 0
	for _, f := range fns {
		if goal != 0 && claimed >= goal {
			break
		}
		ask := uint64(0)
		if goal != 0 {
			ask = goal - claimed
		}
		claimed += f.fn(level, ask)
		ran++
	}
	// The Go heap shrinks only through a collection: FreeOSMemory forces one (runtime.GC) and then
	// returns the free pages to the OS. A trim whose caches had nothing skips it, so an ask that
	// cannot be met does not cost a collection.
	forced := collect || claimed > 0
	if forced {
		debug.FreeOSMemory()
	}
	r := &message{action: action, callbacks: uint32(ran), usec: uint64(time.Since(t0).Microseconds())}
	if held1 := goHeld(); held0 > held1 {
		r.freed = held0 - held1
	}
	if frees1 := gcFrees(); forced && frees1 > frees0 && frees1-frees0 > r.freed {
		r.freed = frees1 - frees0
	}
	switch {
	case len(fns) == 0 && !collect:
		r.flags = resultNoHandler
	case r.freed == 0:
		r.flags = resultFutile
	}
	if collect {
		r.callbacks++ // the runtime's own collection counts as one
	}
	debugf("%s at %s, goal %d: %d callbacks, %d bytes claimed, %d measured, %d us",
		actionName(action), level, goal, r.callbacks, claimed, r.freed, r.usec)
	return r
}

func actionName(a uint32) string {
	switch a {
	case actTrim:
		return "trim"
	case actCollect:
		return "collect"
	case actShed:
		return "shed"
	}
	return "?"
}

// debugf logs to stderr when MEMLIMIT_DEBUG is set (not "0"), as libmemlimit does.
func debugf(format string, args ...interface{}) {
	if d := os.Getenv("MEMLIMIT_DEBUG"); d != "" && d != "0" {
		fmt.Fprintf(os.Stderr, "memlimit[%d]: %s\n", os.Getpid(), fmt.Sprintf(format, args...))
	}
}
