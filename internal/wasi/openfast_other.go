//go:build !linux

package wasi

import "os"

// beneath is Linux's openat2 fast path; elsewhere os.Root does everything.
type beneath struct{}

func newBeneath(*os.Root) *beneath { return nil }

func (*beneath) close() error { return nil }

func (*beneath) open(string, int, os.FileMode, string) (*os.File, bool, bool, error) {
	return nil, false, false, nil
}
