package main

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ternhq/tern/internal/pki"
)

// hubPorts returns an agent address whose next port (the hub's NATS) is
// free too.
func hubPorts(t *testing.T) (agentAddr, natsAddr string) {
	t.Helper()
	for range 50 {
		a := freePort(t)
		host, port, _ := net.SplitHostPort(a)
		p, _ := strconv.Atoi(port)
		n := net.JoinHostPort(host, strconv.Itoa(p+1))
		if ln, err := net.Listen("tcp", n); err == nil {
			ln.Close()
			return a, n
		}
	}
	t.Fatal("no two free ports in a row")
	return "", ""
}

func loadID(t *testing.T, dir string) *pki.Identity {
	t.Helper()
	id, err := pki.LoadIdentity(filepath.Join(dir, "pki"))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// gridCall makes a request of an agent's grid listener as the holder of
// id (nil: no certificate) and returns the status, or the error of the
// connection.
func gridCall(addr, server string, id *pki.Identity) (int, error) {
	var tc *tls.Config
	if id != nil {
		tc = id.ClientTLS(server)
	} else {
		tc = &tls.Config{InsecureSkipVerify: true}
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
	resp, err := hc.Post("https://"+addr+"/v1/procs", "application/json", strings.NewReader("{}"))
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// natsConn connects to the hub's NATS as the holder of id (nil: with no
// certificate, trusting the hub's CA from trust).
func natsConn(addr, server string, id, trust *pki.Identity) (*nats.Conn, error) {
	tc := trust.ClientTLS(server)
	tc.Certificates = nil
	if id != nil {
		tc = id.ClientTLS(server)
	}
	return nats.Connect("tls://"+addr, nats.Secure(tc), nats.NoReconnect(), nats.Timeout(5*time.Second))
}

// localCall makes a request of an agent's own API socket as the holder of
// id (nil: no certificate).
func localCall(dir string, id *pki.Identity, server string) error {
	c, err := net.Dial("unix", filepath.Join(dir, "agent.sock"))
	if err != nil {
		return err
	}
	defer c.Close()
	tc := &tls.Config{InsecureSkipVerify: true}
	if id != nil {
		tc = id.ClientTLS(server)
	}
	tlsc := tls.Client(c, tc)
	tlsc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := tlsc.HandshakeContext(context.Background()); err != nil {
		return err
	}
	// TLS 1.3 reports a refused client certificate on the first read.
	if _, err := tlsc.Write([]byte("GET /v1/nodes HTTP/1.1\r\nHost: agent\r\n\r\n")); err != nil {
		return err
	}
	buf := make([]byte, 64)
	if _, err := tlsc.Read(buf); err != nil {
		return err
	}
	if !strings.HasPrefix(string(buf), "HTTP/1.1 200") {
		return &net.AddrError{Err: "answer " + string(buf)}
	}
	return nil
}

// Everything that must be refused is refused, each next to the same thing
// done with the right credentials, which works: joining without a token,
// with an expired, a used or another grid's token; a certificate of
// another grid at an agent, its NATS and its API; NATS and the API without
// a certificate; another node's certificate at a device's own API; and a
// removed node's certificate everywhere, along with the removed device's
// connections and agent.
func TestGridSecurity(t *testing.T) {
	hubAddr, hubNATS := hubPorts(t)
	hubDir := t.TempDir()
	startAgentCmd(t, "sec-hub", hubDir, []string{ternBin, "agent", "--data", hubDir, "--name", "sec-hub", "--listen", hubAddr, "--log-level", "info"})
	token := func(dir string, ttl string) string {
		t.Helper()
		r := runTern(t, "", nil, "token", "create", "--data", dir, "--ttl", ttl)
		if r.code != 0 {
			t.Fatalf("token create: exit %d\n%s", r.code, r.stderr)
		}
		return strings.TrimSpace(r.stdout)
	}
	joinArgs := func(dir, name, hubAddr, tok string) []string {
		args := []string{"agent", "--data", dir, "--name", name, "--listen", freePort(t), "--join", hubAddr}
		if tok != "" {
			args = append(args, "--token", tok)
		}
		return args
	}
	refusedJoin := func(what, tok, want string) {
		t.Helper()
		r := runTern(t, "", nil, joinArgs(t.TempDir(), "sec-x", hubAddr, tok)...)
		if r.code == 0 || !strings.Contains(r.stderr, want) {
			t.Errorf("join %s: exit %d, want refusal %q; stderr:\n%s", what, r.code, want, r.stderr)
		}
	}

	// Joining.
	refusedJoin("without a token", "", "needs a token")
	expired := token(hubDir, "1s")
	time.Sleep(1500 * time.Millisecond)
	refusedJoin("with an expired token", expired, "token expired")
	good := token(hubDir, "10m")
	m1Dir := t.TempDir()
	m1 := startAgentCmd(t, "sec-m1", m1Dir, append([]string{ternBin}, joinArgs(m1Dir, "sec-m1", hubAddr, good)...))
	refusedJoin("with a used token", good, "unknown or used token")
	otherAddr, _ := hubPorts(t)
	otherDir := t.TempDir()
	startAgentCmd(t, "sec-other", otherDir, []string{ternBin, "agent", "--data", otherDir, "--name", "sec-other", "--listen", otherAddr})
	refusedJoin("with another grid's token", token(otherDir, "10m"), "CA does not match the join token")

	hubID, m1ID, otherID := loadID(t, hubDir), loadID(t, m1Dir), loadID(t, otherDir)

	// A grid node's certificate gets in everywhere a node may go...
	if code, err := gridCall(hubAddr, "sec-hub", m1ID); err != nil || code == http.StatusUnauthorized {
		t.Fatalf("a node of the grid at the hub's listener: status %d, %v", code, err)
	}
	m1NATS, err := natsConn(hubNATS, "sec-hub", m1ID, hubID)
	if err != nil {
		t.Fatalf("a node of the grid at the hub's NATS: %v", err)
	}
	defer m1NATS.Close()
	if err := localCall(hubDir, hubID, "sec-hub"); err != nil {
		t.Fatalf("the hub's own credentials at its API: %v", err)
	}
	// ...and another grid's certificate nowhere.
	if code, err := gridCall(hubAddr, "sec-hub", otherID); err == nil {
		t.Errorf("another grid's certificate at the hub's listener: status %d", code)
	}
	if nc, err := natsConn(hubNATS, "sec-hub", otherID, hubID); err == nil {
		nc.Close()
		t.Error("another grid's certificate at the hub's NATS: connected")
	}
	if err := localCall(hubDir, otherID, "sec-hub"); err == nil {
		t.Error("another grid's certificate at the hub's API: answered")
	}
	// Without credentials: NATS (over TLS, and in plain text), the grid's
	// routes and the API.
	if nc, err := natsConn(hubNATS, "sec-hub", nil, hubID); err == nil {
		nc.Close()
		t.Error("NATS without a certificate: connected")
	}
	if nc, err := nats.Connect("nats://"+hubNATS, nats.NoReconnect(), nats.Timeout(5*time.Second)); err == nil {
		nc.Close()
		t.Error("NATS in plain text: connected")
	}
	if code, err := gridCall(hubAddr, "sec-hub", nil); err != nil || code != http.StatusUnauthorized {
		t.Errorf("the grid's routes without a certificate: status %d, %v (want 401)", code, err)
	}
	if err := localCall(hubDir, nil, "sec-hub"); err == nil {
		t.Error("the hub's API without a certificate: answered")
	}
	// Another node's certificate is of the grid, but not this device's.
	if err := localCall(hubDir, m1ID, "sec-hub"); err == nil {
		t.Error("a member's certificate at the hub's own API: answered")
	}
	// The CLI with no credentials beside the socket says so.
	bare := t.TempDir()
	if err := os.Symlink(filepath.Join(hubDir, "agent.sock"), filepath.Join(bare, "agent.sock")); err != nil {
		t.Fatal(err)
	}
	if r := runTern(t, "", nil, "ps", "--data", bare); r.code == 0 || !strings.Contains(r.stderr, "no credentials for the agent") {
		t.Errorf("tern ps without credentials: exit %d, stderr %q", r.code, r.stderr)
	}

	// Removing: not the hub, not oneself, not a stranger.
	for _, c := range []struct{ dir, node, want string }{
		{m1Dir, "sec-hub", "the grid's hub"},
		{hubDir, "sec-hub", "cannot remove itself"},
		{hubDir, "sec-nobody", "never issued it a certificate"},
		{hubDir, "no/such node", "bad node name"},
	} {
		if r := runTern(t, "", nil, "nodes", "remove", "--data", c.dir, c.node); r.code == 0 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("nodes remove %s: exit %d, stderr %q (want %q)", c.node, r.code, r.stderr, c.want)
		}
	}
	if r := runTern(t, "", nil, "nodes", "remove", "--data", hubDir, "sec-m1"); r.code != 0 || !strings.Contains(r.stdout, "removed sec-m1: 1 certificate") {
		t.Fatalf("nodes remove sec-m1: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// The removed device's agent stops, saying why.
	select {
	case err := <-m1.done:
		m1.stopped = true
		b, _ := os.ReadFile(m1.log)
		if err == nil || !strings.Contains(string(b), "this device was removed from the grid") {
			t.Errorf("removed agent ended with %v; log:\n%s", err, b)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the removed device's agent still runs after 30s")
	}
	// Its open NATS connection is closed...
	waitUntil(t, 10*time.Second, "the removed node's NATS connection closed", func() bool { return m1NATS.IsClosed() })
	// ...and its certificate is refused everywhere.
	if code, err := gridCall(hubAddr, "sec-hub", m1ID); err == nil {
		t.Errorf("a removed node's certificate at the hub's listener: status %d", code)
	}
	if nc, err := natsConn(hubNATS, "sec-hub", m1ID, hubID); err == nil {
		nc.Close()
		t.Error("a removed node's certificate at the hub's NATS: connected")
	}
	if r := runTern(t, "", nil, "agent", "--data", m1Dir, "--name", "sec-m1", "--listen", freePort(t)); r.code == 0 || !strings.Contains(r.stderr, "removed from the grid") {
		t.Errorf("restarting the removed agent: exit %d, stderr %q", r.code, r.stderr)
	}
	r := runTern(t, "", nil, "nodes", "--data", hubDir)
	if strings.Contains(r.stdout, "sec-m1") {
		t.Errorf("the removed node is still listed:\n%s", r.stdout)
	}
	// A new token lets the device in again, with a new certificate.
	again := t.TempDir()
	startAgentCmd(t, "sec-m1", again, append([]string{ternBin}, joinArgs(again, "sec-m1", hubAddr, token(hubDir, "10m"))...))
	if code, err := gridCall(hubAddr, "sec-hub", loadID(t, again)); err != nil || code == http.StatusUnauthorized {
		t.Fatalf("the device let in again: status %d, %v", code, err)
	}
}
