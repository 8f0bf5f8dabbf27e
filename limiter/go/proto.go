package memlimit

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The wire protocol, version 1: limiter/memlimit_proto.h is the contract. 64-byte messages, host
// byte order (little-endian on every platform memrun supports), explicit widths.
const (
	protoVersion = 1
	protoMagic   = 0x4c4d454d
	msgSize      = 64
	maxMalformed = 16

	msgHello   = 1
	msgWelcome = 2
	msgLevel   = 3
	msgResult  = 4
	msgBye     = 5
	msgTypeMax = 6

	levelMax = 4

	actTrim    = 1 << 0
	actCollect = 1 << 1
	actShed    = 1 << 2
	actAll     = actTrim | actCollect | actShed

	helloPreload = 1 << 0
	helloForked  = 1 << 1
	helloAll     = helloPreload | helloForked

	resultFutile        = 1 << 0
	resultSkippedBudget = 1 << 1
	resultSkippedFutile = 1 << 2
	resultNoHandler     = 1 << 3
	resultAll           = 15

	byeNormal    = 0
	byeVersion   = 1
	byeMalformed = 2
	byeFull      = 3
	byeReasonMax = 4
)

// None is a limit that is not there (UINT64_MAX on the wire).
const None = ^uint64(0)

var byeNames = [...]string{"normal", "version", "malformed", "full"}

var le = binary.LittleEndian

// errMalformed: not a message of this protocol (memlimit_msg_check's -EINVAL).
var errMalformed = errors.New("memlimit: malformed message")

// versionError: a well-formed header of another protocol version (-EPROTO).
type versionError struct{ version, typ uint16 }

func (e *versionError) Error() string {
	return fmt.Sprintf("memlimit: protocol version %d, not %d", e.version, protoVersion)
}

// message is every message type's fields; each type uses its own (memlimit_proto.h).
type message struct {
	typ        uint16
	seq, flags uint32
	// HELLO
	pid, caps uint32
	comm      string
	// WELCOME (also level, actions, goal)
	limit, soft uint64
	clientID    uint32
	// LEVEL
	level, actions uint32
	goal, usage    uint64
	coalesced      uint32
	// RESULT
	action, callbacks uint32
	freed, usec       uint64
	// BYE
	reason uint32
}

func (m *message) encode() []byte {
	b := make([]byte, msgSize)
	le.PutUint32(b[0:], protoMagic)
	le.PutUint16(b[4:], protoVersion)
	le.PutUint16(b[6:], m.typ)
	le.PutUint32(b[8:], m.seq)
	le.PutUint32(b[12:], m.flags)
	p := b[16:]
	switch m.typ {
	case msgHello:
		le.PutUint32(p[0:], m.pid)
		le.PutUint32(p[4:], m.caps)
		comm := m.comm
		if len(comm) > 15 {
			comm = comm[:15] // the 16th byte stays NUL
		}
		copy(p[8:24], comm)
	case msgWelcome:
		le.PutUint64(p[0:], m.limit)
		le.PutUint64(p[8:], m.soft)
		le.PutUint32(p[16:], m.level)
		le.PutUint32(p[20:], m.actions)
		le.PutUint64(p[24:], m.goal)
		le.PutUint32(p[32:], m.clientID)
	case msgLevel:
		le.PutUint32(p[0:], m.level)
		le.PutUint32(p[4:], m.actions)
		le.PutUint64(p[8:], m.goal)
		le.PutUint64(p[16:], m.usage)
		le.PutUint32(p[24:], m.coalesced)
	case msgResult:
		le.PutUint32(p[0:], m.action)
		le.PutUint32(p[4:], m.callbacks)
		le.PutUint64(p[8:], m.freed)
		le.PutUint64(p[16:], m.usec)
	case msgBye:
		le.PutUint32(p[0:], m.reason)
	}
	return b
}

func oneAction(a uint32) bool { return a != 0 && a&^actAll == 0 && a&(a-1) == 0 }

// decode applies exactly memlimit_msg_check()'s rules to a whole datagram.
func decode(b []byte) (*message, error) {
	if len(b) < 8 || le.Uint32(b[0:]) != protoMagic {
		return nil, errMalformed
	}
	if v := le.Uint16(b[4:]); v != protoVersion {
		return nil, &versionError{version: v, typ: le.Uint16(b[6:])}
	}
	if len(b) != msgSize {
		return nil, errMalformed
	}
	m := &message{typ: le.Uint16(b[6:]), seq: le.Uint32(b[8:]), flags: le.Uint32(b[12:])}
	p := b[16:]
	ok := false
	switch m.typ {
	case msgHello:
		m.pid, m.caps = le.Uint32(p[0:]), le.Uint32(p[4:])
		comm := p[8:24]
		nul := -1
		for i, c := range comm {
			if c == 0 {
				nul = i
				break
			}
		}
		if nul >= 0 {
			m.comm = string(comm[:nul])
		}
		ok = nul >= 0 && m.seq == 0 && m.flags&^helloAll == 0 && m.caps&^actAll == 0
	case msgWelcome:
		m.limit, m.soft = le.Uint64(p[0:]), le.Uint64(p[8:])
		m.level, m.actions = le.Uint32(p[16:]), le.Uint32(p[20:])
		m.goal, m.clientID = le.Uint64(p[24:]), le.Uint32(p[32:])
		ok = m.flags == 0 && m.level < levelMax && m.actions&^actAll == 0
	case msgLevel:
		m.level, m.actions = le.Uint32(p[0:]), le.Uint32(p[4:])
		m.goal, m.usage, m.coalesced = le.Uint64(p[8:]), le.Uint64(p[16:]), le.Uint32(p[24:])
		ok = m.seq != 0 && m.flags == 0 && m.level < levelMax && m.actions&^actAll == 0
	case msgResult:
		m.action, m.callbacks = le.Uint32(p[0:]), le.Uint32(p[4:])
		m.freed, m.usec = le.Uint64(p[8:]), le.Uint64(p[16:])
		ok = m.flags&^resultAll == 0 && oneAction(m.action)
	case msgBye:
		m.reason = le.Uint32(p[0:])
		ok = m.seq == 0 && m.flags == 0 && m.reason < byeReasonMax
	}
	if !ok {
		return nil, errMalformed
	}
	return m, nil
}

// endpointAddr: '@name' is Linux's abstract namespace, which Go's net package spells the same way.
func endpointAddr(endpoint string) (string, error) {
	if endpoint == "" || endpoint == "@" {
		return "", errors.New("memlimit: empty limiter endpoint")
	}
	return endpoint, nil
}
