package pki

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/ternhq/tern/internal/atomicfile"
)

var (
	// ErrNoCA means the directory holds no CA (no ca.key).
	ErrNoCA = errors.New("no grid CA")
	// ErrNoIdentity means the directory holds no node identity (no node.crt).
	ErrNoIdentity = errors.New("no node identity")
	// ErrBadName means a node name is not one a certificate may carry.
	ErrBadName = errors.New("bad node name")
)

const (
	caCertFile   = "ca.crt"
	caKeyFile    = "ca.key"
	nodeCertFile = "node.crt"
	nodeKeyFile  = "node.key"

	cnPrefix   = "tern grid "
	caValidity = 10 * 365 * 24 * time.Hour
	// Certificates start this far in the past so a peer whose clock is a
	// little behind does not refuse one issued a moment ago.
	clockSkew = time.Minute
)

var (
	nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$`)
	gridRE = regexp.MustCompile(`^` + cnPrefix + `[0-9a-f]{8}$`)
)

// CA is the grid's certificate authority (ed25519).
type CA struct {
	Cert    *x509.Certificate
	CertPEM []byte
	Key     ed25519.PrivateKey
}

// LoadOrCreateCA loads dir/ca.crt and dir/ca.key, or creates them when
// neither exists. Anything else that is wrong (a corrupt file, a key that does
// not match the certificate, only one of the two) is an error: replacing a CA
// would silently cut every node off from the grid.
func LoadOrCreateCA(dir string) (*CA, error) {
	ca, err := LoadCA(dir)
	if !errors.Is(err, ErrNoCA) {
		return ca, err
	}
	// A ca.crt without ca.key is a joined node's trust anchor, or half of a
	// damaged CA: either way not ours to overwrite.
	if _, err := os.Lstat(filepath.Join(dir, caCertFile)); !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("create CA %s: %s exists without %s", dir, caCertFile, caKeyFile)
	}
	if err := createCA(dir); err != nil {
		return nil, fmt.Errorf("create CA %s: %w", dir, err)
	}
	return LoadCA(dir)
}

func createCA(dir string) error {
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	var grid [4]byte
	if _, err := rand.Read(grid[:]); err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          randSerial(),
		Subject:               pkix.Name{CommonName: cnPrefix + hex.EncodeToString(grid[:])},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(caValidity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true, // it signs nodes, never another CA
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		return err
	}
	keyPEM, err := keyToPEM(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	// The key goes first: a crash between the two leaves ca.key alone, which
	// LoadOrCreateCA refuses rather than making a second CA beside it.
	if err := atomicfile.Write(filepath.Join(dir, caKeyFile), keyPEM, 0o600); err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, caCertFile), certToPEM(der), 0o644)
}

// LoadCA loads the CA in dir; ErrNoCA (wrapped) when dir has no ca.key.
func LoadCA(dir string) (*CA, error) {
	keyPEM, err := os.ReadFile(filepath.Join(dir, caKeyFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("load CA %s: %w", dir, ErrNoCA)
	}
	if err != nil {
		return nil, fmt.Errorf("load CA %s: %w", dir, err)
	}
	certPEM, err := os.ReadFile(filepath.Join(dir, caCertFile))
	if err != nil {
		return nil, fmt.Errorf("load CA %s: %w", dir, err)
	}
	ca, err := parseCA(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("load CA %s: %w", dir, err)
	}
	return ca, nil
}

func parseCA(certPEM, keyPEM []byte) (*CA, error) {
	cert, err := parseCertPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", caCertFile, err)
	}
	if err := checkCACert(cert); err != nil {
		return nil, fmt.Errorf("%s: %w", caCertFile, err)
	}
	if !gridRE.MatchString(cert.Subject.CommonName) {
		return nil, fmt.Errorf("%s: subject %q is not a tern grid's", caCertFile, cert.Subject.CommonName)
	}
	if err := cert.CheckSignatureFrom(cert); err != nil {
		return nil, fmt.Errorf("%s: not self-signed: %w", caCertFile, err)
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", caKeyFile, err)
	}
	if !key.Public().(ed25519.PublicKey).Equal(cert.PublicKey) {
		return nil, fmt.Errorf("%s does not match %s", caKeyFile, caCertFile)
	}
	return &CA{Cert: cert, CertPEM: certToPEM(cert.Raw), Key: key}, nil
}

func checkCACert(cert *x509.Certificate) error {
	if !cert.IsCA || !cert.BasicConstraintsValid || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return errors.New("not a CA certificate")
	}
	if _, ok := cert.PublicKey.(ed25519.PublicKey); !ok {
		return fmt.Errorf("CA key is %T, want ed25519", cert.PublicKey)
	}
	return nil
}

// GridID returns the CA's grid id (from its CN).
func (ca *CA) GridID() string {
	return strings.TrimPrefix(ca.Cert.Subject.CommonName, cnPrefix)
}

// Issue signs a node certificate for name and pub, valid from a minute ago
// for ttl (but never past the CA's own expiry), and returns it as PEM.
func (ca *CA) Issue(name string, pub ed25519.PublicKey, ttl time.Duration) ([]byte, error) {
	if ttl <= 0 {
		return nil, fmt.Errorf("issue %s: ttl %v is not positive", name, ttl)
	}
	now := time.Now()
	return ca.issue(name, pub, now.Add(-clockSkew), now.Add(ttl))
}

func (ca *CA) issue(name string, pub ed25519.PublicKey, notBefore, notAfter time.Time) ([]byte, error) {
	if err := checkName(name); err != nil {
		return nil, fmt.Errorf("issue: %w", err)
	}
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("issue %s: public key is %d bytes, want %d", name, len(pub), ed25519.PublicKeySize)
	}
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: randSerial(),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("issue %s: %w", name, err)
	}
	return certToPEM(der), nil
}

// CheckName says whether name is one a node certificate may carry.
func CheckName(name string) error { return checkName(name) }

// checkName also refuses names that parse as IP addresses: Go's verifier
// matches those against IP SANs, never the DNS name, so no handshake could
// ever succeed with them.
func checkName(name string) error {
	if !nameRE.MatchString(name) || net.ParseIP(name) != nil {
		return fmt.Errorf("%w: %q (want a letter or digit, then letters, digits, '_', '.', '-', at most 63 in all, not an IP address)", ErrBadName, name)
	}
	return nil
}

// Identity is a node's certificate and key plus the grid CA it trusts.
type Identity struct {
	Name    string
	Cert    tls.Certificate // leaf, with Leaf set
	CertPEM []byte
	KeyPEM  []byte
	CAPEM   []byte
	Pool    *x509.CertPool
}

// SaveIdentity checks that certPEM chains to caPEM and matches keyPEM, then
// writes dir/ca.crt, dir/node.key (0600) and dir/node.crt, each atomically.
// node.crt goes last, so a crash part-way leaves no identity, not a broken one.
func SaveIdentity(dir string, certPEM, keyPEM, caPEM []byte) (*Identity, error) {
	id, err := parseIdentity(certPEM, keyPEM, caPEM)
	if err != nil {
		return nil, fmt.Errorf("save identity %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("save identity %s: %w", dir, err)
	}
	if _, err := os.Lstat(filepath.Join(dir, caKeyFile)); err == nil {
		if old, err := os.ReadFile(filepath.Join(dir, caCertFile)); err == nil && !bytes.Equal(old, id.CAPEM) {
			return nil, fmt.Errorf("save identity %s: would replace the certificate of the CA whose key is there", dir)
		}
	}
	for _, f := range []struct {
		name string
		b    []byte
		perm os.FileMode
	}{{caCertFile, id.CAPEM, 0o644}, {nodeKeyFile, id.KeyPEM, 0o600}, {nodeCertFile, id.CertPEM, 0o644}} {
		if err := atomicfile.Write(filepath.Join(dir, f.name), f.b, f.perm); err != nil {
			return nil, fmt.Errorf("save identity: %w", err)
		}
	}
	return id, nil
}

// LoadIdentity reads what SaveIdentity wrote (ErrNoIdentity wrapped when
// there is no node.crt) and checks it the same way. An expired certificate
// still loads, so the node can tell it must renew rather than that it is
// broken; handshakes refuse it.
func LoadIdentity(dir string) (*Identity, error) {
	var b [3][]byte
	for i, name := range []string{nodeCertFile, nodeKeyFile, caCertFile} {
		var err error
		b[i], err = os.ReadFile(filepath.Join(dir, name))
		if i == 0 && errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("load identity %s: %w", dir, ErrNoIdentity)
		}
		if err != nil {
			return nil, fmt.Errorf("load identity %s: %w", dir, err)
		}
	}
	id, err := parseIdentity(b[0], b[1], b[2])
	if err != nil {
		return nil, fmt.Errorf("load identity %s: %w", dir, err)
	}
	return id, nil
}

func parseIdentity(certPEM, keyPEM, caPEM []byte) (*Identity, error) {
	ca, err := parseCertPEM(caPEM)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	if err := checkCACert(ca); err != nil {
		return nil, err
	}
	leaf, err := parseCertPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("node certificate: %w", err)
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("node key: %w", err)
	}
	// The signature alone, not x509 verification: that would also judge the
	// validity period, which is the handshake's business (see LoadIdentity).
	if err := leaf.CheckSignatureFrom(ca); err != nil || !bytes.Equal(leaf.RawIssuer, ca.RawSubject) {
		return nil, fmt.Errorf("node certificate is not issued by this CA (%v)", err)
	}
	if !key.Public().(ed25519.PublicKey).Equal(leaf.PublicKey) {
		return nil, errors.New("node key does not match node certificate")
	}
	if err := checkName(leaf.Subject.CommonName); err != nil {
		return nil, fmt.Errorf("node certificate: %w", err)
	}
	keyPEM, err = keyToPEM(key)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &Identity{
		Name:    leaf.Subject.CommonName,
		Cert:    tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf},
		CertPEM: certToPEM(leaf.Raw),
		KeyPEM:  keyPEM,
		CAPEM:   certToPEM(ca.Raw),
		Pool:    pool,
	}, nil
}

// GridID returns the id of the grid whose CA id trusts.
func (id *Identity) GridID() string {
	ca, err := parseCertPEM(id.CAPEM)
	if err != nil {
		return "" // parseIdentity checked it
	}
	return strings.TrimPrefix(ca.Subject.CommonName, cnPrefix)
}

// NewKey makes an ed25519 key and its PKCS#8 PEM.
func NewKey() (ed25519.PrivateKey, []byte, error) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("new key: %w", err)
	}
	keyPEM, err := keyToPEM(key)
	if err != nil {
		return nil, nil, fmt.Errorf("new key: %w", err)
	}
	return key, keyPEM, nil
}

// ServerTLS presents id's certificate and admits only clients whose
// certificate chains to the grid CA.
func (id *Identity) ServerTLS() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{id.Cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    id.Pool,
	}
}

// ClientTLS presents id's certificate and accepts only a server whose
// certificate chains to the grid CA and names node server, whatever address
// is dialed.
func (id *Identity) ClientTLS(server string) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{id.Cert},
		RootCAs:      id.Pool,
		ServerName:   server,
	}
}

// PeerName returns the node name of the verified peer certificate of a
// connection ("" if none). Only verified chains count: a certificate the peer
// merely sent proves nothing.
func PeerName(cs *tls.ConnectionState) string {
	if cs == nil || len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return ""
	}
	return cs.VerifiedChains[0][0].Subject.CommonName
}

func randSerial() *big.Int {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand since Go 1.24)
	b[0] &= 0x7f    // positive, as RFC 5280 requires
	return new(big.Int).SetBytes(b[:])
}

func certToPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func keyToPEM(key ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// decodePEM takes exactly one block of type typ, so a truncated or
// concatenated file is refused rather than half-read.
func decodePEM(b []byte, typ string) ([]byte, error) {
	block, rest := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("no PEM %s block", typ)
	}
	if block.Type != typ {
		return nil, fmt.Errorf("PEM block is %q, want %q", block.Type, typ)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("data after the PEM block")
	}
	return block.Bytes, nil
}

func parseCertPEM(b []byte) (*x509.Certificate, error) {
	der, err := decodePEM(b, "CERTIFICATE")
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

func parseKeyPEM(b []byte) (ed25519.PrivateKey, error) {
	der, err := decodePEM(b, "PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, err
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("key is %T, want ed25519", k)
	}
	return key, nil
}
