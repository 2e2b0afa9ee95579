package guestbench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// Guest is one benchmark program. It takes one argument, an amount of
// work, 0 meaning without end, and prints one line that depends only on
// that amount.
type Guest struct {
	Name string
	// Work is the argument for a run of the length the benchmark wants,
	// before scaling; Unit says what it counts.
	Work int
	Unit string
}

// Scaled is g's work times scale, at least 1.
func (g Guest) Scaled(scale float64) int {
	return max(1, int(float64(g.Work)*scale))
}

// Build builds every guest with build, which writes the guest's module
// to a file and returns its path, and returns the modules by name.
func Build(guests []Guest, build func(Guest) (string, error)) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, g := range guests {
		file, err := build(g)
		if err != nil {
			return nil, err
		}
		if out[g.Name], err = os.ReadFile(file); err != nil {
			return nil, fmt.Errorf("build guest %s: %w", g.Name, err)
		}
	}
	return out, nil
}

// RunTool runs tool with args in dir (the current directory if "") with
// env added to this process's environment; its error carries what the
// tool wrote to stderr, which says why a build failed.
func RunTool(ctx context.Context, dir string, env []string, tool string, args ...string) error {
	cmd := exec.CommandContext(ctx, tool, args...)
	cmd.Dir = dir
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %v\n%s", tool, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return nil
}
