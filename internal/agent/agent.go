package agent

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ternhq/tern/internal/atomicfile"
	"github.com/ternhq/tern/internal/cluster"
	"github.com/ternhq/tern/internal/discover"
	"github.com/ternhq/tern/internal/facts"
	"github.com/ternhq/tern/internal/pki"
)

// Config configures an agent.
type Config struct {
	Name    string // the node's name in the grid (default: the host name)
	DataDir string // NATS store, modules, images, compilation cache, socket
	// Tern is the command the agent runs processes with: the tern
	// executable, possibly behind an emulator (default: this executable).
	Tern   []string
	Engine string // compiler or interpreter; "" lets tern choose
	Logger *slog.Logger
	// Listen (host:port) opens the agent to the grid: other agents move
	// processes to it there, and a hub serves the grid's NATS on the next
	// port. Advertise is the address others use (default: Listen).
	Listen, Advertise string
	// Join is a hub's address to join with Token, on first start.
	Join, Token string
	// NATS, if set, is an external NATS cluster (with JetStream) that holds
	// the grid's state instead of the hub's embedded server; the URL
	// carries its credentials (nats://user:password@host:port, or tls://
	// with NATSCreds). The first agent still makes the grid's CA and
	// others still --join it for their certificates.
	NATS, NATSCreds string
	// Announce: with Listen on an address that is not loopback, announce
	// the agent on the LAN by mDNS.
	Announce bool
}

func (c Config) advertise() string {
	if c.Advertise != "" {
		return c.Advertise
	}
	return c.Listen
}

// SocketName is the agent's API socket inside its data directory.
const SocketName = "agent.sock"

// heartbeatTTL is how long a node stays listed after its last heartbeat.
const heartbeatTTL = 6 * time.Second

// Agent is a running agent.
type Agent struct {
	cfg         Config
	log         *slog.Logger
	srv         *cluster.Server
	nc          *nats.Conn
	reg         *cluster.Registry
	out         *cluster.Output
	in          *cluster.Input
	nodes       *cluster.Nodes
	images      *cluster.Images
	ca          *pki.CA // on the hub only
	id          *pki.Identity
	tokens      jetstream.KeyValue // on the hub only
	certs       jetstream.KeyValue // certificates issued, by node
	revokedKV   jetstream.KeyValue
	revoked     *pki.Revocations // what every handshake refuses
	hub         hubInfo          // where the hub is, on a joined device
	speed       float64          // the device's speed score, measured at start
	factsWarned bool             // a failing fact is logged once
	mu          sync.Mutex
	procs       map[string]*child // processes running here
	wg          sync.WaitGroup
	closed      bool
}

// child is a process this agent runs.
type child struct {
	cmd     *exec.Cmd
	done    chan struct{}
	control string // its control socket (see tern run --control)
	// What the agent has passed on of its output, against which a move
	// waits until the destination may write.
	stdout, stderr *counted
	// migrated: the process moved on; its end here is not its end.
	migrated atomic.Bool
	stdin    *os.File // the write end of its input, if it reads the grid's
}

// feedInput passes the grid's input for process p to child c, from byte
// from on, until c ends.
func (a *Agent) feedInput(c *child, p cluster.Proc, from uint64) {
	if c.stdin == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-c.done
		cancel()
	}()
	go func() {
		defer c.stdin.Close()
		if err := a.in.Feed(ctx, p.ID, from, c.stdin); err != nil && ctx.Err() == nil {
			a.log.Warn("input feed stopped", "id", p.ID, "err", err)
		}
	}()
}

