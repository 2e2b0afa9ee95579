package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/ternhq/tern/internal/atomicfile"
	"github.com/ternhq/tern/internal/image"
	"github.com/ternhq/tern/internal/pki"
	"github.com/ternhq/tern/internal/process"
	"github.com/ternhq/tern/internal/wasi"
)

// freezeFlags are the flags of run and resume that make a process freezable.
type freezeFlags struct {
	checkpoint string
	after      time.Duration
	timeout    time.Duration
	embed      bool
	control    string // the agent's control socket (see control.go)
	data       string // the data directory, whose keys sign images
	signer     *image.Signer
	// sigs receives SIGINT and SIGTERM from catchSignals on, so that one
	// that comes while the module still loads freezes it once it runs
	// instead of killing it.
	sigs chan os.Signal
}

// catchSignals starts catching SIGINT and SIGTERM for the freeze, once.
func (f *freezeFlags) catchSignals() {
	if f.sigs == nil {
		f.sigs = make(chan os.Signal, 1)
		signal.Notify(f.sigs, os.Interrupt, syscall.SIGTERM)
	}
}

func (f *freezeFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.checkpoint, "checkpoint", "", "on SIGINT/SIGTERM (or --freeze-after) freeze the process into `FILE` and exit 0")
	cmd.Flags().DurationVar(&f.after, "freeze-after", 0, "freeze into the --checkpoint file after this long")
	cmd.Flags().DurationVar(&f.timeout, "freeze-timeout", process.DefaultFreezeTimeout, "say so when a freeze finds no safe point in this long; tern keeps trying, and a signal then stops the process without a checkpoint")
	cmd.Flags().StringVar(&f.control, "control", "", "listen on Unix socket `PATH` for the agent's commands (moving the process); needs --checkpoint")
	cmd.Flags().MarkHidden("control")
	cmd.Flags().StringVar(&f.data, "data", defaultDataDir(), "the data directory ($TERN_DATA): its keys sign images and say which images to trust; with --on, its agent runs the process")
	cmd.Flags().BoolVar(&f.embed, "embed-module", true, "put the module in the image; false stores it beside the image as SHA256.wasm, once for all images of it")
}

func (f *freezeFlags) check() error {
	if f.after < 0 {
		return fmt.Errorf("--freeze-after %v: must not be negative", f.after)
	}
	if f.control != "" && f.checkpoint == "" {
		return errors.New("--control needs --checkpoint FILE, where a process whose move was cut off is kept")
	}
	if f.after > 0 && f.checkpoint == "" {
		return errors.New("--freeze-after needs --checkpoint FILE to freeze into")
	}
	if f.checkpoint != "" {
		// Fail now, not after an hour of running, if the image cannot be written.
		dir := filepath.Dir(f.checkpoint)
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return fmt.Errorf("--checkpoint %s: directory %s does not exist", f.checkpoint, dir)
		}
		if st, err := os.Stat(f.checkpoint); err == nil && st.IsDir() {
			return fmt.Errorf("--checkpoint %s: is a directory", f.checkpoint)
		}
		s, err := pki.LoadSigner(filepath.Join(f.data, "pki"))
		if err != nil {
			return fmt.Errorf("--checkpoint: no key to sign images with: %w", err)
		}
		f.signer = &image.Signer{Key: s.Key, Cert: s.Cert}
	}
	return nil
}

