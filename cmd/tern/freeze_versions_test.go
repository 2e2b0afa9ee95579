package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// claimedGoVersions are the toolchains whose guests tern says it can
// freeze (goguest.MinVersion through MaxVersion): the latest patch release
// of each, plus whatever go is installed.
var claimedGoVersions = []string{"go1.21.13", "go1.22.12", "go1.23.12", "go1.24.13", "go1.25.14", ""}

// Every claimed Go version: a guest built by it (stripped, as releases
// often are) is frozen three times, each time resumed in a new process,
// and its output matches an uninterrupted run. The thorough property test
// covers the oldest and newest versions; this one keeps the middle honest.
func TestFreezeGoVersions(t *testing.T) {
	cache := cacheDirForTests(t)
	for _, v := range claimedGoVersions {
		name := v
		if name == "" {
			name = "installed"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			wasm := filepath.Join(dir, "archhop.wasm")
			cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", wasm, ".")
			cmd.Dir = filepath.Join("testdata", "archhop")
			cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
			if v != "" {
				cmd.Env = append(cmd.Env, "GOTOOLCHAIN="+v)
			}
			if msg, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("build with %s: %v\n%s", name, err, msg)
			}
			ref := runTern(t, dir, nil, "run", "--cache-dir", cache, wasm)
			if ref.code != 0 {
				t.Fatalf("uninterrupted run: %d\n%s", ref.code, ref.stderr)
			}
			var out strings.Builder
			img := ""
			for i, after := range []string{"250ms", "600ms", "400ms", ""} {
				args := []string{"--cache-dir", cache}
				next := filepath.Join(dir, fmt.Sprintf("%d.img", i))
				if after != "" {
					args = append(args, "--checkpoint", next, "--freeze-after", after)
				}
				var res result
				if img == "" {
					res = runTern(t, dir, nil, append(append([]string{"run"}, args...), wasm)...)
				} else {
					res = runTern(t, dir, nil, append(append([]string{"resume"}, args...), img)...)
				}
				if res.code != 0 {
					t.Fatalf("segment %d: exit %d\n%s", i, res.code, res.stderr)
				}
				out.WriteString(res.stdout)
				if after == "" {
					break
				}
				if !strings.Contains(res.stderr, "tern: frozen (") {
					t.Fatalf("segment %d ended before its freeze:\n%s", i, res.stderr)
				}
				img = next
			}
			if out.String() != ref.stdout {
				t.Fatalf("frozen three times, the output differs:\n%s\nwant:\n%s", out.String(), ref.stdout)
			}
			info := runTern(t, dir, nil, "inspect", img)
			if v != "" && !strings.Contains(info.stdout, "Go "+v) {
				t.Errorf("inspect does not name %s:\n%s", v, info.stdout)
			}
		})
	}
}