// Run runs an agent until ctx ends. Its processes are frozen into images
// in the data directory when it stops.
func Run(ctx context.Context, cfg Config) error {
	if cfg.DataDir == "" {
		return errors.New("agent: no data directory")
	}
	if cfg.Name == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("agent: node name: %w", err)
		}
		cfg.Name = h
	}
	if len(cfg.Tern) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("agent: own executable: %w", err)
		}
		cfg.Tern = []string{exe}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	for _, d := range []string{"", "images", "cache", "run"} {
		if err := os.MkdirAll(filepath.Join(cfg.DataDir, d), 0o700); err != nil {
			return fmt.Errorf("agent: %w", err)
		}
	}
	a := &Agent{cfg: cfg, log: cfg.Logger, procs: map[string]*child{}}
	if fault != "" {
		a.log.Warn("TERN_FAULT is set: this agent will die on purpose during a move", "at", fault)
	}
	ln, err := a.listen()
	if err != nil {
		return err
	}
	defer ln.Close()
	if cfg.Listen != "" {
		if host, _, err := net.SplitHostPort(cfg.advertise()); err != nil || net.ParseIP(host).IsUnspecified() {
			return fmt.Errorf("agent: other devices cannot reach %q: give --advertise HOST:PORT", cfg.advertise())
		}
	}
	err = a.openGrid(ctx)
	if a.srv != nil {
		defer a.srv.Shutdown()
	}
	if err != nil {
		return err
	}
	defer a.nc.Close()
	if a.ca != nil {
		js, err := jetstream.New(a.nc)
		if err != nil {
			return err
		}
		if a.tokens, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: tokenBucket, Description: "tern join tokens: hash of the secret and expiry", History: 1}); err != nil {
			return fmt.Errorf("agent: tokens: %w", err)
		}
	}
	if a.reg, err = cluster.OpenRegistry(ctx, a.nc); err != nil {
		return err
	}
	if a.out, err = cluster.OpenOutput(ctx, a.nc); err != nil {
		return err
	}
	if a.in, err = cluster.OpenInput(ctx, a.nc); err != nil {
		return err
	}
	if a.nodes, err = cluster.OpenNodes(ctx, a.nc, heartbeatTTL); err != nil {
		return err
	}
	if a.images, err = cluster.OpenImages(ctx, a.nc); err != nil {
		return err
	}
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	if err := a.openMembership(ctx, stop); err != nil {
		return err
	}
	if err := a.markOrphans(ctx); err != nil {
		return err
	}

	var gln net.Listener
	if cfg.Listen != "" {
		if gln, err = net.Listen("tcp", cfg.Listen); err != nil {
			return fmt.Errorf("agent: --listen: %w", err)
		}
	}
	hbCtx, stopHB := context.WithCancel(context.Background())
	hbDone := make(chan error, 1)
	a.speed = facts.Speed()
	go func() { hbDone <- a.nodes.Heartbeat(hbCtx, a.node) }()
	httpSrv := &http.Server{Handler: a.routes(), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 2)
	go func() { served <- httpSrv.Serve(tls.NewListener(ln, a.localTLS())) }()
	gridSrv := &http.Server{Handler: a.gridRoutes(), ReadHeaderTimeout: 10 * time.Second, TLSConfig: a.serverTLS(),
		ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelDebug)}
	if gln != nil {
		go func() { served <- gridSrv.Serve(tls.NewListener(gln, gridSrv.TLSConfig)) }()
	}
	if an := a.announce(ctx); an != nil {
		defer an.Close()
	}
	a.log.Info("agent running", "node", cfg.Name, "socket", filepath.Join(cfg.DataDir, SocketName))

	select {
	case <-ctx.Done():
		if cause := context.Cause(ctx); errors.Is(cause, ErrRemoved) {
			a.log.Error("stopping: this device was removed from the grid", "err", cause)
			err = cause
		}
	case err = <-served:
		err = fmt.Errorf("agent: API: %w", err)
	case err = <-hbDone:
		err = fmt.Errorf("agent: heartbeat: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	httpSrv.Shutdown(sctx)
	gridSrv.Shutdown(sctx)
	a.stopAll()
	stopHB()
	if e := <-hbDone; err == nil && e != nil {
		err = e
	}
	return err
}

func (a *Agent) node() cluster.Node {
	engine := a.cfg.Engine
	if engine == "" {
		engine = "compiler"
		if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
			engine = "interpreter"
		}
	}
	f, err := facts.Read()
	if err != nil && !a.factsWarned {
		// What could be read is published; what could not stays unknown.
		a.log.Warn("device facts", "err", err)
		a.factsWarned = true
	}
	return cluster.Node{Name: a.cfg.Name, Engine: engine, Addr: a.cfg.advertise(), Speed: a.speed, Facts: f}
}

