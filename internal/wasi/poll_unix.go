//go:build unix

package wasi

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

func pollFile(f *os.File, timeout time.Duration) (ready, pollable bool) {
	rc, err := f.SyscallConn()
	if err != nil {
		return true, false
	}
	ms := int(timeout / time.Millisecond)
	if timeout > 0 && ms == 0 {
		ms = 1
	}
	var n int
	var perr error
	if err := rc.Control(func(fd uintptr) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		for {
			n, perr = unix.Poll(fds, ms)
			if perr != unix.EINTR {
				return
			}
		}
	}); err != nil || perr != nil {
		return true, false
	}
	return n > 0, true
}
