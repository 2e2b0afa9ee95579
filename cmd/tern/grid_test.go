package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ternhq/tern/internal/agent"
	"github.com/ternhq/tern/internal/cluster"
	"github.com/ternhq/tern/internal/discover"
	"github.com/ternhq/tern/internal/pki"
)

// A grid of agents, each in a network namespace of its own (real separate
// addresses, joined by a bridge), moves running processes between them
// while `tern logs -f` follows from another node; what it prints must be
// an uninterrupted run's output, byte for byte.

// netHost is a network namespace with one address on the tests' bridge.
type netHost struct{ ns, ip string }

// netnsHosts makes n network namespaces on one bridge, removed when the
// test ends. It needs root (CI runs as root) and iproute2.
func netnsHosts(t *testing.T, n int) []netHost {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root (CI runs the tests as root)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatal("ip not found: apt-get install -y iproute2 (.ci/run installs it)")
	}
	var rb [3]byte
	rand.Read(rb[:])
	suffix := hex.EncodeToString(rb[:2])
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	br := "tbr" + suffix
	ip("link", "add", br, "type", "bridge")
	t.Cleanup(func() { exec.Command("ip", "link", "del", br).Run() })
	ip("link", "set", br, "up")
	subnet := fmt.Sprintf("10.%d.%d", 100+int(rb[2])%100, int(rb[0])%250)
	hosts := make([]netHost, n)
	for i := range hosts {
		h := netHost{ns: fmt.Sprintf("tern%s-%d", suffix, i), ip: fmt.Sprintf("%s.%d", subnet, i+1)}
		hostSide, nsSide := fmt.Sprintf("tv%s%d", suffix, i), fmt.Sprintf("tp%s%d", suffix, i)
		ip("netns", "add", h.ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", h.ns).Run() })
		ip("link", "add", hostSide, "type", "veth", "peer", "name", nsSide)
		ip("link", "set", hostSide, "master", br, "up")
		ip("link", "set", nsSide, "netns", h.ns)
		ip("-n", h.ns, "addr", "add", h.ip+"/24", "dev", nsSide)
		ip("-n", h.ns, "link", "set", nsSide, "up")
		ip("-n", h.ns, "link", "set", "lo", "up")
		hosts[i] = h
	}
	return hosts
}

// gridNode is how one agent of a test grid runs: where, with which tern
// (possibly behind an emulator) and engine.
type gridNode struct {
	name   string
	host   netHost
	tern   []string
	engine string
	fault  string // TERN_FAULT: where the agent dies during a move
}

// gridPort is where the test agents listen (NATS on the next port).
const gridPort = "7400"

// startGrid starts an agent per node in its namespace: the first is the
// hub, the others join it with tokens it makes.
func startGrid(t *testing.T, nodes []gridNode) []*agentProc {
	t.Helper()
	var agents []*agentProc
	for i, n := range nodes {
		dir := t.TempDir()
		argv := []string{"ip", "netns", "exec", n.host.ns}
		if n.fault != "" {
			argv = append(argv, "env", "TERN_FAULT="+n.fault)
		}
		argv = append(argv, n.tern...)
		argv = append(argv, "agent", "--data", dir, "--name", n.name, "--listen", n.host.ip+":"+gridPort, "--log-level", "info")
		if n.engine != "" {
			argv = append(argv, "--engine", n.engine)
		}
		if len(n.tern) > 1 {
			for _, w := range n.tern {
				argv = append(argv, "--child-command", w)
			}
		}
		if i > 0 {
			tok := runTern(t, "", nil, "token", "create", "--data", agents[0].dir)
			if tok.code != 0 {
				t.Fatalf("token create: exit %d\n%s", tok.code, tok.stderr)
			}
			argv = append(argv, "--join", nodes[0].host.ip+":"+gridPort, "--token", strings.TrimSpace(tok.stdout))
		}
		agents = append(agents, startAgentCmd(t, n.name, dir, argv))
	}
	// Every agent sees every other.
	for _, a := range agents {
		for start := time.Now(); ; time.Sleep(100 * time.Millisecond) {
			r := runTern(t, "", nil, "nodes", "--data", a.dir, "-o", "json")
			var ns []cluster.Node
			if json.Unmarshal([]byte(r.stdout), &ns) == nil && len(ns) == len(nodes) {
				break
			}
			if time.Since(start) > 30*time.Second {
				t.Fatalf("%s sees nodes %s, want %d", a.name, r.stdout, len(nodes))
			}
		}
	}
	return agents
}

