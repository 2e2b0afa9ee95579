//go:build unix && !linux

package wasi

// setLinkTimes: outside Linux x/sys offers no portable UTIME_OMIT, so a
// link's own times are not settable; the guest gets ENOTSUP.
func (p *preopen) setLinkTimes(string, int64, int64, uint16) error { return errNotSupported }
