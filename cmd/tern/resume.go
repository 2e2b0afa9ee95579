package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"time"

	"github.com/spf13/cobra"
	"github.com/tetratelabs/wazero"

	"github.com/ternhq/tern/internal/image"
	"github.com/ternhq/tern/internal/migrate"
	"github.com/ternhq/tern/internal/pki"
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
	have     string // with --incoming: an earlier image of the process, whose pages need not come again
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
	cmd.Flags().StringVar(&f.have, "have", "", "with --incoming: an earlier image of the process (`FILE`), whose pages need not come again")
	cmd.Flags().MarkHidden("have")
	cmd.Flags().StringArrayVar(&f.dirs, "dir", nil, "use host directory HOST for the guest's preopen GUEST (HOST:GUEST, repeatable)")
	cmd.Flags().StringVar(&f.module, "module", "", "the module, for an image that does not embed it (default: SHA256.wasm beside the image)")
	registerEngineFlags(cmd, &f.engine, &f.cacheDir)
	f.freeze.register(cmd)
	return cmd
}

// errUnsigned: an image carries no signature.
var errUnsigned = errors.New("the image is unsigned; tern resumes only images signed by this device or a node of its grid")

// checkSigner says whether an image signed with certificate cert (nil:
// unsigned) at created may be resumed on the device of data directory
// data.
func checkSigner(cert []byte, created time.Time, data string) error {
	if cert == nil {
		return errUnsigned
	}
	t, err := pki.LoadTrust(filepath.Join(data, "pki"))
	if err != nil {
		return err
	}
	if _, err := t.CheckSigner(cert, created); err != nil {
		return fmt.Errorf("refused: %w", err)
	}
	return nil
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
	hostDirs, err := parseHostDirs(f.dirs)
	if err != nil {
		return err
	}
	var ctl *control
	if f.freeze.control != "" {
		if ctl, err = listenControl(f.freeze.control); err != nil {
			return err
		}
		defer ctl.Close()
	}
	if f.incoming {
		if ctl == nil {
			return errors.New("--incoming needs --control PATH to receive the process on")
		}
		return resumeIncoming(ctx, f, hostDirs, ctl)
	}
	img, err := readImage(path)
	if err != nil {
		return err
	}
	if err := checkSigner(img.Signer, img.Created, f.freeze.data); err != nil {
		return fmt.Errorf("%s: %w", path, err)
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
	return resumeLoaded(ctx, f, path, img, wasm, hostDirs, ctl)
}

// addEarlierPages adds the non-zero pages of an earlier image of the
// process (of the module with hash) to store. An image that cannot be
// read, or is of another module, adds nothing: it only saves copying.
func addEarlierPages(store map[[32]byte][]byte, path string, hash [32]byte) {
	if path == "" {
		return
	}
	img, err := readImage(path)
	if err != nil || img.ModuleHash != hash {
		slog.Debug("earlier image not used", "image", path, "err", err)
		return
	}
	image.AddPages(store, img.Memory, false)
}

// parseHostDirs reads --dir HOST:GUEST flags into guest path -> host dir.
func parseHostDirs(dirs []string) (map[string]string, error) {
	hostDirs := map[string]string{}
	for _, d := range dirs {
		p, err := parseDir(d)
		if err != nil {
			return nil, err
		}
		if abs, err := filepath.Abs(p.HostDir); err == nil {
			p.HostDir = abs
		}
		hostDirs[p.GuestPath] = p.HostDir
	}
	return hostDirs, nil
}

// checkHostDirs refuses a --dir for a preopen the process does not have.
func checkHostDirs(st *wasi.State, hostDirs map[string]string) error {
	for guest := range hostDirs {
		if !slices.ContainsFunc(st.Preopens, func(p wasi.Preopen) bool { return p.GuestPath == guest }) {
			return fmt.Errorf("--dir: the process has no preopen %q", guest)
		}
	}
	return nil
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

// resumeLoaded resumes img of module wasm.
func resumeLoaded(ctx context.Context, f resumeFlags, path string, img *image.Image, wasm []byte, hostDirs map[string]string, ctl *control) error {
	var st wasi.State
	if err := st.UnmarshalBinary(img.WASI); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := checkHostDirs(&st, hostDirs); err != nil {
		return err
	}
	lr := loadProgram(ctx, f, wasm)
	if lr.err != nil {
		return lr.err
	}
	defer lr.rt.Close(ctx)
	defer lr.prog.Close(ctx)
	sys, err := wasi.Restore(&st, wasi.RestoreOptions{Stdio: ctl.stdio(), HostDirs: hostDirs})
	if err != nil {
		return fmt.Errorf("restore WASI state: %w", err)
	}
	defer sys.Close()
	p, err := process.Resume(ctx, lr.rt, lr.prog, img, sys)
	if err != nil {
		return err
	}
	defer p.Close(ctx)
	slog.Debug("resume", "image", path, "pages", len(img.Memory)/image.PageSize)
	return supervise(ctx, p, lr.prog, f.freeze, f.engine, ctl)
}

// resumeIncoming receives a process that moves here from the agent, over
// the control socket, and runs it once the agent says so. The module
// arrives first; it is compiled and instantiated while memory is still
// arriving, and memory is written straight into the instance.
func resumeIncoming(ctx context.Context, f resumeFlags, hostDirs map[string]string, ctl *control) error {
	conn, ok := <-ctl.requests()
	if !ok {
		return errors.New("--incoming: control socket closed")
	}
	defer conn.Close()
	r, err := migrate.NewReader(conn)
	if err != nil {
		return fmt.Errorf("incoming: %w", err)
	}
	// A blank WASI system until the process's own state has arrived.
	sys, err := wasi.New(wasi.Config{})
	if err != nil {
		return err
	}
	defer sys.Close()
	var (
		lr       loadResult
		p        *process.Process
		store    map[[32]byte][]byte // pages held here, by sha256
		ready    = make(chan struct{})
		readyErr error
		started  bool // the module came, and with it the loading
	)
	defer func() {
		if started {
			<-ready
		}
		if p != nil {
			p.Close(ctx)
		}
		if lr.err == nil && lr.rt != nil {
			lr.prog.Close(ctx)
			lr.rt.Close(ctx)
		}
	}()
	rc := &migrate.Receiver{
		OnModule: func(module []byte) {
			started = true
			go func() {
				defer close(ready)
				if lr = loadProgram(ctx, f, module); lr.err != nil {
					readyErr = lr.err
					return
				}
				if p, readyErr = process.Instantiate(ctx, lr.rt, lr.prog, sys); readyErr != nil {
					return
				}
				store = p.InitialPages()
				addEarlierPages(store, f.have, lr.prog.Hash)
				// Collected now, while there is little to collect, not
				// while the process is down.
				guestGCPolicy()
				// The source names the pages held here instead of
				// sending them, and freezes the process once told.
				hashes := make([]byte, 0, 32*len(store))
				for h := range store {
					hashes = append(hashes, h[:]...)
				}
				fmt.Fprintf(conn, "have %x\ncompiled\n", hashes)
			}()
		},
		Lookup: func(h [32]byte) []byte { return store[h] },
		Memory: func(pages int) ([]byte, error) {
			<-ready // Receiver takes no page before the module
			if readyErr != nil {
				return nil, readyErr
			}
			return p.MemoryForPages(pages)
		},
	}
	in, err := rc.Receive(r)
	if err != nil {
		if readyErr != nil {
			return fmt.Errorf("incoming: %w", readyErr)
		}
		return fmt.Errorf("incoming: %w", err)
	}
	if <-ready; readyErr != nil {
		return fmt.Errorf("incoming: %w", readyErr)
	}
	var st wasi.State
	if err := st.UnmarshalBinary(in.Image.WASI); err != nil {
		return fmt.Errorf("incoming: %w", err)
	}
	if err := checkHostDirs(&st, hostDirs); err != nil {
		return err
	}
	restored, err := wasi.Restore(&st, wasi.RestoreOptions{Stdio: ctl.stdio(), HostDirs: hostDirs})
	if err != nil {
		return fmt.Errorf("incoming: restore WASI state: %w", err)
	}
	sys.Adopt(restored)
	if err := p.Complete(ctx, in.Image, in.Pages); err != nil {
		return fmt.Errorf("incoming: %w", err)
	}
	if _, err := fmt.Fprintf(conn, "ready %d\n", st.StdinRead); err != nil {
		return fmt.Errorf("incoming: %w", err)
	}
	if line, err := bufio.NewReader(conn).ReadString('\n'); err != nil || line != "go\n" {
		return errors.New("incoming: the move was abandoned")
	}
	conn.Close()
	return supervise(ctx, p, lr.prog, f.freeze, f.engine, ctl)
}