// buildMigrateGuest builds the Go guest testdata/migrate/NAME for wasip1.
func buildMigrateGuest(t *testing.T, name string) (string, error) {
	wasm := filepath.Join(t.TempDir(), name+".wasm")
	build := exec.Command("go", "build", "-trimpath", "-o", wasm, ".")
	build.Dir = filepath.Join("testdata", "migrate", name)
	build.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s guest: %v\n%s", name, err, out)
	}
	return wasm, nil
}

// migrationGuest is a guest the grid tests move around.
type migrationGuest struct {
	name string
	wasm string
	args []string
	ref  result
}

// migrationGuests builds the Go guest and the C guest (prepared by the
// agent on its first run) and runs each once uninterrupted.
func migrationGuests(t *testing.T, args ...string) []*migrationGuest {
	t.Helper()
	goWasm, err := buildMigrateGuest(t, "counter")
	if err != nil {
		t.Fatal(err)
	}
	guests := []*migrationGuest{
		{name: "go", wasm: goWasm, args: args},
		{name: "c", wasm: buildWasiC(t, filepath.Join("testdata", "migratec", "counter.c")), args: args},
	}
	var wg sync.WaitGroup
	for _, g := range guests {
		wg.Go(func() {
			g.ref = runTern(t, "", nil, append([]string{"run", "--cache-dir", cacheDirForTests(t), "--", g.wasm}, g.args...)...)
		})
	}
	wg.Wait()
	for _, g := range guests {
		if g.ref.code != 3 || !strings.HasSuffix(g.ref.stdout, "done\n") || !strings.Contains(g.ref.stderr, "note 0\n") {
			t.Fatalf("%s guest, uninterrupted: exit %d\n%s%s", g.name, g.ref.code, guestLastLines(g.ref.stdout, 3), g.ref.stderr)
		}
	}
	return guests
}

// follower is `tern logs -f` running against one agent.
type follower struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	done           chan error
}

// wait waits for the follower to end and checks that it printed the
// uninterrupted run's output.
func (f *follower) check(t *testing.T, g *migrationGuest) {
	t.Helper()
	select {
	case err := <-f.done:
		if err != nil {
			t.Errorf("%s: logs -f: %v\n%s", g.name, err, f.stderr.String())
		}
	case <-time.After(5 * time.Minute):
		t.Errorf("%s: logs -f did not end", g.name)
		return
	}
	if f.stdout.String() != g.ref.stdout {
		t.Errorf("%s: followed stdout differs from an uninterrupted run: %s", g.name,
			firstDiff(strings.Split(g.ref.stdout, "\n"), strings.Split(f.stdout.String(), "\n"), "uninterrupted", "followed"))
	}
	if f.stderr.String() != g.ref.stderr {
		t.Errorf("%s: followed stderr %q, want %q", g.name, guestLastLines(f.stderr.String(), 5), guestLastLines(g.ref.stderr, 5))
	}
}

func follow(t *testing.T, dir, id string) *follower {
	t.Helper()
	f := &follower{cmd: exec.Command(ternBin, "logs", "-f", "--data", dir, id), done: make(chan error, 1)}
	f.cmd.Stdout, f.cmd.Stderr = &f.stdout, &f.stderr
	if err := f.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { f.done <- f.cmd.Wait() }()
	t.Cleanup(func() { f.cmd.Process.Kill() })
	return f
}