// supervise runs p to its end. With a checkpoint file it also freezes p
// into it on SIGINT/SIGTERM or after --freeze-after. A freeze that fails
// never costs the process: it keeps running. One that timed out is tried
// again at once, and one whose state cannot be captured at this moment
// (a file open with no path left, say) again after a growing pause,
// until it lands or p ends; a signal while it retries stops p without a
// checkpoint.
func supervise(ctx context.Context, p *process.Process, prog *process.Program, f freezeFlags, engine string, ctl *control) error {
	if !gcPolicySet {
		guestGCPolicy()
	}
	type runResult struct {
		code uint32
		err  error
	}
	done := make(chan runResult, 1)
	go func() {
		code, err := p.Run(ctx)
		done <- runResult{code, err}
	}()
	var trigger <-chan time.Time
	var sigs chan os.Signal
	if f.checkpoint != "" {
		f.catchSignals()
		sigs = f.sigs
		defer signal.Stop(sigs)
		if f.after > 0 {
			t := time.NewTimer(f.after)
			defer t.Stop()
			trigger = t.C
		}
	}
	var retry <-chan time.Time // non-nil while a failed freeze is being retried
	retryWhy := ""
	var backoff time.Duration // pause before the next retry of an uncapturable state
	retryNow := make(chan time.Time)
	close(retryNow)
	freeze := func(why string) error {
		fz, err := p.Freeze(ctx, f.timeout)
		if errors.Is(err, process.ErrNotRunning) {
			return nil // it ended meanwhile; done says how
		}
		if errors.Is(err, process.ErrFreezeTimeout) {
			if retry == nil {
				fmt.Fprintf(diag, "tern: no safe point within %v (the guest may be in a loop without a preemption point: one that calls nothing, or only small leaf functions); still trying — signal again to stop it without a checkpoint\n", f.timeout)
			}
			retry, retryWhy = retryNow, why
			return nil
		}
		if errors.Is(err, wasi.ErrUncapturable) {
			// It may pass: the file gets closed, the socket shut.
			if backoff == 0 {
				fmt.Fprintf(diag, "tern: freeze: %v; the process keeps running and tern tries again — signal again to stop it without a checkpoint\n", err)
				backoff = 10 * time.Millisecond
			} else if backoff < 250*time.Millisecond {
				backoff *= 2
			}
			retry, retryWhy = time.After(backoff), why
			return nil
		}
		retry, backoff = nil, 0
		if err != nil {
			// The guest went on (or ended, which done reports).
			fmt.Fprintf(diag, "tern: freeze: %v; the process keeps running\n", err)
			return nil
		}
		img := fz.Image
		img.Producer = producer(engine)
		size, err := f.writeCheckpoint(img, prog)
		if err != nil {
			// Nothing is lost: the process goes on, and a later signal
			// can try again.
			fz.Continue()
			fmt.Fprintf(diag, "tern: freeze: %v; the process keeps running\n", err)
			return nil
		}
		fz.Stop()
		fmt.Fprintf(diag, "tern: frozen (%s) into %s: %d KiB of memory in %d bytes, halted in %v\n",
			why, f.checkpoint, len(img.Memory)/1024, size, fz.Halt.Round(time.Microsecond))
		return nil
	}
	for {
		select {
		case r := <-done:
			if errors.Is(r.err, process.ErrFrozen) {
				return nil
			}
			if r.err != nil {
				return r.err
			}
			if r.code != 0 {
				return exitError{code: hostExitCode(r.code)}
			}
			return nil
		case s := <-sigs:
			if retry != nil {
				return fmt.Errorf("%v while freezing: stopped without a checkpoint", s)
			}
			if err := freeze(s.String()); err != nil {
				return err
			}
		case <-retry:
			if err := freeze(retryWhy); err != nil {
				return err
			}
		case <-trigger:
			if err := freeze("after " + f.after.String()); err != nil {
				return err
			}
		case conn, ok := <-ctl.requests():
			if !ok {
				ctl = nil
				continue
			}
			if err := serveControl(ctx, conn, p, prog, f, engine, ctl); err != nil {
				fmt.Fprintf(diag, "tern: %v\n", err)
			}
		}
	}
}

// writeCheckpoint writes img of prog into the checkpoint file, with its
// module embedded or stored beside it as the flags say, and returns the
// image's size.
func (f freezeFlags) writeCheckpoint(img *image.Image, prog *process.Program) (int64, error) {
	if f.embed {
		img.Module = prog.Wasm
	} else if err := storeModuleBeside(f.checkpoint, prog.Wasm, prog.Hash); err != nil {
		return 0, err
	}
	return writeImage(f.checkpoint, img, f.signer)
}

// moduleBeside is where an image that does not embed its module finds it.
func moduleBeside(imagePath string, hash [32]byte) string {
	return filepath.Join(filepath.Dir(imagePath), hex.EncodeToString(hash[:])+".wasm")
}

// storeModuleBeside writes the module next to the image unless an intact
// copy is there already.
func storeModuleBeside(imagePath string, wasm []byte, hash [32]byte) error {
	path := moduleBeside(imagePath, hash)
	if b, err := os.ReadFile(path); err == nil && sha256.Sum256(b) == hash {
		return nil
	}
	return atomicfile.Write(path, wasm, 0o600)
}

// writeImage encodes img into path through a temporary file, so a crash
// mid-write never leaves a truncated image where a good one was.
func writeImage(path string, img *image.Image, s *image.Signer) (int64, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tern-image-*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name())
	if err := image.EncodeSigned(tmp, img, s); err != nil {
		tmp.Close()
		return 0, err // says "encode image" or "write image" itself
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return 0, err
	}
	st, err := tmp.Stat()
	if err != nil {
		tmp.Close()
		return 0, err
	}
	if err := tmp.Close(); err != nil {
		return 0, err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return 0, err
	}
	return st.Size(), nil
}

func producer(engine string) string {
	v := "devel"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version
	}
	e, err := process.Engine(engine).Resolve()
	if err != nil {
		e = process.Engine(engine)
	}
	return fmt.Sprintf("tern %s %s/%s %s", v, runtime.GOOS, runtime.GOARCH, e)
}

// gcPolicySet: guestGCPolicy ran already (a process moved here runs it
// before it is let go, so that its collection is not downtime).
var gcPolicySet bool

// gcHeadroom is how much tern's heap (the guest's memory included) may
// grow before a collection runs while the guest does.
const gcHeadroom = 1 << 30

// guestGCPolicy keeps the Go garbage collector from starting while the
// guest runs, except when the heap has grown by gcHeadroom. The Go runtime
// cannot stop compiled guest code for a collection's stop-the-world
// phases: a collection that starts while the guest computes without host
// calls stalls all of tern (the freezer, timers, signal handling) until
// the guest next calls the host, which may be never. What tern allocates
// while a guest runs is small (WASI calls, a freeze's image), so the
// headroom is reached, if at all, by a guest growing its memory.
func guestGCPolicy() {
	gcPolicySet = true
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(int64(ms.Sys) + gcHeadroom)
}
