package goguest

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ternhq/tern/internal/wasmbin"
)

const guestSrc = `package main

import (
	"fmt"
	"os"
	"time"
)

func main() {
	time.Sleep(time.Millisecond)
	b := make([]byte, 10)
	n, _ := os.Stdin.Read(b)
	fmt.Println("read", n)
}
`

// buildGuest builds guestSrc for wasip1 with the given toolchain
// (GOTOOLCHAIN value, "" for the installed one) and extra flags.
func buildGuest(t *testing.T, toolchain string, flags ...string) []byte {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(guestSrc), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module guest\ngo 1.21\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "guest.wasm")
	args := append([]string{"build", "-trimpath", "-o", out}, flags...)
	cmd := exec.Command("go", append(args, ".")...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if toolchain != "" {
		cmd.Env = append(cmd.Env, "GOTOOLCHAIN="+toolchain)
	}
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build (GOTOOLCHAIN=%q): %v\n%s", toolchain, err, msg)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPrepare(t *testing.T) {
	tests := []struct {
		name      string
		toolchain string
		flags     []string
		minor     int
	}{
		{"installed", "", nil, 0},
		{"installed stripped", "", []string{"-ldflags=-s -w"}, 0},
		{"go1.21", "go1.21.13", nil, 21},
		{"go1.21 stripped", "go1.21.13", []string{"-ldflags=-s -w"}, 21},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wasm := buildGuest(t, tt.toolchain, tt.flags...)
			g, err := Prepare(wasm)
			if err != nil {
				t.Fatal(err)
			}
			if tt.minor != 0 && g.Minor != tt.minor {
				t.Errorf("minor %d, want %d (version %q)", g.Minor, tt.minor, g.Version)
			}
			if !strings.HasPrefix(g.Version, "go1.") {
				t.Errorf("version %q", g.Version)
			}
			// Both blocking imports come through reissuable wrappers.
			if len(g.Reissuable) != 2 {
				t.Errorf("reissuable wrappers %v, want poll_oneoff's and fd_read's", g.Reissuable)
			}
			if !strings.Contains(tt.name, "stripped") && (!slices.Contains(g.Reissuable, "runtime.poll_oneoff") || !slices.Contains(g.Reissuable, "syscall.fd_read")) {
				t.Errorf("reissuable wrappers %v", g.Reissuable)
			}
			m, err := wasmbin.Parse(g.Wasm)
			if err != nil {
				t.Fatalf("prepared module does not parse: %v", err)
			}
			for _, name := range []string{ExportLoop, ExportFreeze, ExportCaller, ExportGlobal + "0", ExportGlobal + "7"} {
				found := false
				for _, e := range m.Exports {
					found = found || e.Name == name
				}
				if !found {
					t.Errorf("export %s missing", name)
				}
			}
			orig, _ := wasmbin.Parse(wasm)
			// Indices, table and data are untouched: an image taken under
			// one rewrite resumes under another.
			if m.NumFuncs() != orig.NumFuncs() || len(m.Elems) != len(orig.Elems) || len(m.Data) != len(orig.Data) {
				t.Error("rewrite changed function, element or data layout")
			}
			again, err := Prepare(wasm)
			if err != nil || !bytes.Equal(again.Wasm, g.Wasm) {
				t.Error("Prepare is not deterministic")
			}
		})
	}
}

// replaceProducers returns wasm with its producers section's Go version
// replaced by version ("" drops the section).
func replaceProducers(t *testing.T, wasm []byte, version string) []byte {
	t.Helper()
	m, err := wasmbin.Parse(wasm)
	if err != nil {
		t.Fatal(err)
	}
	out := []byte{0, 'a', 's', 'm', 1, 0, 0, 0}
	for _, s := range m.Sections {
		data := s.Data
		if s.ID == wasmbin.SecCustom {
			if s.Name == "producers" {
				if version == "" {
					continue
				}
				var p []byte
				p = wasmbin.AppendULEB(p, 1)
				p = appendStr(p, "language")
				p = wasmbin.AppendULEB(p, 1)
				p = appendStr(p, "Go")
				p = appendStr(p, version)
				data = p
			}
			data = append(appendStr(nil, s.Name), data...)
		}
		out = append(out, s.ID)
		out = wasmbin.AppendULEB(out, uint64(len(data)))
		out = append(out, data...)
	}
	return out
}

func appendStr(b []byte, s string) []byte {
	return append(wasmbin.AppendULEB(b, uint64(len(s))), s...)
}

func TestPrepareRefuses(t *testing.T) {
	wasm := buildGuest(t, "")
	brokenLoop := func() []byte {
		m, err := wasmbin.Parse(wasm)
		if err != nil {
			t.Fatal(err)
		}
		loop, err := findLoop(m)
		if err != nil {
			t.Fatal(err)
		}
		// A loop body of a different shape: just return.
		if err := m.SetBody(loop, wasmbin.Body{Raw: []byte{0, 0x0f, 0x0b}, Code: 1}); err != nil {
			t.Fatal(err)
		}
		return m.Encode()
	}
	tests := []struct {
		name string
		wasm []byte
		want error
		msg  string
	}{
		{"newer Go", replaceProducers(t, wasm, "go1.27.1"), ErrVersion, "built by go1.27.1; tern captures Go guests built by go1.21 through go1.26"},
		{"older Go", replaceProducers(t, wasm, "go1.20.5"), ErrVersion, "go1.20.5"},
		{"garbled version", replaceProducers(t, wasm, "gox"), ErrVersion, "cannot read Go version"},
		{"producers stripped", replaceProducers(t, wasm, ""), ErrVersion, "producers section"},
		{"loop changed", brokenLoop(), ErrLayout, "wasm_pc_f_loop"},
		{"not Go", []byte{0, 'a', 's', 'm', 1, 0, 0, 0}, ErrNotGo, ""},
		{"not wasm", []byte("#!/bin/sh\n"), wasmbin.ErrMalformed, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Prepare(tt.wasm)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("message %q lacks %q", err, tt.msg)
			}
		})
	}
}

func TestMinorVersion(t *testing.T) {
	for v, want := range map[string]int{"go1.21.13": 21, "go1.26.8": 26, "go1.22rc2": 22, "devel go1.27-abcdef": 27, "go1.3": 3} {
		if got, err := minorVersion(v); err != nil || got != want {
			t.Errorf("%s: %d, %v", v, got, err)
		}
	}
	for _, v := range []string{"", "go", "go2.0", "go1.x"} {
		if _, err := minorVersion(v); err == nil {
			t.Errorf("%q accepted", v)
		}
	}
}

func TestMayCall(t *testing.T) {
	targets := map[uint32]bool{9: true, 300: true}
	tests := []struct {
		code []byte
		want bool
	}{
		{[]byte{0x10, 0x09, 0x0b}, true},
		{[]byte{0x10, 0x89, 0x80, 0x00, 0x0b}, true}, // padded LEB128 for 9
		{[]byte{0x10, 0xac, 0x02}, true},             // 300
		{[]byte{0x10, 0x08, 0x0b}, false},
		{[]byte{0x41, 0x09, 0x0b}, false},
		{[]byte{0x10}, false},
		{[]byte{0x10, 0x80}, false},
		{nil, false},
	}
	for _, tt := range tests {
		if got := mayCall(tt.code, targets); got != tt.want {
			t.Errorf("mayCall(%x) = %v, want %v", tt.code, got, tt.want)
		}
	}
}
