//go:build !linux

package main

import "time"

// threadCPU is not measured here: section 1 falls back to wall-clock time.
func threadCPU() (time.Duration, bool) { return 0, false }
