package main

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/ternhq/tern/internal/cluster"
)

// startAgent runs `tern agent` on dir (a fresh directory if "") until the
// test ends, and waits until it answers.
func startAgent(t *testing.T, name, dir string) (string, func() error) {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	a := startAgentCmd(t, name, dir, []string{ternBin, "agent", "--data", dir, "--name", name, "--log-level", "info"})
	return dir, a.stop
}

// agentProc is an agent the test started.
type agentProc struct {
	name, dir string
	cmd       *exec.Cmd
	done      chan error
	stopped   bool
	log       string
}

// stop ends the agent as a user would (SIGTERM) and waits for it.
func (a *agentProc) stop() error {
	if a.stopped {
		return nil
	}
	a.stopped = true
	a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-a.done:
		return err
	case <-time.After(60 * time.Second):
		a.cmd.Process.Kill()
		return <-a.done
	}
}

// crash kills the agent outright; its processes, in their own process
// groups, live on as they would.
func (a *agentProc) crash() {
	if !a.stopped {
		a.stopped = true
		a.cmd.Process.Kill()
		<-a.done
	}
}

// startAgentCmd runs an agent command line (name and dir as it names
// them) until the test ends, and waits until it lists itself.
func startAgentCmd(t *testing.T, name, dir string, argv []string) *agentProc {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	logf, err := os.Create(filepath.Join(t.TempDir(), "agent.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	a := &agentProc{name: name, dir: dir, cmd: cmd, done: make(chan error, 1), log: logf.Name()}
	go func() { a.done <- cmd.Wait() }()
	t.Cleanup(func() {
		a.stop()
		if t.Failed() {
			b, _ := os.ReadFile(a.log)
			t.Logf("agent %s log:\n%s", name, b)
		}
	})
	for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
		if r := runTern(t, "", nil, "nodes", "--data", dir); r.code == 0 && strings.Contains(r.stdout, name) {
			return a
		}
		select {
		case err := <-a.done:
			a.stopped = true
			b, _ := os.ReadFile(a.log)
			t.Fatalf("agent %s ended at start: %v\n%s", name, err, b)
		default:
		}
		if time.Since(start) > 120*time.Second {
			t.Fatalf("agent %s did not answer within 120s", name)
		}
	}
}

func psJSON(t *testing.T, dir string) map[string]cluster.Proc {
	t.Helper()
	r := runTern(t, "", nil, "ps", "--data", dir, "-o", "json")
	if r.code != 0 {
		t.Fatalf("ps: exit %d\n%s", r.code, r.stderr)
	}
	var procs []cluster.Proc
	if err := json.Unmarshal([]byte(r.stdout), &procs); err != nil {
		t.Fatalf("ps -o json: %v\n%s", err, r.stdout)
	}
	m := map[string]cluster.Proc{}
	for _, p := range procs {
		m[p.ID] = p
	}
	return m
}

// A process run through the agent prints, attached or followed, exactly
// what it prints run directly, and ends the same; ps, nodes, logs and kill
// say what happened; stopping the agent freezes what still runs.
func TestAgentRunsProcesses(t *testing.T) {
	local, err := installedGo()
	if err != nil {
		t.Fatal(err)
	}
	wasm := buildFreezeGuest(t, local, "gcheavy")
	ref := runTern(t, "", nil, "run", "--cache-dir", cacheDirForTests(t), "--", wasm)
	if ref.code != 3 {
		t.Fatalf("direct run: exit %d\n%s", ref.code, ref.stderr)
	}
	dir, stop := startAgent(t, "node-a", "")

	nodes := runTern(t, "", nil, "nodes", "--data", dir, "-o", "json")
	var ns []cluster.Node
	if err := json.Unmarshal([]byte(nodes.stdout), &ns); err != nil || len(ns) != 1 || ns[0].Name != "node-a" || ns[0].Engine == "" {
		t.Fatalf("nodes -o json: %v\n%s", err, nodes.stdout)
	}
	// The device's facts, read from it (internal/facts tests each reader).
	if n := ns[0]; n.Cores != runtime.NumCPU() || n.MemTotal == 0 || n.MemFree > n.MemTotal || n.Speed <= 0 || n.Arch != runtime.GOARCH || n.OS != runtime.GOOS {
		t.Fatalf("nodes -o json: facts %+v", n)
	}

	// Attached: the output and the exit code are the direct run's.
	att := runTern(t, "", nil, "run", "--on", "auto", "--data", dir, "-a", "--", wasm)
	if att.code != 3 || att.stdout != ref.stdout || att.stderr != ref.stderr {
		t.Fatalf("attached run: exit %d, stdout equal %v, stderr %q; want exit 3 and the direct run's output (stderr %q)",
			att.code, att.stdout == ref.stdout, att.stderr, ref.stderr)
	}

	// Detached on a named node, then followed: the same again.
	det := runTern(t, "", nil, "run", "--on", "node-a", "--data", dir, "--", wasm)
	id := strings.TrimSpace(det.stdout)
	if det.code != 0 || id == "" {
		t.Fatalf("detached run: exit %d, id %q\n%s", det.code, id, det.stderr)
	}
	fol := runTern(t, "", nil, "logs", "-f", "--data", dir, id)
	if fol.code != 0 || fol.stdout != ref.stdout || fol.stderr != ref.stderr {
		t.Fatalf("logs -f: exit %d, stdout equal %v, stderr %q", fol.code, fol.stdout == ref.stdout, fol.stderr)
	}
	if p := psJSON(t, dir)[id]; p.State != cluster.StateExited || p.ExitCode != 3 || p.Node != "node-a" || p.Epoch != 1 {
		t.Fatalf("ps after the end: %+v", p)
	}
	if again := runTern(t, "", nil, "logs", "--data", dir, id); again.stdout != ref.stdout {
		t.Fatal("logs of an ended process differ from its output")
	}

	// A process that would run for long: killed, or frozen with the agent.
	primes := filepath.Join(t.TempDir(), "primes.wasm")
	build := exec.Command("go", "build", "-o", primes, "../../examples/primes")
	build.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build primes: %v\n%s", err, out)
	}
	long := func() string {
		r := runTern(t, "", nil, "run", "--on", "auto", "--data", dir, "--", primes, "2000000000")
		if r.code != 0 {
			t.Fatalf("run: exit %d\n%s", r.code, r.stderr)
		}
		return strings.TrimSpace(r.stdout)
	}
	victim, keeper := long(), long()
	k := runTern(t, "", nil, "kill", "--data", dir, "-o", "json", victim)
	var killed cluster.Proc
	if err := json.Unmarshal([]byte(k.stdout), &killed); err != nil || killed.State != cluster.StateExited || killed.ExitCode != 137 {
		t.Fatalf("kill: exit %d, %+v, %v\n%s", k.code, killed, err, k.stderr)
	}
	if p := psJSON(t, dir)[keeper]; p.State != cluster.StateRunning {
		t.Fatalf("the other process: %+v, want running", p)
	}
	if err := stop(); err != nil {
		t.Fatalf("agent stop: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "images", keeper+".img")); err != nil {
		t.Fatalf("no image of the process running when the agent stopped: %v", err)
	}
	if r := runTern(t, "", nil, "ps", "--data", dir); r.code == 0 || !strings.Contains(r.stderr, "no tern agent running") {
		t.Fatalf("ps with the agent stopped: exit %d, stderr %q", r.code, r.stderr)
	}
	// Started again, the agent finds the grid's records as they were.
	startAgent(t, "node-a", dir)
	procs := psJSON(t, dir)
	if p := procs[keeper]; p.State != cluster.StateFrozen {
		t.Fatalf("after a restart, the process frozen with the agent is %+v", p)
	}
	if p := procs[victim]; p.State != cluster.StateExited || p.ExitCode != 137 {
		t.Fatalf("after a restart, the killed process is %+v", p)
	}
	if len(procs) != 4 {
		t.Fatalf("after a restart, %d processes listed, want 4", len(procs))
	}
}

// Bad requests get clear errors and change nothing.
func TestAgentBadInput(t *testing.T) {
	dir, _ := startAgent(t, "node-b", "")
	wasm := filepath.Join(t.TempDir(), "m.wasm")
	if err := os.WriteFile(wasm, []byte("\x00asm\x01\x00\x00\x00"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "-a", wasm}, "-a, -i and -o are for a process run through the agent"},
		{[]string{"run", "--on", "nowhere", "--data", dir, wasm}, "no such node"},
		{[]string{"run", "--on", "auto", "--dir", "/tmp", "--data", dir, wasm}, "--dir: not for a run through the agent"},
		{[]string{"run", "--on", "auto", "--data", dir, filepath.Join(dir, "missing.wasm")}, "read module"},
		{[]string{"logs", "--data", dir, "pnothere"}, "no such process"},
		{[]string{"logs", "--data", dir, "bad id"}, "invalid process id"},
		{[]string{"kill", "--data", dir, "pnothere"}, "no such process"},
		{[]string{"ps", "--data", dir, "-o", "yaml"}, "want table or json"},
		{[]string{"ps", "--data", t.TempDir()}, "no tern agent running"},
	} {
		r := runTern(t, "", nil, c.args...)
		if r.code != exitTernError || !strings.Contains(r.stderr, c.want) {
			t.Errorf("tern %s: exit %d, stderr %q; want %d and %q", strings.Join(c.args, " "), r.code, r.stderr, exitTernError, c.want)
		}
	}
	if procs := psJSON(t, dir); len(procs) != 0 {
		t.Fatalf("bad requests registered processes: %+v", procs)
	}
}

