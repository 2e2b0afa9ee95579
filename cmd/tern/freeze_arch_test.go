package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// buildArchGuest builds testdata/archhop for wasip1.
func buildArchGuest(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "archhop.wasm")
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, ".")
	cmd.Dir = filepath.Join("testdata", "archhop")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build guest: %v\n%s", err, msg)
	}
	return out
}

// A process frozen on this host resumes on a big-endian s390x host
// (interpreter), is frozen there, resumes on arm64, and finishes here: the
// image format and the WASI state mean the same on every architecture.
func TestFreezeAcrossArchitectures(t *testing.T) {
	wasm := buildArchGuest(t)
	dir := t.TempDir()
	native := []string{ternBin}
	s390x := crossTern(t, "s390x")
	arm64 := crossTern(t, "arm64")
	cache := cacheDirForTests(t)

	ref := runTern(t, dir, nil, "run", "--cache-dir", cache, wasm)
	if ref.code != 0 || !strings.HasSuffix(ref.stdout, "done 200\n") {
		t.Fatalf("uninterrupted run: code %d\n%s%s", ref.code, ref.stdout, ref.stderr)
	}

	// Each hop: where it runs, its engine, and when it freezes (0: runs to
	// the end). The emulated hosts are slow, so they get longer.
	hops := []struct {
		name   string
		tern   []string
		engine string
		after  string
	}{
		{"native", native, "", "300ms"},
		{"s390x", s390x, "interpreter", "1s"},
		{"arm64", arm64, "", "600ms"},
		{"s390x again", s390x, "interpreter", "800ms"},
		{"native again", native, "", ""},
	}
	var stdout strings.Builder
	img := ""
	for i, h := range hops {
		// Emulated hosts do not share the native compilation cache.
		args := []string{"--cache-dir", "-"}
		if h.name == "native" || h.name == "native again" {
			args = []string{"--cache-dir", cache}
		}
		if h.engine != "" {
			args = append(args, "--engine", h.engine)
		}
		next := filepath.Join(dir, "hop"+string(rune('0'+i))+".img")
		if h.after != "" {
			args = append(args, "--checkpoint", next, "--freeze-after", h.after)
		}
		var argv []string
		if img == "" {
			argv = append(append(append(h.tern, "run"), args...), wasm)
		} else {
			argv = append(append(append(h.tern, "resume"), args...), img)
		}
		res := runCommand(t, dir, nil, argv)
		if res.code != 0 {
			t.Fatalf("hop %s: exit %d\n%s", h.name, res.code, res.stderr)
		}
		stdout.WriteString(res.stdout)
		if h.after == "" {
			break
		}
		if !strings.Contains(res.stderr, "tern: frozen (") {
			t.Fatalf("hop %s: the guest ended before its freeze (make the guest longer):\n%s", h.name, res.stderr)
		}
		t.Logf("hop %s: %d lines, %s", h.name, strings.Count(res.stdout, "\n"), strings.TrimSpace(res.stderr))
		img = next
	}
	if stdout.String() != ref.stdout {
		t.Fatalf("output across architectures differs from the uninterrupted run:\n%s\nwant:\n%s", stdout.String(), ref.stdout)
	}
}
