package wasi

import (
	"bytes"
	"context"
	"io"
	"os"
	"time"

	"github.com/tetratelabs/wazero/api"
)

var timeNow = time.Now

// PollableReader is implemented by stdin sources that can tell whether a
// read would return at once (for example a message stream). A plain
// io.Reader that is not a host file is treated as always ready.
type PollableReader interface {
	io.Reader
	// WaitReadable blocks up to timeout (0: just check) until a Read
	// would not block, and reports whether it would.
	WaitReadable(timeout time.Duration) bool
}

// readable reports whether a read of r would not block, waiting up to
// timeout, and whether r could be asked at all.
func readable(r io.Reader, timeout time.Duration) (ready, pollable bool) {
	switch v := r.(type) {
	case PollableReader:
		return v.WaitReadable(timeout), true
	case *os.File:
		return pollFile(v, timeout)
	case eofReader:
		return true, true
	}
	return true, false
}

type subscription struct {
	userdata uint64
	tag      uint8
	errno    Errno
	// clock
	deadline time.Time
	// fd_read / fd_write
	fd     uint32
	ready  bool
	nbytes uint64
}

const (
	subscriptionSize = 48
	eventSize        = 32
)

func (s *System) pollOneoff(ctx context.Context, mod api.Module, st []uint64) Errno {
	in, out, n, neventsPtr := u32(st[0]), u32(st[1]), u32(st[2]), u32(st[3])
	if n == 0 {
		return ErrnoInval
	}
	mem := mod.Memory()
	raw, ok := mem.Read(in, n*subscriptionSize)
	if !ok || uint64(n)*subscriptionSize > 1<<32 {
		return ErrnoFault
	}
	if _, ok := mem.Read(out, n*eventSize); !ok {
		return ErrnoFault
	}
	subs := make([]subscription, n)
	var earliest time.Time
	var stdinWaiters bool
	// The same call made again after a capture interrupted it (the guest
	// resumed, or went on after a freeze) waits for what was left.
	again := s.pendingPoll
	s.pendingPoll = nil
	if again != nil && !bytes.Equal(again.Subscriptions, raw) {
		again = nil
	}
	mono := s.monotonic()
	deadlines := make([]uint64, n) // on the guest's monotonic clock
	for i := range subs {
		b := raw[i*subscriptionSize:]
		sub := &subs[i]
		sub.userdata = le.Uint64(b)
		sub.tag = b[8]
		switch sub.tag {
		case eventtypeClock:
			id, timeout, flags := le.Uint32(b[16:]), le.Uint64(b[24:]), le.Uint16(b[40:])
			cur, e := s.clockNow(id)
			if e != ErrnoSuccess {
				sub.errno, sub.ready = e, true
				continue
			}
			rel := timeout
			if flags&subclockAbstime != 0 {
				rel = 0
				if timeout > cur {
					rel = timeout - cur
				}
			}
			if rel > uint64(1<<62) {
				rel = 1 << 62
			}
			if again != nil && flags&subclockAbstime == 0 {
				rel = 0
				if d := again.Deadlines[i]; d > mono {
					rel = d - mono
				}
			}
			deadlines[i] = mono + rel
			// Host time taken after the guest clock was read, so an
			// absolute deadline is never reached early.
			sub.deadline = time.Now().Add(time.Duration(rel))
			if earliest.IsZero() || sub.deadline.Before(earliest) {
				earliest = sub.deadline
			}
		case eventtypeFdRead, eventtypeFdWrite:
			sub.fd = le.Uint32(b[16:])
			s.pollFd(sub)
			if !sub.ready && sub.tag == eventtypeFdRead {
				stdinWaiters = true
			}
		default:
			sub.errno, sub.ready = ErrnoInval, true
		}
	}
	if !anyReady(subs) {
		// Held while the guest waits, so that a capture taken now keeps it.
		s.pendingPoll = &PendingPoll{Subscriptions: bytes.Clone(raw), Deadlines: deadlines}
		res := s.wait(ctx, mod, "poll_oneoff", earliest, stdinWaiters)
		if res == waitAbandoned {
			return ErrnoSuccess
		}
		s.pendingPoll = nil
		cut := res == waitCut
		now := time.Now()
		for i := range subs {
			sub := &subs[i]
			switch sub.tag {
			case eventtypeClock:
				sub.ready = !sub.deadline.After(now) || cut
			case eventtypeFdRead:
				if !sub.ready && sub.errno == ErrnoSuccess {
					sub.ready, _ = readable(s.stdio.Stdin, 0)
				}
			}
		}
	}
	var count uint32
	for i := range subs {
		sub := &subs[i]
		if !sub.ready {
			continue
		}
		var ev [eventSize]byte
		le.PutUint64(ev[0:], sub.userdata)
		le.PutUint16(ev[8:], uint16(sub.errno))
		ev[10] = sub.tag
		if sub.tag != eventtypeClock {
			le.PutUint64(ev[16:], sub.nbytes)
		}
		mem.Write(out+count*eventSize, ev[:])
		count++
	}
	if !mem.WriteUint32Le(neventsPtr, count) {
		return ErrnoFault
	}
	return ErrnoSuccess
}

func anyReady(subs []subscription) bool {
	for i := range subs {
		if subs[i].ready {
			return true
		}
	}
	return false
}

// pollFd fills in whether an fd subscription is ready now.
func (s *System) pollFd(sub *subscription) {
	f, e := s.lookup(sub.fd)
	if e != ErrnoSuccess {
		sub.errno, sub.ready = e, true
		return
	}
	switch {
	case f.kind == kindStdin && sub.tag == eventtypeFdRead:
		sub.ready, _ = readable(s.stdio.Stdin, 0)
	case f.kind == kindFile:
		sub.ready = true
		if sub.tag == eventtypeFdRead {
			if fi, err := f.file.Stat(); err == nil {
				if pos, err := f.file.Seek(0, io.SeekCurrent); err == nil && fi.Size() > pos {
					sub.nbytes = uint64(fi.Size() - pos)
				}
			}
		}
	case (f.kind == kindStdout || f.kind == kindStderr) && sub.tag == eventtypeFdWrite:
		sub.ready = true
	default:
		sub.errno, sub.ready = ErrnoBadf, true
	}
}
