//go:build linux

package discover

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Agents in one network namespace are found from others over a real link
// (a veth pair), each side a separate process, as on a LAN.
//
//	B (vb0 10.231.1.2) ── A (va0 10.231.1.1; announcers) ── C (vc0 10.231.2.2), linked later
//
// A also has interfaces mDNS cannot use (one without multicast, one without
// carrier) to show they do not get in the way.
func TestDiscoverAcrossNamespaces(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root (CI runs the tests as root)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("ip (iproute2) not found")
	}
	const wait = 1500 * time.Millisecond
	prefix := fmt.Sprintf("tdisc%d", os.Getpid())
	nsA, nsB, nsC := prefix+"a", prefix+"b", prefix+"c"
	newNS(t, nsA)
	newNS(t, nsB)
	ip(t, "-n", nsA, "link", "add", "va0", "type", "veth", "peer", "name", "vb0", "netns", nsB)
	linkUp(t, nsA, "va0", "10.231.1.1/24")
	linkUp(t, nsB, "vb0", "10.231.1.2/24")
	ip(t, "-n", nsA, "link", "add", "vm0", "type", "veth", "peer", "name", "vm1")
	ip(t, "-n", nsA, "link", "set", "vm0", "multicast", "off")
	linkUp(t, nsA, "vm0", "10.231.9.1/24")
	ip(t, "-n", nsA, "link", "set", "vm1", "up")
	ip(t, "-n", nsA, "link", "add", "vx0", "type", "veth", "peer", "name", "vy0")
	linkUp(t, nsA, "vx0", "10.231.8.1/24")

	hub := Announcement{Grid: "9c0ffee1", Node: "laptop", Addr: "10.231.1.1:7070", Hub: true}
	other := Announcement{Grid: "1a2b3c4d", Node: "nas.home", Addr: "nas.example:7071"}
	start := time.Now()
	hubProc := startAnnouncer(t, nsA, hub)
	startAnnouncer(t, nsA, other)
	t.Logf("two announcers ready in %v", time.Since(start).Round(time.Millisecond))

	// Sorted by grid, then node: other's grid comes first.
	both := []Announcement{other, hub}
	expect(t, "B", mustBrowse(t, nsB, wait), both)

	// A link that appears after the announcers started is served too, and
	// a browser on the announcers' own host hears them.
	newNS(t, nsC)
	ip(t, "-n", nsA, "link", "add", "va1", "type", "veth", "peer", "name", "vc0", "netns", nsC)
	linkUp(t, nsA, "va1", "10.231.2.1/24")
	linkUp(t, nsC, "vc0", "10.231.2.2/24")
	var fromA, fromC []Announcement
	var errA, errC error
	var wg sync.WaitGroup
	wg.Go(func() { fromA, errA = browse(t, nsA, wait) })
	wg.Go(func() { fromC, errC = browse(t, nsC, wait) })
	wg.Wait()
	if errA != nil || errC != nil {
		t.Fatal(errA, errC)
	}
	expect(t, "A itself", fromA, both)
	expect(t, "C, linked later", fromC, both)

	// A closed announcer is not found by a fresh browse although its process
	// lives on, and the one that shared port 5353 with it goes on.
	hubProc.stop(t)
	expect(t, "B after the hub stopped", mustBrowse(t, nsB, wait), []Announcement{other})
}

func expect(t *testing.T, who string, got, want []Announcement) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("browse from %s found %+v\nwant %+v", who, got, want)
	}
}

func ip(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// newNS makes a namespace with lo up, deleted when the test ends (with
// everything in it: the processes have been killed by then, their cleanups
// being registered later).
func newNS(t *testing.T, ns string) {
	t.Helper()
	ip(t, "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	ip(t, "-n", ns, "link", "set", "lo", "up")
}

func linkUp(t *testing.T, ns, dev, cidr string) {
	t.Helper()
	ip(t, "-n", ns, "addr", "add", cidr, "dev", dev)
	ip(t, "-n", ns, "link", "set", dev, "up")
}

// helperCmd runs this test binary's TestHelperProcess in ns (ip execs it,
// so killing the command kills the helper).
func helperCmd(ctx context.Context, ns, mode, arg string) (*exec.Cmd, *syncBuffer) {
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), "TERN_DISCOVER_HELPER="+mode, "TERN_DISCOVER_ARG="+arg,
		// Under -race a process sleeps a second at exit by default, which
		// would be most of each browse's time here.
		"GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	return cmd, stderr
}

type announcer struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Reader
	stderr *syncBuffer
}

