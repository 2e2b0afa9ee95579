//go:build !linux

package dirty

// Tracker is not available on this system.
type Tracker struct{}

// Track reports that writes cannot be tracked here.
func Track(mem []byte) (*Tracker, error) { return nil, ErrUnsupported }

// Covers is false: there is no tracking.
func (*Tracker) Covers(mem []byte) bool { return false }

// Written is never called: Track fails.
func (*Tracker) Written(pageSize int) ([]bool, error) { return nil, ErrUnsupported }

// Close does nothing.
func (*Tracker) Close() error { return nil }
