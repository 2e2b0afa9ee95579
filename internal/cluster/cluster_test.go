package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

func startTest(t *testing.T, dir string) (*Server, *nats.Conn) {
	t.Helper()
	s, err := StartServer(ServerConfig{Name: "test", DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := s.Connect("test")
	if err != nil {
		s.Shutdown()
		t.Fatal(err)
	}
	return s, nc
}

func TestRegistry(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, nc := startTest(t, dir)
	reg, err := OpenRegistry(ctx, nc)
	if err != nil {
		t.Fatal(err)
	}
	p := Proc{ID: "p1", Node: "a", State: StateRunning, Module: "00ff"}
	v, err := reg.Create(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Create(ctx, p); !errors.Is(err, ErrExists) {
		t.Fatalf("second create: %v, want ErrExists", err)
	}
	for _, bad := range []Proc{
		{ID: "a.b", Node: "a", State: StateRunning},
		{ID: "", Node: "a", State: StateRunning},
		{ID: "p2", State: StateRunning},
		{ID: "p2", Node: "a", State: "dancing"},
	} {
		if _, err := reg.Create(ctx, bad); !errors.Is(err, ErrBadID) && !errors.Is(err, ErrBadProc) {
			t.Errorf("create %+v: %v, want ErrBadID or ErrBadProc", bad, err)
		}
	}
	if _, err := reg.Get(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get missing: %v, want ErrNotFound", err)
	}

	// Many transfers race from one revision: exactly one wins.
	var wg sync.WaitGroup
	var mu sync.Mutex
	var won []Versioned
	conflicts := 0
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nv, err := reg.Transfer(ctx, v, fmt.Sprintf("n%d", i))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won = append(won, nv)
			case errors.Is(err, ErrConflict):
				conflicts++
			default:
				t.Errorf("transfer: %v", err)
			}
		}()
	}
	wg.Wait()
	if len(won) != 1 || conflicts != 15 {
		t.Fatalf("%d transfers won and %d conflicted, want 1 and 15", len(won), conflicts)
	}
	got, err := reg.Get(ctx, "p1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Node != won[0].Node || got.Epoch != 1 || got.Revision != won[0].Revision {
		t.Fatalf("after the transfer: %+v, want %+v", got, won[0])
	}

	// Epochs move with owners and only with them.
	stay := got.Proc
	stay.Epoch++
	if _, err := reg.Update(ctx, got, stay); !errors.Is(err, ErrBadProc) {
		t.Fatalf("epoch change without a move: %v, want ErrBadProc", err)
	}
	move := got.Proc
	move.Node = "elsewhere"
	if _, err := reg.Update(ctx, got, move); !errors.Is(err, ErrBadProc) {
		t.Fatalf("move without an epoch change: %v, want ErrBadProc", err)
	}
	frozen := got.Proc
	frozen.State = StateFrozen
	fv, err := reg.Update(ctx, got, frozen)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Update(ctx, got, frozen); !errors.Is(err, ErrConflict) {
		t.Fatalf("update from a stale revision: %v, want ErrConflict", err)
	}

	if _, err := reg.Create(ctx, Proc{ID: "p2", Node: "a", State: StateRunning}); err != nil {
		t.Fatal(err)
	}
	list, err := reg.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 {
		t.Fatalf("listed %d processes, want 2: %+v", len(list), list)
	}

	// Acknowledged records survive a restart of the server.
	nc.Close()
	s.Shutdown()
	s, nc = startTest(t, dir)
	defer s.Shutdown()
	defer nc.Close()
	reg, err = OpenRegistry(ctx, nc)
	if err != nil {
		t.Fatal(err)
	}
	again, err := reg.Get(ctx, "p1")
	if err != nil {
		t.Fatal(err)
	}
	if again.Revision != fv.Revision || again.State != StateFrozen || again.Epoch != 1 {
		t.Fatalf("after a restart: %+v, want %+v", again, fv)
	}
	if err := reg.Delete(ctx, got); !errors.Is(err, ErrConflict) {
		t.Fatalf("delete at a stale revision: %v, want ErrConflict", err)
	}
	if err := reg.Delete(ctx, again); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Get(ctx, "p1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get deleted: %v, want ErrNotFound", err)
	}
}

