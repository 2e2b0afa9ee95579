//go:build !unix

package wasi

import "syscall"

// Elsewhere (Windows) host errors are mapped through the io/fs sentinels.
func hostErrno(syscall.Errno) (Errno, bool) { return 0, false }