// moveRoundRobin runs each guest on the first node, follows it from the
// second, and moves it `moves` times round the nodes, all guests at once.
// The followed output must be the uninterrupted run's.
func moveRoundRobin(t *testing.T, agents []*agentProc, guests []*migrationGuest, moves int) {
	t.Helper()
	hub := agents[0]
	var wg sync.WaitGroup
	for _, g := range guests {
		r := runTern(t, "", nil, append([]string{"run", "--on", agents[0].name, "--data", hub.dir, "--", g.wasm}, g.args...)...)
		id := strings.TrimSpace(r.stdout)
		if r.code != 0 || id == "" {
			t.Fatalf("%s: run: exit %d\n%s", g.name, r.code, r.stderr)
		}
		f := follow(t, agents[1%len(agents)].dir, id)
		wg.Go(func() {
			var downs []string
			for i := 1; i <= moves; i++ {
				to := agents[i%len(agents)]
				// Ask any agent: the owner does the move.
				from := agents[(i+1)%len(agents)]
				m := runTern(t, "", nil, "migrate", "--data", from.dir, "-o", "json", id, to.name)
				var res agent.Progress
				if err := json.Unmarshal([]byte(m.stdout), &res); m.code != 0 || err != nil || res.Node != to.name || res.Epoch != uint64(i+1) {
					t.Errorf("%s: move %d to %s: exit %d, %+v\n%s", g.name, i, to.name, m.code, res, m.stderr)
					return
				}
				downs = append(downs, fmt.Sprintf("%s %.1fms", to.name, res.Millis.Downtime))
				if i == moves/2 {
					// A checkpoint, asked of the hub, taken where it runs.
					c := runTern(t, "", nil, "checkpoint", "--data", hub.dir, "-o", "json", id)
					var info cluster.ImageInfo
					if err := json.Unmarshal([]byte(c.stdout), &info); c.code != 0 || err != nil || info.Epoch != uint64(i+1) || info.Size == 0 {
						t.Errorf("%s: checkpoint on %s: exit %d, %+v\n%s", g.name, to.name, c.code, info, c.stderr)
					}
				}
			}
			t.Logf("%s guest (%s) moved %d times, down: %s", g.name, id, moves, strings.Join(downs, ", "))
			f.check(t, g)
			p := psJSON(t, hub.dir)[id]
			if last := agents[moves%len(agents)].name; p.State != cluster.StateExited || p.ExitCode != 3 || p.Node != last || p.Epoch != uint64(moves+1) {
				t.Errorf("%s: at the end %+v, want exited (3) on %s at epoch %d", g.name, p, last, moves+1)
			}
		})
	}
	wg.Wait()
}

// Three agents in three network namespaces; a Go guest and a prepared C
// guest each move round the grid 10 times while followed.
func TestGridMigration(t *testing.T) {
	hosts := netnsHosts(t, 3)
	guests := migrationGuests(t, "900", "256", "20")
	var nodes []gridNode
	for i, h := range hosts {
		nodes = append(nodes, gridNode{name: fmt.Sprintf("n%d", i+1), host: h, tern: []string{ternBin}})
	}
	agents := startGrid(t, nodes)
	var wg sync.WaitGroup
	wg.Go(func() { moveRoundRobin(t, agents, guests, 10) })
	wg.Go(func() { typeWhileMoving(t, agents, 10) })
	wg.Wait()
}

