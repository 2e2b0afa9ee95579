package pki

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ternhq/tern/internal/atomicfile"
)

var (
	// ErrRevoked means a certificate belongs to a node removed from the grid.
	ErrRevoked = errors.New("certificate revoked")
	// ErrUntrusted means a certificate chains to nothing this device trusts.
	ErrUntrusted = errors.New("not trusted here")
)

const (
	revokedFile = "revoked.json"
	deviceFile  = "device.pem"
	devicePref  = "tern device "
)

// Fingerprint names a certificate: the hex sha256 of its DER. Revocation
// goes by fingerprint rather than by node name, so that a device removed
// from the grid can be let in again, with a new certificate, by a new token.
func Fingerprint(der []byte) string {
	h := sha256.Sum256(der)
	return hex.EncodeToString(h[:])
}

// Revoked is one revoked certificate.
type Revoked struct {
	Cert string    `json:"cert"` // Fingerprint
	Node string    `json:"node"`
	At   time.Time `json:"at"`
}

// Revocations is a set of revoked certificates that connections consult on
// every handshake; it is replaced whole, so readers never lock.
type Revocations struct {
	set atomic.Pointer[map[string]Revoked]
}

// Set replaces the set.
func (r *Revocations) Set(list []Revoked) {
	m := make(map[string]Revoked, len(list))
	for _, v := range list {
		m[v.Cert] = v
	}
	r.set.Store(&m)
}

// List returns the set, sorted by fingerprint.
func (r *Revocations) List() []Revoked {
	m := r.set.Load()
	if m == nil {
		return nil
	}
	out := make([]Revoked, 0, len(*m))
	for _, v := range *m {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Cert < out[j].Cert })
	return out
}

// Check returns ErrRevoked (wrapped, naming the node) when the certificate
// der is in the set.
func (r *Revocations) Check(der []byte) error {
	m := r.set.Load()
	if m == nil {
		return nil
	}
	if v, ok := (*m)[Fingerprint(der)]; ok {
		return fmt.Errorf("%w: node %s was removed from the grid at %s", ErrRevoked, v.Node, v.At.Format(time.RFC3339))
	}
	return nil
}

// VerifyConnection is a tls.Config.VerifyConnection that refuses a peer
// whose certificate is revoked. The chain itself is verified by the
// handshake before it runs.
func (r *Revocations) VerifyConnection(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return nil // the handshake's own rules decide whether one is needed
	}
	return r.Check(cs.PeerCertificates[0].Raw)
}

// LoadRevocations reads dir/revoked.json (an empty set if there is none), so
// a device refuses removed nodes even before it reaches the grid, and when
// it resumes an image offline.
func LoadRevocations(dir string) (*Revocations, error) {
	r := &Revocations{}
	b, err := os.ReadFile(filepath.Join(dir, revokedFile))
	if errors.Is(err, fs.ErrNotExist) {
		r.Set(nil)
		return r, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load revocations: %w", err)
	}
	var list []Revoked
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, fmt.Errorf("load revocations %s: %w", filepath.Join(dir, revokedFile), err)
	}
	r.Set(list)
	return r, nil
}

// Save writes the set to dir/revoked.json.
func (r *Revocations) Save(dir string) error {
	b, err := json.MarshalIndent(r.List(), "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save revocations: %w", err)
	}
	return atomicfile.Write(filepath.Join(dir, revokedFile), append(b, '\n'), 0o644)
}

// Signer is the key and certificate with which a device signs its images.
type Signer struct {
	Key  ed25519.PrivateKey
	Cert []byte // DER
	Name string // who signs: a node name, or "this device"
}

// LoadSigner returns the signer of dir: the node identity when the device
// belongs to a grid, else the device's own key, made on first use. A device
// without a grid still signs, so that its images cannot be altered on disk
// unnoticed, and joining a grid later does not make them untrusted (see
// LoadTrust).
func LoadSigner(dir string) (*Signer, error) {
	id, err := LoadIdentity(dir)
	if err == nil {
		return &Signer{Key: id.Cert.PrivateKey.(ed25519.PrivateKey), Cert: id.Cert.Certificate[0], Name: id.Name}, nil
	}
	if !errors.Is(err, ErrNoIdentity) {
		return nil, err
	}
	cert, key, err := loadOrCreateDevice(dir)
	if err != nil {
		return nil, err
	}
	return &Signer{Key: key, Cert: cert.Raw, Name: "this device"}, nil
}

