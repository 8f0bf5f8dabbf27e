// gocache: a Go cache that keeps growing and gives back what memrun asks for, through the pure-Go
// client in limiter/go (memrun/memlimit). The Go twin of holdcache: an LRU (container/list) of
// -entry sized values (filled, so resident), one added every -every until -total went in; a
// registered trimmer evicts the oldest entries toward each ask's goal. -no-register registers
// nothing (the client still owns the runtime's limit); -no-client does not start the client at all
// (GOMEMLIMIT alone). Under a budget smaller than -total both are OOM-killed: a live cache is not
// garbage.
//
//	memrun --limit 128M -- gocache -every 2ms
//
// One line at the end:
//
//	gocache: added=600 held=N evicted=N trims=N level=L mode=M gomemlimit=N wall_ms=N gc_cpu_ms=N
//
// (wall_ms: the adding loop's wall time; gc_cpu_ms: the runtime's GC CPU over it, from
// GCCPUFraction; bench/clients.sh reads both)
//
// -http ADDR serves the cache instead, through memlimit.Handler (503 while memrun asks to shed):
// GET /get?k=N (a miss inserts an entry), GET /limit (the Go runtime's memory limit), GET /shed
// ("1" while shedding). -get URL prints one GET's status, Retry-After ("-": none) and body (the
// tests' client).
package main

import (
	"container/list"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"syscall"
	"time"

	"memrun/memlimit"
)

type lru struct {
	mu      sync.Mutex
	order   *list.List // front: newest
	byKey   map[int]*list.Element
	entry   int
	evicted int
	trims   int
}

type item struct {
	key   int
	value []byte
}

func newLRU(entry int) *lru {
	return &lru{order: list.New(), byKey: map[int]*list.Element{}, entry: entry}
}

func (c *lru) add(k int) {
	v := make([]byte, c.entry)
	for i := range v {
		v[i] = 0x5a // touched: resident
	}
	c.mu.Lock()
	c.byKey[k] = c.order.PushFront(&item{k, v})
	c.mu.Unlock()
}

func (c *lru) get(k int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byKey[k]; ok {
		c.order.MoveToFront(e)
		return true
	}
	return false
}

// trim evicts the oldest entries until goal bytes went (goal 0: half of them).
func (c *lru) trim(level memlimit.Level, goal uint64) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.trims++
	want := goal
	if want == 0 {
		want = uint64(c.order.Len()*c.entry) / 2
	}
	var freed uint64
	for freed < want && c.order.Len() > 0 {
		e := c.order.Back()
		c.order.Remove(e)
		delete(c.byKey, e.Value.(*item).key)
		freed += uint64(c.entry)
		c.evicted++
	}
	return freed
}

func main() {
	entry := flag.String("entry", "1M", "size of one entry")
	total := flag.String("total", "600M", "bytes to add in all")
	every := flag.Duration("every", 2*time.Millisecond, "time between entries")
	noRegister := flag.Bool("no-register", false, "register no cache: nothing to give back")
	noClient := flag.Bool("no-client", false, "do not start the client (GOMEMLIMIT alone)")
	httpAddr := flag.String("http", "", "serve the cache on ADDR instead")
	get := flag.String("get", "", "GET URL, print status and body, exit")
	flag.Parse()
	if *get != "" {
		os.Exit(fetch(*get))
	}
	es, err := memlimit.ParseSize(*entry)
	ts, err2 := memlimit.ParseSize(*total)
	if err != nil || err2 != nil || es == 0 {
		fmt.Fprintln(os.Stderr, "gocache: bad -entry or -total")
		os.Exit(2)
	}
	cache := newLRU(int(es))
	if !*noRegister {
		_ = memlimit.RegisterCache("gocache", cache.trim)
	}
	if !*noClient {
		if err := memlimit.Init(); err != nil {
			fmt.Fprintln(os.Stderr, "gocache:", err)
		}
	}
	if *httpAddr != "" {
		os.Exit(serve(*httpAddr, cache))
	}
	t0 := time.Now()
	var added uint64
	for k := 0; added < ts; k++ {
		cache.add(k)
		added += es
		if *every > 0 {
			time.Sleep(*every)
		}
	}
	cache.mu.Lock()
	held, evicted, trims := cache.order.Len()*cache.entry, cache.evicted, cache.trims
	cache.mu.Unlock()
	wall := time.Since(t0)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Printf("gocache: added=%d held=%d evicted=%d trims=%d level=%s mode=%s gomemlimit=%d wall_ms=%d gc_cpu_ms=%d\n",
		added>>20, held, evicted, trims, memlimit.CurrentLevel(), memlimit.Mode(), debug.SetMemoryLimit(-1),
		wall.Milliseconds(), int64(ms.GCCPUFraction*float64(wall.Milliseconds())))
	memlimit.Shutdown()
}

func serve(addr string, cache *lru) int {
	mux := http.NewServeMux()
	mux.HandleFunc("/get", func(w http.ResponseWriter, r *http.Request) {
		k, err := strconv.Atoi(r.URL.Query().Get("k"))
		if err != nil {
			http.Error(w, "bad k", http.StatusBadRequest)
			return
		}
		if !cache.get(k) {
			cache.add(k)
			fmt.Fprintln(w, "miss")
			return
		}
		fmt.Fprintln(w, "hit")
	})
	mux.HandleFunc("/limit", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, debug.SetMemoryLimit(-1))
	})
	mux.HandleFunc("/shed", func(w http.ResponseWriter, r *http.Request) {
		if memlimit.Shedding() {
			fmt.Fprintln(w, 1)
		} else {
			fmt.Fprintln(w, 0)
		}
	})
	// /limit and /shed answer while shedding too: only the cache is behind the wrapper
	top := http.NewServeMux()
	top.Handle("/get", memlimit.Handler(mux))
	top.Handle("/", mux)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gocache:", err)
		return 1
	}
	fmt.Println("gocache: listening on", ln.Addr())
	srv := &http.Server{Handler: top}
	go func() {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
		<-ch
		srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, "gocache:", err)
		return 1
	}
	memlimit.Shutdown()
	return 0
}

func fetch(url string) int {
	resp, err := http.Get(url)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gocache:", err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	ra := resp.Header.Get("Retry-After")
	if ra == "" {
		ra = "-"
	}
	fmt.Printf("%d %s %s", resp.StatusCode, ra, body)
	return 0
}