// typeWhileMoving runs the interactive guest on the first node, attaches
// to it from the second, and types lines into it while it moves round the
// grid: every line is answered once, in order, and the end of the input
// reaches it.
func typeWhileMoving(t *testing.T, agents []*agentProc, moves int) {
	wasm, err := buildMigrateGuest(t, "echo")
	if err != nil {
		t.Error(err)
		return
	}
	var input strings.Builder
	for i := range 5 * (moves + 1) {
		fmt.Fprintf(&input, "line %d %s\n", i, strings.Repeat("x", i*37%200))
	}
	ref := runTern(t, "", []byte(input.String()), "run", "--", wasm)
	r := runTern(t, "", nil, "run", "-i", "--on", agents[0].name, "--data", agents[0].dir, "--", wasm)
	id := strings.TrimSpace(r.stdout)
	if ref.code != 0 || r.code != 0 {
		t.Errorf("echo guest: direct run exit %d, grid run exit %d\n%s", ref.code, r.code, r.stderr)
		return
	}
	att := exec.Command(ternBin, "attach", "--data", agents[1].dir, id)
	stdin, _ := att.StdinPipe()
	var out, errb bytes.Buffer
	att.Stdout, att.Stderr = &out, &errb
	if err := att.Start(); err != nil {
		t.Error(err)
		return
	}
	lines := strings.SplitAfter(input.String(), "\n")
	for i, l := range lines {
		stdin.Write([]byte(l))
		if i%5 == 4 && i/5 < moves {
			to := agents[(i/5+1)%len(agents)]
			if m := runTern(t, "", nil, "migrate", "--data", agents[0].dir, id, to.name); m.code != 0 {
				t.Errorf("echo: move to %s: exit %d\n%s", to.name, m.code, m.stderr)
			}
		}
	}
	stdin.Close()
	done := make(chan error, 1)
	go func() { done <- att.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("attach: %v\n%s", err, errb.String())
		}
	case <-time.After(2 * time.Minute):
		att.Process.Kill()
		t.Errorf("attach did not end")
	}
	if out.String() != ref.stdout {
		t.Errorf("echo: attached output differs from a direct run: %s",
			firstDiff(strings.Split(ref.stdout, "\n"), strings.Split(out.String(), "\n"), "direct", "attached"))
	}
}

// The same across architectures: the hub is this machine, one agent is
// tern built for arm64 (under qemu-aarch64, compiler), one for big-endian
// s390x (under qemu-s390x, interpreter); each guest visits all of them.
func TestGridMigrationHeterogeneous(t *testing.T) {
	hosts := netnsHosts(t, 3)
	// Emulated hosts run the guests slowly: fewer, lighter rounds.
	guests := migrationGuests(t, "3000", "64", "20")
	agents := startGrid(t, []gridNode{
		{name: "amd64", host: hosts[0], tern: []string{ternBin}},
		{name: "arm64", host: hosts[1], tern: crossTern(t, "arm64")},
		{name: "s390x", host: hosts[2], tern: crossTern(t, "s390x"), engine: "interpreter"},
	})
	moveRoundRobin(t, agents, guests, 10)
}

// runOn starts a guest through an agent and returns its id.
func runOn(t *testing.T, a *agentProc, node string, g *migrationGuest) string {
	t.Helper()
	r := runTern(t, "", nil, append([]string{"run", "--on", node, "--data", a.dir, "--", g.wasm}, g.args...)...)
	id := strings.TrimSpace(r.stdout)
	if r.code != 0 || id == "" {
		t.Fatalf("%s: run on %s: exit %d\n%s", g.name, node, r.code, r.stderr)
	}
	return id
}

// copiesRunning lists the data directories of the agents whose OS
// processes run process id (each has its control socket, in its agent's
// data directory and named by the id, on its command line).
func copiesRunning(t *testing.T, id string) []string {
	t.Helper()
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	var dirs []string
	for _, c := range cmdlines {
		b, _ := os.ReadFile(c)
		for _, arg := range strings.Split(string(b), "\x00") {
			if dir, sock, ok := strings.Cut(arg, "/run/"+id+"-"); ok && strings.HasSuffix(sock, ".sock") {
				dirs = append(dirs, dir)
			}
		}
	}
	return dirs
}

// onlyCopyOn waits until process id runs in one OS process only, under
// agent a, and checks that it stays so for a while.
func onlyCopyOn(t *testing.T, id string, a *agentProc) {
	t.Helper()
	one := func() bool { c := copiesRunning(t, id); return len(c) == 1 && c[0] == a.dir }
	waitUntil(t, 20*time.Second, "one copy running, on "+a.name, one)
	for range 10 {
		time.Sleep(100 * time.Millisecond)
		if !one() {
			t.Fatalf("copies of %s running under %q, want one, under %s", id, copiesRunning(t, id), a.name)
		}
	}
}

// waitFor polls cond for up to d.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for start := time.Now(); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Since(start) > d {
			t.Fatalf("not within %v: %s", d, what)
		}
	}
}

