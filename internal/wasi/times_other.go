//go:build !linux

package wasi

import (
	"os"
)

// setFileTimes sets the times of an open file through its name. Fields
// left out keep their value (a zero time.Time leaves a time unchanged).
func setFileTimes(f *os.File, atim, mtim int64, fst uint16) error {
	a, m := chtimesArgs(atim, mtim, fst)
	return os.Chtimes(f.Name(), a, m)
}
