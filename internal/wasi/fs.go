package wasi

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"strings"
	"time"

	"github.com/tetratelabs/wazero/api"
)

var le = binary.LittleEndian

func u32(v uint64) uint32 { return uint32(v) }

// iovecs calls fn for each guest buffer of an iovec array, stopping early
// when fn reports it is done.
func iovecs(mem api.Memory, iovs, n uint32, fn func([]byte) (done bool, e Errno)) Errno {
	raw, ok := mem.Read(iovs, n*8)
	if !ok || uint64(n)*8 > 1<<32 {
		return ErrnoFault
	}
	for i := uint32(0); i < n; i++ {
		ptr, l := le.Uint32(raw[i*8:]), le.Uint32(raw[i*8+4:])
		buf, ok := mem.Read(ptr, l)
		if !ok {
			return ErrnoFault
		}
		done, e := fn(buf)
		if e != ErrnoSuccess || done {
			return e
		}
	}
	return ErrnoSuccess
}

func (s *System) fdRead(ctx context.Context, mod api.Module, st []uint64) Errno {
	// What the descriptor is decides before its rights, so the errno is
	// read(2)'s: EISDIR for a directory, not EBADF for a missing right.
	f, e := s.lookup(u32(st[0]))
	if e != ErrnoSuccess {
		return e
	}
	switch f.kind {
	case kindDir:
		return ErrnoIsdir
	case kindStdout, kindStderr:
		return ErrnoBadf
	}
	if e := rightsErrno(f.rightsBase, rightFdRead); e != ErrnoSuccess {
		return e
	}
	mem := mod.Memory()
	var total uint32
	switch f.kind {
	case kindStdin:
		if ready, pollable := readable(s.stdio.Stdin, 0); pollable && !ready {
			if f.fdflags&fdflagNonblock != 0 {
				return ErrnoAgain
			}
			// Wait here rather than in read(2), so that a freeze finds
			// the guest waiting before anything was read.
			if s.wait(ctx, mod, "fd_read", time.Time{}, true) != waitDone {
				return ErrnoIntr
			}
		}
		// One read into the first non-empty buffer: a stream returns what
		// it has, and asking for more would block on data not yet there.
		e = iovecs(mem, u32(st[1]), u32(st[2]), func(b []byte) (bool, Errno) {
			if len(b) == 0 {
				return false, ErrnoSuccess
			}
			n, err := s.stdio.Stdin.Read(b)
			total += uint32(n)
			s.stdinRead += uint64(n)
			if err != nil && !errors.Is(err, io.EOF) && n == 0 {
				return true, toErrno(err)
			}
			return true, ErrnoSuccess
		})
	case kindFile:
		// One read a buffer, stopping at a short one: a regular file fills
		// every buffer until its end, and a FIFO or device in a preopen
		// returns what it has instead of blocking for more.
		e = iovecs(mem, u32(st[1]), u32(st[2]), func(b []byte) (bool, Errno) {
			n, err := f.file.Read(b)
			total += uint32(n)
			if err == io.EOF {
				return true, ErrnoSuccess
			}
			return err != nil || n < len(b), toErrno(err)
		})
	}
	if e != ErrnoSuccess {
		return e
	}
	if !mem.WriteUint32Le(u32(st[3]), total) {
		return ErrnoFault
	}
	return ErrnoSuccess
}

func (s *System) fdWrite(_ context.Context, mod api.Module, st []uint64) Errno {
	f, e := s.lookup(u32(st[0]))
	if e != ErrnoSuccess {
		return e
	}
	switch f.kind {
	case kindDir:
		return ErrnoIsdir
	case kindStdin:
		return ErrnoBadf
	}
	if e := rightsErrno(f.rightsBase, rightFdWrite); e != ErrnoSuccess {
		return e
	}
	var w io.Writer
	switch f.kind {
	case kindStdout:
		w = s.stdio.Stdout
	case kindStderr:
		w = s.stdio.Stderr
	case kindFile:
		if f.fdflags&fdflagAppend != 0 {
			if _, err := f.file.Seek(0, io.SeekEnd); err != nil {
				return toErrno(err)
			}
		}
		w = f.file
	}
	mem := mod.Memory()
	var total uint32
	e = iovecs(mem, u32(st[1]), u32(st[2]), func(b []byte) (bool, Errno) {
		if len(b) == 0 {
			return false, ErrnoSuccess
		}
		n, err := w.Write(b)
		total += uint32(n)
		return err != nil, toErrno(err)
	})
	if e != ErrnoSuccess && total == 0 {
		return e
	}
	if !mem.WriteUint32Le(u32(st[3]), total) {
		return ErrnoFault
	}
	return ErrnoSuccess
}

