//go:build linux

package wasi

import (
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

func statFields(fi os.FileInfo) (dev, ino, nlink uint64, atim, mtim, ctim int64, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, 0, 0, 0, 0, false
	}
	return uint64(st.Dev), uint64(st.Ino), uint64(st.Nlink), st.Atim.Nano(), st.Mtim.Nano(), st.Ctim.Nano(), true
}

// setFileTimes sets the times of an open file, with nanosecond precision
// and "leave unchanged" (omit) per field.
func setFileTimes(f *os.File, atim, mtim int64, fst uint16) error {
	ts := []unix.Timespec{toTimespec(atim, fst, fstflagAtim, fstflagAtimNow), toTimespec(mtim, fst, fstflagMtim, fstflagMtimNow)}
	return unix.UtimesNanoAt(unix.AT_FDCWD, fmt.Sprintf("/proc/self/fd/%d", f.Fd()), ts, 0)
}

func toTimespec(v int64, fst, set, now uint16) unix.Timespec {
	switch {
	case fst&now != 0:
		return unix.Timespec{Nsec: unix.UTIME_NOW}
	case fst&set != 0:
		return unix.NsecToTimespec(v)
	}
	return unix.Timespec{Nsec: unix.UTIME_OMIT}
}

// setLinkTimes sets the times of the symbolic link rel itself.
func (p *preopen) setLinkTimes(rel string, atim, mtim int64, fst uint16) error {
	d, base, err := p.parent(rel)
	if err != nil {
		return err
	}
	defer d.Close()
	ts := []unix.Timespec{toTimespec(atim, fst, fstflagAtim, fstflagAtimNow), toTimespec(mtim, fst, fstflagMtim, fstflagMtimNow)}
	return unix.UtimesNanoAt(int(d.Fd()), base, ts, unix.AT_SYMLINK_NOFOLLOW)
}
