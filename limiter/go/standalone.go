package memlimit

import (
	"fmt"
	"time"
)

// standalone holds the program under MEMLIMIT without memrun: the simplest form of memrun's law
// (limiter/memlimit_law.c, which memrun's governor runs in full). The Go runtime's limit is set to
// the soft limit (unless the user set GOMEMLIMIT), and every 100 ms the memory the runtime holds is
// compared with the setpoint, soft less max(3%, 1 MiB): above it, the caches are asked for the
// excess (High; Critical above the soft limit itself).

const (
	saPeriod      = 100 * time.Millisecond
	headroomPPM   = 30000
	headroomFloor = 1 << 20
)

func (cl *client) startStandaloneLocked(soft uint64) {
	cl.mode, cl.done = "standalone", make(chan struct{})
	cl.soft.Store(soft)
	cl.owner.start()
	cl.owner.update(soft)
	cl.wg.Add(1)
	go cl.standaloneLoop(cl.done)
}

// SetLimit changes the standalone soft limit, as MEMLIMIT= sets it (0: stop holding); it starts
// the standalone mode when nothing runs yet. Under memrun its limits are in force: an error.
func SetLimit(soft uint64) error {
	c.mu.Lock()
	switch c.mode {
	case "memrun":
		c.mu.Unlock()
		return fmt.Errorf("memlimit: attached to memrun: its limits are in force")
	case "none":
		if soft != 0 {
			c.startStandaloneLocked(soft)
		}
	default:
		if soft == 0 {
			soft = None
		}
		c.soft.Store(soft)
		c.owner.update(soft)
	}
	c.mu.Unlock()
	hard, s := Limits()
	for _, fn := range c.handlers().limits {
		fn(hard, s)
	}
	return nil
}

func (cl *client) standaloneLoop(done chan struct{}) {
	defer cl.wg.Done()
	t := time.NewTicker(saPeriod)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		soft := cl.soft.Load()
		if soft == None {
			cl.apply(OK, false)
			continue
		}
		head := soft / 1000000 * headroomPPM
		if head < headroomFloor {
			head = headroomFloor
		}
		setpoint := soft - min64(head, soft/4)
		usage := goHeld()
		if r := rss(); r > usage {
			usage = r
		}
		if usage <= setpoint {
			cl.apply(OK, false)
			continue
		}
		level := High
		if usage >= soft {
			level = Critical
		}
		cl.apply(level, false)
		if r := cl.runActions(level, actTrim, usage-setpoint); len(r) > 0 && r[0].freed == 0 {
			cl.runActions(level, actCollect, usage-setpoint)
		}
	}
}
