package guestbench

import (
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

// NewTable is a report's table: columns right-aligned, two spaces apart.
func NewTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
}

// Miss marks a value that misses its goal.
func Miss(missed bool) string {
	if missed {
		return " !"
	}
	return ""
}

// Verdict says whether a goal was met.
func Verdict(met bool) string {
	if met {
		return "meets"
	}
	return "MISSES"
}

// FmtDur prints d with three significant digits or so, in the unit that
// suits it.
func FmtDur(d time.Duration) string {
	switch {
	case d < 10*time.Microsecond:
		return fmt.Sprintf("%.1fµs", float64(d)/1e3)
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.3fs", d.Seconds())
}

// FmtMiB prints n bytes in MiB.
func FmtMiB(n int) string {
	return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
}

// HostLoad is the host's one-minute load average before and after a
// run, "" where unknown: other processes' load is the usual reason for
// noisy timings.
type HostLoad struct {
	Before, After string
}

// LoadAverage is the host's one-minute load average, or "" where there
// is no /proc/loadavg.
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

// Print writes l's line of a report's header, if the load is known.
func (l HostLoad) Print(w io.Writer) {
	if l.Before != "" {
		fmt.Fprintf(w, "host load average (1 min) %s before the run, %s after it; the run itself keeps one to two CPUs busy, more is other processes, and noise\n", l.Before, l.After)
	}
}