// fileOnly returns a regular-file descriptor holding the rights in need,
// or the errno POSIX gives for a positional operation on what fd is (which
// decides before rights, as on a host).
func (s *System) fileOnly(fd uint32, need uint64) (*fileDesc, Errno) {
	f, e := s.lookup(fd)
	if e != ErrnoSuccess {
		return nil, e
	}
	switch f.kind {
	case kindFile:
	case kindDir:
		return nil, ErrnoIsdir
	default:
		return nil, ErrnoSpipe
	}
	if e := rightsErrno(f.rightsBase, need); e != ErrnoSuccess {
		return nil, e
	}
	return f, ErrnoSuccess
}

func (s *System) fdPread(_ context.Context, mod api.Module, st []uint64) Errno {
	f, e := s.fileOnly(u32(st[0]), rightFdRead|rightFdSeek)
	if e != ErrnoSuccess {
		return e
	}
	off := int64(st[3])
	if off < 0 {
		return ErrnoInval
	}
	mem := mod.Memory()
	var total uint32
	e = iovecs(mem, u32(st[1]), u32(st[2]), func(b []byte) (bool, Errno) {
		n, err := f.file.ReadAt(b, off+int64(total))
		total += uint32(n)
		if err == io.EOF {
			return true, ErrnoSuccess
		}
		return err != nil, toErrno(err)
	})
	if e != ErrnoSuccess {
		return e
	}
	if !mem.WriteUint32Le(u32(st[4]), total) {
		return ErrnoFault
	}
	return ErrnoSuccess
}

func (s *System) fdPwrite(_ context.Context, mod api.Module, st []uint64) Errno {
	f, e := s.fileOnly(u32(st[0]), rightFdWrite|rightFdSeek)
	if e != ErrnoSuccess {
		return e
	}
	off := int64(st[3])
	if off < 0 {
		return ErrnoInval
	}
	mem := mod.Memory()
	var total uint32
	e = iovecs(mem, u32(st[1]), u32(st[2]), func(b []byte) (bool, Errno) {
		n, err := f.file.WriteAt(b, off+int64(total))
		total += uint32(n)
		return err != nil, toErrno(err)
	})
	if e != ErrnoSuccess {
		return e
	}
	if !mem.WriteUint32Le(u32(st[4]), total) {
		return ErrnoFault
	}
	return ErrnoSuccess
}

func (s *System) fdSeek(_ context.Context, mod api.Module, st []uint64) Errno {
	need := uint64(rightFdSeek)
	if st[1] == 0 && u32(st[2]) == whenceCur {
		need = rightFdTell
	}
	f, e := s.lookupRights(u32(st[0]), need)
	if e != ErrnoSuccess {
		return e
	}
	switch f.kind {
	case kindFile:
	case kindDir:
		return ErrnoBadf
	default:
		return ErrnoSpipe
	}
	whence := u32(st[2])
	if whence > whenceEnd {
		return ErrnoInval
	}
	pos, err := f.file.Seek(int64(st[1]), int(whence))
	if err != nil {
		return toErrno(err)
	}
	if !mod.Memory().WriteUint64Le(u32(st[3]), uint64(pos)) {
		return ErrnoFault
	}
	return ErrnoSuccess
}

func (s *System) fdTell(_ context.Context, mod api.Module, st []uint64) Errno {
	f, e := s.lookupRights(u32(st[0]), rightFdTell)
	if e != ErrnoSuccess {
		return e
	}
	switch f.kind {
	case kindFile:
	case kindDir:
		return ErrnoBadf
	default:
		return ErrnoSpipe
	}
	pos, err := f.file.Seek(0, io.SeekCurrent)
	if err != nil {
		return toErrno(err)
	}
	if !mod.Memory().WriteUint64Le(u32(st[1]), uint64(pos)) {
		return ErrnoFault
	}
	return ErrnoSuccess
}

