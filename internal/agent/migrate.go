package agent

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ternhq/tern/internal/cluster"
	"github.com/ternhq/tern/internal/migrate"
)

// Moving a process from this device (the source) to another (the
// destination):
//
//  1. The source reads the process's record at revision R and asks its
//     tern child for a migration stream over the control socket: pre-copy
//     rounds while it runs, then, frozen, the rest.
//  2. The stream goes to the destination agent over mutual TLS
//     (POST /v1/incoming?id=&rev=R). Before the final state, the source
//     waits until all output the process wrote here is in the grid.
//  3. The destination starts `tern resume --incoming`, feeds it the stream,
//     and once it is ready to run, transfers the record from R to itself
//     (compare-and-set, epoch+1). Only then does it let it run.
//  4. Told the move succeeded, the source ends its frozen copy. Told it
//     failed, or cut off, the source fences: it rewrites the record at R
//     itself. If that succeeds, no destination can take it any more and
//     the process goes on here; if it fails, the destination won and the
//     copy here ends.
//
// So there is never a moment with two running copies: the source runs
// only while it holds R, and the destination only after it took R.

// Progress is what a move reports while it goes on, and at its end.
type Progress struct {
	Event  string `json:"event"` // round, final, done
	Round  int    `json:"round,omitempty"`
	Pages  int    `json:"pages,omitempty"` // memory pages of the process, in the round's event
	Bytes  int64  `json:"bytes"`           // stream bytes sent so far
	Named  int    `json:"named,omitempty"` // pages the destination held, named instead of sent
	Node   string `json:"node,omitempty"`
	Epoch  uint64 `json:"epoch,omitempty"`
	Millis struct {
		Downtime float64 `json:"downtime,omitempty"` // frozen until it ran on the destination
		Halt     float64 `json:"halt,omitempty"`     // of which reaching a safe point
		Total    float64 `json:"total,omitempty"`
	} `json:"ms"`
	Error string `json:"error,omitempty"`
	// Have, in the destination's "have" event: the sha256s of the pages
	// it holds already, which the source names instead of sending.
	Have []byte `json:"have,omitempty"`
}

// ErrMove marks a move that did not happen; the process goes on where it
// was.
var ErrMove = errors.New("move failed")

// drainTimeout bounds the wait for a process's output to reach the grid
// before the destination may write.
const drainTimeout = 30 * time.Second

