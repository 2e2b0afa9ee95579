package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/ternhq/tern/internal/image"
	"github.com/ternhq/tern/internal/process"
	"github.com/ternhq/tern/internal/wasi"
)

type resumeFlags struct {
	dirs     []string
	module   string
	engine   string
	cacheDir string
	freeze   freezeFlags
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
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return resumeImage(cmd.Context(), f, args[0])
		},
	}
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
	img, err := readImage(path)
	if err != nil {
		return err
	}
	wasm := img.Module
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
	rt, err := process.NewRuntime(ctx, process.Options{Engine: process.Engine(f.engine), CacheDir: f.cacheDir})
	if err != nil {
		return err
	}
	defer rt.Close(ctx)
	prog, err := process.Load(ctx, rt, wasm, true)
	if err != nil {
		return err
	}
	defer prog.Close(ctx)
	sys, err := wasi.Restore(&st, wasi.RestoreOptions{
		Stdio:    wasi.Stdio{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr},
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
	slog.Debug("resume", "image", path, "pages", len(img.Memory)/image.PageSize)
	return supervise(ctx, p, prog, f.freeze, f.engine)
}
