package pki

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

func newCA(t *testing.T) *CA {
	t.Helper()
	ca, err := LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// newIdentity issues name a certificate valid from notBefore to notAfter and
// saves it, as a joining node would.
func newIdentity(t *testing.T, ca *CA, name string, notBefore, notAfter time.Time) *Identity {
	t.Helper()
	key, keyPEM, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := ca.issue(name, key.Public().(ed25519.PublicKey), notBefore, notAfter)
	if err != nil {
		t.Fatal(err)
	}
	id, err := SaveIdentity(t.TempDir(), certPEM, keyPEM, ca.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func validIdentity(t *testing.T, ca *CA, name string) *Identity {
	return newIdentity(t, ca, name, time.Now().Add(-time.Minute), time.Now().Add(time.Hour))
}

func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	if runtime.GOOS == "windows" {
		return // no Unix permissions to check
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != want {
		t.Errorf("%s: mode %v, want %v", filepath.Base(path), st.Mode().Perm(), want)
	}
}

func TestCACreateLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	if _, err := LoadCA(dir); !errors.Is(err, ErrNoCA) {
		t.Fatalf("LoadCA of a missing directory: %v, want ErrNoCA", err)
	}
	ca, err := LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	checkMode(t, dir, 0o700)
	checkMode(t, filepath.Join(dir, "ca.key"), 0o600)
	checkMode(t, filepath.Join(dir, "ca.crt"), 0o644)
	if !regexp.MustCompile(`^[0-9a-f]{8}$`).MatchString(ca.GridID()) {
		t.Errorf("grid id %q, want 8 hex digits", ca.GridID())
	}
	if cn := ca.Cert.Subject.CommonName; cn != "tern grid "+ca.GridID() {
		t.Errorf("CN %q", cn)
	}
	if !ca.Cert.IsCA || ca.Cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Error("not a CA certificate")
	}
	if life := ca.Cert.NotAfter.Sub(ca.Cert.NotBefore); life < 9*365*24*time.Hour || life > 11*365*24*time.Hour {
		t.Errorf("CA valid for %v, want 10 years", life)
	}
	for _, load := range []struct {
		name string
		f    func(string) (*CA, error)
	}{{"LoadCA", LoadCA}, {"LoadOrCreateCA", LoadOrCreateCA}} {
		got, err := load.f(dir)
		if err != nil {
			t.Fatalf("%s: %v", load.name, err)
		}
		if !bytes.Equal(got.Cert.Raw, ca.Cert.Raw) || !got.Key.Equal(ca.Key) || !bytes.Equal(got.CertPEM, ca.CertPEM) {
			t.Errorf("%s: a different CA than the one created", load.name)
		}
	}
	if other := newCA(t); other.Key.Equal(ca.Key) {
		t.Error("two CAs share a key")
	}
}

func TestCARefused(t *testing.T) {
	otherDir := t.TempDir()
	other, err := LoadOrCreateCA(otherDir)
	if err != nil {
		t.Fatal(err)
	}
	otherKey, _ := os.ReadFile(filepath.Join(otherDir, "ca.key"))
	for _, tc := range []struct {
		name   string
		damage func(dir string) error
		noCA   bool // LoadCA reports ErrNoCA (still LoadOrCreateCA must not create)
	}{
		{"corrupt key", func(d string) error { return os.WriteFile(filepath.Join(d, "ca.key"), []byte("garbage"), 0o600) }, false},
		{"truncated key", func(d string) error { return truncate(filepath.Join(d, "ca.key")) }, false},
		{"key of another CA", func(d string) error { return os.WriteFile(filepath.Join(d, "ca.key"), otherKey, 0o600) }, false},
		{"key twice", func(d string) error { return appendSelf(filepath.Join(d, "ca.key")) }, false},
		{"corrupt cert", func(d string) error { return os.WriteFile(filepath.Join(d, "ca.crt"), []byte("garbage"), 0o644) }, false},
		{"truncated cert", func(d string) error { return truncate(filepath.Join(d, "ca.crt")) }, false},
		{"cert of another CA", func(d string) error { return os.WriteFile(filepath.Join(d, "ca.crt"), other.CertPEM, 0o644) }, false},
		{"key without cert", func(d string) error { return os.Remove(filepath.Join(d, "ca.crt")) }, false},
		{"cert without key", func(d string) error { return os.Remove(filepath.Join(d, "ca.key")) }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := LoadOrCreateCA(dir); err != nil {
				t.Fatal(err)
			}
			if err := tc.damage(dir); err != nil {
				t.Fatal(err)
			}
			before := snapshot(t, dir)
			_, err := LoadCA(dir)
			if err == nil || errors.Is(err, ErrNoCA) != tc.noCA {
				t.Errorf("LoadCA: %v, want an error (ErrNoCA: %v)", err, tc.noCA)
			}
			if _, err := LoadOrCreateCA(dir); err == nil {
				t.Error("LoadOrCreateCA accepted a damaged CA")
			}
			if after := snapshot(t, dir); after != before {
				t.Errorf("files changed: %s, were %s", after, before)
			}
		})
	}
}

