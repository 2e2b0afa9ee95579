package agent

import (
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// counted passes a child's output on and counts it, so that a move can
// wait until everything the process wrote on this device is in the grid.
type counted struct {
	w io.Writer
	// held: the process is not this device's yet (it is being moved
	// here); what tern says meanwhile goes to the agent's log, because
	// output at the new epoch would hide the old owner's last output.
	held atomic.Bool
	log  *slog.Logger
	mu   sync.Mutex
	n    uint64
	more chan struct{} // closed and replaced on every write
}

func newCounted(w io.Writer, log *slog.Logger) *counted {
	return &counted{w: w, log: log, more: make(chan struct{})}
}

func (c *counted) Write(b []byte) (int, error) {
	if c.held.Load() {
		c.log.Warn("output before the process was taken over", "text", string(b))
		return len(b), nil
	}
	n, err := c.w.Write(b)
	c.mu.Lock()
	c.n += uint64(n)
	close(c.more)
	c.more = make(chan struct{})
	c.mu.Unlock()
	return n, err
}

// waitFor waits until n bytes have passed, or timeout.
func (c *counted) waitFor(n uint64, timeout time.Duration) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		have, more := c.n, c.more
		c.mu.Unlock()
		if have >= n {
			return true
		}
		select {
		case <-more:
		case <-deadline.C:
			return false
		}
	}
}