// A move whose destination dies mid-transfer leaves the process running on
// the source; one whose source dies right after the destination took the
// process over leaves it running on the destination. Either way exactly
// one copy runs, and the followed output is an uninterrupted run's.
func TestGridMigrationFaults(t *testing.T) {
	hosts := netnsHosts(t, 4)
	g := migrationGuests(t, "1200", "256", "20")[0] // the Go guest
	nodes := []gridNode{
		{name: "hub", host: hosts[0], tern: []string{ternBin}},
		{name: "n2", host: hosts[1], tern: []string{ternBin}},
		{name: "dies-receiving", host: hosts[2], tern: []string{ternBin}, fault: "die-after-compiled"},
		{name: "dies-sending", host: hosts[3], tern: []string{ternBin}, fault: "die-after-commit"},
	}
	agents := startGrid(t, nodes)
	hub := agents[0]
	state := func(id string) cluster.Proc { return psJSON(t, hub.dir)[id] }

	t.Run("destination dies", func(t *testing.T) {
		id := runOn(t, hub, "n2", g)
		f := follow(t, hub.dir, id)
		time.Sleep(500 * time.Millisecond)
		m := runTern(t, "", nil, "migrate", "--data", hub.dir, id, "dies-receiving")
		if m.code == 0 || !strings.Contains(m.stderr, "stays on n2") {
			t.Fatalf("migrate to a destination that dies: exit %d, stderr %q; want a failure that keeps it on n2", m.code, m.stderr)
		}
		if p := state(id); p.Node != "n2" || p.Epoch != 1 || p.State != cluster.StateRunning {
			t.Fatalf("after the failed move: %+v, want running on n2 at epoch 1", p)
		}
		// The destination's half-received copy ends with its agent.
		onlyCopyOn(t, id, agents[1])
		f.check(t, g)
		if p := state(id); p.Node != "n2" || p.State != cluster.StateExited || p.ExitCode != 3 {
			t.Fatalf("at the end: %+v, want exited (3) on n2", p)
		}
	})

	t.Run("source dies after handover", func(t *testing.T) {
		id := runOn(t, hub, "dies-sending", g)
		f := follow(t, hub.dir, id)
		time.Sleep(500 * time.Millisecond)
		// The source dies answering: the move's outcome is read from the
		// registry, not from the answer.
		runTern(t, "", nil, "migrate", "--data", hub.dir, id, "n2")
		if p := state(id); p.Node != "n2" || p.Epoch != 2 || p.State != cluster.StateRunning {
			t.Fatalf("after the source died: %+v, want running on n2 at epoch 2", p)
		}
		// The source's frozen copy, told nothing, keeps itself in its
		// checkpoint and ends.
		onlyCopyOn(t, id, agents[1])
		if _, err := os.Stat(filepath.Join(agents[3].dir, "images", id+".img")); err != nil {
			t.Errorf("the source's copy was not kept: %v", err)
		}
		// Back on its feet, the source takes the process again: the pages
		// of the copy it kept are named, not sent. A node without one
		// is sent all but the module's data segments.
		src := nodes[3]
		startAgentCmd(t, src.name, agents[3].dir, []string{"ip", "netns", "exec", src.host.ns, ternBin, "agent",
			"--data", agents[3].dir, "--name", src.name, "--listen", src.host.ip + ":" + gridPort, "--log-level", "info"})
		move := func(to string) agent.Progress {
			m := runTern(t, "", nil, "migrate", "--data", hub.dir, "-o", "json", id, to)
			var res agent.Progress
			if err := json.Unmarshal([]byte(m.stdout), &res); m.code != 0 || err != nil {
				t.Fatalf("move to %s: exit %d, %v\n%s", to, m.code, err, m.stderr)
			}
			return res
		}
		back, away := move(src.name), move("n2")
		if back.Named <= away.Named || away.Named == 0 {
			t.Errorf("pages named instead of sent: %d to the node that kept a copy, %d to one with none; want more, and some", back.Named, away.Named)
		}
		t.Logf("pages named, not sent: %d to the node that kept a copy, %d to another (%.1f vs %.1f MiB sent)",
			back.Named, away.Named, float64(back.Bytes)/(1<<20), float64(away.Bytes)/(1<<20))
		f.check(t, g)
		if p := state(id); p.Node != "n2" || p.State != cluster.StateExited || p.ExitCode != 3 {
			t.Fatalf("at the end: %+v, want exited (3) on n2", p)
		}
	})
}

