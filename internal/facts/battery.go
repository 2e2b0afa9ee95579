package facts

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// readBattery reads the device's batteries from a sysfs power_supply
// directory (root is /sys/class/power_supply on Linux; tests pass a fake
// tree). A missing root means no battery. A battery that cannot be read is
// left out and named in the error, so the result may be nil together with
// an error, or a Battery from the batteries that could be read.
func readBattery(root string) (*Battery, error) {
	entries, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("battery: %w", err)
	}
	var (
		errs                 []error
		percents             []float64
		charging, statusOnAC bool
		onAC, acReported     bool
	)
	for _, e := range entries {
		dir := filepath.Join(root, e.Name())
		switch typ := readSysfs(dir, "type"); typ {
		case "":
			continue
		case "Battery":
			if readSysfs(dir, "scope") == "Device" {
				continue // a mouse's or keyboard's battery, not the device's
			}
			p, err := batteryPercent(dir)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			percents = append(percents, p)
			switch readSysfs(dir, "status") {
			case "Charging", "Full":
				charging, statusOnAC = true, true
			case "Not charging": // on AC, held below full by a charge threshold
				statusOnAC = true
			}
		case "UPS":
			// A UPS's "online" says whether it is connected, not whether
			// this device draws mains power.
		default: // Mains, USB, USB_C, USB_PD, Wireless, …
			switch readSysfs(dir, "online") {
			case "1":
				onAC, acReported = true, true
			case "0":
				acReported = true
			}
		}
	}
	err = errors.Join(errs...)
	if len(percents) == 0 {
		return nil, err
	}
	var sum float64
	for _, p := range percents {
		sum += p
	}
	if !acReported {
		onAC = statusOnAC
	}
	return &Battery{Percent: sum / float64(len(percents)), Charging: charging, OnAC: onAC}, err
}

// batteryPercent reads a battery's charge: capacity when the driver gives
// it, else the ratio of energy (µWh) or charge (µAh) now to full.
func batteryPercent(dir string) (float64, error) {
	if c := readSysfs(dir, "capacity"); c != "" {
		p, err := strconv.Atoi(c)
		if err != nil || p < 0 || p > 100 {
			return 0, fmt.Errorf("battery %s: capacity %q is not a percentage", dir, c)
		}
		return float64(p), nil
	}
	for _, kind := range []string{"energy", "charge"} {
		now, err1 := strconv.ParseUint(readSysfs(dir, kind+"_now"), 10, 64)
		full, err2 := strconv.ParseUint(readSysfs(dir, kind+"_full"), 10, 64)
		if err1 == nil && err2 == nil && full > 0 {
			// Batteries often read a little over full when full.
			return min(100, 100*float64(now)/float64(full)), nil
		}
	}
	return 0, fmt.Errorf("battery %s: no readable capacity, energy or charge", dir)
}

// readSysfs returns one sysfs attribute without its newline, or "" when it
// cannot be read: drivers leave out attributes they do not support.
func readSysfs(dir, name string) string {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
