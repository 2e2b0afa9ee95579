package agent

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ternhq/tern/internal/atomicfile"
	"github.com/ternhq/tern/internal/cluster"
	"github.com/ternhq/tern/internal/pki"
)

// How agents find each other. The first agent of a grid (started without
// --join) is its hub: it creates the grid's certificate authority, and
// its embedded NATS server holds the grid's state. With --listen it opens
// that server to the other agents on the port after its own, over mutual
// TLS. An agent started with --join HUB --token T fetches a node
// certificate from the hub (the token pins the hub's CA, so a joiner
// cannot be fooled by another machine), then keeps the grid's state on
// the hub's server as a client. Agents move processes to each other
// directly, over mutual TLS on their --listen address.

// Errors of joining a grid.
var (
	ErrJoin  = errors.New("join refused")
	ErrNoHub = errors.New("this agent is not the grid's hub")
)

// nodeCertTTL is how long a node certificate lasts.
const nodeCertTTL = 365 * 24 * time.Hour

// tokenBucket holds unused join tokens: the hash of each secret and its
// expiry. A token is used up by deleting its key at the revision read.
const tokenBucket = "tern-tokens"

// hubFile records, on a joined device, where the grid's state is.
const hubFile = "hub.json"

type hubInfo struct {
	Name string `json:"name"` // the hub's node name, which its certificate names
	NATS string `json:"nats"` // host:port of its NATS server
}

func (a *Agent) pkiDir() string { return filepath.Join(a.cfg.DataDir, "pki") }

// natsAddr is the NATS port beside an agent's address: the next one.
func natsAddr(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	p, err := strconv.Atoi(port)
	if err != nil || p <= 0 || p >= 65535 {
		return "", fmt.Errorf("address %q: bad port", addr)
	}
	return net.JoinHostPort(host, strconv.Itoa(p+1)), nil
}

// openGrid sets up the agent's identity and its connection to the grid's
// state: as the hub (creating the grid on first start) or as a member.
func (a *Agent) openGrid(ctx context.Context) error {
	dir := a.pkiDir()
	id, err := pki.LoadIdentity(dir)
	if err != nil && !errors.Is(err, pki.ErrNoIdentity) {
		return fmt.Errorf("agent: %w", err)
	}
	_, caErr := pki.LoadCA(dir)
	if caErr != nil && !errors.Is(caErr, pki.ErrNoCA) {
		return fmt.Errorf("agent: %w", caErr)
	}
	isHub := caErr == nil || (id == nil && a.cfg.Join == "")
	switch {
	case isHub && a.cfg.Join != "":
		return fmt.Errorf("agent: %s holds the hub of a grid; it cannot --join another (use another --data)", a.cfg.DataDir)
	case isHub:
		ca, err := pki.LoadOrCreateCA(dir)
		if err != nil {
			return fmt.Errorf("agent: %w", err)
		}
		a.ca = ca
		if id == nil {
			key, keyPEM, err := pki.NewKey()
			if err != nil {
				return err
			}
			cert, err := ca.Issue(a.cfg.Name, key.Public().(ed25519.PublicKey), nodeCertTTL)
			if err != nil {
				return fmt.Errorf("agent: %w", err)
			}
			if id, err = pki.SaveIdentity(dir, cert, keyPEM, ca.CertPEM); err != nil {
				return fmt.Errorf("agent: %w", err)
			}
		}
	case id == nil:
		if id, err = a.join(ctx); err != nil {
			return err
		}
	}
	if id.Name != a.cfg.Name {
		return fmt.Errorf("agent: %s's certificate is for node %q, not %q (start it with --name %s)", a.cfg.DataDir, id.Name, a.cfg.Name, id.Name)
	}
	a.id = id
	if a.revoked, err = pki.LoadRevocations(dir); err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	if err := a.revoked.Check(id.Cert.Certificate[0]); err != nil {
		return fmt.Errorf("agent: %w: %w (to join again: remove %s and start with --join HUB --token T)", ErrRemoved, err, dir)
	}
	if b, err := os.ReadFile(filepath.Join(dir, hubFile)); err == nil {
		if err := json.Unmarshal(b, &a.hub); err != nil {
			return fmt.Errorf("agent: %s: %w", hubFile, err)
		}
	}
	if a.cfg.NATS != "" {
		var opts []nats.Option
		if a.cfg.NATSCreds != "" {
			opts = append(opts, nats.UserCredentials(a.cfg.NATSCreds))
		}
		a.nc, err = cluster.ConnectExternal(a.cfg.NATS, "agent "+a.cfg.Name, opts...)
		return err
	}
	if isHub {
		scfg := cluster.ServerConfig{Name: a.cfg.Name, DataDir: a.cfg.DataDir, Logger: a.log.With("part", "nats")}
		if a.cfg.Listen != "" {
			if scfg.Listen, err = natsAddr(a.cfg.Listen); err != nil {
				return fmt.Errorf("agent: --listen: %w", err)
			}
			scfg.TLS = id.ServerTLS()
			scfg.TLS.VerifyConnection = a.revoked.VerifyConnection
		}
		if a.srv, err = cluster.StartServer(scfg); err != nil {
			return err
		}
		a.nc, err = a.srv.Connect("agent " + a.cfg.Name)
		return err
	}
	hub := a.hub
	if hub.Name == "" {
		return fmt.Errorf("agent: where the grid's hub is: no %s in %s", hubFile, dir)
	}
	if hub.NATS == "" {
		return errors.New("agent: the grid keeps its state in an external NATS cluster: give --nats URL")
	}
	a.nc, err = cluster.ConnectURL("tls://"+hub.NATS, "agent "+a.cfg.Name, id.ClientTLS(hub.Name))
	return err
}

