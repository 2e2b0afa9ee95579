//go:build linux || darwin || freebsd || netbsd

package wasi

import (
	"os"

	"golang.org/x/sys/unix"
)

// statEntries fills in each entry's inode and type with an lstat relative
// to dir, the open directory they were listed from: one system call an
// entry, where os.Root.Lstat would walk the directory's path from the
// preopen again for every one. It reports false if it could not run, and
// leaves an entry zero where its lstat fails, as readDirents always has.
// Limited to the hosts where statFields reports inodes, so that both
// agree.
func statEntries(dir *os.File, ents []dirent) bool {
	rc, err := dir.SyscallConn()
	if err != nil {
		return false
	}
	err = rc.Control(func(fd uintptr) {
		var st unix.Stat_t
		for i := range ents {
			var err error = unix.EINTR
			for err == unix.EINTR {
				err = unix.Fstatat(int(fd), ents[i].name, &st, unix.AT_SYMLINK_NOFOLLOW)
			}
			if err == nil {
				ents[i].ino = uint64(st.Ino)
				ents[i].ftype = filetype(modeType(uint32(st.Mode)))
			}
		}
	})
	return err == nil
}

// modeType is the os.FileMode type bits os.Lstat derives from st_mode.
func modeType(m uint32) os.FileMode {
	switch m & unix.S_IFMT {
	case unix.S_IFBLK:
		return os.ModeDevice
	case unix.S_IFCHR:
		return os.ModeDevice | os.ModeCharDevice
	case unix.S_IFDIR:
		return os.ModeDir
	case unix.S_IFIFO:
		return os.ModeNamedPipe
	case unix.S_IFLNK:
		return os.ModeSymlink
	case unix.S_IFSOCK:
		return os.ModeSocket
	}
	return 0
}
