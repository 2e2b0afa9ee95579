package facts

import (
	"encoding/json"
	"math"
	"path/filepath"
	"runtime"
	"testing"
)

// TestReadThisDevice checks Read against what this machine is known to have.
func TestReadThisDevice(t *testing.T) {
	f, err := Read()
	if err != nil {
		if runtime.GOOS == "linux" {
			t.Fatal(err)
		}
		t.Log(err)
	}
	t.Logf("%+v battery %+v", f, f.Battery)
	if f.Arch != runtime.GOARCH || f.OS != runtime.GOOS {
		t.Errorf("arch/os = %s/%s, want %s/%s", f.Arch, f.OS, runtime.GOARCH, runtime.GOOS)
	}
	if f.Cores != runtime.NumCPU() {
		t.Errorf("cores = %d, want %d", f.Cores, runtime.NumCPU())
	}
	if f.MemTotal == 0 || f.MemFree == 0 || f.MemFree > f.MemTotal {
		t.Errorf("mem free %d of total %d", f.MemFree, f.MemTotal)
	}
	if runtime.GOOS == "linux" && !f.LoadKnown {
		t.Error("load unknown on Linux")
	}
	if f.Load1 < 0 || (!f.LoadKnown && f.Load1 != 0) {
		t.Errorf("load1 = %v (known %v)", f.Load1, f.LoadKnown)
	}
	if f.IdleSeconds < 0 || (!f.IdleKnown && f.IdleSeconds != 0) {
		t.Errorf("idle = %v s (known %v)", f.IdleSeconds, f.IdleKnown)
	}
	if runtime.GOOS == "linux" {
		if hasSystemBattery() != (f.Battery != nil) {
			t.Errorf("battery = %+v, but /sys/class/power_supply has a system battery: %v", f.Battery, hasSystemBattery())
		}
	}
	if b := f.Battery; b != nil && (b.Percent < 0 || b.Percent > 100) {
		t.Errorf("battery percent %v", b.Percent)
	}
}

// hasSystemBattery looks at this machine's sysfs directly, so that the test
// holds on a laptop as on a VM without a battery.
func hasSystemBattery() bool {
	dirs, _ := filepath.Glob("/sys/class/power_supply/*")
	for _, d := range dirs {
		if readSysfs(d, "type") == "Battery" && readSysfs(d, "scope") != "Device" {
			return true
		}
	}
	return false
}

func TestFactsJSON(t *testing.T) {
	tests := []struct {
		name string
		f    Facts
		want string
	}{
		{
			name: "no battery",
			f:    Facts{Arch: "amd64", OS: "linux", Cores: 2, MemTotal: 4096, MemFree: 1024, Load1: 0.5, LoadKnown: true},
			want: `{"arch":"amd64","os":"linux","cores":2,"mem_total":4096,"mem_free":1024,"load1":0.5,"load_known":true,"battery":null,"idle_seconds":0,"idle_known":false}`,
		},
		{
			name: "laptop",
			f:    Facts{Arch: "arm64", OS: "darwin", Cores: 8, Battery: &Battery{Percent: 42, OnAC: true}, IdleSeconds: 30, IdleKnown: true},
			want: `{"arch":"arm64","os":"darwin","cores":8,"mem_total":0,"mem_free":0,"load1":0,"load_known":false,"battery":{"percent":42,"charging":false,"on_ac":true},"idle_seconds":30,"idle_known":true}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.want {
				t.Errorf("got  %s\nwant %s", b, tt.want)
			}
		})
	}
}

// TestSpeed checks only that the score is sane and repeatable within a
// factor of 3: the test machine is small and shared.
func TestSpeed(t *testing.T) {
	a, b := Speed(), Speed()
	t.Logf("speed %.0f, %.0f", a, b)
	for _, s := range []float64{a, b} {
		if !(s > 0) || math.IsInf(s, 0) {
			t.Fatalf("speed = %v", s)
		}
	}
	if r := a / b; r > 3 || r < 1.0/3 {
		t.Errorf("speeds %.0f and %.0f differ by more than 3x", a, b)
	}
}
