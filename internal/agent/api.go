package agent

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/ternhq/tern/internal/cluster"
	"github.com/ternhq/tern/internal/pki"
)

// maxModule bounds a module sent to the agent.
const maxModule = 1 << 30

// The API: JSON over HTTPS on the agent's Unix socket, where only this
// device's own node certificate is let in (see localTLS).
//
//	POST /v1/procs               RunSpec -> cluster.Proc
//	GET  /v1/procs               -> []cluster.Proc
//	GET  /v1/procs/{id}          -> cluster.Proc
//	POST /v1/procs/{id}/kill     -> cluster.Proc (as it ended), on any node
//	POST /v1/procs/{id}/migrate  MigrateSpec -> Progress per line, the last
//	                                "done" or "error"
//	POST /v1/procs/{id}/checkpoint -> cluster.ImageInfo, on any node
//	POST /v1/procs/{id}/stdin?eof=1  body: input for the process, as it
//	                                comes; eof: end its input after it
//	GET  /v1/images/{id}         -> the stored checkpoint (image format)
//	GET  /v1/modules/{hash}      -> a stored module
//	POST /v1/tokens              TokenRequest -> TokenResponse (hub only)
//	GET  /v1/procs/{id}/logs?from=SEQ&epoch=E&follow=1
//	                             -> cluster.Chunk per line, until the end
//	                                of the output (follow: until the
//	                                process ended and its output is out)
//	GET  /v1/nodes               -> []cluster.Node
//	POST /v1/nodes/{name}/remove -> Removal
func (a *Agent) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/procs", a.serveRun)
	mux.HandleFunc("GET /v1/procs", func(w http.ResponseWriter, r *http.Request) {
		all, err := a.reg.List(r.Context())
		if err != nil {
			httpError(w, err, 0)
			return
		}
		procs := make([]cluster.Proc, 0, len(all))
		for _, v := range all {
			procs = append(procs, v.Proc)
		}
		writeJSON(w, procs)
	})
	mux.HandleFunc("GET /v1/procs/{id}", func(w http.ResponseWriter, r *http.Request) {
		v, err := a.reg.Get(r.Context(), r.PathValue("id"))
		if err != nil {
			httpError(w, err, 0)
			return
		}
		writeJSON(w, v.Proc)
	})
	mux.HandleFunc("POST /v1/procs/{id}/kill", a.serveKill)
	mux.HandleFunc("POST /v1/procs/{id}/migrate", a.serveMigrate)
	mux.HandleFunc("POST /v1/procs/{id}/checkpoint", a.serveCheckpoint)
	mux.HandleFunc("POST /v1/procs/{id}/stdin", a.serveStdin)
	mux.HandleFunc("GET /v1/images/{id}", a.serveImage)
	mux.HandleFunc("GET /v1/modules/{hash}", a.serveModule)
	mux.HandleFunc("POST /v1/tokens", func(w http.ResponseWriter, r *http.Request) {
		var req TokenRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil {
			httpError(w, fmt.Errorf("token: %w", err), http.StatusBadRequest)
			return
		}
		tok, exp, err := a.createToken(r.Context(), req.TTL)
		if err != nil {
			httpError(w, err, http.StatusBadRequest)
			return
		}
		writeJSON(w, TokenResponse{Token: tok, Expires: exp, Join: a.cfg.advertise()})
	})
	mux.HandleFunc("GET /v1/procs/{id}/logs", a.logs)
	mux.HandleFunc("POST /v1/nodes/{name}/remove", a.serveRemoveNode)
	mux.HandleFunc("GET /v1/nodes", func(w http.ResponseWriter, r *http.Request) {
		nodes, err := a.nodes.List(r.Context())
		if err != nil {
			httpError(w, err, 0)
			return
		}
		writeJSON(w, nodes)
	})
	return mux
}

// serveRun starts a process here, or on the node the spec names.
func (a *Agent) serveRun(w http.ResponseWriter, r *http.Request) {
	var spec RunSpec
	if err := json.NewDecoder(io.LimitReader(r.Body, maxModule*2)).Decode(&spec); err != nil {
		httpError(w, fmt.Errorf("run: %w", err), http.StatusBadRequest)
		return
	}
	if spec.Node != "" && spec.Node != a.cfg.Name {
		if fromPeer(r) {
			httpError(w, fmt.Errorf("run: %s is not node %s", a.cfg.Name, spec.Node), http.StatusBadRequest)
			return
		}
		a.forward(w, r, spec.Node, spec)
		return
	}
	v, err := a.start(r.Context(), spec)
	if err != nil {
		httpError(w, err, 0)
		return
	}
	writeJSON(w, v.Proc)
}

