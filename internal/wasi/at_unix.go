//go:build unix

package wasi

import (
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// parent opens the directory containing rel through the preopen's root, so
// that resolving it cannot leave the preopen, and returns it with rel's last
// component. Calls that do not follow a final symbolic link (rename,
// utimensat with AT_SYMLINK_NOFOLLOW) are then safe on that pair.
func (p *preopen) parent(rel string) (*os.File, string, error) {
	trailing := strings.HasSuffix(rel, "/")
	dir, base := path.Split(strings.TrimSuffix(rel, "/"))
	if dir == "" {
		dir = "."
	}
	if trailing {
		base += "/"
	}
	f, err := p.root.Open(dir)
	if err != nil {
		return nil, "", err
	}
	return f, base, nil
}

// rename follows rename(2) exactly (an empty directory is replaced), which
// os.Root.Rename does not.
func (p *preopen) rename(oldp, newp string) error {
	od, ob, err := p.parent(oldp)
	if err != nil {
		return err
	}
	defer od.Close()
	nd, nb, err := p.parent(newp)
	if err != nil {
		return err
	}
	defer nd.Close()
	return unix.Renameat(int(od.Fd()), ob, int(nd.Fd()), nb)
}
