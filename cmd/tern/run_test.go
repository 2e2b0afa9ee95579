package main

import (
	"runtime"
	"testing"

	"github.com/ternhq/tern/internal/wasi"
)

func TestParseDir(t *testing.T) {
	cases := []struct {
		in      string
		want    wasi.Preopen
		wantErr bool
	}{
		{"data", wasi.Preopen{HostDir: "data", GuestPath: "data"}, false},
		{"/tmp/x:/data", wasi.Preopen{HostDir: "/tmp/x", GuestPath: "/data"}, false},
		{"/tmp/x:.", wasi.Preopen{HostDir: "/tmp/x", GuestPath: "."}, false},
		{"", wasi.Preopen{}, true},
		{":/data", wasi.Preopen{}, true},
		{"/tmp/x:", wasi.Preopen{}, true},
	}
	if runtime.GOOS == "windows" {
		cases = append(cases, struct {
			in      string
			want    wasi.Preopen
			wantErr bool
		}{`C:\x:/data`, wasi.Preopen{HostDir: `C:\x`, GuestPath: "/data"}, false})
	}
	for _, c := range cases {
		got, err := parseDir(c.in)
		if (err != nil) != c.wantErr || got != c.want {
			t.Errorf("parseDir(%q) = %+v, %v; want %+v, error %v", c.in, got, err, c.want, c.wantErr)
		}
	}
}

func TestHostExitCode(t *testing.T) {
	for in, want := range map[uint32]int{0: 0, 1: 1, 255: 255, 256: 255, 1 << 31: 255} {
		if runtime.GOOS == "windows" {
			want = int(in)
		}
		if got := hostExitCode(in); got != want {
			t.Errorf("hostExitCode(%d) = %d, want %d", in, got, want)
		}
	}
}
