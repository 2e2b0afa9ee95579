package wasi

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"path"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// ModuleName is the import module WASI preview1 guests use.
const ModuleName = "wasi_snapshot_preview1"

// ErrPreopen is returned when a preopened directory cannot be opened.
var ErrPreopen = errors.New("preopen")

// Preopen maps a host directory into the guest's file system.
type Preopen struct {
	HostDir   string // directory on this host
	GuestPath string // name the guest sees it by, e.g. "/data" or "."
}

// Config describes a fresh System.
type Config struct {
	Args     []string // argv, the program name first
	Env      []string // KEY=VALUE pairs, in order
	Preopens []Preopen
	Stdin    io.Reader // nil reads as empty
	Stdout   io.Writer // nil discards
	Stderr   io.Writer // nil discards
	// Seed, when non-nil, makes random_get deterministic: a ChaCha8 stream
	// keyed by the seed. Otherwise random_get reads crypto/rand.
	Seed *uint64
}

// Stdio are the host streams a System's standard descriptors use. They are
// the only host objects not carried in a snapshot.
type Stdio struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

type preopen struct {
	guest string
	host  string
	root  *os.Root
	fast  *beneath // nil: os.Root does every lookup
}

// System is the complete host-side state of one WASI process.
type System struct {
	args  []string
	env   []string
	pre   []*preopen
	fds   []*fileDesc // index is the guest fd; nil is a hole
	stdio Stdio

	// The guest's monotonic clock is monoAt plus the host time elapsed
	// since clockBase, so it continues from its snapshot value wherever
	// the process resumes.
	clockBase time.Time
	monoAt    uint64

	rng *mrand.ChaCha8 // nil: crypto random

	susp suspender
	// stdinRead counts the bytes the guest has read from stdin, so a
	// frozen process can say where its input stopped.
	stdinRead uint64
	// pendingPoll is the poll_oneoff the guest waits in, or was waiting in
	// when a capture abandoned it; see PendingPoll.
	pendingPoll *PendingPoll
}

// initialMonotonic is where a new process's monotonic clock starts. Not 0,
// which some runtimes treat as "unset".
const initialMonotonic = uint64(time.Second)

// New builds a System from cfg, opening every preopen. The caller must Close it.
func New(cfg Config) (*System, error) {
	s := &System{
		args:      append([]string(nil), cfg.Args...),
		env:       append([]string(nil), cfg.Env...),
		clockBase: time.Now(),
		monoAt:    initialMonotonic,
		susp:      suspender{ch: make(chan struct{})},
	}
	s.SetStdio(Stdio{Stdin: cfg.Stdin, Stdout: cfg.Stdout, Stderr: cfg.Stderr})
	if cfg.Seed != nil {
		var key [32]byte
		binary.BigEndian.PutUint64(key[:], *cfg.Seed)
		copy(key[8:], "tern-wasi-seeded-random")
		s.rng = mrand.NewChaCha8(key)
	}
	for _, k := range cfg.Env {
		if !validEnv(k) {
			return nil, fmt.Errorf("environment entry %q: want KEY=VALUE", k)
		}
	}
	s.fds = []*fileDesc{
		{kind: kindStdin, preopen: -1, rightsBase: rightsStdio},
		{kind: kindStdout, preopen: -1, rightsBase: rightsStdio},
		{kind: kindStderr, preopen: -1, rightsBase: rightsStdio},
	}
	for _, p := range cfg.Preopens {
		if err := s.addPreopen(p.HostDir, p.GuestPath); err != nil {
			s.Close()
			return nil, err
		}
		fd := &fileDesc{kind: kindDir, preopen: len(s.pre) - 1, isPreopen: true, path: ".",
			rightsBase: rightsDir, rightsInheriting: rightsAll}
		s.fds = append(s.fds, fd)
	}
	return s, nil
}

func validEnv(kv string) bool {
	for i := 0; i < len(kv); i++ {
		if kv[i] == '=' {
			return i > 0
		}
		if kv[i] == 0 {
			return false
		}
	}
	return false
}

