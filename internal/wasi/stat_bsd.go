//go:build darwin || freebsd || netbsd

package wasi

import (
	"os"
	"syscall"
)

func statFields(fi os.FileInfo) (dev, ino, nlink uint64, atim, mtim, ctim int64, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, 0, 0, 0, 0, false
	}
	return uint64(st.Dev), uint64(st.Ino), uint64(st.Nlink), st.Atimespec.Nano(), st.Mtimespec.Nano(), st.Ctimespec.Nano(), true
}
