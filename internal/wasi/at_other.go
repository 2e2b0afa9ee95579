//go:build !unix

package wasi

func (p *preopen) rename(oldp, newp string) error { return p.root.Rename(oldp, newp) }

// Without utimensat a link's own times cannot be set.
func (p *preopen) setLinkTimes(string, int64, int64, uint16) error { return errNotSupported }
