package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ternhq/tern/bench/internal/guestbench"
	"github.com/ternhq/tern/internal/process"
)

const (
	goalDowntime = 20 * time.Millisecond
	goalMiB      = 256
	linkBytes    = 256 << 20
	settle       = time.Second // the guest runs undisturbed before each move
	moveTimeout  = 5 * time.Minute
)

type config struct {
	sizes []int
	moves int
	rate  int
}

func main() {
	var cfg config
	sizes := flag.String("sizes", "16,64,256", "guest memory sizes in MiB, comma-separated")
	flag.IntVar(&cfg.moves, "moves", 3, "timed moves per size, after an untimed one there and back")
	flag.IntVar(&cfg.rate, "rate", 2000, "64 KiB pages each guest dirties per second")
	flag.Parse()
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, nil)))
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 3072 {
			fmt.Fprintf(os.Stderr, "migrate: -sizes: %q is not a size in MiB (1-3072)\n", s)
			os.Exit(2)
		}
		cfg.sizes = append(cfg.sizes, n)
	}
	if cfg.moves < 1 || cfg.rate < 0 {
		fmt.Fprintln(os.Stderr, "migrate: -moves must be at least 1 and -rate at least 0")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	rep, err := bench(ctx, cfg)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "migrate:", err)
		os.Exit(1)
	}
	rep.print(os.Stdout)
}

// move is one `tern migrate`, as it reported itself, and the longest
// stall the guest printed around it (0: none of 10 ms or more).
type move struct {
	To                           string
	Bytes                        int64
	Downtime, Halt, Total, Stall time.Duration
}

// sizeResult is a size's timed moves; the warm-up moves are only logged.
type sizeResult struct {
	MiB   int
	Moves []move
}

type report struct {
	Host, GuestGo string
	Rate, Moves   int
	Link          []float64 // bytes per second, per stream
	Bandwidth     float64   // their median
	Load          guestbench.HostLoad
	Sizes         []sizeResult
}

func bench(ctx context.Context, cfg config) (*report, error) {
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "tern-bench-migrate-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	rep := &report{Rate: cfg.rate, Moves: cfg.moves}
	rep.Load.Before = guestbench.LoadAverage()
	defer func() { rep.Load.After = guestbench.LoadAverage() }()

	slog.Info("building tern and the guest", "dir", tmp)
	bin, wasm := filepath.Join(tmp, "tern"), filepath.Join(tmp, "guest.wasm")
	if err := guestbench.RunTool(ctx, root, nil, "go", "build", "-o", bin, "./cmd/tern"); err != nil {
		return nil, err
	}
	if err := guestbench.RunTool(ctx, root, []string{"GOOS=wasip1", "GOARCH=wasm"}, "go", "build", "-o", wasm, "./bench/migrate/guest"); err != nil {
		return nil, err
	}
	if v, err := exec.CommandContext(ctx, "go", "env", "GOVERSION").Output(); err == nil {
		rep.GuestGo = strings.TrimSpace(string(v))
	}

	for range 3 {
		bw, err := linkBandwidth(ctx, linkBytes)
		if err != nil {
			return nil, fmt.Errorf("link bandwidth: %w", err)
		}
		slog.Info("link", "MB/s", fmt.Sprintf("%.0f", bw/1e6))
		rep.Link = append(rep.Link, bw)
	}
	rep.Bandwidth = slices.Sorted(slices.Values(rep.Link))[1]

	g := &grid{bin: bin, tmp: tmp}
	defer g.stop()
	if err := g.start(ctx); err != nil {
		return nil, g.fail(ctx, err)
	}
	rep.Host = guestbench.ThisHost(process.Engine(g.engine)).String()
	for _, mib := range cfg.sizes {
		res, err := g.measure(ctx, cfg, wasm, mib)
		if err != nil {
			return nil, g.fail(ctx, fmt.Errorf("%d MiB: %w", mib, err))
		}
		rep.Sizes = append(rep.Sizes, res)
	}
	return rep, nil
}