// migrateOut moves process id from here to node. progress is called as
// the move goes on.
func (a *Agent) migrateOut(ctx context.Context, id, node string, progress func(Progress)) (Progress, error) {
	start := time.Now()
	v, err := a.reg.Get(ctx, id)
	if err != nil {
		return Progress{}, err
	}
	if v.Node != a.cfg.Name || v.State != cluster.StateRunning {
		return Progress{}, fmt.Errorf("%w: %s is %s on %s, not running here", ErrMove, id, v.State, v.Node)
	}
	if node == a.cfg.Name {
		return Progress{}, fmt.Errorf("%w: %s already runs on %s", ErrMove, id, node)
	}
	a.mu.Lock()
	c, ok := a.procs[id]
	a.mu.Unlock()
	if !ok {
		return Progress{}, fmt.Errorf("%w: %s does not run here any more", ErrMove, id)
	}
	dest, err := a.peer(ctx, node)
	if err != nil {
		return Progress{}, err
	}

	conn, err := dialControl(ctx, c)
	if err != nil {
		return Progress{}, fmt.Errorf("%w: reach %s: %w", ErrMove, id, err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "migrate\n"); err != nil {
		return Progress{}, fmt.Errorf("%w: %w", ErrMove, err)
	}
	pr, pw := io.Pipe()
	type relayed struct {
		relayStats
		err error
	}
	done := make(chan relayed, 1)
	go func() {
		st, err := a.relay(conn, pw, c, progress)
		pw.CloseWithError(err)
		done <- relayed{st, err}
	}()
	q := url.Values{"id": {id}, "rev": {strconv.FormatUint(v.Revision, 10)}}
	var res Progress
	err = a.peerStream(ctx, dest, "/v1/incoming?"+q.Encode(), pr, func(p Progress) {
		switch p.Event {
		case "have":
			if len(p.Have)%32 == 0 {
				msg := binary.BigEndian.AppendUint32([]byte{'H'}, uint32(len(p.Have)/32))
				conn.Write(append(msg, p.Have...))
			}
		case "compiled":
			conn.Write([]byte{'F'}) // the child may begin, and freeze
		}
	}, &res)
	pr.CloseWithError(errors.New("destination answered"))
	rel := <-done
	if err == nil && rel.err != nil {
		err = rel.err // cannot happen: the destination read the whole stream
	}
	if err == nil {
		crashPoint("die-after-commit")
		// The destination owns it: end the frozen copy here.
		c.migrated.Store(true)
		conn.Write([]byte{'C'})
		res.Event, res.Node = "done", node
		res.Millis.Downtime = ms(time.Since(rel.frozenAt))
		res.Millis.Halt = ms(rel.halt)
		res.Millis.Total = ms(time.Since(start))
		res.Named = rel.named
		a.log.Info("process moved", "id", id, "to", node, "epoch", res.Epoch,
			"downtime_ms", res.Millis.Downtime, "bytes", res.Bytes)
		return res, nil
	}
	// Fence: take revision R back, so that the destination cannot.
	if _, ferr := a.reg.Update(context.Background(), v, v.Proc); ferr == nil || !errors.Is(ferr, cluster.ErrConflict) {
		conn.Write([]byte{'A'})
		if ferr != nil {
			a.log.Error("fence after a failed move", "id", id, "err", ferr)
		}
		return Progress{}, fmt.Errorf("%w: %s stays on %s: %w", ErrMove, id, a.cfg.Name, err)
	}
	now, gerr := a.reg.Get(context.Background(), id)
	if gerr == nil && now.Node == node {
		// The destination took it before its answer was lost.
		c.migrated.Store(true)
		conn.Write([]byte{'C'})
		res = Progress{Event: "done", Node: node, Epoch: now.Epoch}
		res.Millis.Total = ms(time.Since(start))
		return res, nil
	}
	conn.Write([]byte{'A'})
	return Progress{}, fmt.Errorf("%w: %s: %w", ErrMove, id, err)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// relayStats is what the relay learns of a move on its way.
type relayStats struct {
	frozenAt time.Time     // when the final round began: the process is down
	halt     time.Duration // how long the freeze took to reach a safe point
	named    int           // pages named, not sent
}

// relay passes the child's migration stream on to w, reporting progress,
// and holds the final state back until the child's output is all in the
// grid.
func (a *Agent) relay(from io.Reader, to io.Writer, c *child, progress func(Progress)) (relayStats, error) {
	var st relayStats
	r, err := migrate.NewReader(from)
	if err != nil {
		return st, fmt.Errorf("from the process: %w", err)
	}
	w := migrate.NewWriter(to)
	for {
		f, err := r.Next()
		if err != nil {
			return st, fmt.Errorf("from the process: %w", err)
		}
		switch f.Type {
		case migrate.FrameRound:
			if err := w.Flush(); err != nil {
				return st, err
			}
			rd, err := migrate.ParseRound(f.Payload)
			if err != nil {
				return st, err
			}
			p := Progress{Event: "round", Bytes: w.Written(), Round: int(rd.N), Pages: rd.Pages}
			if rd.Final {
				st.frozenAt = time.Now()
				p.Event = "final"
			}
			progress(p)
		case migrate.FrameRef:
			st.named++
		case migrate.FrameFinal:
			fin, err := migrate.ParseFinal(f.Payload)
			if err != nil {
				return st, err
			}
			st.halt = fin.Halt
			if !c.stdout.waitFor(fin.Stdout, drainTimeout) || !c.stderr.waitFor(fin.Stderr, drainTimeout) {
				return st, errors.New("the process's output did not reach the grid")
			}
		}
		if err := w.Frame(f.Type, f.Payload); err != nil {
			return st, err
		}
		switch f.Type {
		case migrate.FrameEnd:
			return st, w.Flush()
		case migrate.FrameModule:
			// The destination compiles it before the source sends more.
			if err := w.Flush(); err != nil {
				return st, err
			}
		}
	}
}

// migrateIn receives process id, whose record the source read at rev,
// and runs it here once it holds the record.
func (a *Agent) migrateIn(ctx context.Context, from, id string, rev uint64, stream io.Reader, progress func(Progress)) (Progress, error) {
	v, err := a.reg.Get(ctx, id)
	if err != nil {
		return Progress{}, err
	}
	if v.Revision != rev {
		return Progress{}, fmt.Errorf("%w: %s changed since the move began", cluster.ErrConflict, id)
	}
	if v.Node != from || v.State != cluster.StateRunning {
		return Progress{}, fmt.Errorf("%w: %s is %s on %s, and %s cannot move it", ErrMove, id, v.State, v.Node, from)
	}
	args := []string{"resume", "--incoming"}
	if _, err := os.Stat(a.imagePath(id)); err == nil {
		// An earlier image of it here (it was frozen here once, or a move
		// away was cut off): its pages need not come again.
		args = append(args, "--have", a.imagePath(id))
	}
	c, err := a.spawn(id, v.Epoch+1, args, v.Stdin)
	if err != nil {
		return Progress{}, err
	}
	ok := false
	defer func() {
		if !ok {
			c.cmd.Process.Kill()
			c.migrated.Store(true) // it never was this device's process
			go a.reap(id, c)
		}
	}()
	conn, err := dialControl(ctx, c)
	if err != nil {
		return Progress{}, fmt.Errorf("%w: the receiving process did not start: %w", ErrMove, err)
	}
	defer conn.Close()
	copied := make(chan error, 1)
	var n int64
	go func() {
		var err error
		n, err = io.Copy(conn, stream)
		if err != nil {
			// The child waits for the rest of a stream that will not
			// come: closing its line ends it, and the wait below.
			conn.Close()
		}
		copied <- err
	}()
	// The child says "compiled" once it could run the process, which
	// lets the source freeze it, and "ready" once it has it all.
	lines := bufio.NewReader(conn)
	var stdinAt uint64 // how much input the process has read: "ready N"
	for _, want := range []string{"have ", "compiled\n", "ready "} {
		line, err := lines.ReadString('\n')
		var have []byte
		switch {
		case err != nil:
		case want == "have ":
			var ok bool
			if hexs, found := strings.CutPrefix(strings.TrimSuffix(line, "\n"), "have "); found {
				have, err = hex.DecodeString(hexs)
				ok = err == nil && len(have)%32 == 0
			}
			if !ok {
				err = fmt.Errorf("bad line %.40q", line)
			}
		case want == "ready ":
			_, err = fmt.Sscanf(line, "ready %d\n", &stdinAt)
		case line != want:
			err = fmt.Errorf("bad line %.40q", line)
		}
		if err != nil {
			if cerr := <-copied; cerr != nil {
				return Progress{}, fmt.Errorf("%w: receive %s: %w", ErrMove, id, cerr)
			}
			return Progress{}, fmt.Errorf("%w: %s could not be resumed here (see this agent's log)", ErrMove, id)
		}
		switch want {
		case "have ":
			progress(Progress{Event: "have", Have: have})
		case "compiled\n":
			progress(Progress{Event: "compiled"})
			crashPoint("die-after-compiled")
		}
	}
	if err := <-copied; err != nil {
		return Progress{}, fmt.Errorf("%w: receive %s: %w", ErrMove, id, err)
	}
	nv, err := a.reg.Transfer(ctx, v, a.cfg.Name)
	if err != nil {
		return Progress{}, fmt.Errorf("%w: %w", ErrMove, err)
	}
	ok = true
	c.stdout.held.Store(false)
	c.stderr.held.Store(false)
	a.feedInput(c, nv.Proc, stdinAt)
	if _, err := io.WriteString(conn, "go\n"); err != nil {
		// It owns the record but cannot be told to run: it died. Its
		// end is recorded by supervise.
		a.log.Error("process lost after taking it over", "id", id, "err", err)
	}
	go a.supervise(nv, c)
	a.log.Info("process moved here", "id", id, "from", from, "epoch", nv.Epoch, "bytes", n)
	return Progress{Event: "done", Node: a.cfg.Name, Epoch: nv.Epoch, Bytes: n}, nil
}

// reap waits for a child that is not supervised and forgets it.
func (a *Agent) reap(id string, c *child) {
	defer a.wg.Done()
	c.cmd.Wait()
	a.mu.Lock()
	if a.procs[id] == c {
		delete(a.procs, id)
	}
	a.mu.Unlock()
	close(c.done)
}

// dialControl connects to a child's control socket once it listens: a
// child just started may not have bound it yet, or (between its bind and
// its listen) may refuse a connection for a moment.
func dialControl(ctx context.Context, c *child) (net.Conn, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := net.DialTimeout("unix", c.control, time.Second)
		if err == nil {
			return conn, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("its control socket: %w", err)
		}
		select {
		case <-c.done:
			return nil, errors.New("the process ended")
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// writeProgress streams progress events as JSON lines.
func writeProgress(w http.ResponseWriter) func(Progress) {
	enc := json.NewEncoder(w)
	flusher, _ := w.(http.Flusher)
	return func(p Progress) {
		enc.Encode(p)
		if flusher != nil {
			flusher.Flush()
		}
	}
}

// MigrateSpec is the body of a move request.
type MigrateSpec struct {
	Node string `json:"node"`
}

// moveTimeout bounds a whole move.
const moveTimeout = 10 * time.Minute

// serveMigrate moves a process, answering with progress events as JSON
// lines; the last is "done" or "error". A process running elsewhere is
// moved by its owner, to which the request is passed on.
func (a *Agent) serveMigrate(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var spec MigrateSpec
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&spec); err != nil || spec.Node == "" {
		httpError(w, fmt.Errorf("migrate: want {\"node\": NODE}"), http.StatusBadRequest)
		return
	}
	if _, here := a.ownedHere(w, r, id, spec); !here {
		return
	}
	if _, err := a.peer(r.Context(), spec.Node); err != nil {
		httpError(w, err, http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	progress := writeProgress(w)
	// The move goes on if the one who asked goes away: stopping it half
	// way would only cost a second freeze.
	ctx, cancel := context.WithTimeout(context.Background(), moveTimeout)
	defer cancel()
	res, err := a.migrateOut(ctx, id, spec.Node, progress)
	if err != nil {
		progress(Progress{Event: "error", Error: err.Error()})
		return
	}
	progress(res)
}

// forward passes a request on to the agent of node and its answer back.
func (a *Agent) forward(w http.ResponseWriter, r *http.Request, node string, body any) {
	n, err := a.peer(r.Context(), node)
	if err != nil {
		httpError(w, err, 0)
		return
	}
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	resp, err := a.peerSend(r.Context(), n, r.Method, r.URL.Path, rd)
	if err != nil {
		httpError(w, err, 0)
		return
	}
	defer resp.Body.Close()
	w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			w.Write(buf[:n])
			if flusher != nil {
				flusher.Flush()
			}
		}
		if err != nil {
			return
		}
	}
}

// ownedHere reads process id's record for a request about it. If another
// node runs it and the request came from this device's CLI, the request
// (with body) goes on to that node, whose answer is passed back, and
// ownedHere says false; a request from another agent is never passed on.
func (a *Agent) ownedHere(w http.ResponseWriter, r *http.Request, id string, body any) (cluster.Versioned, bool) {
	v, err := a.reg.Get(r.Context(), id)
	if err != nil {
		httpError(w, err, 0)
		return v, false
	}
	if v.Node != a.cfg.Name && v.State == cluster.StateRunning && !fromPeer(r) {
		a.forward(w, r, v.Node, body)
		return v, false
	}
	return v, true
}

// serveKill ends a process, on whichever node runs it.
func (a *Agent) serveKill(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	v, here := a.ownedHere(w, r, id, nil)
	if !here {
		return
	}
	var err error
	if err = a.kill(id); err != nil {
		httpError(w, err, 0)
		return
	}
	if v, err = a.reg.Get(r.Context(), id); err != nil {
		httpError(w, err, 0)
		return
	}
	writeJSON(w, v.Proc)
}

// peerStream makes a request of node n whose answer is progress events,
// calling fn with each until the last ("done", into res, or "error").
func (a *Agent) peerStream(ctx context.Context, n cluster.Node, path string, body io.Reader, fn func(Progress), res *Progress) error {
	resp, err := a.peerSend(ctx, n, http.MethodPost, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if *res, err = readProgress(resp.Body, fn); err != nil {
		return fmt.Errorf("node %s: %w", n.Name, err)
	}
	return nil
}

// maxProgressLine bounds one progress event: a "have" event lists up to
// a sha256 per page of memory, in base64.
const maxProgressLine = migrate.MaxPages*32*4/3 + 4096

// readProgress reads progress events (JSON lines), calling fn with each
// until the last: it returns a "done" event, or an "error" event as an
// ErrMove error.
func readProgress(r io.Reader, fn func(Progress)) (Progress, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxProgressLine)
	for sc.Scan() {
		var p Progress
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			return Progress{}, err
		}
		switch p.Event {
		case "done":
			return p, nil
		case "error":
			return p, remoteError{msg: p.Error, kind: ErrMove}
		}
		if fn != nil {
			fn(p)
		}
	}
	if err := sc.Err(); err != nil {
		return Progress{}, err
	}
	return Progress{}, errors.New("stopped answering before the move ended")
}

// fault is TERN_FAULT: the tests make an agent die at a chosen point of a
// move, the way a power cut would, to check that a process then runs in
// exactly one place.
var fault = os.Getenv("TERN_FAULT")

// crashPoint kills the agent outright if the test asked for it here.
func crashPoint(name string) {
	if fault == name {
		p, _ := os.FindProcess(os.Getpid())
		p.Kill()
		select {}
	}
}