func truncate(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b[:len(b)/2], 0o600)
}

func appendSelf(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, b...), 0o600)
}

// snapshot summarises a directory's names and contents.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var s strings.Builder
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		s.WriteString(e.Name() + ":" + string(sha256Hex(b)) + " ")
	}
	return s.String()
}

func sha256Hex(b []byte) []byte {
	h := sha256.Sum256(b)
	return h[:4]
}

func TestIssue(t *testing.T) {
	ca := newCA(t)
	key, _, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	pub := key.Public().(ed25519.PublicKey)
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"node-1", true},
		{"a", true},
		{"edge_2.lab", true},
		{"Pi4", true},
		{strings.Repeat("n", 63), true},
		{"01.02.03.04", true}, // leading zeros: not an address to Go, so a name
		{"", false},
		{"-a", false},
		{".a", false},
		{"_a", false},
		{"a b", false},
		{"a/b", false},
		{"a\n", false},
		{"né", false},
		{strings.Repeat("n", 64), false},
		{"10.0.0.1", false},
	} {
		certPEM, err := ca.Issue(tc.name, pub, time.Hour)
		if !tc.ok {
			if !errors.Is(err, ErrBadName) {
				t.Errorf("Issue(%q): %v, want ErrBadName", tc.name, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Issue(%q): %v", tc.name, err)
			continue
		}
		cert, err := parseCertPEM(certPEM)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AddCert(ca.Cert)
		for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
			if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: tc.name, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
				t.Errorf("%q for usage %v: %v", tc.name, usage, err)
			}
		}
		if cert.Subject.CommonName != tc.name || cert.KeyUsage != x509.KeyUsageDigitalSignature {
			t.Errorf("%q: CN %q, key usage %v", tc.name, cert.Subject.CommonName, cert.KeyUsage)
		}
		if d := time.Until(cert.NotBefore); d > -50*time.Second || d < -2*time.Minute {
			t.Errorf("%q: starts %v from now, want about a minute ago", tc.name, d)
		}
		if d := time.Until(cert.NotAfter); d > time.Hour || d < 50*time.Minute {
			t.Errorf("%q: ends %v from now, want an hour", tc.name, d)
		}
	}
	if _, err := ca.Issue("n", pub, 0); err == nil {
		t.Error("issued with a zero ttl")
	}
	if _, err := ca.Issue("n", pub[:5], time.Hour); err == nil {
		t.Error("issued for a 5-byte public key")
	}
	certPEM, err := ca.Issue("n", pub, 100*365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if cert, _ := parseCertPEM(certPEM); cert.NotAfter.After(ca.Cert.NotAfter) {
		t.Error("node certificate outlives its CA")
	}
}