func (s *System) fdClose(_ context.Context, _ api.Module, st []uint64) Errno {
	fd := u32(st[0])
	f, e := s.lookup(fd)
	if e != ErrnoSuccess {
		return e
	}
	s.fds[fd] = nil
	return toErrno(f.close())
}

func (s *System) fdRenumber(_ context.Context, _ api.Module, st []uint64) Errno {
	from, to := u32(st[0]), u32(st[1])
	f, e := s.lookup(from)
	if e != ErrnoSuccess {
		return e
	}
	old, e := s.lookup(to)
	if e != ErrnoSuccess {
		return e
	}
	if from == to {
		return ErrnoSuccess
	}
	_ = old.close()
	s.fds[to] = f
	s.fds[from] = nil
	return ErrnoSuccess
}

func (s *System) fdSync(_ context.Context, _ api.Module, st []uint64) Errno {
	return s.sync(u32(st[0]), rightFdSync)
}

func (s *System) fdDatasync(_ context.Context, _ api.Module, st []uint64) Errno {
	return s.sync(u32(st[0]), rightFdDatasync)
}

func (s *System) sync(fd uint32, need uint64) Errno {
	f, e := s.lookupRights(fd, need)
	if e != ErrnoSuccess {
		return e
	}
	switch f.kind {
	case kindFile:
		return toErrno(f.file.Sync())
	case kindDir:
		d, err := s.dirFile(f)
		if err != nil {
			return toErrno(err)
		}
		return toErrno(d.Sync())
	}
	return ErrnoInval
}

func (s *System) fdAdvise(_ context.Context, _ api.Module, st []uint64) Errno {
	f, e := s.lookupRights(u32(st[0]), rightFdAdvise)
	if e != ErrnoSuccess {
		return e
	}
	if u32(st[3]) > 5 {
		return ErrnoInval
	}
	switch f.kind {
	case kindFile:
		return ErrnoSuccess
	case kindDir:
		return ErrnoBadf
	}
	return ErrnoSpipe
}

func (s *System) fdAllocate(_ context.Context, _ api.Module, st []uint64) Errno {
	f, e := s.fileOnly(u32(st[0]), rightFdAllocate)
	if e != ErrnoSuccess {
		if e == ErrnoIsdir {
			return ErrnoBadf
		}
		return e
	}
	off, n := int64(st[1]), int64(st[2])
	if off < 0 || n <= 0 || off+n < off {
		return ErrnoInval
	}
	fi, err := f.file.Stat()
	if err != nil {
		return toErrno(err)
	}
	if fi.Size() < off+n {
		return toErrno(f.file.Truncate(off + n))
	}
	return ErrnoSuccess
}

func (s *System) fdFdstatGet(_ context.Context, mod api.Module, st []uint64) Errno {
	f, e := s.lookup(u32(st[0]))
	if e != ErrnoSuccess {
		return e
	}
	b, ok := mod.Memory().Read(u32(st[1]), 24)
	if !ok {
		return ErrnoFault
	}
	clear(b)
	b[0] = s.fdFiletype(f)
	le.PutUint16(b[2:], f.fdflags)
	le.PutUint64(b[8:], f.rightsBase)
	le.PutUint64(b[16:], f.rightsInheriting)
	return ErrnoSuccess
}

// fdFiletype reports what a descriptor is. Standard streams backed by a host
// file report that file's type; other streams look like a character device.
func (s *System) fdFiletype(f *fileDesc) uint8 {
	switch f.kind {
	case kindDir:
		return filetypeDirectory
	case kindFile:
		if fi, err := f.file.Stat(); err == nil {
			return filetype(fi.Mode())
		}
		return filetypeRegularFile
	}
	if hf, ok := s.stdioStream(f.kind).(*os.File); ok {
		if fi, err := hf.Stat(); err == nil {
			return filetype(fi.Mode())
		}
	}
	return filetypeCharacterDevice
}

