package facts

import (
	"bufio"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// parseMeminfo returns MemTotal and the memory available to new work from
// the text of /proc/meminfo, in bytes.
func parseMeminfo(s string) (total, avail uint64, err error) {
	kb := map[string]uint64{}
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		key, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || (key != "MemTotal" && key != "MemAvailable" && key != "MemFree") {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) != 2 || fields[1] != "kB" {
			return 0, 0, fmt.Errorf("meminfo: %s: want \"N kB\", got %q", key, strings.TrimSpace(rest))
		}
		n, err := strconv.ParseUint(fields[0], 10, 64)
		if err != nil || n > math.MaxUint64/1024 {
			return 0, 0, fmt.Errorf("meminfo: %s: bad number %q", key, fields[0])
		}
		kb[key] = n
	}
	t, ok := kb["MemTotal"]
	if !ok || t == 0 {
		return 0, 0, fmt.Errorf("meminfo: no MemTotal")
	}
	a, ok := kb["MemAvailable"]
	if !ok {
		// Kernels before 3.14 have no MemAvailable; MemFree leaves out
		// reclaimable caches, so it can only understate what is available.
		if a, ok = kb["MemFree"]; !ok {
			return 0, 0, fmt.Errorf("meminfo: neither MemAvailable nor MemFree")
		}
	}
	if a > t {
		return 0, 0, fmt.Errorf("meminfo: %d kB available exceeds MemTotal %d kB", a, t)
	}
	return t * 1024, a * 1024, nil
}

// parseLoadavg returns the 1-minute load average from the text of
// /proc/loadavg ("0.52 0.58 0.59 1/467 12345").
func parseLoadavg(s string) (float64, error) {
	fields := strings.Fields(s)
	if len(fields) < 3 {
		return 0, fmt.Errorf("loadavg: want at least 3 fields, got %q", s)
	}
	l, err := strconv.ParseFloat(fields[0], 64)
	if err != nil || l < 0 || math.IsInf(l, 0) || math.IsNaN(l) {
		return 0, fmt.Errorf("loadavg: bad 1-minute load %q", fields[0])
	}
	return l, nil
}