func TestIdentityRoundTrip(t *testing.T) {
	ca := newCA(t)
	key, keyPEM, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := ca.Issue("node-7", key.Public().(ed25519.PublicKey), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "id")
	if _, err := LoadIdentity(dir); !errors.Is(err, ErrNoIdentity) {
		t.Fatalf("LoadIdentity of nothing: %v, want ErrNoIdentity", err)
	}
	saved, err := SaveIdentity(dir, certPEM, keyPEM, ca.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	checkMode(t, filepath.Join(dir, "node.key"), 0o600)
	loaded, err := LoadIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []*Identity{saved, loaded} {
		if id.Name != "node-7" || !bytes.Equal(id.CertPEM, certPEM) || !bytes.Equal(id.KeyPEM, keyPEM) ||
			!bytes.Equal(id.CAPEM, ca.CertPEM) || id.Cert.Leaf == nil || !id.Cert.Leaf.Equal(loaded.Cert.Leaf) {
			t.Errorf("identity differs from what was saved: %+v", id.Name)
		}
		if _, err := id.Cert.Leaf.Verify(x509.VerifyOptions{Roots: id.Pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			t.Errorf("leaf does not verify against the identity's pool: %v", err)
		}
	}
	// The CA's own directory may hold its node identity too.
	caDir := t.TempDir()
	if ca, err = LoadOrCreateCA(caDir); err != nil {
		t.Fatal(err)
	}
	certPEM, _ = ca.Issue("hub", key.Public().(ed25519.PublicKey), time.Hour)
	if _, err := SaveIdentity(caDir, certPEM, keyPEM, ca.CertPEM); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadCA(caDir); err != nil {
		t.Errorf("CA unusable after saving its identity beside it: %v", err)
	}
	if _, err := LoadIdentity(caDir); err != nil {
		t.Error(err)
	}
}

func TestIdentityRefused(t *testing.T) {
	ca, other := newCA(t), newCA(t)
	key, keyPEM, _ := NewKey()
	_, otherKeyPEM, _ := NewKey()
	certPEM, _ := ca.Issue("n1", key.Public().(ed25519.PublicKey), time.Hour)
	foreignPEM, _ := other.Issue("n1", key.Public().(ed25519.PublicKey), time.Hour)
	for _, tc := range []struct {
		name                 string
		cert, key, caPEM     []byte
		intoCADir, loadSaved bool
	}{
		{"key does not match", certPEM, otherKeyPEM, ca.CertPEM, false, false},
		{"cert from another CA", foreignPEM, keyPEM, ca.CertPEM, false, false},
		{"CA is a node cert", certPEM, keyPEM, certPEM, false, false},
		{"garbage cert", []byte("garbage"), keyPEM, ca.CertPEM, false, false},
		{"key is a cert", certPEM, certPEM, ca.CertPEM, false, false},
		{"would replace a CA's cert", foreignPEM, keyPEM, other.CertPEM, true, false},
		{"node.key swapped on disk", certPEM, otherKeyPEM, ca.CertPEM, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.intoCADir {
				if _, err := LoadOrCreateCA(dir); err != nil {
					t.Fatal(err)
				}
			}
			if tc.loadSaved {
				if _, err := SaveIdentity(dir, certPEM, keyPEM, ca.CertPEM); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, "node.key"), tc.key, 0o600); err != nil {
					t.Fatal(err)
				}
				if _, err := LoadIdentity(dir); err == nil || errors.Is(err, ErrNoIdentity) {
					t.Errorf("LoadIdentity: %v, want a refusal", err)
				}
				return
			}
			before := snapshot(t, dir)
			if _, err := SaveIdentity(dir, tc.cert, tc.key, tc.caPEM); err == nil {
				t.Error("SaveIdentity accepted it")
			}
			if after := snapshot(t, dir); after != before {
				t.Errorf("files changed: %s, were %s", after, before)
			}
		})
	}
}

