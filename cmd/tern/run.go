package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ternhq/tern/internal/process"
	"github.com/ternhq/tern/internal/wasi"
)

type runFlags struct {
	dirs     []string
	env      []string
	engine   string
	seed     uint64
	cacheDir string
	freeze   freezeFlags
	on       string // through the agent, on this node or "auto"
	attach   bool
	stdin    bool
	format   string
}

func newRunCommand() *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run [flags] MODULE [ARGS...]",
		Short: "Run a WASI command module",
		Long: `Run a WASI (preview1) command module. tern's exit status is the guest's exit code;
a trap prints its message and wasm stack trace and exits 134; an error of tern's own exits 125.
Flags end at MODULE or at --.

With --checkpoint FILE the process can be frozen: on SIGINT or SIGTERM, or after
--freeze-after, it is captured into FILE and tern exits 0; 'tern resume FILE' continues it.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var seed *uint64
			if cmd.Flags().Changed("seed") {
				seed = &f.seed
			}
			if f.on != "" {
				for _, fl := range []string{"dir", "seed", "checkpoint", "freeze-after", "engine", "cache-dir"} {
					if cmd.Flags().Changed(fl) {
						return fmt.Errorf("--%s: %w", fl, errAgentFlags)
					}
				}
				if err := checkFormat(f.format); err != nil {
					return err
				}
				return runOnAgent(cmd.Context(), f.freeze.data, f.on, f.attach, f.stdin, f.format, f.env, args[0], args[1:])
			}
			if f.attach || f.stdin || cmd.Flags().Changed("output") {
				return errors.New("-a, -i and -o are for a process run through the agent: use them with --on")
			}
			return runModule(cmd.Context(), f, seed, args[0], args[1:])
		},
	}
	cmd.Flags().SetInterspersed(false)
	cmd.Flags().StringArrayVar(&f.dirs, "dir", nil, "preopen host directory HOST as GUEST (HOST[:GUEST], repeatable)")
	cmd.Flags().StringArrayVar(&f.env, "env", nil, "set guest environment variable K=V (repeatable)")
	registerEngineFlags(cmd, &f.engine, &f.cacheDir)
	cmd.Flags().Uint64Var(&f.seed, "seed", 0, "seed the guest's random source, making the run deterministic")
	f.freeze.register(cmd)
	cmd.Flags().StringVar(&f.on, "on", "", "run through the agent, on node `NODE` (or auto), detached: print the process id")
	cmd.Flags().BoolVarP(&f.attach, "attach", "a", false, "with --on: stay attached, printing the output, and exit with the process's code")
	cmd.Flags().BoolVarP(&f.stdin, "interactive", "i", false, "with --on: the process reads input from the grid (tern attach; with -a, this terminal's)")
	cmd.Flags().StringVarP(&f.format, "output", "o", "table", "with --on: table (the id, or attached, the output) or json (the process's record, or attached, output pieces as JSON lines)")
	return cmd
}

// registerEngineFlags adds the flags every command that runs a module has:
// which engine, and where compiled code is cached.
func registerEngineFlags(cmd *cobra.Command, engine, cacheDir *string) {
	cmd.Flags().StringVar(engine, "engine", "", "compiler or interpreter (default: compiler where wazero has one)")
	cmd.Flags().StringVar(cacheDir, "cache-dir", "", `compilation cache directory ("-" for none; default: the user cache dir)`)
}

// parseDir splits HOST[:GUEST]. A Windows drive letter is part of HOST.
func parseDir(s string) (wasi.Preopen, error) {
	if s == "" {
		return wasi.Preopen{}, fmt.Errorf("--dir: empty")
	}
	start := 0
	if runtime.GOOS == "windows" && len(s) >= 2 && s[1] == ':' {
		start = 2
	}
	host, guest := s, s
	if i := strings.IndexByte(s[start:], ':'); i >= 0 {
		host, guest = s[:start+i], s[start+i+1:]
	}
	if host == "" || guest == "" {
		return wasi.Preopen{}, fmt.Errorf("--dir %q: want HOST[:GUEST]", s)
	}
	return wasi.Preopen{HostDir: host, GuestPath: guest}, nil
}

func runModule(ctx context.Context, f runFlags, seed *uint64, path string, args []string) error {
	if ctx == nil {
		ctx = context.Background()
	}
	cfg := wasi.Config{
		Args:   append([]string{path}, args...),
		Env:    f.env,
		Stdin:  os.Stdin,
		Stdout: os.Stdout,
		Stderr: os.Stderr,
		Seed:   seed,
	}
	for _, kv := range f.env {
		if i := strings.IndexByte(kv, '='); i <= 0 {
			return fmt.Errorf("--env %q: want K=V", kv)
		}
	}
	for _, d := range f.dirs {
		p, err := parseDir(d)
		if err != nil {
			return err
		}
		// Recorded in images: a resume from another directory must find
		// the same host directory.
		if abs, err := filepath.Abs(p.HostDir); err == nil {
			p.HostDir = abs
		}
		cfg.Preopens = append(cfg.Preopens, p)
	}
	if err := f.freeze.check(); err != nil {
		return err
	}
	if f.freeze.checkpoint != "" {
		f.freeze.catchSignals()
		defer signal.Stop(f.freeze.sigs)
	}
	var ctl *control
	if f.freeze.control != "" {
		var err error
		if ctl, err = listenControl(f.freeze.control); err != nil {
			return err
		}
		defer ctl.Close()
		st := ctl.stdio()
		cfg.Stdout, cfg.Stderr = st.Stdout, st.Stderr
	}
	wasm, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read module: %w", err)
	}
	rt, err := process.NewRuntime(ctx, process.Options{Engine: process.Engine(f.engine), CacheDir: f.cacheDir})
	if err != nil {
		return err
	}
	defer rt.Close(ctx)
	var prog *process.Program
	if f.freeze.checkpoint != "" {
		prog, err = loadCapturable(ctx, rt, path, wasm, f.cacheDir)
	} else {
		prog, err = process.Load(ctx, rt, wasm, false)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer prog.Close(ctx)
	sys, err := wasi.New(cfg)
	if err != nil {
		return err
	}
	defer sys.Close()
	slog.Debug("run", "module", path, "args", args, "preopens", len(cfg.Preopens))
	p, err := process.Start(ctx, rt, prog, sys)
	if err != nil {
		return err
	}
	defer p.Close(ctx)
	return supervise(ctx, p, prog, f.freeze, f.engine, ctl)
}

// hostExitCode fits a guest's 32-bit exit code to the host's: Unix keeps
// only the low 8 bits, which would turn 256 into success.
func hostExitCode(code uint32) int {
	if runtime.GOOS != "windows" && code > 255 {
		return 255
	}
	return int(code)
}