// logs streams a process's output as JSON lines.
func (a *Agent) logs(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	q := r.URL.Query()
	from, epoch := uint64(1), uint64(0)
	var err error
	if s := q.Get("from"); s != "" {
		if from, err = strconv.ParseUint(s, 10, 64); err != nil || from == 0 {
			httpError(w, fmt.Errorf("logs: from %q: want a sequence number from 1", s), http.StatusBadRequest)
			return
		}
	}
	if s := q.Get("epoch"); s != "" {
		if epoch, err = strconv.ParseUint(s, 10, 64); err != nil {
			httpError(w, fmt.Errorf("logs: epoch %q: %w", s, err), http.StatusBadRequest)
			return
		}
	}
	follow := q.Get("follow") == "1"
	if _, err := a.reg.Get(r.Context(), id); err != nil {
		httpError(w, err, 0)
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	// The end: the last message the process has when the request comes,
	// or, when following, when it has stopped running.
	end := make(chan uint64, 1)
	go func(end chan<- uint64) {
		for {
			v, err := a.reg.Get(ctx, id)
			if err != nil {
				cancel()
				return
			}
			if !follow || v.State != cluster.StateRunning {
				last, err := a.out.Last(ctx, id)
				if err != nil {
					cancel()
					return
				}
				end <- last
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}(end)
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	enc := json.NewEncoder(w)
	chunks := make(chan cluster.Chunk)
	go func() {
		a.out.Follow(ctx, id, from, epoch, func(c cluster.Chunk) error {
			select {
			case chunks <- c:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	seen := from - 1                // the last sequence passed on
	last, known := uint64(0), false // where the output ends, once known
	for !known || seen < last {
		select {
		case <-ctx.Done():
			return
		case last = <-end:
			known, end = true, nil
		case c := <-chunks:
			seen = c.Seq
			if c.Stale {
				continue
			}
			if enc.Encode(c) != nil {
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// apiError is an error as the API sends it.
type apiError struct {
	Error string `json:"error"`
	Kind  string `json:"kind,omitempty"` // which sentinel it wraps
}

var sentinels = map[string]error{
	"not-found": cluster.ErrNotFound,
	"exists":    cluster.ErrExists,
	"conflict":  cluster.ErrConflict,
	"bad-id":    cluster.ErrBadID,
}

func httpError(w http.ResponseWriter, err error, status int) {
	e := apiError{Error: err.Error()}
	for k, s := range sentinels {
		if errors.Is(err, s) {
			e.Kind = k
		}
	}
	if status == 0 {
		switch e.Kind {
		case "not-found":
			status = http.StatusNotFound
		case "bad-id":
			status = http.StatusBadRequest
		case "exists", "conflict":
			status = http.StatusConflict
		default:
			status = http.StatusInternalServerError
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(e)
}

// ErrNoAgent: no agent answers on the data directory's socket.
var ErrNoAgent = errors.New("no tern agent running")

// ErrNoCredentials: the CLI cannot read the device's key that the agent's
// API requires.
var ErrNoCredentials = errors.New("no credentials for the agent")

// Client talks to the agent of a data directory, over mutual TLS on its
// socket, with the device's node key in the directory as credentials.
type Client struct {
	dir string
	hc  *http.Client
}

// NewClient returns a client for the agent whose data directory is dir.
func NewClient(dir string) *Client {
	sock := filepath.Join(dir, SocketName)
	var (
		once  sync.Once
		tc    *tls.Config
		tcErr error
	)
	return &Client{dir: dir, hc: &http.Client{Transport: &http.Transport{
		DialTLSContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			c, err := d.DialContext(ctx, "unix", sock)
			if err != nil {
				return nil, fmt.Errorf("%w on %s (start one with `tern agent --data %s`): %w", ErrNoAgent, dir, dir, err)
			}
			once.Do(func() {
				id, err := pki.LoadIdentity(filepath.Join(dir, "pki"))
				if err != nil {
					tcErr = fmt.Errorf("%w of %s (run tern as the agent's user, with --data %s): %w", ErrNoCredentials, dir, dir, err)
					return
				}
				tc = id.ClientTLS(id.Name)
			})
			if tcErr != nil {
				c.Close()
				return nil, tcErr
			}
			tlsc := tls.Client(c, tc)
			if err := tlsc.HandshakeContext(ctx); err != nil {
				c.Close()
				return nil, fmt.Errorf("agent of %s: %w", dir, err)
			}
			return tlsc, nil
		},
	}}}
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	resp, err := c.send(ctx, method, path, rd)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(out)
}

// send makes a request and returns a successful response, or the error
// the agent reported.
func (c *Client) send(ctx context.Context, method, path string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, "https://agent"+path, body)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			return nil, ue.Err
		}
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, decodeAPIError(resp)
	}
	return resp, nil
}

func decodeAPIError(resp *http.Response) error {
	var e apiError
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || e.Error == "" {
		return fmt.Errorf("agent: %s", resp.Status)
	}
	return remoteError{msg: e.Error, kind: sentinels[e.Kind]}
}

// remoteError is an error the agent reported, matching (errors.Is) the
// sentinel it wrapped there.
type remoteError struct {
	msg  string
	kind error
}

func (e remoteError) Error() string { return e.msg }
func (e remoteError) Unwrap() error { return e.kind }

// Run starts a process.
func (c *Client) Run(ctx context.Context, spec RunSpec) (cluster.Proc, error) {
	var p cluster.Proc
	return p, c.do(ctx, http.MethodPost, "/v1/procs", spec, &p)
}

// Procs lists the grid's processes.
func (c *Client) Procs(ctx context.Context) ([]cluster.Proc, error) {
	var ps []cluster.Proc
	return ps, c.do(ctx, http.MethodGet, "/v1/procs", nil, &ps)
}

// Proc reads one process's record.
func (c *Client) Proc(ctx context.Context, id string) (cluster.Proc, error) {
	var p cluster.Proc
	return p, c.do(ctx, http.MethodGet, "/v1/procs/"+url.PathEscape(id), nil, &p)
}

// Kill ends a process and returns its final record.
func (c *Client) Kill(ctx context.Context, id string) (cluster.Proc, error) {
	var p cluster.Proc
	return p, c.do(ctx, http.MethodPost, "/v1/procs/"+url.PathEscape(id)+"/kill", nil, &p)
}

// Nodes lists the grid's live nodes.
func (c *Client) Nodes(ctx context.Context) ([]cluster.Node, error) {
	var ns []cluster.Node
	return ns, c.do(ctx, http.MethodGet, "/v1/nodes", nil, &ns)
}

// Logs calls fn with a process's output from sequence from (at epoch),
// until the output's end (follow: until the process stopped running and
// all its output is out).
func (c *Client) Logs(ctx context.Context, id string, from, epoch uint64, follow bool, fn func(cluster.Chunk) error) error {
	q := url.Values{"from": {strconv.FormatUint(max(from, 1), 10)}, "epoch": {strconv.FormatUint(epoch, 10)}}
	if follow {
		q.Set("follow", "1")
	}
	resp, err := c.send(ctx, http.MethodGet, "/v1/procs/"+url.PathEscape(id)+"/logs?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		var ch cluster.Chunk
		if err := json.Unmarshal(sc.Bytes(), &ch); err != nil {
			return fmt.Errorf("logs %s: %w", id, err)
		}
		if err := fn(ch); err != nil {
			return err
		}
	}
	return sc.Err()
}

// TokenRequest asks the hub for a join token.
type TokenRequest struct {
	TTL time.Duration `json:"ttl"`
}

// TokenResponse is a join token and where to join with it.
type TokenResponse struct {
	Token   string    `json:"token"`
	Expires time.Time `json:"expires"`
	Join    string    `json:"join"` // the hub's address
}

// CreateToken asks the hub for a join token.
func (c *Client) CreateToken(ctx context.Context, ttl time.Duration) (TokenResponse, error) {
	var t TokenResponse
	return t, c.do(ctx, http.MethodPost, "/v1/tokens", TokenRequest{TTL: ttl}, &t)
}

// Migrate moves a process to node, calling progress with every event;
// it returns the last, or the error the move ended with.
func (c *Client) Migrate(ctx context.Context, id, node string, progress func(Progress)) (Progress, error) {
	b, _ := json.Marshal(MigrateSpec{Node: node})
	resp, err := c.send(ctx, http.MethodPost, "/v1/procs/"+url.PathEscape(id)+"/migrate", bytes.NewReader(b))
	if err != nil {
		return Progress{}, err
	}
	defer resp.Body.Close()
	res, err := readProgress(resp.Body, progress)
	if err != nil && !errors.Is(err, ErrMove) {
		err = fmt.Errorf("migrate %s: %w", id, err)
	}
	return res, err
}

// serveStdin passes what the request body brings, as it comes, into the
// process's input in the grid; with eof=1, a body that ends (not one cut
// off) ends the input too.
func (a *Agent) serveStdin(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	v, err := a.reg.Get(r.Context(), id)
	if err != nil {
		httpError(w, err, 0)
		return
	}
	if !v.Stdin {
		httpError(w, fmt.Errorf("%s does not read input from the grid (run it with -i)", id), http.StatusBadRequest)
		return
	}
	buf := make([]byte, 64<<10)
	for {
		n, err := r.Body.Read(buf)
		if n > 0 {
			if werr := a.in.Write(r.Context(), id, buf[:n]); werr != nil {
				httpError(w, werr, 0)
				return
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return // cut off: the input stays open
		}
	}
	if r.URL.Query().Get("eof") == "1" {
		if err := a.in.Close(r.Context(), id); err != nil {
			httpError(w, err, 0)
			return
		}
	}
	writeJSON(w, struct{}{})
}

// Stdin sends what r yields into a process's input, as it comes; at r's
// end, the input ends too.
func (c *Client) Stdin(ctx context.Context, id string, r io.Reader) error {
	resp, err := c.send(ctx, http.MethodPost, "/v1/procs/"+url.PathEscape(id)+"/stdin?eof=1", r)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}