// handshake runs ServerTLS against ClientTLS over loopback, dialing by
// address so only the configured name is checked. The client reads a byte
// the server sends after its handshake: in TLS 1.3 the client finishes before
// the server has judged the client's certificate, so a refusal shows there.
func handshake(t *testing.T, srv, cli *tls.Config) (srvPeer, cliPeer string, srvErr, cliErr error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		peer string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- result{err: err}
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(time.Minute)) // a hang fails the test instead of the run
		tc := tls.Server(c, srv)
		if err := tc.Handshake(); err != nil {
			done <- result{err: err}
			return
		}
		cs := tc.ConnectionState()
		_, err = tc.Write([]byte("k"))
		done <- result{PeerName(&cs), err}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(time.Minute))
	tc := tls.Client(c, cli)
	if cliErr = tc.Handshake(); cliErr == nil {
		cs := tc.ConnectionState()
		cliPeer = PeerName(&cs)
		_, cliErr = io.ReadFull(tc, make([]byte, 1))
	}
	c.Close()
	r := <-done
	return r.peer, cliPeer, r.err, cliErr
}

func TestHandshake(t *testing.T) {
	ca, other := newCA(t), newCA(t)
	hub, node := validIdentity(t, ca, "hub"), validIdentity(t, ca, "edge_2.lab")
	stranger, fakeHub := validIdentity(t, other, "node-9"), validIdentity(t, other, "hub")
	past := time.Now().Add(-48 * time.Hour)
	expiredNode := newIdentity(t, ca, "node-3", past, past.Add(time.Hour))
	expiredHub := newIdentity(t, ca, "hub", past, past.Add(time.Hour))
	noCert := node.ClientTLS("hub")
	noCert.Certificates = nil
	// A client that trusts the grid but presents another grid's certificate,
	// so that only the server has something to refuse. Left to itself the
	// client would send nothing, as the server names the CAs it accepts.
	foreign := stranger.ClientTLS("hub")
	foreign.RootCAs = hub.Pool
	foreign.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &stranger.Cert, nil }

	var (
		none      = func(err error) bool { return err == nil }
		refused   = func(err error) bool { return err != nil }
		unknownCA = func(err error) bool { var e x509.UnknownAuthorityError; return errors.As(err, &e) }
		wrongName = func(err error) bool { var e x509.HostnameError; return errors.As(err, &e) }
		expired   = func(err error) bool {
			var e x509.CertificateInvalidError
			return errors.As(err, &e) && e.Reason == x509.Expired
		}
	)
	for _, tc := range []struct {
		name             string
		srv, cli         *tls.Config
		srvErr, cliErr   func(error) bool
		srvPeer, cliPeer string
	}{
		{"mutual", hub.ServerTLS(), node.ClientTLS("hub"), none, none, "edge_2.lab", "hub"},
		{"reverse", node.ServerTLS(), hub.ClientTLS("edge_2.lab"), none, none, "hub", "edge_2.lab"},
		{"client without cert", hub.ServerTLS(), noCert, refused, refused, "", ""},
		{"client from another CA", hub.ServerTLS(), foreign, unknownCA, refused, "", ""},
		{"server from another CA", fakeHub.ServerTLS(), node.ClientTLS("hub"), refused, unknownCA, "", ""},
		{"server is another node", node.ServerTLS(), hub.ClientTLS("hub"), refused, wrongName, "", ""},
		{"expired client", hub.ServerTLS(), expiredNode.ClientTLS("hub"), expired, refused, "", ""},
		{"expired server", expiredHub.ServerTLS(), node.ClientTLS("hub"), refused, expired, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srvPeer, cliPeer, srvErr, cliErr := handshake(t, tc.srv, tc.cli)
			if !tc.srvErr(srvErr) || !tc.cliErr(cliErr) {
				t.Fatalf("server: %v; client: %v", srvErr, cliErr)
			}
			if srvPeer != tc.srvPeer || cliPeer != tc.cliPeer && tc.cliPeer != "" {
				t.Errorf("server saw %q, client saw %q; want %q, %q", srvPeer, cliPeer, tc.srvPeer, tc.cliPeer)
			}
		})
	}
	if PeerName(nil) != "" || PeerName(&tls.ConnectionState{}) != "" {
		t.Error("PeerName of an unverified connection is not empty")
	}
}

