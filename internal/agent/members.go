package agent

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ternhq/tern/internal/cluster"
	"github.com/ternhq/tern/internal/pki"
)

// Who belongs to the grid. The hub records every certificate it issues,
// by node; removing a node revokes all of them. Every agent watches the
// revocations and refuses a revoked certificate in every handshake it
// takes part in (its grid listener, its calls to other agents, and on the
// hub the NATS server), the hub closes the NATS connections a removed
// device already has, and a removed device stops its own agent.

const (
	certsBucket   = "tern-certs"   // node name -> certRecord
	revokedBucket = "tern-revoked" // fingerprint -> pki.Revoked
)

// ErrRemoved: this device was removed from the grid.
var ErrRemoved = errors.New("this device was removed from the grid")

// certRecord lists the certificates issued to a node, by fingerprint.
type certRecord struct {
	Certs []string `json:"certs"`
}

// openMembership binds the buckets, records the hub's own certificate, and
// follows the revocations until ctx ends; stop is called when this device
// is among them.
func (a *Agent) openMembership(ctx context.Context, stop func(error)) error {
	js, err := jetstream.New(a.nc)
	if err != nil {
		return err
	}
	if a.certs, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: certsBucket, Description: "tern: certificates issued to each node", History: 1, Storage: jetstream.FileStorage}); err != nil {
		return fmt.Errorf("agent: %s: %w", certsBucket, err)
	}
	if a.revokedKV, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: revokedBucket, Description: "tern: certificates of removed nodes", History: 1, Storage: jetstream.FileStorage}); err != nil {
		return fmt.Errorf("agent: %s: %w", revokedBucket, err)
	}
	if a.ca != nil {
		if err := a.recordCert(ctx, a.cfg.Name, a.id.Cert.Certificate[0]); err != nil {
			return err
		}
	}
	w, err := a.revokedKV.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("agent: watch revocations: %w", err)
	}
	// The first pass (up to the nil entry) is the whole list; the agent
	// serves nothing before it has it.
	known := map[string]pki.Revoked{}
	for _, r := range a.revoked.List() {
		known[r.Cert] = r
	}
	apply := func(e jetstream.KeyValueEntry) {
		if e.Operation() != jetstream.KeyValuePut {
			delete(known, e.Key())
			return
		}
		var r pki.Revoked
		if json.Unmarshal(e.Value(), &r) != nil || r.Cert != e.Key() {
			a.log.Warn("malformed revocation ignored", "key", e.Key())
			return
		}
		known[r.Cert] = r
	}
	publish := func() {
		list := make([]pki.Revoked, 0, len(known))
		fingerprints := make(map[string]bool, len(known))
		for _, r := range known {
			list = append(list, r)
			fingerprints[r.Cert] = true
		}
		a.revoked.Set(list)
		if err := a.revoked.Save(a.pkiDir()); err != nil {
			a.log.Warn("save revocations", "err", err)
		}
		if a.srv != nil {
			// A moment's grace lets the removed device hear of its
			// removal and stop itself rather than find its connection
			// gone; it can open no new one meanwhile.
			time.AfterFunc(time.Second, func() {
				if n, err := a.srv.DisconnectCerts(fingerprints); err != nil {
					a.log.Warn("disconnect removed nodes", "err", err)
				} else if n > 0 {
					a.log.Info("disconnected removed nodes", "connections", n)
				}
			})
		}
		if err := a.revoked.Check(a.id.Cert.Certificate[0]); err != nil {
			stop(fmt.Errorf("%w (%w)", ErrRemoved, err))
		}
	}
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	for initial := false; !initial; {
		select {
		case e := <-w.Updates():
			if initial = e == nil; !initial {
				apply(e)
			}
		case <-ctx.Done():
			w.Stop()
			return ctx.Err()
		case <-timeout.C:
			w.Stop()
			return errors.New("agent: revocations: the list did not come within 30s")
		}
	}
	publish()
	go func() {
		defer w.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e == nil {
					continue
				}
				apply(e)
				publish()
			}
		}
	}()
	return nil
}