func (s *System) addPreopen(host, guest string) error {
	if guest == "" {
		guest = host
	}
	st, err := os.Stat(host)
	if err != nil {
		return fmt.Errorf("%w %s: %w", ErrPreopen, host, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("%w %s: not a directory", ErrPreopen, host)
	}
	root, err := os.OpenRoot(host)
	if err != nil {
		return fmt.Errorf("%w %s: %w", ErrPreopen, host, err)
	}
	s.pre = append(s.pre, &preopen{guest: guest, host: host, root: root, fast: newBeneath(root)})
	return nil
}

// SetStdio replaces the host streams behind the standard descriptors, for
// example after a restore on another device.
func (s *System) SetStdio(st Stdio) {
	if st.Stdin == nil {
		st.Stdin = eofReader{}
	}
	if st.Stdout == nil {
		st.Stdout = io.Discard
	}
	if st.Stderr == nil {
		st.Stderr = io.Discard
	}
	s.stdio = st
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// Close releases every host file and directory the System holds.
func (s *System) Close() error {
	var errs []error
	for _, f := range s.fds {
		if f != nil {
			errs = append(errs, f.close())
		}
	}
	s.fds = nil
	for _, p := range s.pre {
		if p.fast != nil {
			errs = append(errs, p.fast.close())
		}
		errs = append(errs, p.root.Close())
	}
	s.pre = nil
	if s.susp.wake != nil {
		s.susp.wake.close()
		s.susp.wake = nil
	}
	return errors.Join(errs...)
}

// monotonic returns the guest's monotonic clock in nanoseconds.
func (s *System) monotonic() uint64 {
	return s.monoAt + uint64(time.Since(s.clockBase))
}

func (s *System) randomRead(b []byte) {
	if s.rng != nil {
		_, _ = s.rng.Read(b)
		return
	}
	_, _ = rand.Read(b)
}

// Instantiate registers the wasi_snapshot_preview1 host module backed by s
// in r. A runtime holds one System: instantiate a runtime per process.
func (s *System) Instantiate(ctx context.Context, r wazero.Runtime) (api.Module, error) {
	b := r.NewHostModuleBuilder(ModuleName)
	for _, f := range s.functions() {
		params := make([]api.ValueType, len(f.sig))
		for i, c := range f.sig {
			if c == 'I' {
				params[i] = api.ValueTypeI64
			} else {
				params[i] = api.ValueTypeI32
			}
		}
		var results []api.ValueType
		if !f.noResult {
			results = []api.ValueType{api.ValueTypeI32}
		}
		var gofn api.GoModuleFunction = hostCall{s, f.fn}
		if f.noResult {
			gofn = hostCallNoResult{s, f.fn}
		}
		b.NewFunctionBuilder().WithGoModuleFunction(gofn, params, results).Export(f.name)
	}
	return b.Instantiate(ctx)
}

// hostCall adapts a WASI function to wazero. It is the
// api.GoModuleFunction itself and holds the function as a method
// expression, so a guest call reaches the function through one indirect
// call rather than a closure and a method-value wrapper: guests make some
// WASI calls (clock_time_get, fd_write) millions of times, and on
// clock_time_get the difference is measurable.
type hostCall struct {
	s  *System
	fn func(*System, context.Context, api.Module, []uint64) Errno
}

func (h hostCall) Call(ctx context.Context, mod api.Module, stack []uint64) {
	stack[0] = uint64(h.fn(h.s, ctx, mod, stack))
}

// hostCallNoResult is hostCall for proc_exit, which returns nothing.
type hostCallNoResult hostCall

func (h hostCallNoResult) Call(ctx context.Context, mod api.Module, stack []uint64) {
	h.fn(h.s, ctx, mod, stack)
}

// Functions lists the names of every function the host module exports.
func Functions() []string {
	var s System
	fs := s.functions()
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = f.name
	}
	return names
}

type hostFunc struct {
	name     string
	sig      string // one letter a parameter: i = i32, I = i64
	noResult bool
	fn       func(*System, context.Context, api.Module, []uint64) Errno
}

func (s *System) functions() []hostFunc {
	return []hostFunc{
		{name: "args_get", sig: "ii", fn: (*System).argsGet},
		{name: "args_sizes_get", sig: "ii", fn: (*System).argsSizesGet},
		{name: "environ_get", sig: "ii", fn: (*System).environGet},
		{name: "environ_sizes_get", sig: "ii", fn: (*System).environSizesGet},
		{name: "clock_res_get", sig: "ii", fn: (*System).clockResGet},
		{name: "clock_time_get", sig: "iIi", fn: (*System).clockTimeGet},
		{name: "fd_advise", sig: "iIIi", fn: (*System).fdAdvise},
		{name: "fd_allocate", sig: "iII", fn: (*System).fdAllocate},
		{name: "fd_close", sig: "i", fn: (*System).fdClose},
		{name: "fd_datasync", sig: "i", fn: (*System).fdDatasync},
		{name: "fd_fdstat_get", sig: "ii", fn: (*System).fdFdstatGet},
		{name: "fd_fdstat_set_flags", sig: "ii", fn: (*System).fdFdstatSetFlags},
		{name: "fd_fdstat_set_rights", sig: "iII", fn: (*System).fdFdstatSetRights},
		{name: "fd_filestat_get", sig: "ii", fn: (*System).fdFilestatGet},
		{name: "fd_filestat_set_size", sig: "iI", fn: (*System).fdFilestatSetSize},
		{name: "fd_filestat_set_times", sig: "iIIi", fn: (*System).fdFilestatSetTimes},
		{name: "fd_pread", sig: "iiiIi", fn: (*System).fdPread},
		{name: "fd_prestat_get", sig: "ii", fn: (*System).fdPrestatGet},
		{name: "fd_prestat_dir_name", sig: "iii", fn: (*System).fdPrestatDirName},
		{name: "fd_pwrite", sig: "iiiIi", fn: (*System).fdPwrite},
		{name: "fd_read", sig: "iiii", fn: (*System).fdRead},
		{name: "fd_readdir", sig: "iiiIi", fn: (*System).fdReaddir},
		{name: "fd_renumber", sig: "ii", fn: (*System).fdRenumber},
		{name: "fd_seek", sig: "iIii", fn: (*System).fdSeek},
		{name: "fd_sync", sig: "i", fn: (*System).fdSync},
		{name: "fd_tell", sig: "ii", fn: (*System).fdTell},
		{name: "fd_write", sig: "iiii", fn: (*System).fdWrite},
		{name: "path_create_directory", sig: "iii", fn: (*System).pathCreateDirectory},
		{name: "path_filestat_get", sig: "iiiii", fn: (*System).pathFilestatGet},
		{name: "path_filestat_set_times", sig: "iiiiIIi", fn: (*System).pathFilestatSetTimes},
		{name: "path_link", sig: "iiiiiii", fn: (*System).pathLink},
		{name: "path_open", sig: "iiiiiIIii", fn: (*System).pathOpen},
		{name: "path_readlink", sig: "iiiiii", fn: (*System).pathReadlink},
		{name: "path_remove_directory", sig: "iii", fn: (*System).pathRemoveDirectory},
		{name: "path_rename", sig: "iiiiii", fn: (*System).pathRename},
		{name: "path_symlink", sig: "iiiii", fn: (*System).pathSymlink},
		{name: "path_unlink_file", sig: "iii", fn: (*System).pathUnlinkFile},
		{name: "poll_oneoff", sig: "iiii", fn: (*System).pollOneoff},
		{name: "proc_exit", sig: "i", noResult: true, fn: (*System).procExit},
		{name: "proc_raise", sig: "i", fn: (*System).procRaise},
		{name: "sched_yield", sig: "", fn: (*System).schedYield},
		{name: "random_get", sig: "ii", fn: (*System).randomGet},
		{name: "sock_accept", sig: "iii", fn: (*System).sockAccept},
		{name: "sock_recv", sig: "iiiiii", fn: (*System).sockRecv},
		{name: "sock_send", sig: "iiiii", fn: (*System).sockSend},
		{name: "sock_shutdown", sig: "ii", fn: (*System).sockShutdown},
	}
}

// cleanGuestPath turns a guest path, relative to a directory at rel inside
// its preopen, into a path relative to the preopen. Absolute paths and paths
// that climb out lexically are refused here; os.Root refuses the rest (a
// symbolic link that points outside).
func cleanGuestPath(rel, p string) (string, Errno) {
	if p == "" {
		return "", ErrnoNoent
	}
	for i := 0; i < len(p); i++ {
		if p[i] == 0 {
			return "", ErrnoInval
		}
	}
	if p[0] == '/' {
		return "", ErrnoPerm
	}
	trailing := p[len(p)-1] == '/'
	c := path.Clean(p)
	if c == ".." || len(c) >= 3 && c[:3] == "../" {
		return "", ErrnoPerm
	}
	full := path.Join(rel, c)
	if trailing && full != "." {
		full += "/"
	}
	return full, ErrnoSuccess
}
