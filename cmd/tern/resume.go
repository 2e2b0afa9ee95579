package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/tetratelabs/wazero"

	"github.com/ternhq/tern/internal/image"
	"github.com/ternhq/tern/internal/migrate"
	"github.com/ternhq/tern/internal/process"
	"github.com/ternhq/tern/internal/wasi"
)

type resumeFlags struct {
	dirs     []string
	module   string
	engine   string
	cacheDir string
	freeze   freezeFlags
	incoming bool
}

func newResumeCommand() *cobra.Command {
	var f resumeFlags
	cmd := &cobra.Command{
		Use:   "resume [flags] IMAGE",
		Short: "Continue a frozen process",
		Long: `Continue a process frozen by 'tern run --checkpoint'. Its output continues on this
tern's stdout and stderr and it reads on from this tern's stdin. Preopened directories are
the ones it had, unless --dir HOST:GUEST maps a guest path to another host directory.
With --checkpoint it can be frozen again.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if f.incoming {
				return cobra.NoArgs(cmd, args)
			}
			return cobra.ExactArgs(1)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			path := ""
			if len(args) > 0 {
				path = args[0]
			}
			return resumeImage(cmd.Context(), f, path)
		},
	}
	cmd.Flags().BoolVar(&f.incoming, "incoming", false, "receive the process over --control from the agent moving it here, instead of from IMAGE")
	cmd.Flags().MarkHidden("incoming")
	cmd.Flags().StringArrayVar(&f.dirs, "dir", nil, "use host directory HOST for the guest's preopen GUEST (HOST:GUEST, repeatable)")
	cmd.Flags().StringVar(&f.module, "module", "", "the module, for an image that does not embed it (default: SHA256.wasm beside the image)")
	registerEngineFlags(cmd, &f.engine, &f.cacheDir)
	f.freeze.register(cmd)
	return cmd
}

func readImage(path string) (*image.Image, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	img, err := image.Decode(fh)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return img, nil
}

func resumeImage(ctx context.Context, f resumeFlags, path string) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := f.freeze.check(); err != nil {
		return err
	}
	if f.freeze.checkpoint != "" {
		f.freeze.catchSignals()
		defer signal.Stop(f.freeze.sigs)
	}
	hostDirs := map[string]string{}
	for _, d := range f.dirs {
		p, err := parseDir(d)
		if err != nil {
			return err
		}
		if abs, err := filepath.Abs(p.HostDir); err == nil {
			p.HostDir = abs
		}
		hostDirs[p.GuestPath] = p.HostDir
	}
	var ctl *control
	if f.freeze.control != "" {
		var err error
		if ctl, err = listenControl(f.freeze.control); err != nil {
			return err
		}
		defer ctl.Close()
	}
	var (
		img  *image.Image
		wasm []byte
		err  error
		// With --incoming the module arrives first and compiles while
		// memory is still arriving.
		loaded chan loadResult
	)
	if f.incoming {
		if ctl == nil {
			return errors.New("--incoming needs --control PATH to receive the process on")
		}
		conn, ok := <-ctl.requests()
		if !ok {
			return errors.New("--incoming: control socket closed")
		}
		defer conn.Close()
		in, err := receiveIncoming(conn, func(module []byte) {
			loaded = make(chan loadResult, 1)
			go func() {
				lr := loadProgram(ctx, f, module)
				if lr.err == nil {
					// The source freezes the process once it is told.
					conn.Write([]byte("compiled\n"))
				}
				loaded <- lr
			}()
		})
		if err != nil {
			return err
		}
		img, wasm = in.Image, in.Module
		defer func() {
			if conn != nil {
				conn.Close()
			}
		}()
		ready := func() error {
			if _, err := conn.Write([]byte("ready\n")); err != nil {
				return fmt.Errorf("incoming: %w", err)
			}
			line, err := bufio.NewReader(conn).ReadString('\n')
			if err != nil || line != "go\n" {
				return errors.New("incoming: the move was abandoned")
			}
			conn.Close()
			conn = nil
			return nil
		}
		return resumeLoaded(ctx, f, "incoming process", img, wasm, loaded, ctl, ready)
	}
	if img, err = readImage(path); err != nil {
		return err
	}
	wasm = img.Module
	switch {
	case f.module != "":
		b, err := os.ReadFile(f.module)
		if err != nil {
			return fmt.Errorf("read module: %w", err)
		}
		if sum := sha256.Sum256(b); !bytes.Equal(sum[:], img.ModuleHash[:]) {
			return fmt.Errorf("--module %s is not the module %s was frozen from (sha256 %x, image wants %x)", f.module, path, sum[:8], img.ModuleHash[:8])
		}
		wasm = b
	case wasm == nil:
		beside := moduleBeside(path, img.ModuleHash)
		b, err := os.ReadFile(beside)
		if err != nil {
			return fmt.Errorf("%s does not embed its module and %s is not beside it: give the module with --module", path, filepath.Base(beside))
		}
		if sum := sha256.Sum256(b); sum != img.ModuleHash {
			return fmt.Errorf("%s is not the module %s was frozen from (its sha256 is %x)", beside, path, sum[:8])
		}
		wasm = b
	}
	return resumeLoaded(ctx, f, path, img, wasm, nil, ctl, nil)
}

type loadResult struct {
	rt   wazero.Runtime
	prog *process.Program
	err  error
}

// loadProgram makes a runtime and compiles wasm for resuming.
func loadProgram(ctx context.Context, f resumeFlags, wasm []byte) loadResult {
	rt, err := process.NewRuntime(ctx, process.Options{Engine: process.Engine(f.engine), CacheDir: f.cacheDir})
	if err != nil {
		return loadResult{err: err}
	}
	prog, err := process.Load(ctx, rt, wasm, true)
	if err != nil {
		rt.Close(ctx)
		return loadResult{err: err}
	}
	return loadResult{rt: rt, prog: prog}
}

// receiveIncoming reads a migration stream from the agent.
func receiveIncoming(conn io.Reader, onModule func([]byte)) (*migrate.Incoming, error) {
	r, err := migrate.NewReader(conn)
	if err != nil {
		return nil, fmt.Errorf("incoming: %w", err)
	}
	in, err := migrate.Receive(r, onModule)
	if err != nil {
		return nil, fmt.Errorf("incoming: %w", err)
	}
	return in, nil
}

// resumeLoaded resumes img of module wasm (loaded, if not nil, delivers
// it compiled). ready, if not nil, runs once the process is ready to go
// and before it does: it may still call the resume off.
func resumeLoaded(ctx context.Context, f resumeFlags, path string, img *image.Image, wasm []byte, loaded chan loadResult, ctl *control, ready func() error) error {
	hostDirs := map[string]string{}
	for _, d := range f.dirs {
		p, err := parseDir(d)
		if err != nil {
			return err
		}
		if abs, err := filepath.Abs(p.HostDir); err == nil {
			p.HostDir = abs
		}
		hostDirs[p.GuestPath] = p.HostDir
	}
	var st wasi.State
	if err := st.UnmarshalBinary(img.WASI); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for guest := range hostDirs {
		found := false
		for _, p := range st.Preopens {
			found = found || p.GuestPath == guest
		}
		if !found {
			return fmt.Errorf("--dir: the process has no preopen %q", guest)
		}
	}
	var lr loadResult
	if loaded != nil {
		lr = <-loaded
	} else {
		lr = loadProgram(ctx, f, wasm)
	}
	if lr.err != nil {
		return lr.err
	}
	rt, prog := lr.rt, lr.prog
	defer rt.Close(ctx)
	defer prog.Close(ctx)
	stdio := wasi.Stdio{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	if ctl != nil {
		ctl.stdout.w, ctl.stderr.w = stdio.Stdout, stdio.Stderr
		stdio.Stdout, stdio.Stderr = &ctl.stdout, &ctl.stderr
	}
	sys, err := wasi.Restore(&st, wasi.RestoreOptions{
		Stdio:    stdio,
		HostDirs: hostDirs,
	})
	if err != nil {
		return fmt.Errorf("restore WASI state: %w", err)
	}
	defer sys.Close()
	p, err := process.Resume(ctx, rt, prog, img, sys)
	if err != nil {
		return err
	}
	defer p.Close(ctx)
	if ready != nil {
		if err := ready(); err != nil {
			return err
		}
	}
	slog.Debug("resume", "image", path, "pages", len(img.Memory)/image.PageSize)
	return supervise(ctx, p, prog, f.freeze, f.engine, ctl)
}