// repoRoot is the directory above the working directory holding tern's
// go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.HasPrefix(b, []byte("module github.com/ternhq/tern\n")) {
			return dir, nil
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", errors.New("run it inside the tern repository: no go.mod of github.com/ternhq/tern above the working directory")
		}
		dir = up
	}
}

// grid is two agents on loopback, a the hub and b, driven through the
// tern command line.
type grid struct {
	bin, tmp string
	engine   string
	agents   []*agentProc
	hub      string // a's data directory
}

type agentProc struct {
	name, data, log string
	cmd             *exec.Cmd
	done            chan struct{}
	err             error
}

// tern runs `tern WORDS... --data HUB ARGS...` and returns its stdout.
func (g *grid) tern(ctx context.Context, words string, args ...string) (string, error) {
	argv := append(append(strings.Fields(words), "--data", g.hub), args...)
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, g.bin, argv...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("tern %s: %v: %s", strings.Join(argv, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

func (g *grid) start(ctx context.Context) error {
	pa, err := freePort()
	if err != nil {
		return err
	}
	pb, err := freePort(pa, pa+1)
	if err != nil {
		return err
	}
	if err := g.startAgent("a", pa); err != nil {
		return err
	}
	g.hub = g.agents[0].data
	if err := g.waitNodes(ctx, "a"); err != nil {
		return err
	}
	tok, err := g.tern(ctx, "token create")
	if err != nil {
		return err
	}
	if err := g.startAgent("b", pb, "--join", fmt.Sprintf("127.0.0.1:%d", pa), "--token", strings.TrimSpace(tok)); err != nil {
		return err
	}
	return g.waitNodes(ctx, "a", "b")
}

// freePort is a loopback port whose next port is free too (a hub serves
// the grid's state there), neither of them in avoid.
func freePort(avoid ...int) (int, error) {
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		p := l.Addr().(*net.TCPAddr).Port
		l2, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p+1))
		l.Close()
		if err == nil {
			l2.Close()
			if !slices.Contains(avoid, p) && !slices.Contains(avoid, p+1) {
				return p, nil
			}
		}
	}
	return 0, errors.New("no free pair of loopback ports")
}

func (g *grid) startAgent(name string, port int, extra ...string) error {
	a := &agentProc{name: name, data: filepath.Join(g.tmp, name), log: filepath.Join(g.tmp, name+".log"), done: make(chan struct{})}
	f, err := os.Create(a.log)
	if err != nil {
		return err
	}
	args := append([]string{"agent", "--log-level", "info", "--data", a.data, "--name", name, "--listen", fmt.Sprintf("127.0.0.1:%d", port)}, extra...)
	// Not tied to ctx: stop ends it with SIGTERM, so that it stops its
	// processes as it should.
	a.cmd = exec.Command(g.bin, args...)
	a.cmd.Stdout, a.cmd.Stderr = f, f
	if err := a.cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start agent %s: %w", name, err)
	}
	go func() {
		a.err = a.cmd.Wait()
		f.Close()
		close(a.done)
	}()
	g.agents = append(g.agents, a)
	slog.Info("agent started", "name", name, "port", port)
	return nil
}