// Agents in separate network namespaces find each other by mDNS: a new
// device lists two grids' hubs on its LAN and joins one at the address it
// found, with a token, which joining still needs.
func TestGridDiscovery(t *testing.T) {
	hosts := netnsHosts(t, 3)
	var hubs []*agentProc
	for i, name := range []string{"disc-a", "disc-b"} {
		dir := t.TempDir()
		hubs = append(hubs, startAgentCmd(t, name, dir, []string{"ip", "netns", "exec", hosts[i].ns, ternBin, "agent", "--data", dir,
			"--name", name, "--listen", hosts[i].ip + ":" + gridPort, "--log-level", "info"}))
	}
	discoverFrom := func(h netHost) []discover.Announcement {
		t.Helper()
		r := runCommand(t, "", nil, []string{"ip", "netns", "exec", h.ns, ternBin, "nodes", "--discover", "--wait", "2s", "-o", "json"})
		if r.code != 0 {
			t.Fatalf("nodes --discover in %s: exit %d\n%s", h.ns, r.code, r.stderr)
		}
		var found []discover.Announcement
		if err := json.Unmarshal([]byte(r.stdout), &found); err != nil {
			t.Fatalf("nodes --discover -o json: %v\n%s", err, r.stdout)
		}
		return found
	}
	grids := map[string]string{}
	for _, h := range hubs {
		id, err := pki.LoadIdentity(filepath.Join(h.dir, "pki"))
		if err != nil {
			t.Fatal(err)
		}
		grids[h.name] = id.GridID()
	}
	if grids["disc-a"] == grids["disc-b"] {
		t.Fatal("two hubs made the same grid")
	}
	// Each hub finds the other (and itself), and the new device finds both.
	for _, h := range hosts {
		found := discoverFrom(h)
		for j, name := range []string{"disc-a", "disc-b"} {
			want := discover.Announcement{Grid: grids[name], Node: name, Addr: hosts[j].ip + ":" + gridPort, Hub: true}
			if !slices.Contains(found, want) {
				t.Errorf("from %s: %+v not among %+v", h.ns, want, found)
			}
		}
	}
	var hubA discover.Announcement
	for _, a := range discoverFrom(hosts[2]) {
		if a.Grid == grids["disc-a"] && a.Hub {
			hubA = a
		}
	}
	if hubA.Addr == "" {
		t.Fatal("grid disc-a's hub not found from the new device")
	}
	newDir := t.TempDir()
	argv := []string{"ip", "netns", "exec", hosts[2].ns, ternBin, "agent", "--data", newDir, "--name", "disc-new",
		"--listen", hosts[2].ip + ":" + gridPort, "--join", hubA.Addr}
	if r := runCommand(t, "", nil, argv); r.code == 0 || !strings.Contains(r.stderr, "needs a token") {
		t.Fatalf("joining a discovered grid without a token: exit %d\n%s", r.code, r.stderr)
	}
	tok := runTern(t, "", nil, "token", "create", "--data", hubs[0].dir)
	startAgentCmd(t, "disc-new", newDir, append(argv, "--token", strings.TrimSpace(tok.stdout), "--log-level", "info"))
	waitUntil(t, 30*time.Second, "disc-new among disc-a's nodes", func() bool {
		return strings.Contains(runTern(t, "", nil, "nodes", "--data", hubs[0].dir).stdout, "disc-new")
	})
	// Once in grid disc-a, the new device announces itself as its member.
	waitUntil(t, 30*time.Second, "disc-new announced as a member of disc-a", func() bool {
		return slices.Contains(discoverFrom(hosts[1]), discover.Announcement{Grid: grids["disc-a"], Node: "disc-new", Addr: hosts[2].ip + ":" + gridPort})
	})
}