// joinRequest is what a joining device sends the hub.
type joinRequest struct {
	Token  string `json:"token"`  // the token's id
	Secret string `json:"secret"` // hex
	Name   string `json:"name"`
	Key    []byte `json:"key"` // ed25519 public key
}

type joinResponse struct {
	Cert []byte  `json:"cert"`
	CA   []byte  `json:"ca"`
	Hub  hubInfo `json:"hub"`
}

// join obtains this device's certificate from the hub at cfg.Join.
func (a *Agent) join(ctx context.Context) (*pki.Identity, error) {
	if a.cfg.Token == "" {
		return nil, fmt.Errorf("%w: joining %s needs a token (make one on the hub with `tern token create`)", ErrJoin, a.cfg.Join)
	}
	tok, err := pki.ParseToken(strings.TrimSpace(a.cfg.Token))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrJoin, err)
	}
	key, keyPEM, err := pki.NewKey()
	if err != nil {
		return nil, err
	}
	// The hub's certificate is not known yet: it is checked against the
	// CA the token pins, which the hub sends along.
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) < 2 {
				return errors.New("the hub sent no CA certificate")
			}
			ca := cs.PeerCertificates[len(cs.PeerCertificates)-1]
			if err := tok.VerifyCA(ca.Raw); err != nil {
				return err
			}
			pool := x509.NewCertPool()
			pool.AddCert(ca)
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
			return err
		},
	}
	body, _ := json.Marshal(joinRequest{Token: tok.ID, Secret: hex.EncodeToString(tok.Secret[:]), Name: a.cfg.Name, Key: key.Public().(ed25519.PublicKey)})
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+a.cfg.Join+"/v1/join", bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrJoin, err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrJoin, a.cfg.Join, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: %w", ErrJoin, decodeAPIError(resp))
	}
	var jr joinResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&jr); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrJoin, err)
	}
	if err := tok.VerifyCA(pemDER(jr.CA)); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrJoin, err)
	}
	b, _ := json.Marshal(jr.Hub)
	if err := os.MkdirAll(a.pkiDir(), 0o700); err != nil {
		return nil, err
	}
	if err := atomicfile.Write(filepath.Join(a.pkiDir(), hubFile), b, 0o600); err != nil {
		return nil, err
	}
	id, err := pki.SaveIdentity(a.pkiDir(), jr.Cert, keyPEM, jr.CA)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrJoin, err)
	}
	a.log.Info("joined the grid", "hub", jr.Hub.Name, "nats", jr.Hub.NATS)
	return id, nil
}

