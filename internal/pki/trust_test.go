package pki

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Tern processes that start together on a fresh device all sign with the
// one device key that the first of them made.
func TestDeviceSignerOnce(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	const n = 16
	var wg sync.WaitGroup
	signers := make([]*Signer, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			signers[i], errs[i] = LoadSigner(dir)
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if !signers[i].Key.Equal(signers[0].Key) || string(signers[i].Cert) != string(signers[0].Cert) {
			t.Fatalf("signer %d differs from signer 0", i)
		}
	}
	if signers[0].Name != "this device" {
		t.Errorf("name %q", signers[0].Name)
	}
	checkMode(t, filepath.Join(dir, deviceFile), 0o600)
	left, _ := filepath.Glob(filepath.Join(dir, ".device-*"))
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	// A directory with a node identity signs with it instead.
	ca := newCA(t)
	id := validIdentity(t, ca, "node-1")
	idDir := t.TempDir()
	if _, err := SaveIdentity(idDir, id.CertPEM, id.KeyPEM, id.CAPEM); err != nil {
		t.Fatal(err)
	}
	s, err := LoadSigner(idDir)
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "node-1" || string(s.Cert) != string(id.Cert.Certificate[0]) {
		t.Errorf("signer of a node: %q", s.Name)
	}
}

func TestTrust(t *testing.T) {
	ca, other := newCA(t), newCA(t)
	hubDir := t.TempDir()
	hub := validIdentity(t, ca, "hub")
	if _, err := SaveIdentity(hubDir, hub.CertPEM, hub.KeyPEM, hub.CAPEM); err != nil {
		t.Fatal(err)
	}
	dev, err := LoadSigner(hubDir) // the node's identity
	if err != nil {
		t.Fatal(err)
	}
	// Images this device signed before it joined stay trusted.
	if _, _, err := loadOrCreateDevice(hubDir); err != nil {
		t.Fatal(err)
	}
	own, _, _ := readDevice(filepath.Join(hubDir, deviceFile))
	member := validIdentity(t, ca, "member")
	removed := validIdentity(t, ca, "removed")
	stranger := validIdentity(t, other, "member")
	// Within the CA's own validity, which began a minute ago.
	past := time.Now().Add(-50 * time.Second)
	expired := newIdentity(t, ca, "old", past, past.Add(30*time.Second))
	lone := t.TempDir() // a device in no grid
	loneSigner, err := LoadSigner(lone)
	if err != nil {
		t.Fatal(err)
	}

	var r Revocations
	r.Set([]Revoked{{Cert: Fingerprint(removed.Cert.Certificate[0]), Node: "removed", At: time.Now()}})
	if err := r.Save(hubDir); err != nil {
		t.Fatal(err)
	}
	trust, err := LoadTrust(hubDir)
	if err != nil {
		t.Fatal(err)
	}
	loneTrust, err := LoadTrust(lone)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		trust *Trust
		cert  []byte
		at    time.Time
		who   string
		want  error
	}{
		{"the node itself", trust, dev.Cert, time.Now(), "hub", nil},
		{"a member", trust, member.Cert.Certificate[0], time.Now(), "member", nil},
		{"the device's own key", trust, own.Raw, time.Now(), "this device", nil},
		{"a removed member", trust, removed.Cert.Certificate[0], time.Now(), "removed", ErrRevoked},
		{"another grid's node", trust, stranger.Cert.Certificate[0], time.Now(), "member", ErrUntrusted},
		{"expired, signed while valid", trust, expired.Cert.Certificate[0], past.Add(10 * time.Second), "old", nil},
		{"expired, signed after", trust, expired.Cert.Certificate[0], time.Now(), "old", ErrUntrusted},
		{"another device, no grid", loneTrust, member.Cert.Certificate[0], time.Now(), "member", ErrUntrusted},
		{"the lone device itself", loneTrust, loneSigner.Cert, time.Now(), "this device", nil},
		{"the lone device, elsewhere", trust, loneSigner.Cert, time.Now(), "", ErrUntrusted},
	} {
		t.Run(c.name, func(t *testing.T) {
			who, err := c.trust.CheckSigner(c.cert, c.at)
			if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("err %v, want %v", err, c.want)
			}
			if c.who != "" && who != c.who {
				t.Errorf("signer %q, want %q", who, c.who)
			}
		})
	}
	if _, err := trust.CheckSigner([]byte("junk"), time.Now()); err == nil {
		t.Error("junk certificate accepted")
	}
}

func TestRevocations(t *testing.T) {
	dir := t.TempDir()
	r, err := LoadRevocations(dir)
	if err != nil || len(r.List()) != 0 {
		t.Fatalf("empty: %v %v", r.List(), err)
	}
	ca := newCA(t)
	a, b := validIdentity(t, ca, "a"), validIdentity(t, ca, "b")
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	r.Set([]Revoked{{Cert: Fingerprint(a.Cert.Certificate[0]), Node: "a", At: at}})
	if err := r.Save(dir); err != nil {
		t.Fatal(err)
	}
	r2, err := LoadRevocations(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := r2.Check(a.Cert.Certificate[0]); !errors.Is(err, ErrRevoked) {
		t.Errorf("a: %v", err)
	}
	if err := r2.Check(b.Cert.Certificate[0]); err != nil {
		t.Errorf("b: %v", err)
	}
	// In a handshake: a revoked client is refused, as is a revoked server.
	srv := b.ServerTLS()
	srv.VerifyConnection = r2.VerifyConnection
	if _, _, srvErr, _ := handshake(t, srv, a.ClientTLS("b")); !errors.Is(srvErr, ErrRevoked) {
		t.Errorf("revoked client: server says %v", srvErr)
	}
	cli := b.ClientTLS("a")
	cli.VerifyConnection = r2.VerifyConnection
	if _, _, _, cliErr := handshake(t, a.ServerTLS(), cli); !errors.Is(cliErr, ErrRevoked) {
		t.Errorf("revoked server: client says %v", cliErr)
	}
	if _, _, srvErr, cliErr := handshake(t, srv, validIdentity(t, ca, "c").ClientTLS("b")); srvErr != nil || cliErr != nil {
		t.Errorf("a node not revoked: %v / %v", srvErr, cliErr)
	}
	if err := os.WriteFile(filepath.Join(dir, revokedFile), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadRevocations(dir); err == nil {
		t.Error("a damaged revocation list loaded")
	}
}