// waitNodes waits until the grid lists every one of names.
func (g *grid) waitNodes(ctx context.Context, names ...string) error {
	deadline := time.Now().Add(time.Minute)
	for {
		for _, a := range g.agents {
			select {
			case <-a.done:
				return fmt.Errorf("agent %s ended: %v", a.name, a.err)
			default:
			}
		}
		out, err := g.tern(ctx, "nodes", "-o", "json")
		var nodes []struct{ Name, Engine string }
		if err == nil {
			if err = json.Unmarshal([]byte(out), &nodes); err == nil {
				missing := slices.DeleteFunc(slices.Clone(names), func(n string) bool {
					return slices.ContainsFunc(nodes, func(x struct{ Name, Engine string }) bool { return x.Name == n })
				})
				if len(missing) == 0 {
					g.engine = nodes[0].Engine
					return nil
				}
				err = fmt.Errorf("nodes %v not in the grid", missing)
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("waiting for the grid: %w", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// measure runs the guest with mib MiB on a and moves it there and back,
// untimed, then cfg.moves times.
func (g *grid) measure(ctx context.Context, cfg config, wasm string, mib int) (sizeResult, error) {
	res := sizeResult{MiB: mib}
	out, err := g.tern(ctx, "run", "--on", "a", wasm, strconv.Itoa(mib), strconv.Itoa(cfg.rate))
	if err != nil {
		return res, err
	}
	id := strings.TrimSpace(out)
	slog.Info("guest started", "MiB", mib, "id", id)
	defer func() {
		kctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := g.tern(kctx, "kill", id); err != nil {
			slog.Warn("kill", "id", id, "err", err)
		}
	}()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		logs, err := g.tern(ctx, "logs", id)
		if err != nil {
			return res, err
		}
		if strings.HasPrefix(logs, "ready\n") {
			break
		}
		if err := g.running(ctx, id, "a"); err != nil || time.Now().After(deadline) {
			return res, fmt.Errorf("guest not ready (%v); its output: %q", err, logs)
		}
		time.Sleep(200 * time.Millisecond)
	}
	seen := 0 // stall lines already taken
	for i := range 2 + cfg.moves {
		to := "b"
		if i%2 == 1 {
			to = "a"
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(settle):
		}
		if _, err := g.stalls(ctx, id, &seen, 0, 0); err != nil {
			return res, err
		}
		m, err := g.move(ctx, id, to)
		if err != nil {
			return res, fmt.Errorf("move %d to %s: %w", i+1, to, err)
		}
		if m.Stall, err = g.stalls(ctx, id, &seen, max(m.Downtime*3/4, time.Millisecond), 2*time.Second); err != nil {
			return res, err
		}
		if err := g.running(ctx, id, to); err != nil {
			return res, fmt.Errorf("after move %d: %w", i+1, err)
		}
		slog.Info("moved", "MiB", mib, "to", to, "warm-up", i < 2, "downtime", m.Downtime, "halt", m.Halt, "stall", m.Stall, "total", m.Total, "MiB sent", fmt.Sprintf("%.1f", float64(m.Bytes)/(1<<20)))
		if i >= 2 {
			res.Moves = append(res.Moves, m)
		}
	}
	return res, nil
}

func (g *grid) move(ctx context.Context, id, to string) (move, error) {
	mctx, cancel := context.WithTimeout(ctx, moveTimeout)
	defer cancel()
	out, err := g.tern(mctx, "migrate", id, to, "-o", "json")
	if err != nil {
		return move{}, err
	}
	var p struct {
		Event, Node, Error string
		Bytes              int64
		MS                 struct{ Downtime, Halt, Total float64 } `json:"ms"`
	}
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		return move{}, fmt.Errorf("tern migrate printed %q: %w", out, err)
	}
	if p.Event != "done" || p.Node != to {
		return move{}, fmt.Errorf("tern migrate printed %q", out)
	}
	ms := func(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }
	return move{To: to, Bytes: p.Bytes, Downtime: ms(p.MS.Downtime), Halt: ms(p.MS.Halt), Total: ms(p.MS.Total)}, nil
}

// running checks that id runs on node.
func (g *grid) running(ctx context.Context, id, node string) error {
	out, err := g.tern(ctx, "ps", "-o", "json")
	if err != nil {
		return err
	}
	var procs []struct {
		ID, Node, State string
		ExitCode        int `json:"exit_code"`
	}
	if err := json.Unmarshal([]byte(out), &procs); err != nil {
		return fmt.Errorf("tern ps: %w", err)
	}
	for _, p := range procs {
		if p.ID == id {
			if p.State != "running" || p.Node != node {
				return fmt.Errorf("%s is %s (exit code %d) on %s, want running on %s", id, p.State, p.ExitCode, p.Node, node)
			}
			return nil
		}
	}
	return fmt.Errorf("%s is not in tern ps", id)
}

// stalls is the longest of the guest's "stall MS" lines after the first
// *seen, which it advances. It waits, up to wait, for one of at least
// atLeast: a stall of the CPU during the move may come first, and the
// freeze's only once the guest runs again.
func (g *grid) stalls(ctx context.Context, id string, seen *int, atLeast, wait time.Duration) (time.Duration, error) {
	deadline := time.Now().Add(wait)
	for {
		logs, err := g.tern(ctx, "logs", id)
		if err != nil {
			return 0, err
		}
		var all []time.Duration
		for _, l := range strings.Split(logs, "\n") {
			if f, ok := strings.CutPrefix(l, "stall "); ok {
				if v, err := strconv.ParseFloat(f, 64); err == nil {
					all = append(all, time.Duration(v*float64(time.Millisecond)))
				}
			}
		}
		longest := slices.Max(append([]time.Duration{0}, all[min(*seen, len(all)):]...))
		if longest >= atLeast || !time.Now().Before(deadline) {
			*seen = len(all)
			return longest, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// fail adds the tail of each agent's log, and of its processes' logs, to
// err, unless the run was interrupted.
func (g *grid) fail(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted: %w", err)
	}
	var b strings.Builder
	for _, a := range g.agents {
		logs, _ := filepath.Glob(filepath.Join(a.data, "run", "*.log"))
		for _, f := range append([]string{a.log}, logs...) {
			fmt.Fprintf(&b, "\n--- %s (last lines):\n%s", f, tail(f, 15))
		}
	}
	return fmt.Errorf("%w%s", err, b.String())
}

func tail(file string, n int) string {
	b, err := os.ReadFile(file)
	if err != nil {
		return err.Error() + "\n"
	}
	lines := strings.SplitAfter(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "") + "\n"
}

// stop ends the agents, b before the hub, with SIGTERM, and passes on
// what they logged at WARN or ERROR.
func (g *grid) stop() {
	for _, a := range slices.Backward(g.agents) {
		a.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-a.done:
		case <-time.After(30 * time.Second):
			slog.Warn("agent did not stop within 30 s; killing it", "name", a.name)
			a.cmd.Process.Kill()
			<-a.done
		}
		b, _ := os.ReadFile(a.log)
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
				fmt.Fprintf(os.Stderr, "agent %s: %s\n", a.name, l)
			}
		}
	}
}

// linkBandwidth is the throughput, in bytes per second, of n bytes sent
// over a mutual-TLS 1.3 connection on loopback, handshake excluded.
func linkBandwidth(ctx context.Context, n int64) (float64, error) {
	srv, srvPool, err := selfSigned("server")
	if err != nil {
		return 0, err
	}
	cli, cliPool, err := selfSigned("client")
	if err != nil {
		return 0, err
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{srv},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: cliPool,
	})
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	type result struct {
		n   int64
		end time.Time
		err error
	}
	got := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- result{err: err}
			return
		}
		defer c.Close()
		n, err := io.Copy(io.Discard, c)
		got <- result{n, time.Now(), err}
	}()
	d := tls.Dialer{Config: &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cli}, RootCAs: srvPool}}
	conn, err := d.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	buf := make([]byte, 4<<20)
	rand.Read(buf)
	t0 := time.Now()
	for sent := int64(0); sent < n; {
		k, err := conn.Write(buf[:min(int64(len(buf)), n-sent)])
		if err != nil {
			return 0, err
		}
		sent += int64(k)
	}
	if err := conn.(*tls.Conn).CloseWrite(); err != nil {
		return 0, err
	}
	r := <-got
	if r.err == nil && r.n != n {
		r.err = fmt.Errorf("received %d bytes of %d", r.n, n)
	}
	if r.err != nil {
		return 0, r.err
	}
	return float64(n) / r.end.Sub(t0).Seconds(), nil
}