func (s *System) stdioStream(k fdKind) any {
	switch k {
	case kindStdin:
		return s.stdio.Stdin
	case kindStdout:
		return s.stdio.Stdout
	case kindStderr:
		return s.stdio.Stderr
	}
	return nil
}

func (s *System) fdFdstatSetFlags(_ context.Context, _ api.Module, st []uint64) Errno {
	f, e := s.lookupRights(u32(st[0]), rightFdFdstatSetFlags)
	if e != ErrnoSuccess {
		return e
	}
	flags := uint16(st[1])
	if flags&^fdflagsAll != 0 {
		return ErrnoInval
	}
	if f.kind == kindDir && flags&fdflagAppend != 0 {
		return ErrnoBadf
	}
	// The sync flags cannot change on an open host file; append and
	// nonblock are implemented by tern itself.
	f.fdflags = f.fdflags&(fdflagDsync|fdflagRsync|fdflagSync) | flags&(fdflagAppend|fdflagNonblock)
	return ErrnoSuccess
}

func (s *System) fdFdstatSetRights(_ context.Context, _ api.Module, st []uint64) Errno {
	f, e := s.lookup(u32(st[0]))
	if e != ErrnoSuccess {
		return e
	}
	base, inh := st[1], st[2]
	if base&^f.rightsBase != 0 || inh&^f.rightsInheriting != 0 {
		return ErrnoNotcapable
	}
	f.rightsBase, f.rightsInheriting = base, inh
	return ErrnoSuccess
}

func (s *System) fdFilestatGet(_ context.Context, mod api.Module, st []uint64) Errno {
	f, e := s.lookupRights(u32(st[0]), rightFdFilestatGet)
	if e != ErrnoSuccess {
		return e
	}
	var fi os.FileInfo
	var err error
	switch f.kind {
	case kindFile:
		fi, err = f.file.Stat()
	case kindDir:
		var d *os.File
		if d, err = s.dirFile(f); err == nil {
			fi, err = d.Stat()
		}
	default:
		if hf, ok := s.stdioStream(f.kind).(*os.File); ok {
			fi, err = hf.Stat()
		} else {
			b, ok := mod.Memory().Read(u32(st[1]), 64)
			if !ok {
				return ErrnoFault
			}
			clear(b)
			b[16] = filetypeCharacterDevice
			return ErrnoSuccess
		}
	}
	if err != nil {
		return toErrno(err)
	}
	return writeFilestat(mod.Memory(), u32(st[1]), fi)
}

func (s *System) fdFilestatSetSize(_ context.Context, _ api.Module, st []uint64) Errno {
	f, e := s.fileOnly(u32(st[0]), rightFdFilestatSetSize)
	switch e {
	case ErrnoSuccess:
	case ErrnoIsdir, ErrnoSpipe:
		// ftruncate(2) on anything but a regular file.
		return ErrnoInval
	default:
		return e
	}
	if int64(st[1]) < 0 {
		return ErrnoInval
	}
	return toErrno(f.file.Truncate(int64(st[1])))
}

func (s *System) fdFilestatSetTimes(_ context.Context, _ api.Module, st []uint64) Errno {
	f, e := s.lookupRights(u32(st[0]), rightFdFilestatSetTimes)
	if e != ErrnoSuccess {
		return e
	}
	fst := uint16(st[3])
	if !validFstflags(fst) {
		return ErrnoInval
	}
	var hf *os.File
	switch f.kind {
	case kindFile:
		hf = f.file
	case kindDir:
		d, err := s.dirFile(f)
		if err != nil {
			return toErrno(err)
		}
		hf = d
	default:
		return ErrnoBadf
	}
	return toErrno(setFileTimes(hf, int64(st[1]), int64(st[2]), fst))
}

func (s *System) fdPrestatGet(_ context.Context, mod api.Module, st []uint64) Errno {
	f, e := s.lookup(u32(st[0]))
	if e != ErrnoSuccess {
		return e
	}
	if !f.isPreopen {
		return ErrnoBadf
	}
	b, ok := mod.Memory().Read(u32(st[1]), 8)
	if !ok {
		return ErrnoFault
	}
	clear(b)
	le.PutUint32(b[4:], uint32(len(s.pre[f.preopen].guest)))
	return ErrnoSuccess
}

