package memlimit

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeMemrun: memrun's end of the protocol on a real SOCK_SEQPACKET socket (abstract address).
type fakeMemrun struct {
	t    *testing.T
	ln   *net.UnixListener
	conn *net.UnixConn
}

func newFake(t *testing.T) *fakeMemrun {
	name := fmt.Sprintf("@memlimit-gotest-%d-%d", os.Getpid(), time.Now().UnixNano())
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: name, Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("MEMRUN_LIMITER", name)
	t.Setenv("MEMLIMIT", "")
	f := &fakeMemrun{t: t, ln: ln}
	t.Cleanup(func() {
		Shutdown()
		if f.conn != nil {
			f.conn.Close()
		}
		ln.Close()
	})
	return f
}

func (f *fakeMemrun) accept() *message {
	f.ln.SetDeadline(time.Now().Add(10 * time.Second))
	conn, err := f.ln.AcceptUnix()
	if err != nil {
		f.t.Fatal(err)
	}
	f.conn = conn
	return f.recv()
}

func (f *fakeMemrun) send(m *message) {
	if _, err := f.conn.Write(m.encode()); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fakeMemrun) recv() *message {
	f.t.Helper()
	buf := make([]byte, 128)
	f.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := f.conn.Read(buf)
	if err != nil {
		f.t.Fatal(err)
	}
	m, err := decode(buf[:n])
	if err != nil {
		f.t.Fatal(err)
	}
	return m
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// attach: Init, HELLO checked, WELCOME sent with 256M/230M.
func attach(t *testing.T, f *fakeMemrun, wantCaps uint32) {
	t.Helper()
	if err := Init(); err != nil {
		t.Fatal(err)
	}
	h := f.accept()
	if h.typ != msgHello || h.pid != uint32(os.Getpid()) || h.caps != wantCaps || h.seq != 0 || h.flags != 0 ||
		h.comm == "" || !strings.HasPrefix(filepath.Base(os.Args[0]), h.comm) {
		t.Fatalf("HELLO %+v", *h)
	}
	f.send(&message{typ: msgWelcome, limit: 256 << 20, soft: 230 << 20, clientID: 7})
	waitFor(t, "WELCOME's limits", func() bool { h, s := Limits(); return h == 256<<20 && s == 230<<20 })
	if Mode() != "memrun" {
		t.Fatalf("mode %s", Mode())
	}
}

func TestAsksAnswered(t *testing.T) {
	f := newFake(t)
	var mu sync.Mutex
	var goals []uint64
	var levels []Level
	RegisterCache("test", func(l Level, goal uint64) uint64 {
		mu.Lock()
		goals = append(goals, goal)
		mu.Unlock()
		return 0
	})
	OnLevel(func(l Level) { mu.Lock(); levels = append(levels, l); mu.Unlock() })
	attach(t, f, actTrim|actCollect|actShed)
	f.send(&message{typ: msgLevel, seq: 5, level: 2, actions: actTrim | actCollect, goal: 1 << 20, usage: 1})
	r1, r2 := f.recv(), f.recv()
	if r1.typ != msgResult || r1.seq != 5 || r1.action != actTrim || r1.callbacks != 1 {
		t.Fatalf("trim RESULT %+v", *r1)
	}
	if r1.freed == 0 && r1.flags != resultFutile {
		t.Fatalf("a trim that freed nothing must say FUTILE: %+v", *r1)
	}
	if r2.seq != 5 || r2.action != actCollect || r2.flags&resultNoHandler != 0 {
		t.Fatalf("collect RESULT %+v", *r2)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(goals) != 1 || goals[0] != 1<<20 {
		t.Fatalf("cache asked %v, want [1048576]", goals)
	}
	if CurrentLevel() != High || len(levels) != 1 || levels[0] != High || Shedding() {
		t.Fatalf("level %v, handlers saw %v, shedding %v", CurrentLevel(), levels, Shedding())
	}
}

func TestShedLiveLimitsAndHandler(t *testing.T) {
	f := newFake(t)
	var mu sync.Mutex
	var seen [][2]uint64
	OnLimits(func(h, s uint64) { mu.Lock(); seen = append(seen, [2]uint64{h, s}); mu.Unlock() })
	attach(t, f, actCollect|actShed)
	srv := httptest.NewServer(Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })))
	defer srv.Close()

	f.send(&message{typ: msgLevel, seq: 1, level: 3, actions: actShed})
	r := f.recv()
	if r.seq != 1 || r.action != actShed || r.freed != 0 || r.flags != 0 {
		t.Fatalf("shed RESULT %+v", *r)
	}
	waitFor(t, "shedding", Shedding)
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("while shedding: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// a later WELCOME (seq 0): new limits, the level left alone
	f.send(&message{typ: msgWelcome, limit: 512 << 20, soft: 460 << 20, clientID: 7})
	waitFor(t, "new limits", func() bool { _, s := Limits(); return s == 460<<20 })
	mu.Lock()
	if len(seen) != 2 || seen[1] != [2]uint64{512 << 20, 460 << 20} {
		t.Fatalf("OnLimits saw %v", seen)
	}
	mu.Unlock()
	if !Shedding() || CurrentLevel() != Critical {
		t.Fatal("a limits WELCOME changed the level state")
	}
	f.send(&message{typ: msgLevel, seq: 2, level: 0})
	waitFor(t, "shedding to stop", func() bool { return !Shedding() })
	resp, err = http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("after shedding: %d", resp.StatusCode)
	}
}