// startAnnouncer runs Announce(a) in ns and returns once it answers.
func startAnnouncer(t *testing.T, ns string, a Announcement) *announcer {
	t.Helper()
	arg, _ := json.Marshal(a)
	cmd, stderr := helperCmd(context.Background(), ns, "announce", string(arg))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &announcer{cmd: cmd, stdin: stdin, stdout: bufio.NewReader(stdout), stderr: stderr}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		if t.Failed() {
			t.Logf("announcer %s/%s in %s logged:\n%s", a.Grid, a.Node, ns, stderr)
		}
	})
	line, _ := p.stdout.ReadString('\n')
	if line != "ready\n" {
		cmd.Wait()
		t.Fatalf("announcer %+v in %s: %q, %v\n%s", a, ns, line, cmd.ProcessState, stderr)
	}
	return p
}

// stop closes the announcer's stdin, on which it closes the Announcer. The
// process lives on (until the test ends), so what is found afterwards
// depends on Close, not on the kernel closing a dead process's sockets.
func (p *announcer) stop(t *testing.T) {
	t.Helper()
	p.stdin.Close()
	closed := make(chan string, 1)
	go func() {
		line, _ := p.stdout.ReadString('\n')
		closed <- line
	}()
	select {
	case line := <-closed:
		if line != "closed\n" {
			t.Fatalf("announcer: %q\n%s", line, p.stderr)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("Close has not returned after 5s\n%s", p.stderr)
	}
}

// browse runs Browse in ns.
func browse(t *testing.T, ns string, wait time.Duration) ([]Announcement, error) {
	ctx, cancel := context.WithTimeout(context.Background(), wait+10*time.Second)
	defer cancel()
	cmd, stderr := helperCmd(ctx, ns, "browse", wait.String())
	start := time.Now()
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("browse in %s: %v\n%s", ns, err, stderr)
	}
	var found []Announcement
	if err := json.Unmarshal(out, &found); err != nil {
		return nil, fmt.Errorf("browse in %s printed %q: %v\n%s", ns, out, err, stderr)
	}
	t.Logf("browse in %s (wait %v) took %v, found %d", ns, wait, time.Since(start).Round(time.Millisecond), len(found))
	return found, nil
}

func mustBrowse(t *testing.T, ns string, wait time.Duration) []Announcement {
	t.Helper()
	found, err := browse(t, ns, wait)
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// TestHelperProcess is TestDiscoverAcrossNamespaces's announcer or browser,
// run in a network namespace; alone, it does nothing.
func TestHelperProcess(t *testing.T) {
	mode, arg := os.Getenv("TERN_DISCOVER_HELPER"), os.Getenv("TERN_DISCOVER_ARG")
	if mode == "" {
		t.Skip("only a helper process of TestDiscoverAcrossNamespaces")
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	slog.SetDefault(log)
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	switch mode {
	case "announce":
		// Short, so that the test need not wait for a link added later.
		rescanInterval = 200 * time.Millisecond
		var a Announcement
		if err := json.Unmarshal([]byte(arg), &a); err != nil {
			fail(err)
		}
		an, err := Announce(context.Background(), a, log)
		if err != nil {
			fail(err)
		}
		fmt.Println("ready")
		io.Copy(io.Discard, os.Stdin)
		if err := an.Close(); err != nil {
			fail(err)
		}
		fmt.Println("closed")
		select {} // killed by the test's cleanup
	case "browse":
		wait, err := time.ParseDuration(arg)
		if err != nil {
			fail(err)
		}
		found, err := Browse(context.Background(), wait)
		if err != nil {
			fail(err)
		}
		if err := json.NewEncoder(os.Stdout).Encode(found); err != nil {
			fail(err)
		}
	default:
		fail(fmt.Errorf("unknown helper mode %q", mode))
	}
	os.Exit(0)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
