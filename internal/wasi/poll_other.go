//go:build !unix

package wasi

import (
	"os"
	"time"
)

// Without poll(2) a host file is treated as always readable; a read blocks.
func pollFile(*os.File, time.Duration) (ready, pollable bool) { return true, false }
