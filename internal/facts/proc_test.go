package facts

import "testing"

func TestParseMeminfo(t *testing.T) {
	tests := []struct {
		name         string
		in           string
		total, avail uint64
		wantErr      bool
	}{
		{
			name:  "modern kernel",
			in:    "MemTotal:       24684084 kB\nMemFree:        21323048 kB\nMemAvailable:   23737452 kB\nBuffers:           35016 kB\nHugePages_Total:       0\n",
			total: 24684084 * 1024, avail: 23737452 * 1024,
		},
		{
			name:  "no MemAvailable falls back to MemFree",
			in:    "MemTotal: 1000 kB\nMemFree: 300 kB\nCached: 500 kB\n",
			total: 1000 * 1024, avail: 300 * 1024,
		},
		{name: "empty", in: "", wantErr: true},
		{name: "no MemTotal", in: "MemFree: 300 kB\nMemAvailable: 400 kB\n", wantErr: true},
		{name: "zero MemTotal", in: "MemTotal: 0 kB\nMemAvailable: 0 kB\n", wantErr: true},
		{name: "neither available nor free", in: "MemTotal: 1000 kB\n", wantErr: true},
		{name: "not a number", in: "MemTotal: lots kB\nMemAvailable: 4 kB\n", wantErr: true},
		{name: "negative", in: "MemTotal: -1000 kB\nMemAvailable: 4 kB\n", wantErr: true},
		{name: "no unit", in: "MemTotal: 1000\nMemAvailable: 4 kB\n", wantErr: true},
		{name: "other unit", in: "MemTotal: 1000 MB\nMemAvailable: 4 kB\n", wantErr: true},
		{name: "overflows bytes", in: "MemTotal: 18446744073709551615 kB\nMemAvailable: 4 kB\n", wantErr: true},
		{name: "available exceeds total", in: "MemTotal: 1000 kB\nMemAvailable: 2000 kB\n", wantErr: true},
		{name: "truncated line", in: "MemTotal: 1000 kB\nMemAvailable:", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			total, avail, err := parseMeminfo(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if total != tt.total || avail != tt.avail {
				t.Errorf("got total %d avail %d, want %d %d", total, avail, tt.total, tt.avail)
			}
		})
	}
}

func TestParseLoadavg(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    float64
		wantErr bool
	}{
		{name: "typical", in: "1.73 1.19 1.30 6/147 12449\n", want: 1.73},
		{name: "idle", in: "0.00 0.01 0.05 1/80 1", want: 0},
		{name: "busy", in: "64.50 60.00 58.25 70/900 4242", want: 64.5},
		{name: "empty", in: "", wantErr: true},
		{name: "too few fields", in: "1.0 2.0", wantErr: true},
		{name: "not a number", in: "x 1.0 1.0 1/1 1", wantErr: true},
		{name: "negative", in: "-1.0 1.0 1.0 1/1 1", wantErr: true},
		{name: "NaN", in: "NaN 1.0 1.0 1/1 1", wantErr: true},
		{name: "Inf", in: "+Inf 1.0 1.0 1/1 1", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseLoadavg(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}
