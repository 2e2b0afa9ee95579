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
)

// Errors callers branch on.
var (
	ErrExists   = errors.New("process already registered")
	ErrNotFound = errors.New("no such process")
	// ErrConflict: the record changed since it was read; whoever changed
	// it won, and the caller must read again before deciding anything.
	ErrConflict = errors.New("process record changed meanwhile")
	ErrBadID    = errors.New("invalid process id")
	ErrBadProc  = errors.New("invalid process record")
)

// ProcState is where a process is in its life.
type ProcState string

const (
	StateRunning ProcState = "running"
	StateFrozen  ProcState = "frozen" // an image in the grid holds it
	StateExited  ProcState = "exited"
)

// Proc is a process's registry record. Node owns it; Epoch grows by one
// with every change of owner, so that writes from an owner that lost it
// (output, checkpoints) are recognizably stale.
type Proc struct {
	ID       string    `json:"id"`
	Node     string    `json:"node"`
	Epoch    uint64    `json:"epoch"`
	State    ProcState `json:"state"`
	Module   string    `json:"module"` // sha256 of the module, hex
	Args     []string  `json:"args,omitempty"`
	Stdin    bool      `json:"stdin,omitempty"` // its input comes from the grid (tern attach)
	ExitCode int       `json:"exit_code,omitempty"`
	Updated  time.Time `json:"updated"`
}

// Versioned is a record with the revision it was read at, the revision a
// change must name.
type Versioned struct {
	Proc
	Revision uint64
}

// registryBucket is the KV bucket holding one key per process.
const registryBucket = "tern-procs"

// idPattern is what a process id may be: a KV key and a subject token.
var idPattern = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

// Registry is the process registry.
type Registry struct {
	kv jetstream.KeyValue
}

// OpenRegistry binds the registry's bucket, creating it if needed.
func OpenRegistry(ctx context.Context, nc *nats.Conn) (*Registry, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("open registry: %w", err)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      registryBucket,
		Description: "tern processes: owner node, fencing epoch, state",
		History:     16,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("open registry bucket: %w", err)
	}
	return &Registry{kv: kv}, nil
}

func checkProc(p Proc) error {
	switch {
	case !idPattern.MatchString(p.ID):
		return fmt.Errorf("%w: %q", ErrBadID, p.ID)
	case p.Node == "":
		return fmt.Errorf("%w: %s has no node", ErrBadProc, p.ID)
	case p.State != StateRunning && p.State != StateFrozen && p.State != StateExited:
		return fmt.Errorf("%w: %s in state %q", ErrBadProc, p.ID, p.State)
	}
	return nil
}

// Create registers a new process; ErrExists if its id is taken.
func (r *Registry) Create(ctx context.Context, p Proc) (Versioned, error) {
	if err := checkProc(p); err != nil {
		return Versioned{}, err
	}
	p.Updated = time.Now().UTC()
	b, err := json.Marshal(p)
	if err != nil {
		return Versioned{}, err
	}
	rev, err := r.kv.Create(ctx, p.ID, b)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return Versioned{}, fmt.Errorf("%w: %s", ErrExists, p.ID)
	}
	if err != nil {
		return Versioned{}, fmt.Errorf("register %s: %w", p.ID, err)
	}
	return Versioned{p, rev}, nil
}

// Get reads a process's record. A read may be stale: decide ownership
// only through Update.
func (r *Registry) Get(ctx context.Context, id string) (Versioned, error) {
	if !idPattern.MatchString(id) {
		return Versioned{}, fmt.Errorf("%w: %q", ErrBadID, id)
	}
	e, err := r.kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Versioned{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return Versioned{}, fmt.Errorf("read %s: %w", id, err)
	}
	return decodeEntry(e)
}

func decodeEntry(e jetstream.KeyValueEntry) (Versioned, error) {
	var p Proc
	if err := json.Unmarshal(e.Value(), &p); err != nil {
		return Versioned{}, fmt.Errorf("%w: %s: %w", ErrBadProc, e.Key(), err)
	}
	if p.ID != e.Key() {
		return Versioned{}, fmt.Errorf("%w: key %s holds the record of %q", ErrBadProc, e.Key(), p.ID)
	}
	return Versioned{p, e.Revision()}, nil
}

// Update replaces the record read at revision rev by p; ErrConflict if it
// changed since. The epoch may only stay or grow by one, and grows by
// one exactly when the owner changes.
func (r *Registry) Update(ctx context.Context, old Versioned, p Proc) (Versioned, error) {
	if err := checkProc(p); err != nil {
		return Versioned{}, err
	}
	switch {
	case p.ID != old.ID:
		return Versioned{}, fmt.Errorf("%w: update of %s names %s", ErrBadProc, old.ID, p.ID)
	case p.Node != old.Node && p.Epoch != old.Epoch+1:
		return Versioned{}, fmt.Errorf("%w: %s moves from %s to %s at epoch %d, want %d", ErrBadProc, p.ID, old.Node, p.Node, p.Epoch, old.Epoch+1)
	case p.Node == old.Node && p.Epoch != old.Epoch:
		return Versioned{}, fmt.Errorf("%w: %s stays on %s but its epoch goes from %d to %d", ErrBadProc, p.ID, p.Node, old.Epoch, p.Epoch)
	}
	p.Updated = time.Now().UTC()
	b, err := json.Marshal(p)
	if err != nil {
		return Versioned{}, err
	}
	rev, err := r.kv.Update(ctx, p.ID, b, old.Revision)
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return Versioned{}, fmt.Errorf("%w: %s (read at revision %d)", ErrConflict, p.ID, old.Revision)
	}
	if err != nil {
		return Versioned{}, fmt.Errorf("update %s: %w", p.ID, err)
	}
	return Versioned{p, rev}, nil
}

// Transfer hands the process to node by compare-and-set: the epoch grows
// by one. Exactly one of any number of concurrent transfers from the same
// revision succeeds; the others get ErrConflict.
func (r *Registry) Transfer(ctx context.Context, old Versioned, node string) (Versioned, error) {
	p := old.Proc
	p.Node, p.Epoch = node, old.Epoch+1
	return r.Update(ctx, old, p)
}

// Delete removes a process's record if it is still at rev.
func (r *Registry) Delete(ctx context.Context, old Versioned) error {
	err := r.kv.Delete(ctx, old.ID, jetstream.LastRevision(old.Revision))
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return fmt.Errorf("%w: %s (read at revision %d)", ErrConflict, old.ID, old.Revision)
	}
	if err != nil {
		return fmt.Errorf("delete %s: %w", old.ID, err)
	}
	return nil
}

// List returns every registered process.
func (r *Registry) List(ctx context.Context) ([]Versioned, error) {
	var out []Versioned
	err := eachKey(ctx, r.kv, func(key string) error {
		v, err := r.Get(ctx, key)
		if errors.Is(err, ErrNotFound) {
			return nil // deleted meanwhile
		}
		if err != nil {
			return err
		}
		out = append(out, v)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	return out, nil
}

// eachKey calls fn with every key of kv until fn fails.
func eachKey(ctx context.Context, kv jetstream.KeyValue, fn func(string) error) error {
	lister, err := kv.ListKeys(ctx)
	if err != nil {
		return err
	}
	defer lister.Stop()
	for key := range lister.Keys() {
		if err := fn(key); err != nil {
			return err
		}
	}
	return nil
}
