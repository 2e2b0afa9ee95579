package facts

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// terminals lists the terminals people type into under a /dev directory:
// pseudo-terminals (ssh, terminal emulators) and virtual consoles. Serial
// lines and /dev/pts/ptmx are left out.
func terminals(dev string) []string {
	// Glob fails only on a malformed pattern, and these are constant.
	pts, _ := filepath.Glob(filepath.Join(dev, "pts", "[0-9]*"))
	vts, _ := filepath.Glob(filepath.Join(dev, "tty[0-9]*"))
	return append(pts, vts...)
}

// idleSince returns the seconds from the most recent input on any of the
// terminals at paths to now. Terminals with no input since their change
// time are ignored (see the package doc); with none left, known is false.
// Terminals that vanish while being read (a closed ssh session) are
// skipped silently.
func idleSince(paths []string, now time.Time) (idle float64, known bool, err error) {
	var (
		latest time.Time
		errs   []error
	)
	for _, p := range paths {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("idle: %w", err))
			continue
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			continue
		}
		atime := time.Unix(int64(st.Atim.Sec), int64(st.Atim.Nsec))
		ctime := time.Unix(int64(st.Ctim.Sec), int64(st.Ctim.Nsec))
		if atime.After(ctime) && atime.After(latest) {
			latest = atime
		}
	}
	if latest.IsZero() {
		return 0, false, errors.Join(errs...)
	}
	// A terminal read after now means the clock stepped back: it was just used.
	return max(0, now.Sub(latest).Seconds()), true, errors.Join(errs...)
}
