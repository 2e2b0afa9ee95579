//go:build unix

package wasi

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// wakePipe is a pipe that is readable while a suspension is requested, so
// poll(2) on stdin returns at once when one arrives.
type wakePipe struct{ r, w *os.File }

func newWakePipe() *wakePipe {
	r, w, err := os.Pipe()
	if err != nil {
		return nil
	}
	return &wakePipe{r: r, w: w}
}

func (p *wakePipe) set() { _, _ = p.w.Write([]byte{1}) }

func (p *wakePipe) clear() {
	rc, err := p.r.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Read(func(fd uintptr) bool {
		var b [16]byte
		for {
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			if n, _ := unix.Poll(fds, 0); n <= 0 {
				return true
			}
			if n, _ := unix.Read(int(fd), b[:]); n <= 0 {
				return true
			}
		}
	})
}

func (p *wakePipe) close() {
	p.r.Close()
	p.w.Close()
}

// pollFileWake waits up to timeout for f to be readable or the wake pipe
// to be set.
func pollFileWake(f *os.File, wake *wakePipe, timeout time.Duration) (ready, pollable bool) {
	if wake == nil {
		return pollFile(f, timeout)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return true, false
	}
	wc, err := wake.r.SyscallConn()
	if err != nil {
		return pollFile(f, timeout)
	}
	ms := int(timeout / time.Millisecond)
	if timeout > 0 && ms == 0 {
		ms = 1
	}
	var perr error
	var revents int16
	cerr := rc.Control(func(fd uintptr) {
		_ = wc.Control(func(wfd uintptr) {
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}, {Fd: int32(wfd), Events: unix.POLLIN}}
			for {
				_, perr = unix.Poll(fds, ms)
				if perr != unix.EINTR {
					break
				}
			}
			revents = fds[0].Revents
		})
	})
	if cerr != nil || perr != nil {
		return true, false
	}
	return revents != 0, true
}
