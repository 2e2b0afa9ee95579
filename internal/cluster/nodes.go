package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ternhq/tern/internal/facts"
)

// nodesBucket holds one key per live node. Every record ages out of the
// bucket unless its node writes it again: a node that stops heartbeating
// (crashed, unplugged, partitioned) drops out of the grid's view by
// itself, with no one having to notice.
const nodesBucket = "tern-nodes"

var namePattern = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

// Node is what a node tells the grid about itself: its address and
// engine, and its device's facts, fresh with every heartbeat.
type Node struct {
	Name   string    `json:"name"`
	Engine string    `json:"engine"` // compiler or interpreter
	Addr   string    `json:"addr,omitempty"`
	Speed  float64   `json:"speed"` // facts.Speed, measured at the agent's start
	Seen   time.Time `json:"seen"`
	facts.Facts
}

// Nodes is the grid's view of its live nodes.
type Nodes struct {
	kv  jetstream.KeyValue
	ttl time.Duration
}

// OpenNodes binds the nodes bucket; a node's record lives ttl after its
// last heartbeat. Every node of a grid must use the same ttl.
func OpenNodes(ctx context.Context, nc *nats.Conn, ttl time.Duration) (*Nodes, error) {
	if ttl < time.Second {
		return nil, fmt.Errorf("open nodes: heartbeat lifetime %v is under a second", ttl)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("open nodes: %w", err)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      nodesBucket,
		Description: "tern nodes: each node's last heartbeat",
		History:     1,
		TTL:         ttl,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("open nodes bucket: %w", err)
	}
	return &Nodes{kv: kv, ttl: ttl}, nil
}

// Announce writes n's record, which lives for the bucket's ttl.
func (ns *Nodes) Announce(ctx context.Context, n Node) error {
	if !namePattern.MatchString(n.Name) {
		return fmt.Errorf("announce: invalid node name %q", n.Name)
	}
	n.Seen = time.Now().UTC()
	b, err := json.Marshal(n)
	if err != nil {
		return err
	}
	if _, err := ns.kv.Put(ctx, n.Name, b); err != nil {
		return fmt.Errorf("announce %s: %w", n.Name, err)
	}
	return nil
}

// Heartbeat announces the node node() describes every third of the ttl
// until ctx ends, and withdraws it then. It returns the first error that
// lasted a whole ttl, by which time the grid has dropped the node.
func (ns *Nodes) Heartbeat(ctx context.Context, node func() Node) error {
	every := ns.ttl / 3
	t := time.NewTicker(every)
	defer t.Stop()
	lastOK := time.Now()
	n := node()
	for {
		err := ns.Announce(ctx, n)
		switch {
		case ctx.Err() != nil:
			// A clean stop leaves the grid at once, not after the ttl.
			dctx, cancel := context.WithTimeout(context.Background(), every)
			defer cancel()
			return ns.Withdraw(dctx, n.Name)
		case err == nil:
			lastOK = time.Now()
		case time.Since(lastOK) >= ns.ttl:
			return err
		}
		select {
		case <-ctx.Done():
		case <-t.C:
			n = node()
		}
	}
}

// Withdraw drops node's record at once: a node that stops, or one removed
// from the grid.
func (ns *Nodes) Withdraw(ctx context.Context, node string) error {
	if err := ns.kv.Delete(ctx, node); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("withdraw %s: %w", node, err)
	}
	return nil
}

// List returns the live nodes.
func (ns *Nodes) List(ctx context.Context) ([]Node, error) {
	var out []Node
	err := eachKey(ctx, ns.kv, func(key string) error {
		e, err := ns.kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil // aged out meanwhile
		}
		if err != nil {
			return fmt.Errorf("read node %s: %w", key, err)
		}
		var n Node
		if err := json.Unmarshal(e.Value(), &n); err != nil || n.Name != key {
			return fmt.Errorf("node %s: malformed record", key)
		}
		out = append(out, n)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	return out, nil
}
