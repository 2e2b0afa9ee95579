package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ternhq/tern/internal/dirty"
	"github.com/ternhq/tern/internal/image"
	"github.com/ternhq/tern/internal/migrate"
	"github.com/ternhq/tern/internal/process"
	"github.com/ternhq/tern/internal/wasi"
)

// The control socket (--control PATH) is the agent's line to a process it
// runs: over it the agent moves the process to another device. The agent
// connects and sends a command line; see serveControl.

// What the agent sends during a move: the pages the destination holds and,
// once it has compiled the module, permission to begin (and freeze); once
// the frozen state has gone out, the verdict.
const (
	haveList     = 'H'
	permitFreeze = 'F'

	verdictCommit = 'C' // the destination owns the process: end here
	verdictAbort  = 'A' // the move failed: go on here
)

// Pre-copy has converged when a round finds this few dirty pages, after
// maxRounds, or when rounds stop shrinking: the rest goes while frozen.
// The destination must be ready to receive within permitWait.
const (
	precopyDone = 32
	maxRounds   = 12
	permitWait  = 5 * time.Minute
)

// control is a process's control socket and what the agent learns from it.
type control struct {
	ln    net.Listener
	conns chan net.Conn
	// Output written by the guest so far: the agent drains this much from
	// the process's pipes before the destination may write.
	stdout, stderr countingWriter
}

// listenControl opens the control socket at path.
func listenControl(path string) (*control, error) {
	os.Remove(path) // left by a process that died
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("--control: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("--control: %w", err)
	}
	logf, err := os.OpenFile(path+".log", os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("--control: %w", err)
	}
	diag = logf
	c := &control{ln: ln, conns: make(chan net.Conn)}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				close(c.conns)
				return
			}
			c.conns <- conn
		}
	}()
	return c, nil
}

func (c *control) Close() {
	if c != nil {
		c.ln.Close()
	}
}