// announce tells the LAN about this agent, if it is to and can be reached
// from it: an address only this host can reach has nothing to tell.
func (a *Agent) announce(ctx context.Context) *discover.Announcer {
	if !a.cfg.Announce || a.cfg.Listen == "" {
		return nil
	}
	host, _, _ := net.SplitHostPort(a.cfg.advertise())
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() || host == "localhost" {
		return nil
	}
	an, err := discover.Announce(ctx, discover.Announcement{Grid: a.id.GridID(), Node: a.cfg.Name, Addr: a.cfg.advertise(), Hub: a.ca != nil}, a.log.With("part", "mdns"))
	if err != nil {
		// Discovery is a convenience: a device joins by address anyway.
		a.log.Warn("not announced on the LAN", "err", err)
		return nil
	}
	return an
}

// listen opens the API socket, refusing to take over one that an agent
// still answers on.
func (a *Agent) listen() (net.Listener, error) {
	path := filepath.Join(a.cfg.DataDir, SocketName)
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("agent: another agent already runs on %s", a.cfg.DataDir)
	}
	os.Remove(path) // left by an agent that died
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("agent: %w", err)
	}
	return ln, nil
}

// markOrphans records as lost the processes this node owned as running
// when it last stopped without freezing them (it crashed).
func (a *Agent) markOrphans(ctx context.Context) error {
	all, err := a.reg.List(ctx)
	if err != nil {
		return err
	}
	for _, v := range all {
		if v.Node != a.cfg.Name || v.State != cluster.StateRunning {
			continue
		}
		p := v.Proc
		p.State, p.ExitCode = cluster.StateExited, -1
		if _, err := a.reg.Update(ctx, v, p); err != nil && !errors.Is(err, cluster.ErrConflict) {
			return err
		}
		a.log.Warn("process lost with the agent's last run", "id", p.ID)
	}
	return nil
}

// RunSpec is what to run.
type RunSpec struct {
	Module []byte   `json:"module"`
	Args   []string `json:"args,omitempty"` // after the module
	Env    []string `json:"env,omitempty"`
	Node   string   `json:"node,omitempty"` // where to run it ("": here)
	// Stdin: the process reads what `tern attach` types; without it, its
	// input is empty.
	Stdin bool `json:"stdin,omitempty"`
}

// start registers and starts a process.
func (a *Agent) start(ctx context.Context, spec RunSpec) (cluster.Versioned, error) {
	if len(spec.Module) == 0 {
		return cluster.Versioned{}, errors.New("run: empty module")
	}
	sum := sha256.Sum256(spec.Module)
	hash := hex.EncodeToString(sum[:])
	// Where `tern run --embed-module=false` keeps the module of the
	// images beside it: one copy serves both.
	modPath := filepath.Join(a.cfg.DataDir, "images", hash+".wasm")
	if _, err := os.Stat(modPath); err != nil {
		if err := atomicfile.Write(modPath, spec.Module, 0o600); err != nil {
			return cluster.Versioned{}, fmt.Errorf("run: store module: %w", err)
		}
	}
	var idb [6]byte
	rand.Read(idb[:])
	id := "p" + hex.EncodeToString(idb[:])
	v, err := a.reg.Create(ctx, cluster.Proc{ID: id, Node: a.cfg.Name, Epoch: 1, State: cluster.StateRunning, Module: hash, Args: spec.Args, Stdin: spec.Stdin})
	if err != nil {
		return cluster.Versioned{}, err
	}
	args := []string{"run"}
	for _, e := range spec.Env {
		args = append(args, "--env", e)
	}
	args = append(append(args, "--", modPath), spec.Args...)
	c, err := a.spawn(id, v.Epoch, args, spec.Stdin)
	if err != nil {
		a.finish(v, -1)
		return cluster.Versioned{}, err
	}
	a.feedInput(c, v.Proc, 0)
	go a.supervise(v, c)
	a.log.Info("process started", "id", id, "module", hash[:12])
	return v, nil
}

