package facts

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// supply is one fake /sys/class/power_supply/NAME directory: file name to
// contents (written with the newline sysfs adds).
type supply map[string]string

func TestReadBattery(t *testing.T) {
	bat := func(capacity, status string) supply {
		return supply{"type": "Battery", "capacity": capacity, "status": status}
	}
	mains := func(online string) supply { return supply{"type": "Mains", "online": online} }
	tests := []struct {
		name    string
		tree    map[string]supply // nil: the root directory does not exist
		want    *Battery
		wantErr string // substring of the error; "" for none
	}{
		{name: "no power_supply directory", tree: nil},
		{name: "empty power_supply directory", tree: map[string]supply{}},
		{name: "desktop with mains only", tree: map[string]supply{"AC": mains("1")}},
		{
			name: "discharging at 42%",
			tree: map[string]supply{"BAT0": bat("42", "Discharging"), "AC": mains("0")},
			want: &Battery{Percent: 42},
		},
		{
			name: "charging",
			tree: map[string]supply{"BAT0": bat("80", "Charging"), "AC": mains("1")},
			want: &Battery{Percent: 80, Charging: true, OnAC: true},
		},
		{
			name: "full on AC",
			tree: map[string]supply{"BAT0": bat("100", "Full"), "ADP1": mains("1")},
			want: &Battery{Percent: 100, Charging: true, OnAC: true},
		},
		{
			name: "AC through USB-C",
			tree: map[string]supply{"BAT0": bat("55", "Charging"), "ucsi-source-psy-USBC000:001": {"type": "USB", "online": "1"}},
			want: &Battery{Percent: 55, Charging: true, OnAC: true},
		},
		{
			name: "held below full by a threshold, no mains supply exposed",
			tree: map[string]supply{"BAT0": bat("60", "Not charging")},
			want: &Battery{Percent: 60, OnAC: true},
		},
		{
			name: "mains says offline over a battery's status",
			tree: map[string]supply{"BAT0": bat("100", "Full"), "AC": mains("0")},
			want: &Battery{Percent: 100, Charging: true},
		},
		{
			name: "two batteries averaged",
			tree: map[string]supply{"BAT0": bat("40", "Discharging"), "BAT1": bat("60", "Discharging")},
			want: &Battery{Percent: 50},
		},
		{
			name: "energy when there is no capacity",
			tree: map[string]supply{"BAT0": {"type": "Battery", "energy_now": "30000000", "energy_full": "60000000", "status": "Discharging"}},
			want: &Battery{Percent: 50},
		},
		{
			name: "charge over full reads 100",
			tree: map[string]supply{"BAT0": {"type": "Battery", "charge_now": "5100000", "charge_full": "5000000", "status": "Full"}},
			want: &Battery{Percent: 100, Charging: true, OnAC: true},
		},
		{
			name: "a mouse's battery is not the device's",
			tree: map[string]supply{"hidpp_battery_0": {"type": "Battery", "scope": "Device", "capacity": "10", "status": "Discharging"}},
		},
		{
			name:    "malformed capacity",
			tree:    map[string]supply{"BAT0": bat("forty", "Discharging"), "AC": mains("0")},
			wantErr: "capacity",
		},
		{
			name:    "capacity out of range",
			tree:    map[string]supply{"BAT0": bat("150", "Discharging")},
			wantErr: "capacity",
		},
		{
			name:    "battery with nothing to read",
			tree:    map[string]supply{"BAT0": {"type": "Battery", "status": "Unknown"}},
			wantErr: "no readable capacity",
		},
		{
			name:    "two unreadable of three",
			tree:    map[string]supply{"BAT0": bat("", "Discharging"), "BAT1": bat("x", "Charging"), "BAT2": bat("70", "Discharging")},
			want:    &Battery{Percent: 70},
			wantErr: "BAT1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "power_supply")
			if tt.tree != nil {
				writeTree(t, root, tt.tree)
			}
			got, err := readBattery(root)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
			}
			if (got == nil) != (tt.want == nil) || (got != nil && *got != *tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func writeTree(t *testing.T, root string, tree map[string]supply) {
	t.Helper()
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, files := range tree {
		dir := filepath.Join(root, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for file, contents := range files {
			if contents == "" {
				continue // leave the attribute out, as drivers do
			}
			if err := os.WriteFile(filepath.Join(dir, file), []byte(contents+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