// stdio is the process's standard streams: this tern's, counted when the
// agent runs it.
func (c *control) stdio() wasi.Stdio {
	st := wasi.Stdio{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	if c != nil {
		c.stdout.w, c.stderr.w = st.Stdout, st.Stderr
		st.Stdout, st.Stderr = &c.stdout, &c.stderr
	}
	return st
}

// requests is nil without a control socket, so a select on it blocks.
func (c *control) requests() <-chan net.Conn {
	if c == nil {
		return nil
	}
	return c.conns
}

// diag is where tern tells the user about the process it runs (freezes,
// moves). Under an agent (--control PATH) it is the file PATH.log: the
// process's stderr goes into the grid as the program's own, and the agent
// counts it to know when it has all of it.
var diag io.Writer = os.Stderr

// countingWriter counts what passes through it.
type countingWriter struct {
	w io.Writer
	n atomic.Uint64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n.Add(uint64(n))
	return n, err
}

// serveControl runs one command from the agent: "checkpoint" (see
// checkpointOut), or "migrate": send the process down the connection as a
// migration stream (pre-copy rounds while it runs, then frozen), then wait
// for the verdict.
// Committed, the process ends here; aborted, it goes on. If the agent
// goes away before saying, the process must not go on (the destination
// may own it already) and must not be lost either: it is written to the
// checkpoint file and ends, and the agent decides when it is back.
func serveControl(ctx context.Context, conn net.Conn, p *process.Process, prog *process.Program, f freezeFlags, engine string, ctl *control) error {
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	line, err := br.ReadString('\n')
	if err != nil {
		return fmt.Errorf("control: %w", err)
	}
	conn.SetReadDeadline(time.Time{})
	switch cmd := strings.TrimSpace(line); cmd {
	case "migrate":
		return migrateOut(ctx, conn, br, p, prog, f, engine, ctl)
	case "checkpoint":
		return checkpointOut(ctx, conn, p, prog, f, engine)
	default:
		fmt.Fprintf(conn, "error: unknown command %q\n", cmd)
		return fmt.Errorf("control: unknown command %q", cmd)
	}
}

// checkpointOut sends an image of the process down conn and lets it go on:
// "ok HASH\n" (the module's sha256, which it stores beside its checkpoint
// file for the agent) and the image, or "error: …\n". The process is
// halted only while its memory is copied.
func checkpointOut(ctx context.Context, conn net.Conn, p *process.Process, prog *process.Program, f freezeFlags, engine string) error {
	if err := storeModuleBeside(f.checkpoint, prog.Wasm, prog.Hash); err != nil {
		fmt.Fprintf(conn, "error: store module: %v\n", err)
		return fmt.Errorf("checkpoint: %w", err)
	}
	fz, err := p.Freeze(ctx, f.timeout)
	if err != nil {
		fmt.Fprintf(conn, "error: %v\n", err)
		return fmt.Errorf("checkpoint: %w", err)
	}
	img := *fz.Image
	img.Memory = bytes.Clone(img.Memory)
	fz.Continue()
	img.Producer = producer(engine)
	fmt.Fprintf(conn, "ok %x\n", prog.Hash)
	if err := image.EncodeSigned(conn, &img, f.signer); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

// migrateOut sends the process down conn as a migration stream: see
// serveControl.
func migrateOut(ctx context.Context, conn net.Conn, br *bufio.Reader, p *process.Process, prog *process.Program, f freezeFlags, engine string, ctl *control) error {
	w := migrate.NewWriter(conn)
	s, err := migrate.NewSender(w, prog.Wasm)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	// The agent's messages: the pages the destination holds ('H', a count
	// and as many sha256s), its permit to freeze once it can run the
	// process ('F'), then the verdict (0: none, the agent went away).
	have := make(chan [][32]byte, 1)
	permit := make(chan struct{})
	verdict := make(chan byte, 1)
	go func() {
		for {
			b, err := br.ReadByte()
			switch {
			case err != nil:
				verdict <- 0
				return
			case b == haveList:
				var n uint32
				if binary.Read(br, binary.BigEndian, &n) != nil || n > migrate.MaxPages*4 {
					verdict <- 0
					return
				}
				hs := make([][32]byte, n)
				for i := range hs {
					if _, err := io.ReadFull(br, hs[i][:]); err != nil {
						verdict <- 0
						return
					}
				}
				have <- hs
			case b == permitFreeze:
				close(permit)
			default:
				verdict <- b
				return
			}
		}
	}()
	// The destination first compiles the module and says what it holds;
	// then rounds until they converge, and the freeze.
	select {
	case <-permit:
	case v := <-verdict:
		return fmt.Errorf("migrate: called off before it began (%q); the process goes on here", v)
	case <-time.After(permitWait):
		return errors.New("migrate: the destination did not get ready; the process goes on here")
	}
	select {
	case hs := <-have: // sent before the permit, if at all
		s.Have(hs)
	default:
	}
	prev := -1
	// Where the kernel tracks writes, a round looks only at the pages
	// written since the last; otherwise at all of them.
	var tr *dirty.Tracker
	defer func() {
		if tr != nil {
			tr.Close()
		}
	}()
	track := func(mem []byte) {
		if tr != nil && tr.Covers(mem) {
			if set, err := tr.Written(image.PageSize); err == nil {
				s.Only(set)
				return
			}
		}
		if tr != nil { // memory moved as it grew: start again
			tr.Close()
			tr = nil
		}
		tr, _ = dirty.Track(mem) // armed before this round's full look
	}
	for round := 1; ; round++ {
		mem := p.LiveMemory()
		track(mem)
		st, err := s.Round(mem)
		if err != nil {
			return fmt.Errorf("migrate: pre-copy: %w", err)
		}
		if st.Pages <= precopyDone || round >= maxRounds || (prev >= 0 && st.Pages*10 > prev*9) {
			break
		}
		prev = st.Pages
		select {
		case v := <-verdict:
			return fmt.Errorf("migrate: called off before the freeze (%q); the process goes on here", v)
		default:
		}
	}
	fz, err := p.Freeze(ctx, f.timeout)
	if err != nil {
		// The process goes on; the agent sees the stream break off.
		return fmt.Errorf("migrate: %w", err)
	}
	img := fz.Image
	img.Producer = producer(engine)
	track(img.Memory)
	if _, err := s.Finish(img, migrate.Final{Stdout: ctl.stdout.n.Load(), Stderr: ctl.stderr.n.Load(), Halt: fz.Halt}); err != nil {
		fz.Continue()
		return fmt.Errorf("migrate: send state: %w", err)
	}
	v := <-verdict
	switch {
	case v == verdictCommit:
		fz.Stop()
		fmt.Fprintln(diag, "tern: migrated")
		return nil
	case v == verdictAbort:
		fz.Continue()
		return errors.New("migrate: abandoned by the agent; the process goes on here")
	}
	// No verdict: keep the process, frozen, in its checkpoint (--control
	// requires one).
	_, err = f.writeCheckpoint(img, prog)
	fz.Stop()
	if err != nil {
		return fmt.Errorf("migrate: the agent went away during a move and no checkpoint could be written: %w", err)
	}
	fmt.Fprintf(diag, "tern: the agent went away during a move; frozen into %s\n", f.checkpoint)
	return nil
}