// recordCert adds a certificate to those issued to node.
func (a *Agent) recordCert(ctx context.Context, node string, der []byte) error {
	fp := pki.Fingerprint(der)
	for {
		var rec certRecord
		e, err := a.certs.Get(ctx, node)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			b, _ := json.Marshal(certRecord{Certs: []string{fp}})
			if _, err = a.certs.Create(ctx, node, b); errors.Is(err, jetstream.ErrKeyExists) {
				continue
			}
			return err
		case err != nil:
			return fmt.Errorf("record certificate of %s: %w", node, err)
		}
		if err := json.Unmarshal(e.Value(), &rec); err != nil {
			return fmt.Errorf("certificates of %s: %w", node, err)
		}
		if slices.Contains(rec.Certs, fp) {
			return nil
		}
		rec.Certs = append(rec.Certs, fp)
		b, _ := json.Marshal(rec)
		if _, err := a.certs.Update(ctx, node, b, e.Revision()); errors.Is(err, jetstream.ErrKeyExists) {
			continue // written meanwhile
		} else if err != nil {
			return fmt.Errorf("record certificate of %s: %w", node, err)
		}
		return nil
	}
}

// Removal is what removing a node did.
type Removal struct {
	Node    string   `json:"node"`
	Revoked []string `json:"revoked"` // certificate fingerprints
}

// removeNode revokes every certificate issued to node and drops it from
// the list of live nodes.
func (a *Agent) removeNode(ctx context.Context, node string) (Removal, error) {
	if err := pki.CheckName(node); err != nil {
		return Removal{}, fmt.Errorf("remove: %w: %w", cluster.ErrBadID, err)
	}
	if node == a.cfg.Name {
		return Removal{}, fmt.Errorf("remove %s: a node cannot remove itself; run the command on another node", node)
	}
	if node == a.hubName() {
		return Removal{}, fmt.Errorf("remove %s: it is the grid's hub, which holds the grid's CA; a grid cannot go on without it", node)
	}
	e, err := a.certs.Get(ctx, node)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Removal{}, fmt.Errorf("remove %s: %w: the grid never issued it a certificate", node, cluster.ErrNotFound)
	}
	if err != nil {
		return Removal{}, fmt.Errorf("remove %s: %w", node, err)
	}
	var rec certRecord
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return Removal{}, fmt.Errorf("remove %s: certificates: %w", node, err)
	}
	now := time.Now().UTC()
	for _, fp := range rec.Certs {
		b, _ := json.Marshal(pki.Revoked{Cert: fp, Node: node, At: now})
		if _, err := a.revokedKV.Put(ctx, fp, b); err != nil {
			return Removal{}, fmt.Errorf("remove %s: revoke: %w", node, err)
		}
	}
	// What it ran is lost to the grid: it can no longer send output or
	// move anything away.
	if all, err := a.reg.List(ctx); err == nil {
		for _, v := range all {
			if v.Node != node || v.State != cluster.StateRunning {
				continue
			}
			p := v.Proc
			p.State, p.ExitCode = cluster.StateExited, -1
			if _, err := a.reg.Update(ctx, v, p); err != nil {
				a.log.Warn("record process of removed node", "id", p.ID, "err", err)
			}
		}
	}
	// Its last heartbeat would keep it listed for a few seconds more.
	if err := a.nodes.Withdraw(ctx, node); err != nil {
		a.log.Warn("withdraw removed node", "node", node, "err", err)
	}
	a.log.Warn("node removed from the grid", "node", node, "certificates", len(rec.Certs))
	return Removal{Node: node, Revoked: rec.Certs}, nil
}

// hubName is the name of the grid's hub, as far as this device knows.
func (a *Agent) hubName() string {
	if a.ca != nil {
		return a.cfg.Name
	}
	return a.hub.Name
}

func (a *Agent) serveRemoveNode(w http.ResponseWriter, r *http.Request) {
	rm, err := a.removeNode(r.Context(), r.PathValue("name"))
	if err != nil {
		httpError(w, err, 0)
		return
	}
	writeJSON(w, rm)
}

// RemoveNode removes a node from the grid: its certificates are revoked.
func (c *Client) RemoveNode(ctx context.Context, name string) (Removal, error) {
	var rm Removal
	return rm, c.do(ctx, http.MethodPost, "/v1/nodes/"+url.PathEscape(name)+"/remove", nil, &rm)
}

// localTLS is the TLS of the agent's own API socket: only a client holding
// this device's node key — the CLI run by the agent's user — gets in.
func (a *Agent) localTLS() *tls.Config {
	tc := a.id.ServerTLS()
	own := a.id.Cert.Leaf
	tc.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("no client certificate")
		}
		if err := a.revoked.Check(cs.PeerCertificates[0].Raw); err != nil {
			return err
		}
		if !own.Equal(cs.PeerCertificates[0]) {
			return fmt.Errorf("certificate of %q: only this device's own credentials may use its agent's API", cs.PeerCertificates[0].Subject.CommonName)
		}
		return nil
	}
	return tc
}