func (s *System) fdPrestatDirName(_ context.Context, mod api.Module, st []uint64) Errno {
	f, e := s.lookup(u32(st[0]))
	if e != ErrnoSuccess {
		return e
	}
	if !f.isPreopen {
		return ErrnoBadf
	}
	name := s.pre[f.preopen].guest
	if uint64(len(name)) > st[2]&0xffffffff {
		return ErrnoNametoolong
	}
	if !mod.Memory().Write(u32(st[1]), []byte(name)) {
		return ErrnoFault
	}
	return ErrnoSuccess
}

func (s *System) fdReaddir(_ context.Context, mod api.Module, st []uint64) Errno {
	f, e := s.lookup(u32(st[0]))
	if e != ErrnoSuccess {
		return e
	}
	if f.kind != kindDir {
		return ErrnoNotdir
	}
	if e := rightsErrno(f.rightsBase, rightFdReaddir); e != ErrnoSuccess {
		return e
	}
	bufPtr, bufLen, cookie := u32(st[1]), u32(st[2]), st[3]
	mem := mod.Memory()
	buf, ok := mem.Read(bufPtr, bufLen)
	if !ok {
		return ErrnoFault
	}
	if cookie == 0 || f.dirents == nil {
		ents, err := s.readDirents(f)
		if err != nil {
			return toErrno(err)
		}
		f.dirents = ents
	}
	if cookie > uint64(len(f.dirents)) {
		return ErrnoInval
	}
	used := 0
	var hdr [24]byte
	for i := int(cookie); i < len(f.dirents) && used < len(buf); i++ {
		d := f.dirents[i]
		le.PutUint64(hdr[0:], uint64(i+1))
		le.PutUint64(hdr[8:], d.ino)
		le.PutUint32(hdr[16:], uint32(len(d.name)))
		hdr[20], hdr[21], hdr[22], hdr[23] = d.ftype, 0, 0, 0
		used += copy(buf[used:], hdr[:])
		used += copy(buf[used:], d.name)
	}
	if !mem.WriteUint32Le(u32(st[4]), uint32(used)) {
		return ErrnoFault
	}
	return ErrnoSuccess
}

func (s *System) pathOpen(_ context.Context, mod api.Module, st []uint64) Errno {
	mem := mod.Memory()
	dirfd, lookup := u32(st[0]), u32(st[1])
	oflags, base, inh, fdflags := uint16(st[4]), st[5], st[6], uint16(st[7])
	need := uint64(rightPathOpen)
	if oflags&oflagCreat != 0 {
		need |= rightPathCreateFile
	}
	if oflags&oflagTrunc != 0 {
		need |= rightPathFilestatSetSize
	}
	pre, p, e := s.resolve(mem, dirfd, u32(st[2]), u32(st[3]), need)
	if e != ErrnoSuccess {
		return e
	}
	parent := s.fds[dirfd]
	if oflags&^(oflagCreat|oflagDirectory|oflagExcl|oflagTrunc) != 0 || fdflags&^fdflagsAll != 0 {
		return ErrnoInval
	}
	if oflags&oflagDirectory != 0 && oflags&(oflagCreat|oflagTrunc) != 0 {
		return ErrnoInval
	}
	if base&^parent.rightsInheriting != 0 || inh&^parent.rightsInheriting != 0 {
		return ErrnoNotcapable
	}
	writes := oflags&(oflagCreat|oflagTrunc) != 0 || fdflags&fdflagAppend != 0
	access := os.O_RDONLY
	r, w := base&(rightFdRead|rightFdReaddir) != 0, base&rightFdWrite != 0
	switch {
	case r && w:
		access = os.O_RDWR
	case w:
		access = os.O_WRONLY
	case writes:
		access = os.O_RDWR
	}
	if oflags&oflagTrunc != 0 && access == os.O_RDONLY {
		access = os.O_RDWR
	}
	if lookup&lookupSymlinkFollow == 0 {
		if fi, err := pre.root.Lstat(strings.TrimSuffix(p, "/")); err == nil && fi.Mode()&os.ModeSymlink != 0 {
			if oflags&(oflagCreat|oflagExcl) == oflagCreat|oflagExcl {
				return ErrnoExist
			}
			if oflags&oflagDirectory != 0 {
				return ErrnoNotdir
			}
			return ErrnoLoop
		}
	}
	flags := access
	if oflags&oflagCreat != 0 {
		flags |= os.O_CREATE
	}
	if oflags&oflagExcl != 0 {
		flags |= os.O_EXCL
	}
	if oflags&oflagTrunc != 0 {
		flags |= os.O_TRUNC
	}
	file, isDir, err := pre.openFile(p, flags, 0o666)
	if err != nil {
		return toErrno(err)
	}
	fd := &fileDesc{
		kind: kindFile, preopen: parent.preopen, path: strings.TrimSuffix(p, "/"), file: file,
		access: access, fdflags: fdflags, rightsBase: base, rightsInheriting: inh,
	}
	if fd.path == "" {
		fd.path = "."
	}
	// Rights that cannot apply to what was opened are dropped, as
	// other WASI hosts do, so fdstat shows what the descriptor can do.
	if isDir {
		fd.kind = kindDir
		fd.fdflags &^= fdflagAppend
		fd.rightsBase &= rightsDir
	} else {
		fd.rightsBase &= rightsFile
	}
	if !isDir && oflags&oflagDirectory != 0 {
		file.Close()
		return ErrnoNotdir
	}
	n, e := s.install(fd)
	if e != ErrnoSuccess {
		file.Close()
		return e
	}
	if !mem.WriteUint32Le(u32(st[8]), n) {
		s.fds[n] = nil
		file.Close()
		return ErrnoFault
	}
	return ErrnoSuccess
}

