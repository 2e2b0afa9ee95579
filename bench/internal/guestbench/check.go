package guestbench

import (
	"fmt"
	"math"
	"strings"
)

// What the commands' tests check their reports with: that a report is
// complete and its values consistent, never how fast anything was.

// ReportFaults lists what is wrong with the printed report text: each
// string of want it lacks, and numbers that cannot have been measured
// (NaN, Inf, a negative zero).
func ReportFaults(text string, want ...string) []string {
	var faults []string
	for _, s := range want {
		if !strings.Contains(text, s) {
			faults = append(faults, fmt.Sprintf("report lacks %q", s))
		}
	}
	for _, s := range []string{"NaN", "Inf", "-0.000"} {
		if strings.Contains(text, s) {
			faults = append(faults, fmt.Sprintf("report contains %q", s))
		}
	}
	return faults
}

// Rows counts the table rows of guest name in a printed report: lines
// whose first field it is.
func Rows(text, name string) int {
	n := 0
	for line := range strings.Lines(text) {
		if f := strings.Fields(line); len(f) > 0 && f[0] == name {
			n++
		}
	}
	return n
}

// Sane reports whether ratio could be a ratio of two timings: positive
// and finite.
func Sane(ratio float64) bool {
	return ratio > 0 && !math.IsInf(ratio, 0) && !math.IsNaN(ratio)
}