// loadOrCreateDevice reads dir/device.pem, or makes it. Several tern
// processes may start at once on a fresh device: the file appears by a
// hard link, which fails if another got there first, and the loser uses
// the winner's key, so every one of them signs with the same key.
func loadOrCreateDevice(dir string) (*x509.Certificate, ed25519.PrivateKey, error) {
	path := filepath.Join(dir, deviceFile)
	cert, key, err := readDevice(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return cert, key, err
	}
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	host, _ := os.Hostname()
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: randSerial(),
		Subject:      pkix.Name{CommonName: devicePref + host},
		NotBefore:    now.Add(-clockSkew),
		NotAfter:     now.Add(caValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		return nil, nil, fmt.Errorf("device key: %w", err)
	}
	keyPEM, err := keyToPEM(key)
	if err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("device key: %w", err)
	}
	f, err := os.CreateTemp(dir, ".device-*")
	if err != nil {
		return nil, nil, fmt.Errorf("device key: %w", err)
	}
	defer os.Remove(f.Name())
	_, werr := f.Write(append(certToPEM(der), keyPEM...))
	if err := errors.Join(werr, f.Chmod(0o600), f.Sync(), f.Close()); err != nil {
		return nil, nil, fmt.Errorf("device key: %w", err)
	}
	if err := os.Link(f.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, nil, fmt.Errorf("device key: %w", err)
	}
	return readDevice(path)
}

func readDevice(path string) (*x509.Certificate, ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	cblk, rest := pem.Decode(b)
	if cblk == nil || cblk.Type != "CERTIFICATE" {
		return nil, nil, fmt.Errorf("%s: no certificate", path)
	}
	cert, err := x509.ParseCertificate(cblk.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	key, err := parseKeyPEM(rest)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	if !key.Public().(ed25519.PublicKey).Equal(cert.PublicKey) {
		return nil, nil, fmt.Errorf("%s: key does not match certificate", path)
	}
	return cert, key, nil
}

// Trust is what a device accepts as the signer of an image: a node of its
// grid that was not removed, or the device itself.
type Trust struct {
	grid    *x509.CertPool // nil when the device is in no grid
	gridID  string
	device  []byte // DER of the device's own certificate, if it has one
	revoked *Revocations
}

// LoadTrust reads what dir trusts.
func LoadTrust(dir string) (*Trust, error) {
	t := &Trust{}
	b, err := os.ReadFile(filepath.Join(dir, caCertFile))
	switch {
	case err == nil:
		ca, err := parseCertPEM(b)
		if err != nil {
			return nil, fmt.Errorf("load trust: %s: %w", caCertFile, err)
		}
		t.grid = x509.NewCertPool()
		t.grid.AddCert(ca)
		t.gridID = strings.TrimPrefix(ca.Subject.CommonName, cnPrefix)
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("load trust: %w", err)
	}
	if cert, _, err := readDevice(filepath.Join(dir, deviceFile)); err == nil {
		t.device = cert.Raw
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("load trust: %w", err)
	}
	if t.revoked, err = LoadRevocations(dir); err != nil {
		return nil, err
	}
	return t, nil
}

// CheckSigner says whether certificate der may sign what this device
// resumes, as of when the image says it was made (a node certificate that
// has since expired still vouches for what it signed while valid). It
// returns who signed: a node name, or "this device".
func (t *Trust) CheckSigner(der []byte, at time.Time) (string, error) {
	if t.device != nil && bytes.Equal(der, t.device) {
		return "this device", nil
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return "", fmt.Errorf("signer certificate: %w", err)
	}
	name := cert.Subject.CommonName
	if t.grid == nil {
		return name, fmt.Errorf("%w: signed by %q, and this device is in no grid and did not sign it itself", ErrUntrusted, name)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: t.grid, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		issuer := cert.Issuer.CommonName
		if strings.HasPrefix(issuer, cnPrefix) {
			issuer = "grid " + strings.TrimPrefix(issuer, cnPrefix)
		}
		return name, fmt.Errorf("%w: signed by %q of %s, not of this device's grid %s (%v)", ErrUntrusted, name, issuer, t.gridID, err)
	}
	if err := t.revoked.Check(der); err != nil {
		return name, err
	}
	return name, nil
}