// A checkpoint leaves the process running unchanged, and the image saved
// from the grid resumes where it was taken.
func TestAgentCheckpoint(t *testing.T) {
	g := migrationGuests(t, "150", "64", "10")[1] // the prepared C guest
	dir, _ := startAgent(t, "node-c", "")
	r := runTern(t, "", nil, append([]string{"run", "--on", "auto", "--data", dir, "--", g.wasm}, g.args...)...)
	id := strings.TrimSpace(r.stdout)
	if r.code != 0 {
		t.Fatalf("run: exit %d\n%s", r.code, r.stderr)
	}
	waitUntil(t, 60*time.Second, "round 20 in the output", func() bool {
		return strings.Contains(runTern(t, "", nil, "logs", "--data", dir, id).stdout, "round 20 ")
	})
	saved := filepath.Join(t.TempDir(), "ck.img")
	c := runTern(t, "", nil, "checkpoint", "--data", dir, "--save", saved, id)
	if c.code != 0 || !strings.Contains(c.stdout, "checkpoint of") {
		t.Fatalf("checkpoint: exit %d\n%s%s", c.code, c.stdout, c.stderr)
	}
	// The image is signed by node-c: another device (the tests' own data
	// directory is of no grid) refuses it; node-c's device resumes it.
	if res := runTern(t, "", nil, "resume", saved); res.code != exitTernError || !strings.Contains(res.stderr, `signed by "node-c"`) || !strings.Contains(res.stderr, "not trusted here") {
		t.Fatalf("resume of another grid's image: exit %d\n%s", res.code, res.stderr)
	}
	res := runTern(t, "", nil, "resume", "--data", dir, saved)
	if res.code != 3 || !strings.HasSuffix(g.ref.stdout, res.stdout) || len(res.stdout) == len(g.ref.stdout) || !strings.HasSuffix(res.stdout, "done\n") {
		t.Fatalf("resumed checkpoint: exit %d, output not a proper suffix of the uninterrupted run's:\n%s%s", res.code, guestLastLines(res.stdout, 3), res.stderr)
	}
	fol := runTern(t, "", nil, "logs", "-f", "--data", dir, id)
	if fol.stdout != g.ref.stdout || fol.stderr != g.ref.stderr {
		t.Fatalf("the checkpointed process's output differs from an uninterrupted run")
	}
	for _, bad := range [][]string{{"checkpoint", "--data", dir, id}, {"checkpoint", "--data", dir, "pnothere"}} {
		if r := runTern(t, "", nil, bad...); r.code != exitTernError {
			t.Errorf("tern %s: exit %d, want %d", strings.Join(bad, " "), r.code, exitTernError)
		}
	}
}

