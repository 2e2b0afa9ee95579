package cluster

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	neturl "net/url"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// ServerConfig configures an embedded NATS server.
type ServerConfig struct {
	Name    string // the server's name in the grid
	DataDir string // JetStream's store lives in DataDir/nats
	Logger  *slog.Logger
	// Listen, if set (host:port), opens the server to the grid's other
	// agents there, over TLS; TLS must then require and verify client
	// certificates. Without it only in-process clients reach the server.
	Listen string
	TLS    *tls.Config
}

// Server is an embedded NATS server with JetStream. Only in-process
// clients reach it, unless it listens with mutual TLS for the grid's
// other agents.
type Server struct {
	ns *server.Server
}

// StartServer starts an embedded server and waits until it is ready.
func StartServer(cfg ServerConfig) (*Server, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("start NATS: no data directory")
	}
	opts := &server.Options{
		ServerName: cfg.Name,
		JetStream:  true,
		StoreDir:   filepath.Join(cfg.DataDir, "nats"),
		// Acknowledged writes survive a power cut: the registry decides
		// who owns a process, and a lost write could make two owners.
		SyncAlways: true,
		DontListen: true,
		NoSigs:     true,
	}
	if cfg.Listen != "" {
		if cfg.TLS == nil || cfg.TLS.ClientAuth != tls.RequireAndVerifyClientCert {
			return nil, errors.New("start NATS: listening needs TLS that verifies clients")
		}
		host, port, err := net.SplitHostPort(cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("start NATS: listen %q: %w", cfg.Listen, err)
		}
		if opts.Port, err = strconv.Atoi(port); err != nil {
			return nil, fmt.Errorf("start NATS: listen %q: bad port", cfg.Listen)
		}
		opts.Host, opts.DontListen = host, false
		opts.TLS, opts.TLSVerify, opts.TLSConfig, opts.TLSTimeout = true, true, cfg.TLS, 5
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("start NATS: %w", err)
	}
	if cfg.Logger != nil {
		ns.SetLoggerV2(slogAdapter{cfg.Logger}, false, false, false)
	}
	ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("start NATS: not ready within 30s")
	}
	return &Server{ns: ns}, nil
}

// Connect opens an in-process client connection.
func (s *Server) Connect(name string) (*nats.Conn, error) {
	nc, err := nats.Connect("", nats.InProcessServer(s.ns), nats.Name(name))
	if err != nil {
		return nil, fmt.Errorf("connect to embedded NATS: %w", err)
	}
	return nc, nil
}

// ConnectURL connects to a grid's NATS server over mutual TLS.
func ConnectURL(url, name string, tc *tls.Config) (*nats.Conn, error) {
	nc, err := nats.Connect(url, nats.Secure(tc), nats.Name(name),
		// The hub may restart; the agent waits for it rather than fail.
		nats.MaxReconnects(-1), nats.ReconnectWait(500*time.Millisecond))
	if err != nil {
		return nil, fmt.Errorf("connect to the grid's NATS at %s: %w", url, err)
	}
	return nc, nil
}

// ConnectExternal connects to an external NATS cluster, whose URL (and
// options) carry its own credentials.
func ConnectExternal(url, name string, opts ...nats.Option) (*nats.Conn, error) {
	opts = append([]nats.Option{nats.Name(name), nats.MaxReconnects(-1), nats.ReconnectWait(500 * time.Millisecond)}, opts...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", redactURL(url), err)
	}
	return nc, nil
}

// redactURL hides a password in a URL for messages.
func redactURL(s string) string {
	u, err := neturl.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// DisconnectCerts closes every client connection that authenticated with
// a certificate whose DER has one of the sha256 fingerprints (hex), and
// returns how many it closed. A revoked device's handshakes are refused
// from then on by the TLS configuration; this ends the connections it
// already has.
func (s *Server) DisconnectCerts(fingerprints map[string]bool) (int, error) {
	cz, err := s.ns.Connz(&server.ConnzOptions{Username: true, Limit: 1 << 20})
	if err != nil {
		return 0, fmt.Errorf("list NATS connections: %w", err)
	}
	n := 0
	for _, c := range cz.Conns {
		if len(c.TLSPeerCerts) == 0 || !fingerprints[c.TLSPeerCerts[0].CertSha256] {
			continue
		}
		if err := s.ns.DisconnectClientByID(c.Cid); err == nil {
			n++
		}
	}
	return n, nil
}

// Shutdown stops the server and waits for it.
func (s *Server) Shutdown() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}

// slogAdapter routes the server's log to slog.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Noticef(format string, v ...any) { a.l.Info(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Warnf(format string, v ...any)   { a.l.Warn(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Fatalf(format string, v ...any)  { a.l.Error(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Errorf(format string, v ...any)  { a.l.Error(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Debugf(format string, v ...any)  { a.l.Debug(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Tracef(format string, v ...any)  { a.l.Debug(fmt.Sprintf(format, v...)) }