func TestOwnsTheRuntimeLimit(t *testing.T) {
	orig := debug.SetMemoryLimit(-1)
	f := newFake(t)
	t.Setenv("GOMEMLIMIT", "241172480")
	t.Setenv("MEMRUN_HINTS", "GOMEMLIMIT") // memrun's hint: the client's to replace
	t.Setenv("MEMRUN_SOFT_LIMIT", "241172480")
	attach(t, f, actCollect|actShed)
	got := debug.SetMemoryLimit(-1)
	if got <= 0 || got > 230<<20 || got < (230<<20)/4 {
		t.Fatalf("runtime limit %d under soft %d", got, 230<<20)
	}
	f.send(&message{typ: msgWelcome, limit: 128 << 20, soft: 100 << 20})
	waitFor(t, "the runtime limit to follow", func() bool { return debug.SetMemoryLimit(-1) <= 100<<20 })
	Shutdown()
	if now := debug.SetMemoryLimit(-1); now != orig {
		t.Fatalf("Shutdown left the runtime limit at %d, want %d", now, orig)
	}
}

func TestGOMEMLIMITOwnership(t *testing.T) {
	for _, c := range []struct {
		gomemlimit, hints, soft string
		user                    bool
	}{
		{"", "", "", false},
		{"", "GOMEMLIMIT", "100", false},
		{"100", "GOMEMLIMIT", "100", false},   // memrun's hint
		{"100MiB", "", "", true},              // set before memrun: memrun kept it, no hint
		{"100MiB", "GOMEMLIMIT", "100", true}, // memrun ... -- env GOMEMLIMIT=100MiB prog
	} {
		t.Setenv("GOMEMLIMIT", c.gomemlimit)
		t.Setenv("MEMRUN_HINTS", c.hints)
		t.Setenv("MEMRUN_SOFT_LIMIT", c.soft)
		if got := userSetGOMEMLIMIT(); got != c.user {
			t.Errorf("%+v: user's = %v", c, got)
		}
	}
}

func TestUsersGOMEMLIMITKept(t *testing.T) {
	orig := debug.SetMemoryLimit(-1)
	f := newFake(t)
	t.Setenv("GOMEMLIMIT", "1GiB")
	t.Setenv("MEMRUN_HINTS", "")
	attach(t, f, actCollect|actShed)
	if got := debug.SetMemoryLimit(-1); got != orig {
		t.Fatalf("the user's limit was replaced: %d, want %d", got, orig)
	}
}

func TestMalformedThenBye(t *testing.T) {
	f := newFake(t)
	RegisterCache("c", func(Level, uint64) uint64 { return 0 })
	attach(t, f, actTrim|actCollect|actShed)
	garbage := make([]byte, msgSize)
	for i := range garbage {
		garbage[i] = 0xff
	}
	f.conn.Write(garbage)
	f.conn.Write((&message{typ: msgLevel, seq: 0, level: 1}).encode()) // seq 0: not a LEVEL
	f.send(&message{typ: msgLevel, seq: 3, level: 1, actions: actTrim})
	if r := f.recv(); r.seq != 3 || r.action != actTrim {
		t.Fatalf("RESULT %+v", *r)
	}
	f.send(&message{typ: msgBye, reason: byeNormal})
	waitFor(t, "the goodbye", func() bool { return Mode() == "none" })
	if CurrentLevel() != OK {
		t.Fatalf("level %v after BYE", CurrentLevel())
	}
}

