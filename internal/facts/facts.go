package facts

import (
	"fmt"
	"runtime"
)

// Facts are what an agent tells the grid about its device. Fields a device
// cannot report are zero and say so through the *Known flags or nil
// pointers, never made up.
type Facts struct {
	Arch        string   `json:"arch"`         // runtime.GOARCH
	OS          string   `json:"os"`           // runtime.GOOS
	Cores       int      `json:"cores"`        // logical CPUs this process may use
	MemTotal    uint64   `json:"mem_total"`    // bytes; 0 when unknown
	MemFree     uint64   `json:"mem_free"`     // bytes available to new work (MemAvailable on Linux)
	Load1       float64  `json:"load1"`        // 1-minute load average; 0 with LoadKnown false where the OS has none
	LoadKnown   bool     `json:"load_known"`   // false on Windows, which has no load average
	Battery     *Battery `json:"battery"`      // nil: no battery, or none this OS lets us read (see the package doc)
	IdleSeconds float64  `json:"idle_seconds"` // seconds since a person last typed into the device
	IdleKnown   bool     `json:"idle_known"`   // false when the device cannot tell
}

// Battery is the state of the device's own batteries taken together.
type Battery struct {
	Percent  float64 `json:"percent"`  // 0..100
	Charging bool    `json:"charging"` // charging, or full on AC
	OnAC     bool    `json:"on_ac"`
}

// Read reads the device's facts now. It does no sampling and no sleeping,
// so it can be called every few seconds. On error the Facts still hold
// everything that was read; the facts that failed are zero or unknown.
func Read() (Facts, error) {
	f := Facts{Arch: runtime.GOARCH, OS: runtime.GOOS, Cores: runtime.NumCPU()}
	if err := readDevice(&f); err != nil {
		return f, fmt.Errorf("read device facts: %w", err)
	}
	return f, nil
}