// spawn starts tern (run or resume: args begin with the subcommand) as
// the OS process that runs process id here, its output going into the
// grid at epoch. The caller supervises it.
func (a *Agent) spawn(id string, epoch uint64, args []string, stdin bool) (*child, error) {
	// One socket per owner epoch: the copy that moved away may still
	// hold (and on exit remove) the last one.
	ctl := filepath.Join(a.cfg.DataDir, "run", fmt.Sprintf("%s-%d.sock", id, epoch))
	own := []string{"--data", a.cfg.DataDir, "--cache-dir", filepath.Join(a.cfg.DataDir, "cache"),
		"--checkpoint", a.imagePath(id), "--embed-module=false", "--control", ctl}
	if a.cfg.Engine != "" {
		own = append(own, "--engine", a.cfg.Engine)
	}
	args = append(append([]string{args[0]}, own...), args[1:]...)
	cmd := exec.Command(a.cfg.Tern[0], append(slices.Clone(a.cfg.Tern[1:]), args...)...)
	ownGroup(cmd)
	stdout, err := a.out.Writer(context.Background(), id, epoch, "stdout")
	if err != nil {
		return nil, err
	}
	stderr, err := a.out.Writer(context.Background(), id, epoch, "stderr")
	if err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, done: make(chan struct{}), control: ctl, stdout: newCounted(stdout, a.log.With("id", id)), stderr: newCounted(stderr, a.log.With("id", id))}
	if args[0] == "resume" && slices.Contains(args, "--incoming") {
		c.stdout.held.Store(true)
		c.stderr.held.Store(true)
	}
	cmd.Stdout, cmd.Stderr = c.stdout, c.stderr
	var stdinR *os.File
	if stdin {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		stdinR, c.stdin, cmd.Stdin = r, w, r
		defer stdinR.Close() // the child has its own
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil, errors.New("the agent is stopping")
	}
	if err := cmd.Start(); err != nil {
		if c.stdin != nil {
			c.stdin.Close()
		}
		return nil, fmt.Errorf("start %s: %w", a.cfg.Tern[0], err)
	}
	a.procs[id] = c
	a.wg.Add(1)
	return c, nil
}

func (a *Agent) imagePath(id string) string {
	return filepath.Join(a.cfg.DataDir, "images", id+".img")
}

// supervise waits for a child and records how it ended.
func (a *Agent) supervise(v cluster.Versioned, c *child) {
	defer a.wg.Done()
	err := c.cmd.Wait()
	code := 0
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
	case err != nil:
		code = -1
	}
	if !c.migrated.Load() {
		a.finish(v, code)
	}
	a.mu.Lock()
	if a.procs[v.ID] == c {
		delete(a.procs, v.ID) // not the copy moved back here meanwhile
	}
	a.mu.Unlock()
	close(c.done) // after the record says how it ended: kill reads it next
}

// finish records a process's end: frozen if it left an image (it was
// frozen by a signal), exited otherwise. The record may have changed since
// v (a move that failed fences it): it is read again, and left alone if
// another node owns the process now.
func (a *Agent) finish(v cluster.Versioned, code int) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	state := cluster.StateExited
	if _, err := os.Stat(a.imagePath(v.ID)); err == nil && code == 0 {
		state = cluster.StateFrozen
	}
	for {
		p := v.Proc
		p.State, p.ExitCode = state, code
		_, err := a.reg.Update(ctx, v, p)
		if errors.Is(err, cluster.ErrConflict) {
			if v, err = a.reg.Get(ctx, v.ID); err == nil && v.Node == a.cfg.Name {
				continue
			}
			a.log.Info("process ended here, owned elsewhere", "id", v.ID, "err", err)
			return
		}
		if err != nil {
			a.log.Error("record process end", "id", p.ID, "err", err)
			return
		}
		a.log.Info("process ended", "id", p.ID, "state", p.State, "code", code)
		return
	}
}

// kill ends a process running here.
func (a *Agent) kill(id string) error {
	a.mu.Lock()
	c, ok := a.procs[id]
	a.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %s does not run on %s", cluster.ErrNotFound, id, a.cfg.Name)
	}
	if err := c.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill %s: %w", id, err)
	}
	<-c.done
	return nil
}

// stopAll freezes every process into its image (tern run --checkpoint
// does so on SIGTERM) and waits for them.
func (a *Agent) stopAll() {
	a.mu.Lock()
	a.closed = true
	for id, c := range a.procs {
		if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			// No SIGTERM here (Windows): the agent cannot wait for a
			// freeze that will not come.
			a.log.Warn("cannot freeze on stop; killing", "id", id, "err", err)
			c.cmd.Process.Kill()
		}
	}
	a.mu.Unlock()
	a.wg.Wait()
}
