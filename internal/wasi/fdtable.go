package wasi

import (
	"errors"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/tetratelabs/wazero/api"
)

type fdKind uint8

const (
	kindStdin fdKind = iota + 1
	kindStdout
	kindStderr
	kindFile
	kindDir
)

// fileDesc is one entry of the descriptor table. Everything but file is
// plain data that Snapshot records; file is reopened from preopen+path.
type fileDesc struct {
	kind                         fdKind
	preopen                      int    // index into System.pre; -1 for stdio
	isPreopen                    bool   // the preopen's own descriptor (has a prestat)
	path                         string // slash path relative to the preopen root
	file                         *os.File
	access                       int    // os.O_RDONLY, os.O_WRONLY or os.O_RDWR
	fdflags                      uint16 // append, nonblock, sync flags as the guest set them
	rightsBase, rightsInheriting uint64
	dirents                      []dirent // fd_readdir listing, read afresh at cookie 0
}

type dirent struct {
	name  string
	ino   uint64
	ftype uint8
}

func (f *fileDesc) close() error {
	if f.file == nil {
		return nil
	}
	err := f.file.Close()
	f.file = nil
	return err
}

// lookup returns the descriptor fd, or EBADF.
func (s *System) lookup(fd uint32) (*fileDesc, Errno) {
	if uint64(fd) >= uint64(len(s.fds)) || s.fds[fd] == nil {
		return nil, ErrnoBadf
	}
	return s.fds[fd], ErrnoSuccess
}

// lookupDir returns the directory descriptor fd, EBADF or ENOTDIR.
func (s *System) lookupDir(fd uint32) (*fileDesc, Errno) {
	f, e := s.lookup(fd)
	if e != ErrnoSuccess {
		return nil, e
	}
	if f.kind != kindDir {
		return nil, ErrnoNotdir
	}
	return f, ErrnoSuccess
}

// maxFDs bounds the table so a guest cannot exhaust host descriptors.
const maxFDs = 1 << 16

// install puts f at the lowest free descriptor number.
func (s *System) install(f *fileDesc) (uint32, Errno) {
	for i, e := range s.fds {
		if e == nil {
			s.fds[i] = f
			return uint32(i), ErrnoSuccess
		}
	}
	if len(s.fds) >= maxFDs {
		return 0, ErrnoMfile
	}
	s.fds = append(s.fds, f)
	return uint32(len(s.fds) - 1), ErrnoSuccess
}

// rightsErrno is what a call needing rights need gets on a descriptor that
// holds have: EBADF when reading or writing is missing, as read(2) and
// write(2) report a descriptor not open for it; ENOTCAPABLE otherwise.
func rightsErrno(have, need uint64) Errno {
	missing := need &^ have
	switch {
	case missing == 0:
		return ErrnoSuccess
	case missing&(rightFdRead|rightFdWrite) != 0:
		return ErrnoBadf
	}
	return ErrnoNotcapable
}

// lookupRights returns descriptor fd if it holds every right in need.
func (s *System) lookupRights(fd uint32, need uint64) (*fileDesc, Errno) {
	f, e := s.lookup(fd)
	if e != ErrnoSuccess {
		return nil, e
	}
	if e := rightsErrno(f.rightsBase, need); e != ErrnoSuccess {
		return nil, e
	}
	return f, ErrnoSuccess
}

// resolve turns (dirfd, guest path) into a preopen and a path relative to
// it, checking that dirfd is a directory holding the rights in need.
func (s *System) resolve(mem api.Memory, dirfd, ptr, n uint32, need uint64) (*preopen, string, Errno) {
	b, ok := mem.Read(ptr, n)
	if !ok {
		return nil, "", ErrnoFault
	}
	d, e := s.lookupDir(dirfd)
	if e != ErrnoSuccess {
		return nil, "", e
	}
	if e := rightsErrno(d.rightsBase, need); e != ErrnoSuccess {
		return nil, "", e
	}
	p, e := cleanGuestPath(d.path, string(b))
	if e != ErrnoSuccess {
		return nil, "", e
	}
	return s.pre[d.preopen], p, ErrnoSuccess
}

// dirFile returns the open host directory behind a directory descriptor.
func (s *System) dirFile(f *fileDesc) (*os.File, error) {
	if f.file == nil {
		file, err := s.pre[f.preopen].root.Open(f.path)
		if err != nil {
			return nil, err
		}
		f.file = file
	}
	return f.file, nil
}

// readDirents lists a directory the way fd_readdir presents it: "." and
// "..", then every entry sorted by name, so a cookie means the same entry on
// every host whatever order its file system returns.
func (s *System) readDirents(f *fileDesc) ([]dirent, error) {
	pre := s.pre[f.preopen]
	dir, err := pre.root.Open(f.path)
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	names, err := dir.Readdirnames(-1)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	sort.Strings(names)
	out := make([]dirent, 0, len(names)+2)
	self, err := dir.Stat()
	if err != nil {
		return nil, err
	}
	out = append(out, dirent{name: ".", ino: inode(self), ftype: filetypeDirectory})
	parentIno := inode(self)
	if f.path != "." {
		if st, err := pre.root.Stat(f.path + "/.."); err == nil {
			parentIno = inode(st)
		}
	}
	out = append(out, dirent{name: "..", ino: parentIno, ftype: filetypeDirectory})
	for _, n := range names {
		out = append(out, dirent{name: n})
	}
	if statEntries(dir, out[2:]) {
		return out, nil
	}
	for i := 2; i < len(out); i++ {
		d := &out[i]
		if st, err := pre.root.Lstat(joinRel(f.path, d.name)); err == nil {
			d.ino = inode(st)
			d.ftype = filetype(st.Mode())
		}
	}
	return out, nil
}

// renamed keeps the recorded paths of open descriptors true after a
// rename, so that a restore reopens the same files.
func (s *System) renamed(pre *preopen, oldp, newp string) {
	for _, f := range s.fds {
		if f == nil || f.preopen < 0 || s.pre[f.preopen] != pre {
			continue
		}
		switch {
		case f.path == oldp:
			f.path = newp
		case strings.HasPrefix(f.path, oldp+"/"):
			f.path = newp + f.path[len(oldp):]
		}
	}
}

func joinRel(dir, name string) string {
	if dir == "." {
		return name
	}
	return dir + "/" + name
}

func filetype(m os.FileMode) uint8 {
	switch {
	case m.IsRegular():
		return filetypeRegularFile
	case m.IsDir():
		return filetypeDirectory
	case m&os.ModeSymlink != 0:
		return filetypeSymbolicLink
	case m&os.ModeCharDevice != 0:
		return filetypeCharacterDevice
	case m&os.ModeDevice != 0:
		return filetypeBlockDevice
	case m&os.ModeSocket != 0:
		return filetypeSocketStream
	}
	return filetypeUnknown
}
