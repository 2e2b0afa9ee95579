//go:build !unix

package wasi

import (
	"os"
	"time"
)

type wakePipe struct{}

func newWakePipe() *wakePipe { return nil }
func (*wakePipe) set()       {}
func (*wakePipe) clear()     {}
func (*wakePipe) close()     {}

func pollFileWake(f *os.File, _ *wakePipe, timeout time.Duration) (ready, pollable bool) {
	return pollFile(f, timeout)
}