// serveJoin issues a node certificate for a valid, unused token.
func (a *Agent) serveJoin(w http.ResponseWriter, r *http.Request) {
	if a.ca == nil {
		httpError(w, ErrNoHub, http.StatusForbidden)
		return
	}
	var req joinRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil {
		httpError(w, fmt.Errorf("%w: %w", ErrJoin, err), http.StatusBadRequest)
		return
	}
	refuse := func(why string) {
		a.log.Warn("join refused", "name", req.Name, "from", r.RemoteAddr, "why", why)
		httpError(w, fmt.Errorf("%w: %s", ErrJoin, why), http.StatusForbidden)
	}
	secret, err := hex.DecodeString(req.Secret)
	if err != nil || len(req.Key) != ed25519.PublicKeySize {
		refuse("malformed request")
		return
	}
	e, err := a.tokens.Get(r.Context(), req.Token)
	if err != nil {
		refuse("unknown or used token")
		return
	}
	var rec tokenRecord
	if json.Unmarshal(e.Value(), &rec) != nil {
		refuse("unknown or used token")
		return
	}
	var t pki.Token
	copy(t.Secret[:], secret)
	h := t.SecretHash()
	if len(secret) != len(t.Secret) || subtle.ConstantTimeCompare(h[:], rec.Hash) != 1 {
		refuse("wrong token secret")
		return
	}
	// Used up now, whatever follows: a token opens the door once.
	if err := a.tokens.Delete(r.Context(), req.Token, jetstream.LastRevision(e.Revision())); err != nil {
		refuse("unknown or used token")
		return
	}
	if time.Now().After(rec.Expires) {
		refuse("token expired")
		return
	}
	if nodes, err := a.nodes.List(r.Context()); err == nil {
		for _, n := range nodes {
			if n.Name == req.Name {
				refuse("a node named " + req.Name + " is in the grid")
				return
			}
		}
	}
	cert, err := a.ca.Issue(req.Name, ed25519.PublicKey(req.Key), nodeCertTTL)
	if err != nil {
		refuse(err.Error())
		return
	}
	if err := a.recordCert(r.Context(), req.Name, pemDER(cert)); err != nil {
		refuse(err.Error())
		return
	}
	nats, _ := natsAddr(a.cfg.advertise())
	if a.cfg.NATS != "" {
		nats = "" // the joiner is given the external cluster itself
	}
	a.log.Info("node joined", "name", req.Name, "from", r.RemoteAddr)
	writeJSON(w, joinResponse{Cert: cert, CA: a.ca.CertPEM, Hub: hubInfo{Name: a.cfg.Name, NATS: nats}})
}

type tokenRecord struct {
	Hash    []byte    `json:"hash"` // sha256 of the secret
	Expires time.Time `json:"expires"`
}

// createToken makes a join token (hub only).
func (a *Agent) createToken(ctx context.Context, ttl time.Duration) (string, time.Time, error) {
	if a.ca == nil {
		return "", time.Time{}, fmt.Errorf("%w: make tokens on the hub", ErrNoHub)
	}
	if ttl <= 0 || ttl > 7*24*time.Hour {
		return "", time.Time{}, fmt.Errorf("token ttl %v: want more than 0 and at most a week", ttl)
	}
	if a.cfg.Listen == "" {
		return "", time.Time{}, errors.New("this agent does not --listen: no device could reach it to join")
	}
	t, err := pki.NewToken(a.ca)
	if err != nil {
		return "", time.Time{}, err
	}
	h := t.SecretHash()
	exp := time.Now().Add(ttl).UTC()
	b, _ := json.Marshal(tokenRecord{Hash: h[:], Expires: exp})
	if _, err := a.tokens.Create(ctx, t.ID, b); err != nil {
		return "", time.Time{}, fmt.Errorf("store token: %w", err)
	}
	return t.String(), exp, nil
}

// pemDER is the DER of a PEM certificate (nil if it is not one).
func pemDER(b []byte) []byte {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil
	}
	return blk.Bytes
}