// freePort returns a loopback address that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// With --nats, the grid's state lives in an external NATS cluster (here
// one server with a password): agents still join for their certificates,
// and move processes between them as with the hub's own server.
func TestAgentExternalNATS(t *testing.T) {
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(),
		Username: "tern", Password: "s3cret", NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(ns.Shutdown) // after the agents, which clean up first

	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server not ready")
	}
	addr := ns.Addr().String()
	url := "nats://tern:s3cret@" + addr
	// Long enough to outlast a first move to a cold cache on a busy machine.
	g := migrationGuests(t, "1500", "64", "10")[0]

	adir, bdir := t.TempDir(), t.TempDir()
	aAddr, bAddr := freePort(t), freePort(t)
	startAgentCmd(t, "ext-a", adir, []string{ternBin, "agent", "--data", adir, "--name", "ext-a", "--listen", aAddr, "--nats", url, "--log-level", "info"})
	tok := runTern(t, "", nil, "token", "create", "--data", adir)
	if tok.code != 0 {
		t.Fatalf("token: exit %d\n%s", tok.code, tok.stderr)
	}
	// A joiner that does not say where the state is cannot start.
	lost := runTern(t, "", nil, "agent", "--data", t.TempDir(), "--name", "ext-x", "--listen", freePort(t), "--join", aAddr, "--token", strings.TrimSpace(tok.stdout))
	if lost.code == 0 || !strings.Contains(lost.stderr, "external NATS cluster: give --nats") {
		t.Fatalf("joining without --nats: exit %d, stderr %q", lost.code, lost.stderr)
	}
	tok = runTern(t, "", nil, "token", "create", "--data", adir)
	startAgentCmd(t, "ext-b", bdir, []string{ternBin, "agent", "--data", bdir, "--name", "ext-b", "--listen", bAddr,
		"--join", aAddr, "--token", strings.TrimSpace(tok.stdout), "--nats", url, "--log-level", "info"})
	// A wrong password is refused by the cluster.
	bad := runTern(t, "", nil, "agent", "--data", t.TempDir(), "--name", "ext-y", "--nats", "nats://tern:wrong@"+addr)
	if bad.code == 0 || !strings.Contains(bad.stderr, "Authorization") {
		t.Fatalf("wrong NATS password: exit %d, stderr %q", bad.code, bad.stderr)
	}

	id := runOn(t, &agentProc{dir: adir}, "ext-a", g)
	f := follow(t, bdir, id)
	time.Sleep(300 * time.Millisecond)
	if m := runTern(t, "", nil, "migrate", "--data", adir, id, "ext-b"); m.code != 0 {
		t.Fatalf("migrate: exit %d\n%s", m.code, m.stderr)
	}
	f.check(t, g)
	if p := psJSON(t, bdir)[id]; p.Node != "ext-b" || p.State != cluster.StateExited || p.ExitCode != 3 {
		t.Fatalf("at the end: %+v", p)
	}
}