func TestOutputFollow(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, nc := startTest(t, t.TempDir())
	defer s.Shutdown()
	defer nc.Close()
	out, err := OpenOutput(ctx, nc)
	if err != nil {
		t.Fatal(err)
	}
	w1, _ := out.Writer(ctx, "p1", 1, "stdout")
	e1, _ := out.Writer(ctx, "p1", 1, "stderr")
	w2, _ := out.Writer(ctx, "p1", 2, "stdout")
	other, _ := out.Writer(ctx, "p2", 1, "stdout")
	big := bytes.Repeat([]byte("0123456789abcdef"), maxChunk/16*2+3) // three messages
	for _, step := range []struct {
		w    *OutputWriter
		data []byte
	}{
		{w1, []byte("one\n")}, {other, []byte("not mine\n")}, {e1, []byte("err\n")},
		{w2, []byte("two\n")}, {w1, []byte("stale\n")}, {w2, big},
	} {
		if n, err := step.w.Write(step.data); err != nil || n != len(step.data) {
			t.Fatalf("write: %d, %v", n, err)
		}
	}
	if _, err := out.Writer(ctx, "p1", 1, "stdin"); err == nil {
		t.Fatal("a writer for stdin")
	}

	follow := func(from, epoch uint64) (stdout, stderr string, chunks []Chunk) {
		fctx, fcancel := context.WithCancel(ctx)
		defer fcancel()
		var o, e bytes.Buffer
		err := out.Follow(fctx, "p1", from, epoch, func(c Chunk) error {
			if c.Stale {
				return nil
			}
			chunks = append(chunks, c)
			if c.Stream == "stderr" {
				e.Write(c.Data)
			} else {
				o.Write(c.Data)
			}
			if bytes.HasSuffix(o.Bytes(), big) {
				fcancel()
			}
			return nil
		})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("follow: %v", err)
		}
		return o.String(), e.String(), chunks
	}
	stdout, stderr, chunks := follow(1, 0)
	if want := "one\ntwo\n" + string(big); stdout != want || stderr != "err\n" {
		t.Fatalf("followed stdout %d bytes, stderr %q; want %d bytes (stale and other processes' output dropped) and %q", len(stdout), stderr, len(want), "err\n")
	}
	if last, err := out.Last(ctx, "p1"); err != nil || last != chunks[len(chunks)-1].Seq {
		t.Fatalf("last output of p1: %d, %v; want %d", last, err, chunks[len(chunks)-1].Seq)
	}
	if last, err := out.Last(ctx, "p3"); err != nil || last != 0 {
		t.Fatalf("last output of a silent process: %d, %v; want 0", last, err)
	}
	// Following on from a sequence continues where a follower stopped.
	last := chunks[2] // "two\n", the new owner's first
	rest, _, _ := follow(last.Seq+1, last.Epoch)
	if rest != string(big) {
		t.Fatalf("following from %d at epoch %d got %d bytes, want the last %d", last.Seq+1, last.Epoch, len(rest), len(big))
	}
}

func TestNodes(t *testing.T) {
	ctx := context.Background()
	s, nc := startTest(t, t.TempDir())
	defer s.Shutdown()
	defer nc.Close()
	if _, err := OpenNodes(ctx, nc, time.Millisecond); err == nil {
		t.Fatal("a heartbeat lifetime of 1ms accepted")
	}
	nodes, err := OpenNodes(ctx, nc, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := nodes.Announce(ctx, Node{Name: "bad name"}); err == nil {
		t.Fatal("announced a node named with a space")
	}
	hctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- nodes.Heartbeat(hctx, func() Node { return Node{Name: "kept", Engine: "compiler"} })
	}()
	if err := nodes.Announce(ctx, Node{Name: "once", Engine: "compiler"}); err != nil {
		t.Fatal(err)
	}
	names := func() map[string]bool {
		list, err := nodes.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]bool{}
		for _, n := range list {
			m[n.Name] = true
		}
		return m
	}
	for start := time.Now(); ; time.Sleep(10 * time.Millisecond) {
		if got := names(); got["kept"] && got["once"] {
			break
		} else if time.Since(start) > 10*time.Second {
			t.Fatalf("nodes %v, want kept and once", got)
		}
	}
	// The node that announced once ages out; the heartbeating one stays.
	deadline := time.Now().Add(20 * time.Second)
	for names()["once"] {
		if time.Now().After(deadline) {
			t.Fatal("a node that stopped announcing itself is still listed after 20s (ttl 1s)")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !names()["kept"] {
		t.Fatal("the heartbeating node dropped out")
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if names()["kept"] {
		t.Fatal("a node that stopped cleanly is still listed")
	}
}

// collector is an io.WriteCloser for Feed.
type collector struct {
	mu     sync.Mutex
	b      bytes.Buffer
	closed bool
}

func (c *collector) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.b.Write(p)
}

func (c *collector) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	return nil
}

// Input is fed from any byte offset (as a new owner does from what the
// process has read), in order, to its end, and only the process's own.
func TestInputFeed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, nc := startTest(t, t.TempDir())
	defer s.Shutdown()
	defer nc.Close()
	in, err := OpenInput(ctx, nc)
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("x"), maxChunk+10)
	for _, w := range []struct {
		id   string
		data []byte
	}{{"p1", []byte("hello ")}, {"p2", []byte("other")}, {"p1", []byte("world\n")}, {"p1", big}} {
		if err := in.Write(ctx, w.id, w.data); err != nil {
			t.Fatal(err)
		}
	}
	all := append([]byte("hello world\n"), big...)
	for _, from := range []uint64{0, 3, 6, 12, uint64(len(all))} {
		var c collector
		fed := make(chan error, 1)
		go func() { fed <- in.Feed(ctx, "p1", from, &c) }()
		if from == 0 {
			time.Sleep(50 * time.Millisecond) // the end comes while it waits
			if err := in.Close(ctx, "p1"); err != nil {
				t.Fatal(err)
			}
		}
		if err := <-fed; err != nil {
			t.Fatalf("feed from %d: %v", from, err)
		}
		if !c.closed || !bytes.Equal(c.b.Bytes(), all[from:]) {
			t.Fatalf("feed from %d: %q… (closed %v), want %d bytes", from, c.b.Bytes()[:min(20, c.b.Len())], c.closed, len(all)-int(from))
		}
	}
	if err := in.Write(ctx, "bad id", nil); !errors.Is(err, ErrBadID) {
		t.Errorf("bad id: %v", err)
	}
}
