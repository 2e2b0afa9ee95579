//go:build linux

package wasi

import (
	"os"

	"golang.org/x/sys/unix"
)

// beneath opens files below a preopen with openat2, which confines the
// whole lookup in one system call.
//
// It answers only where its answer is certainly the one os.Root would
// give: success, or ENOENT, for a lookup that met no symbolic link (which
// RESOLVE_NO_SYMLINKS makes an error). os.Root resolves such a path
// component by component to the same file and fails on the same missing
// component. Everything else (links, which os.Root follows by its own
// rules; other errors, whose exact errno os.Root decides) goes to os.Root.
// Guest paths reaching here never contain "..", so RESOLVE_BENEATH only
// matters as a second guard.
type beneath struct {
	dir *os.File // the preopen directory, held open for fd
	fd  int
}

const resolveFast = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS

// newBeneath returns nil where openat2 is missing (Linux before 5.6) or
// filtered (some container sandboxes), leaving os.Root to do everything.
func newBeneath(root *os.Root) *beneath {
	dir, err := root.Open(".")
	if err != nil {
		return nil
	}
	b := &beneath{dir: dir, fd: int(dir.Fd())}
	how := unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: resolveFast}
	fd, err := unix.Openat2(b.fd, ".", &how)
	if err != nil {
		dir.Close()
		return nil
	}
	unix.Close(fd)
	return b
}

func (b *beneath) close() error { return b.dir.Close() }

// open returns handled=false when the caller must ask os.Root instead.
func (b *beneath) open(rel string, flag int, perm os.FileMode, name string) (f *os.File, isDir, handled bool, err error) {
	how := unix.OpenHow{Flags: uint64(flag | unix.O_CLOEXEC | unix.O_LARGEFILE), Resolve: resolveFast}
	if flag&os.O_CREATE != 0 {
		// openat2 refuses a mode without O_CREAT.
		how.Mode = uint64(perm.Perm())
	}
	fd, err := unix.Openat2(b.fd, rel, &how)
	if err == unix.ENOENT {
		return nil, false, true, &os.PathError{Op: "openat", Path: rel, Err: err}
	}
	if err != nil {
		return nil, false, false, nil
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		// The open may have created or truncated the file, so it must not
		// be retried through os.Root.
		unix.Close(fd)
		return nil, false, true, &os.PathError{Op: "fstat", Path: rel, Err: err}
	}
	// os.NewFile leaves a blocking descriptor out of Go's poller, where
	// os.Root would try to add it; tern reads and writes files with
	// blocking calls either way.
	return os.NewFile(uintptr(fd), name), st.Mode&unix.S_IFMT == unix.S_IFDIR, true, nil
}
