package wasi

import (
	"os"
	"time"

	"github.com/tetratelabs/wazero/api"
)

func inode(fi os.FileInfo) uint64 {
	_, ino, _, _, _, _, _ := statFields(fi)
	return ino
}

// writeFilestat writes a WASI filestat (64 bytes) for fi at ptr.
func writeFilestat(mem api.Memory, ptr uint32, fi os.FileInfo) Errno {
	b, ok := mem.Read(ptr, 64)
	if !ok {
		return ErrnoFault
	}
	dev, ino, nlink, atim, mtim, ctim, _ := statFields(fi)
	clear(b)
	le.PutUint64(b[0:], dev)
	le.PutUint64(b[8:], ino)
	b[16] = filetype(fi.Mode())
	le.PutUint64(b[24:], nlink)
	le.PutUint64(b[32:], uint64(fi.Size()))
	le.PutUint64(b[40:], uint64(atim))
	le.PutUint64(b[48:], uint64(mtim))
	le.PutUint64(b[56:], uint64(ctim))
	return ErrnoSuccess
}

// chtimesArgs turns WASI timestamps and fstflags into os.Chtimes arguments.
func chtimesArgs(atim, mtim int64, fst uint16) (time.Time, time.Time) {
	pick := func(v int64, set, now uint16) time.Time {
		switch {
		case fst&now != 0:
			return time.Now()
		case fst&set != 0:
			return time.Unix(0, v)
		}
		return time.Time{}
	}
	return pick(atim, fstflagAtim, fstflagAtimNow), pick(mtim, fstflagMtim, fstflagMtimNow)
}

func validFstflags(fst uint16) bool {
	if fst&^(fstflagAtim|fstflagAtimNow|fstflagMtim|fstflagMtimNow) != 0 {
		return false
	}
	if fst&fstflagAtim != 0 && fst&fstflagAtimNow != 0 {
		return false
	}
	return !(fst&fstflagMtim != 0 && fst&fstflagMtimNow != 0)
}
