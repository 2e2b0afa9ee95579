package agent

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/ternhq/tern/internal/atomicfile"
	"github.com/ternhq/tern/internal/cluster"
	"github.com/ternhq/tern/internal/image"
)

// checkpoint takes an image of a process running here (its record v),
// while it goes on, and puts it in the grid's image store with its module.
func (a *Agent) checkpoint(ctx context.Context, v cluster.Versioned) (cluster.ImageInfo, error) {
	id := v.ID
	if v.State != cluster.StateRunning {
		return cluster.ImageInfo{}, fmt.Errorf("checkpoint: %s is %s: only a running process has one to take", id, v.State)
	}
	a.mu.Lock()
	c, ok := a.procs[id]
	a.mu.Unlock()
	if !ok || v.Node != a.cfg.Name {
		return cluster.ImageInfo{}, fmt.Errorf("checkpoint: %s runs on %s, not here", id, v.Node)
	}
	conn, err := dialControl(ctx, c)
	if err != nil {
		return cluster.ImageInfo{}, fmt.Errorf("checkpoint %s: %w", id, err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "checkpoint\n"); err != nil {
		return cluster.ImageInfo{}, fmt.Errorf("checkpoint %s: %w", id, err)
	}
	br := bufio.NewReader(conn)
	line, err := br.ReadString('\n')
	if err != nil {
		return cluster.ImageInfo{}, fmt.Errorf("checkpoint %s: the process did not answer: %w", id, err)
	}
	hash, ok := strings.CutPrefix(strings.TrimSpace(line), "ok ")
	if !ok {
		return cluster.ImageInfo{}, fmt.Errorf("checkpoint %s: %s", id, strings.TrimPrefix(strings.TrimSpace(line), "error: "))
	}
	if b, err := hex.DecodeString(hash); err != nil || len(b) != 32 {
		return cluster.ImageInfo{}, fmt.Errorf("checkpoint %s: bad module hash %q", id, hash)
	}
	wasm, err := os.ReadFile(filepath.Join(a.cfg.DataDir, "images", hash+".wasm"))
	if err != nil {
		return cluster.ImageInfo{}, fmt.Errorf("checkpoint %s: its module: %w", id, err)
	}
	if err := a.images.PutModule(ctx, hash, wasm); err != nil {
		return cluster.ImageInfo{}, err
	}
	info, err := a.images.Put(ctx, id, v.Epoch, hash, br)
	if err != nil {
		return cluster.ImageInfo{}, err
	}
	a.log.Info("checkpoint stored", "id", id, "bytes", info.Size, "epoch", v.Epoch)
	return info, nil
}

// serveCheckpoint checkpoints a process, on whichever node runs it.
func (a *Agent) serveCheckpoint(w http.ResponseWriter, r *http.Request) {
	v, here := a.ownedHere(w, r, r.PathValue("id"), nil)
	if !here {
		return
	}
	info, err := a.checkpoint(r.Context(), v)
	if err != nil {
		httpError(w, err, 0)
		return
	}
	writeJSON(w, info)
}

// serveImage sends a stored checkpoint; serveModule a stored module.
func (a *Agent) serveImage(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	pr, pw := io.Pipe()
	go func() {
		_, err := a.images.Get(r.Context(), id, pw)
		pw.CloseWithError(err)
	}()
	// The first bytes tell a missing checkpoint from a present one.
	br := bufio.NewReader(pr)
	if _, err := br.Peek(1); err != nil {
		pr.CloseWithError(err)
		httpError(w, err, 0)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	io.Copy(w, br)
}

func (a *Agent) serveModule(w http.ResponseWriter, r *http.Request) {
	b, err := a.images.Module(r.Context(), r.PathValue("hash"))
	if err != nil {
		httpError(w, err, 0)
		return
	}
	w.Header().Set("Content-Type", "application/wasm")
	w.Write(b)
}

// Checkpoint stores an image of a running process in the grid.
func (c *Client) Checkpoint(ctx context.Context, id string) (cluster.ImageInfo, error) {
	var info cluster.ImageInfo
	return info, c.do(ctx, http.MethodPost, "/v1/procs/"+url.PathEscape(id)+"/checkpoint", nil, &info)
}

// SaveCheckpoint writes the grid's checkpoint of process id to path, and
// its module beside it (SHA256.wasm), so that `tern resume path` runs it.
func (c *Client) SaveCheckpoint(ctx context.Context, id, path string) (*image.Info, error) {
	resp, err := c.send(ctx, http.MethodGet, "/v1/images/"+url.PathEscape(id), nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("checkpoint of %s: %w", id, err)
	}
	info, err := image.ReadInfo(strings.NewReader(string(b)))
	if err != nil {
		return nil, fmt.Errorf("checkpoint of %s: %w", id, err)
	}
	hash := hex.EncodeToString(info.ModuleHash[:])
	mresp, err := c.send(ctx, http.MethodGet, "/v1/modules/"+hash, nil)
	if err != nil {
		return nil, err
	}
	defer mresp.Body.Close()
	wasm, err := io.ReadAll(mresp.Body)
	if err != nil {
		return nil, fmt.Errorf("module of %s: %w", id, err)
	}
	if err := atomicfile.Write(filepath.Join(filepath.Dir(path), hash+".wasm"), wasm, 0o644); err != nil {
		return nil, err
	}
	if err := atomicfile.Write(path, b, 0o644); err != nil {
		return nil, err
	}
	return info, nil
}
