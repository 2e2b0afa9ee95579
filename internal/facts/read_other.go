//go:build !linux

package facts

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/shirou/gopsutil/v4/load"
	"github.com/shirou/gopsutil/v4/mem"
)

func readDevice(f *Facts) error {
	var errs []error
	if vm, err := mem.VirtualMemory(); err != nil {
		errs = append(errs, fmt.Errorf("memory: %w", err))
	} else {
		f.MemTotal, f.MemFree = vm.Total, vm.Available
	}
	// Windows has no load average; see the package doc.
	if runtime.GOOS != "windows" {
		if avg, err := load.Avg(); err != nil {
			errs = append(errs, fmt.Errorf("load: %w", err))
		} else {
			f.Load1, f.LoadKnown = avg.Load1, true
		}
	}
	var err error
	if f.Battery, err = osBattery(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