// selfSigned is an ed25519 certificate for 127.0.0.1 signed by its own
// key, and a pool that trusts it.
func selfSigned(name string) (tls.Certificate, *x509.CertPool, error) {
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true, IsCA: true, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, pool, nil
}

// summary is a size's timed moves: medians, but for the maxima.
type summary struct {
	down, downMax, halt, stallMax, total, ideal time.Duration
	sent                                        int64
	ratio                                       float64 // total/ideal
}

func (s sizeResult) summary(bandwidth float64) summary {
	var down, halt, total, ideal []time.Duration
	var sent []int64
	var ratios []float64
	var sum summary
	for _, m := range s.Moves {
		id := time.Duration(float64(m.Bytes) / bandwidth * float64(time.Second))
		down, halt, total, ideal = append(down, m.Downtime), append(halt, m.Halt), append(total, m.Total), append(ideal, id)
		sent, ratios = append(sent, m.Bytes), append(ratios, float64(m.Total)/float64(id))
		sum.downMax, sum.stallMax = max(sum.downMax, m.Downtime), max(sum.stallMax, m.Stall)
	}
	sum.down, sum.halt, sum.total, sum.ideal = median(down), median(halt), median(total), median(ideal)
	sum.sent, sum.ratio = median(sent), median(ratios)
	return sum
}

