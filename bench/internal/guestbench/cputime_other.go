//go:build !linux

package guestbench

import "time"

// threadCPU is not measured here: timings fall back to wall-clock time.
func threadCPU() (time.Duration, bool) { return 0, false }
