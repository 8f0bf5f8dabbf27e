package memlimit

import "time"

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
	cl.owner.start(true)
	cl.owner.update(soft)
	cl.wg.Add(1)
	go cl.every(cl.done, saPeriod, cl.standaloneTick)
}

// standaloneTick is one sample of the standalone mode.
func (cl *client) standaloneTick() {
	soft := cl.soft.Load()
	if soft == None {
		cl.apply(OK, false)
		return
	}
	head := soft / 1000000 * headroomPPM
	if head < headroomFloor {
		head = headroomFloor
	}
	setpoint := soft - min64(head, soft/4)
	usage := goHeld()
	if usage <= setpoint {
		cl.apply(OK, false)
		return
	}
	level := High
	if usage >= soft {
		level = Critical
	}
	cl.apply(level, false)
	cl.runActions(level, actTrim, usage-setpoint) // nobody to answer: the next sample tells
}