func (s *System) pathCreateDirectory(_ context.Context, mod api.Module, st []uint64) Errno {
	pre, p, e := s.resolve(mod.Memory(), u32(st[0]), u32(st[1]), u32(st[2]), rightPathCreateDirectory)
	if e != ErrnoSuccess {
		return e
	}
	return toErrno(pre.root.Mkdir(p, 0o777))
}

func (s *System) pathFilestatGet(_ context.Context, mod api.Module, st []uint64) Errno {
	mem := mod.Memory()
	pre, p, e := s.resolve(mem, u32(st[0]), u32(st[2]), u32(st[3]), rightPathFilestatGet)
	if e != ErrnoSuccess {
		return e
	}
	var fi os.FileInfo
	var err error
	if u32(st[1])&lookupSymlinkFollow != 0 {
		fi, err = pre.root.Stat(p)
	} else {
		fi, err = pre.root.Lstat(p)
	}
	if err != nil {
		return toErrno(err)
	}
	return writeFilestat(mem, u32(st[4]), fi)
}

func (s *System) pathFilestatSetTimes(_ context.Context, mod api.Module, st []uint64) Errno {
	pre, p, e := s.resolve(mod.Memory(), u32(st[0]), u32(st[2]), u32(st[3]), rightPathFilestatSetTimes)
	if e != ErrnoSuccess {
		return e
	}
	fst := uint16(st[6])
	if !validFstflags(fst) {
		return ErrnoInval
	}
	if u32(st[1])&lookupSymlinkFollow == 0 {
		if fi, err := pre.root.Lstat(p); err != nil {
			return toErrno(err)
		} else if fi.Mode()&os.ModeSymlink != 0 {
			return toErrno(pre.setLinkTimes(p, int64(st[4]), int64(st[5]), fst))
		}
	}
	a, m := chtimesArgs(int64(st[4]), int64(st[5]), fst)
	return toErrno(pre.root.Chtimes(p, a, m))
}

// resolvePair resolves the two paths of link and rename, which must lie in
// the same preopen.
func (s *System) resolvePair(mem api.Memory, fd1, p1, l1, fd2, p2, l2 uint32, need1, need2 uint64) (*preopen, string, string, Errno) {
	pre1, a, e := s.resolve(mem, fd1, p1, l1, need1)
	if e != ErrnoSuccess {
		return nil, "", "", e
	}
	pre2, b, e := s.resolve(mem, fd2, p2, l2, need2)
	if e != ErrnoSuccess {
		return nil, "", "", e
	}
	if pre1 != pre2 {
		return nil, "", "", ErrnoXdev
	}
	return pre1, a, b, ErrnoSuccess
}