func median[T ~int64 | ~float64](xs []T) T {
	s := slices.Sorted(slices.Values(xs))
	return (s[(len(s)-1)/2] + s[len(s)/2]) / 2
}

func (rep *report) print(w io.Writer) {
	fmt.Fprintf(w, "tern migrate benchmark: %s; guest built by %s; each guest dirties %d random 64 KiB pages/s (%.0f MiB/s); %d timed moves per size, after one there and back (warm compilation cache)\n",
		rep.Host, rep.GuestGo, rep.Rate, float64(rep.Rate)/16, rep.Moves)
	rep.Load.Print(w)
	var link []string
	for _, bw := range rep.Link {
		link = append(link, fmt.Sprintf("%.0f", bw/1e6))
	}
	fmt.Fprintf(w, "link: mutual-TLS 1.3 stream of %d MiB over loopback, %s MB/s; median %.0f MB/s\n\n", linkBytes>>20, strings.Join(link, ", "), rep.Bandwidth/1e6)
	tw := guestbench.NewTable(w)
	fmt.Fprintln(tw, "size\tdowntime median\tmax\thalt median\tguest stall max\ttotal median\tMiB sent median\tideal (bytes/bw)\ttotal/ideal median\t")
	var goal *summary
	for _, s := range rep.Sizes {
		sum := s.summary(rep.Bandwidth)
		fmt.Fprintf(tw, "%d MiB\t%s%s\t%s\t%s\t%s\t%s\t%.1f\t%s\t%.2f\t\n", s.MiB,
			guestbench.FmtDur(sum.down), guestbench.Miss(s.MiB == goalMiB && sum.down > goalDowntime),
			guestbench.FmtDur(sum.downMax), guestbench.FmtDur(sum.halt), fmtStall(sum.stallMax), guestbench.FmtDur(sum.total),
			float64(sum.sent)/(1<<20), guestbench.FmtDur(sum.ideal), sum.ratio)
		if s.MiB == goalMiB {
			goal = &sum
		}
	}
	tw.Flush()
	if goal == nil {
		fmt.Fprintf(w, "goal (downtime <= %v at %d MiB, warm cache): not measured, -sizes has no %d\n", goalDowntime, goalMiB, goalMiB)
		return
	}
	fmt.Fprintf(w, "downtime median %s (max %s; longest stall the guest saw %s) at %d MiB: %s the goal of <= %v with a warm compilation cache\n",
		guestbench.FmtDur(goal.down), guestbench.FmtDur(goal.downMax), fmtStall(goal.stallMax), goalMiB,
		guestbench.Verdict(goal.down <= goalDowntime), goalDowntime)
}

// fmtStall is "-" for no stall of 10 ms or more.
func fmtStall(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return guestbench.FmtDur(d)
}
