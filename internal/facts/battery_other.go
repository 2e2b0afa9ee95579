//go:build !linux && !windows

package facts

// osBattery reports no battery: on macOS the battery is reachable only
// through IOKit, which needs cgo, and other systems are not supported.
func osBattery() (*Battery, error) { return nil, nil }
