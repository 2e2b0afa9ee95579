package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// imageBucket is the object store of checkpoints: the latest image of each
// process, and each module once.
const imageBucket = "tern-images"

// Images is the grid's store of process checkpoints.
type Images struct {
	obs jetstream.ObjectStore
}

// ImageInfo describes a stored checkpoint.
type ImageInfo struct {
	ID      string    `json:"id"`
	Epoch   uint64    `json:"epoch"` // the owner's epoch when it was taken
	Module  string    `json:"module"`
	Size    uint64    `json:"size"`
	Digest  string    `json:"digest"`
	Created time.Time `json:"created"`
}

// OpenImages binds the image store, creating it if needed.
func OpenImages(ctx context.Context, nc *nats.Conn) (*Images, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("open images: %w", err)
	}
	obs, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:      imageBucket,
		Description: "tern checkpoints: the latest image of each process, and modules",
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("open image store: %w", err)
	}
	return &Images{obs: obs}, nil
}

func imageName(id string) string    { return "image/" + id }
func moduleName(hash string) string { return "module/" + hash }

// Put stores the image of process id (of module, taken at epoch) read from
// r, replacing the one before.
func (im *Images) Put(ctx context.Context, id string, epoch uint64, module string, r io.Reader) (ImageInfo, error) {
	if !idPattern.MatchString(id) {
		return ImageInfo{}, fmt.Errorf("%w: %q", ErrBadID, id)
	}
	info, err := im.obs.Put(ctx, jetstream.ObjectMeta{
		Name:     imageName(id),
		Metadata: map[string]string{"epoch": strconv.FormatUint(epoch, 10), "module": module},
	}, r)
	if err != nil {
		return ImageInfo{}, fmt.Errorf("store image of %s: %w", id, err)
	}
	return imageInfo(id, info), nil
}

func imageInfo(id string, info *jetstream.ObjectInfo) ImageInfo {
	epoch, _ := strconv.ParseUint(info.Metadata["epoch"], 10, 64)
	return ImageInfo{ID: id, Epoch: epoch, Module: info.Metadata["module"], Size: info.Size, Digest: info.Digest, Created: info.ModTime}
}

// Get writes the stored image of process id to w.
func (im *Images) Get(ctx context.Context, id string, w io.Writer) (ImageInfo, error) {
	res, err := im.obs.Get(ctx, imageName(id))
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return ImageInfo{}, fmt.Errorf("%w: no checkpoint of %s", ErrNotFound, id)
	}
	if err != nil {
		return ImageInfo{}, fmt.Errorf("image of %s: %w", id, err)
	}
	defer res.Close()
	info, err := res.Info()
	if err != nil {
		return ImageInfo{}, fmt.Errorf("image of %s: %w", id, err)
	}
	// The object store checks the digest as the last chunk arrives.
	if _, err := io.Copy(w, res); err != nil {
		return ImageInfo{}, fmt.Errorf("image of %s: %w", id, err)
	}
	return imageInfo(id, info), nil
}

// PutModule stores a module once, under its sha256 (hex).
func (im *Images) PutModule(ctx context.Context, hash string, wasm []byte) error {
	if _, err := im.obs.GetInfo(ctx, moduleName(hash)); err == nil {
		return nil
	}
	if _, err := im.obs.PutBytes(ctx, moduleName(hash), wasm); err != nil {
		return fmt.Errorf("store module %.12s: %w", hash, err)
	}
	return nil
}

// Module returns a stored module.
func (im *Images) Module(ctx context.Context, hash string) ([]byte, error) {
	b, err := im.obs.GetBytes(ctx, moduleName(hash))
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, fmt.Errorf("%w: module %.12s is not in the grid", ErrNotFound, hash)
	}
	if err != nil {
		return nil, fmt.Errorf("module %.12s: %w", hash, err)
	}
	return b, nil
}
