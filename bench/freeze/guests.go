package main

import (
	"context"
	"embed"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"

	"github.com/ternhq/tern/bench/internal/guestbench"
)

// guestSources holds one directory per guest, each a single main.go. Under
// testdata so that `go build ./...` and `go vet ./...` leave them alone.
//
//go:embed testdata/guests
var guestSources embed.FS

// guestGoMod is the go.mod each guest is built with: its own module, so
// the tern module's requirements do not shape it. 1.22 for range over
// integers.
const guestGoMod = "module %s\n\ngo 1.22\n"

// guests are the benchmark programs, each with the work for a run of
// roughly 100-300 ms on the compiler.
var guests = []guestbench.Guest{
	{Name: "pingpong", Work: 20000, Unit: "round trips x 4 pairs"},
	{Name: "alloc", Work: 150, Unit: "trees of 8191 nodes"},
	{Name: "compute", Work: 1500, Unit: "x 1000 n-body steps"},
	{Name: "sleeper", Work: 60, Unit: "naps x 4 goroutines"},
}

// idle guests sleep most of the time; timing them says nothing about the
// rewrite, but freezing them exercises a guest blocked in WASI. The
// others are busy: they compute, allocate or switch goroutines all the
// time, and are timed prepared against unmodified.
var idle = map[string]bool{"sleeper": true}

// buildGuests compiles every guest with GOOS=wasip1 GOARCH=wasm into dir
// and returns the modules by name.
func buildGuests(ctx context.Context, dir string) (map[string][]byte, error) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		return nil, fmt.Errorf("the go command is needed to build the guests: %w", err)
	}
	return guestbench.Build(guests, func(g guestbench.Guest) (string, error) {
		src, err := guestSources.ReadFile(path.Join("testdata/guests", g.Name, "main.go"))
		if err != nil {
			return "", err
		}
		gdir := filepath.Join(dir, g.Name)
		if err := os.MkdirAll(gdir, 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(gdir, "main.go"), src, 0o644); err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(gdir, "go.mod"), fmt.Appendf(nil, guestGoMod, g.Name), 0o644); err != nil {
			return "", err
		}
		wasm := filepath.Join(dir, g.Name+".wasm")
		if err := guestbench.RunTool(ctx, gdir, []string{"GOOS=wasip1", "GOARCH=wasm", "GOWORK=off"}, goTool, "build", "-o", wasm, "."); err != nil {
			return "", fmt.Errorf("build guest %s: %w", g.Name, err)
		}
		return wasm, nil
	})
}
