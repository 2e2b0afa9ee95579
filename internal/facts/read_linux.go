package facts

import (
	"errors"
	"fmt"
	"os"
	"time"
)

func readDevice(f *Facts) error {
	var errs []error
	if b, err := os.ReadFile("/proc/meminfo"); err != nil {
		errs = append(errs, fmt.Errorf("memory: %w", err))
	} else if f.MemTotal, f.MemFree, err = parseMeminfo(string(b)); err != nil {
		errs = append(errs, err)
	}
	if b, err := os.ReadFile("/proc/loadavg"); err != nil {
		errs = append(errs, fmt.Errorf("load: %w", err))
	} else if f.Load1, err = parseLoadavg(string(b)); err != nil {
		errs = append(errs, err)
	} else {
		f.LoadKnown = true
	}
	var err error
	if f.Battery, err = readBattery("/sys/class/power_supply"); err != nil {
		errs = append(errs, err)
	}
	if f.IdleSeconds, f.IdleKnown, err = idleSince(terminals("/dev"), time.Now()); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