func TestTokenRoundTrip(t *testing.T) {
	ca, other := newCA(t), newCA(t)
	tok, err := NewToken(ca)
	if err != nil {
		t.Fatal(err)
	}
	tok2, _ := NewToken(ca)
	if tok.ID == tok2.ID || tok.Secret == tok2.Secret {
		t.Error("two tokens share an ID or secret")
	}
	s := tok.String()
	if !regexp.MustCompile(`^tern1-[a-z2-7]{84}$`).MatchString(s) {
		t.Errorf("token %q: not tern1- and 84 characters of a-z2-7", s)
	}
	// Decode independently of the package: upper-cased, it is standard base32.
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.ToUpper(s[6:]))
	if err != nil {
		t.Fatal(err)
	}
	want := append(append(tok.CAHash[:], must(hex.DecodeString(tok.ID))...), tok.Secret[:]...)
	if !bytes.Equal(raw, want) {
		t.Errorf("token bytes %x, want CAHash||ID||Secret %x", raw, want)
	}
	got, err := ParseToken(s)
	if err != nil || got != tok {
		t.Fatalf("ParseToken: %+v, %v; want %+v", got, err, tok)
	}
	if tok.SecretHash() != sha256.Sum256(tok.Secret[:]) {
		t.Error("SecretHash is not the sha256 of the secret")
	}
	if tok.CAHash != sha256.Sum256(ca.Cert.Raw) {
		t.Error("token does not pin the sha256 of the CA's DER")
	}
	if err := tok.VerifyCA(ca.Cert.Raw); err != nil {
		t.Errorf("VerifyCA of the pinned CA: %v", err)
	}
	if err := tok.VerifyCA(other.Cert.Raw); !errors.Is(err, ErrCAMismatch) {
		t.Errorf("VerifyCA of another CA: %v, want ErrCAMismatch", err)
	}
	if _, err := ParseToken(Token{ID: "xyz"}.String()); !errors.Is(err, ErrBadToken) {
		t.Errorf("a token with a malformed ID encoded to something ParseToken took (%v)", err)
	}
}

func TestParseTokenRejects(t *testing.T) {
	tok, err := NewToken(newCA(t))
	if err != nil {
		t.Fatal(err)
	}
	s := tok.String()
	body := s[len("tern1-"):]
	at := func(i int, c byte) string { b := []byte(s); b[i] = c; return string(b) }
	last := byte('b') // nonzero unused bits (the last character carries one bit)
	if s[len(s)-1] == 'q' {
		last = 'r'
	}
	for _, tc := range []struct{ name, in string }{
		{"empty", ""},
		{"prefix only", "tern1-"},
		{"no prefix", body},
		{"wrong version", "tern2-" + body},
		{"upper-case prefix", "TERN1-" + body},
		{"upper-case body", "tern1-" + strings.ToUpper(body)},
		{"short", s[:len(s)-1]},
		{"long", s + "a"},
		{"trailing newline", s + "\n"},
		{"leading space", " " + s},
		{"digit 1", at(20, '1')},
		{"digit 0", at(20, '0')},
		{"digit 8", at(20, '8')},
		{"padding", at(len(s)-1, '=')},
		{"non-ASCII", at(30, 0xc3)},
		{"non-canonical last character", at(len(s)-1, last)},
	} {
		_, err := ParseToken(tc.in)
		if !errors.Is(err, ErrBadToken) {
			t.Errorf("%s: %v, want ErrBadToken", tc.name, err)
			continue
		}
		if strings.Contains(err.Error(), body[:10]) {
			t.Errorf("%s: error %q echoes the token", tc.name, err)
		}
	}
}