// serverTLS is the grid listener's TLS: the node certificate with the CA
// after it (a joining device checks the CA against its token), and client
// certificates verified when given; every route but /v1/join requires one.
func (a *Agent) serverTLS() *tls.Config {
	tc := a.id.ServerTLS()
	cert := a.id.Cert
	cert.Certificate = append([][]byte{cert.Certificate[0]}, pemDER(a.id.CAPEM))
	tc.Certificates = []tls.Certificate{cert}
	tc.ClientAuth = tls.VerifyClientCertIfGiven
	tc.VerifyConnection = a.revoked.VerifyConnection
	return tc
}

// gridRoutes are what other agents (and joining devices) call.
func (a *Agent) gridRoutes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/join", a.serveJoin)
	peer := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			name := pki.PeerName(r.TLS)
			if name == "" {
				httpError(w, errors.New("a grid node certificate is required"), http.StatusUnauthorized)
				return
			}
			h(w, r.WithContext(context.WithValue(r.Context(), peerKey{}, name)))
		}
	}
	mux.HandleFunc("POST /v1/incoming", peer(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		rev, err := strconv.ParseUint(q.Get("rev"), 10, 64)
		if err != nil {
			httpError(w, fmt.Errorf("incoming: rev %q: %w", q.Get("rev"), err), http.StatusBadRequest)
			return
		}
		// Full duplex: progress goes back while the stream comes in.
		http.NewResponseController(w).EnableFullDuplex()
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.WriteHeader(http.StatusOK)
		progress := writeProgress(w)
		res, err := a.migrateIn(r.Context(), pki.PeerName(r.TLS), q.Get("id"), rev, r.Body, progress)
		if err != nil {
			a.log.Warn("move here failed", "id", q.Get("id"), "err", err)
			progress(Progress{Event: "error", Error: err.Error()})
			return
		}
		progress(res)
	}))
	mux.HandleFunc("POST /v1/procs/{id}/migrate", peer(a.serveMigrate))
	mux.HandleFunc("POST /v1/procs/{id}/kill", peer(a.serveKill))
	mux.HandleFunc("POST /v1/procs", peer(a.serveRun))
	mux.HandleFunc("POST /v1/procs/{id}/checkpoint", peer(a.serveCheckpoint))
	return mux
}

type peerKey struct{}

// fromPeer says whether another agent made request r (rather than the CLI
// on the agent's own socket): such a request is never passed on again.
func fromPeer(r *http.Request) bool { return r.Context().Value(peerKey{}) != nil }

// peer finds a live node that this agent can reach.
func (a *Agent) peer(ctx context.Context, name string) (cluster.Node, error) {
	nodes, err := a.nodes.List(ctx)
	if err != nil {
		return cluster.Node{}, err
	}
	for _, n := range nodes {
		if n.Name == name {
			if n.Addr == "" {
				return n, fmt.Errorf("%w: node %s does not --listen: nothing can reach it", ErrMove, name)
			}
			return n, nil
		}
	}
	return cluster.Node{}, fmt.Errorf("%w: no node %q in the grid", ErrUnknownNode, name)
}

// ErrUnknownNode: no live node has that name.
var ErrUnknownNode = errors.New("unknown node")

// peerClient is an HTTPS client for node n, checking that it is n.
func (a *Agent) peerClient(n cluster.Node) *http.Client {
	tc := a.id.ClientTLS(n.Name)
	tc.VerifyConnection = a.revoked.VerifyConnection
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig:     tc,
		TLSHandshakeTimeout: 10 * time.Second,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 15 * time.Second}).DialContext,
	}}
}

// peerCall makes a request of node n's agent and decodes its answer.
func (a *Agent) peerCall(ctx context.Context, n cluster.Node, method, path string, body io.Reader, out any) error {
	resp, err := a.peerSend(ctx, n, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(out)
}

func (a *Agent) peerSend(ctx context.Context, n cluster.Node, method, path string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, "https://"+n.Addr+path, body)
	if err != nil {
		return nil, err
	}
	resp, err := a.peerClient(n).Do(req)
	if err != nil {
		return nil, fmt.Errorf("node %s (%s): %w", n.Name, n.Addr, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, decodeAPIError(resp)
	}
	return resp, nil
}