// Malformed messages of every kind are dropped and counted; the 16th closes the connection, as memrun
// does with a client.
func TestMalformedLimit(t *testing.T) {
	f := newFake(t)
	attach(t, f, actCollect|actShed)
	other := (&message{typ: msgLevel, seq: 1}).encode()
	le.PutUint16(other[4:], 2) // another version, not a BYE: malformed here
	long := append((&message{typ: msgLevel, seq: 1}).encode(), 0)
	bad := [][]byte{other[:8], other, long, {1, 2, 3}, make([]byte, msgSize)}
	for i := 0; i < maxMalformed-1; i++ {
		if _, err := f.conn.Write(bad[i%len(bad)]); err != nil {
			t.Fatal(err)
		}
	}
	f.send(&message{typ: msgLevel, seq: 9, level: 1, actions: actShed})
	if r := f.recv(); r.seq != 9 || r.action != actShed {
		t.Fatalf("after %d malformed: %+v", maxMalformed-1, *r)
	}
	if _, err := f.conn.Write(bad[0]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the client to hang up", func() bool { return Mode() == "none" })
	f.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := f.conn.Read(make([]byte, 128)); err == nil && n > 0 {
		t.Fatalf("read %d bytes after the client closed", n)
	}
}

func TestNoCacheNoHandler(t *testing.T) {
	f := newFake(t)
	attach(t, f, actCollect|actShed)
	f.send(&message{typ: msgLevel, seq: 1, level: 1, actions: actTrim})
	if r := f.recv(); r.action != actTrim || r.flags != resultNoHandler {
		t.Fatalf("RESULT %+v", *r)
	}
}

func TestUnreachableEndpointNamed(t *testing.T) {
	t.Setenv("MEMRUN_LIMITER", "@memlimit-nobody-listens")
	err := Init()
	if err == nil || !strings.Contains(err.Error(), "memlimit-nobody-listens") {
		t.Fatalf("Init: %v", err)
	}
	if Mode() != "none" {
		t.Fatalf("mode %s", Mode())
	}
}

func TestStandalone(t *testing.T) {
	t.Setenv("MEMRUN_LIMITER", "")
	t.Setenv("GOMEMLIMIT", "")
	var mu sync.Mutex
	var held [][]byte
	RegisterCache("list", func(l Level, goal uint64) uint64 {
		mu.Lock()
		defer mu.Unlock()
		var n uint64
		for len(held) > 0 && (n < goal || n == 0) {
			// nil first: held[1:] alone leaves the entry in the backing array, reachable, and the
			// runtime would hold it until append copies the array (a CI run timed out so)
			held[0] = nil
			held = held[1:]
			n += 1 << 20
		}
		return n
	})
	// the standalone loop watches the memory the Go runtime holds (not RSS: under -race the shadow
	// memory alone is hundreds of MiB)
	soft := goHeld() + 64<<20
	t.Setenv("MEMLIMIT", fmt.Sprint(soft))
	if err := Init(); err != nil {
		t.Fatal(err)
	}
	defer Shutdown()
	if Mode() != "standalone" {
		t.Fatalf("mode %s", Mode())
	}
	if h, s := Limits(); h != None || s != soft {
		t.Fatalf("limits %d %d", h, s)
	}
	if got := debug.SetMemoryLimit(-1); got != int64(soft) {
		t.Fatalf("runtime limit %d, want MEMLIMIT %d", got, soft)
	}
	for i := 0; i < 160; i++ { // 160 MiB through a 64 MiB budget
		b := make([]byte, 1<<20)
		for j := range b {
			b[j] = 1
		}
		mu.Lock()
		held = append(held, b)
		mu.Unlock()
		time.Sleep(3 * time.Millisecond)
	}
	mu.Lock()
	n := len(held)
	mu.Unlock()
	if n >= 160 || n == 0 {
		t.Fatalf("held %d of 160 entries: not trimmed", n)
	}
	waitFor(t, "the standalone hold", func() bool { return goHeld() <= soft })
}