func (s *System) pathLink(_ context.Context, mod api.Module, st []uint64) Errno {
	pre, oldp, newp, e := s.resolvePair(mod.Memory(), u32(st[0]), u32(st[2]), u32(st[3]), u32(st[4]), u32(st[5]), u32(st[6]), rightPathLinkSource, rightPathLinkTarget)
	if e != ErrnoSuccess {
		return e
	}
	if u32(st[1])&lookupSymlinkFollow != 0 {
		// Following the source would let a link name a file outside the
		// preopen; other WASI hosts refuse it too.
		return ErrnoInval
	}
	return toErrno(pre.root.Link(oldp, newp))
}

func (s *System) pathRename(_ context.Context, mod api.Module, st []uint64) Errno {
	pre, oldp, newp, e := s.resolvePair(mod.Memory(), u32(st[0]), u32(st[1]), u32(st[2]), u32(st[3]), u32(st[4]), u32(st[5]), rightPathRenameSource, rightPathRenameTarget)
	if e != ErrnoSuccess {
		return e
	}
	if err := pre.rename(oldp, newp); err != nil {
		return toErrno(err)
	}
	s.renamed(pre, strings.TrimSuffix(oldp, "/"), strings.TrimSuffix(newp, "/"))
	return ErrnoSuccess
}

func (s *System) pathReadlink(_ context.Context, mod api.Module, st []uint64) Errno {
	mem := mod.Memory()
	pre, p, e := s.resolve(mem, u32(st[0]), u32(st[1]), u32(st[2]), rightPathReadlink)
	if e != ErrnoSuccess {
		return e
	}
	target, err := pre.root.Readlink(p)
	if err != nil {
		return toErrno(err)
	}
	buf, ok := mem.Read(u32(st[3]), u32(st[4]))
	if !ok {
		return ErrnoFault
	}
	n := copy(buf, target)
	if !mem.WriteUint32Le(u32(st[5]), uint32(n)) {
		return ErrnoFault
	}
	return ErrnoSuccess
}

func (s *System) pathRemoveDirectory(_ context.Context, mod api.Module, st []uint64) Errno {
	pre, p, e := s.resolve(mod.Memory(), u32(st[0]), u32(st[1]), u32(st[2]), rightPathRemoveDirectory)
	if e != ErrnoSuccess {
		return e
	}
	fi, err := pre.root.Lstat(p)
	if err != nil {
		return toErrno(err)
	}
	if !fi.IsDir() {
		return ErrnoNotdir
	}
	if p == "." {
		return ErrnoBusy
	}
	return toErrno(pre.root.Remove(p))
}

func (s *System) pathUnlinkFile(_ context.Context, mod api.Module, st []uint64) Errno {
	pre, p, e := s.resolve(mod.Memory(), u32(st[0]), u32(st[1]), u32(st[2]), rightPathUnlinkFile)
	if e != ErrnoSuccess {
		return e
	}
	fi, err := pre.root.Lstat(p)
	if err != nil {
		return toErrno(err)
	}
	if fi.IsDir() {
		return ErrnoIsdir
	}
	return toErrno(pre.root.Remove(p))
}

func (s *System) pathSymlink(_ context.Context, mod api.Module, st []uint64) Errno {
	mem := mod.Memory()
	tb, ok := mem.Read(u32(st[0]), u32(st[1]))
	if !ok {
		return ErrnoFault
	}
	target := string(tb)
	pre, p, e := s.resolve(mem, u32(st[2]), u32(st[3]), u32(st[4]), rightPathSymlink)
	if e != ErrnoSuccess {
		return e
	}
	if target == "" || strings.IndexByte(target, 0) >= 0 {
		return ErrnoNoent
	}
	if target[0] == '/' {
		// A link that names a host path would mean something else on every
		// device the process visits.
		return ErrnoPerm
	}
	return toErrno(pre.root.Symlink(target, p))
}
