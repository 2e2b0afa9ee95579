package wasi

import "os"

// openFile opens rel inside the preopen the way os.Root.OpenFile does and
// reports whether it is a directory. The common case, a path without
// symbolic links, takes one confined openat2 on Linux instead of os.Root's
// openat per path component.
func (p *preopen) openFile(rel string, flag int, perm os.FileMode) (*os.File, bool, error) {
	if p.fast != nil {
		if f, isDir, handled, err := p.fast.open(rel, flag, perm, p.host+"/"+rel); handled {
			return f, isDir, err
		}
	}
	f, err := p.root.OpenFile(rel, flag, perm)
	if err != nil {
		return nil, false, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, false, err
	}
	return f, fi.IsDir(), nil
}
