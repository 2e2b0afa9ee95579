package wasi

import (
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"slices"
	"time"

	"github.com/ternhq/tern/internal/enc"
)

// StateVersion is the version of the encoding State.MarshalBinary writes.
const StateVersion = 3

var stateMagic = [4]byte{'T', 'W', 'S', 'I'}

// Errors a caller can branch on when decoding or restoring.
var (
	ErrBadState     = errors.New("invalid WASI state")
	ErrStateVersion = errors.New("unsupported WASI state version")
	ErrRestoreFile  = errors.New("cannot reopen file")
	ErrUncapturable = errors.New("state cannot be captured")
)

// State is everything a System holds, as plain data.
type State struct {
	Args      []string
	Env       []string
	Preopens  []Preopen
	Monotonic uint64    // the guest's monotonic clock when the state was taken
	RNG       []byte    // ChaCha8 state when seeded; nil for crypto random
	StdinRead uint64    // bytes the guest has read from stdin so far
	FDs       []FDState // index is the guest fd; Kind 0 marks a hole
	// Poll is the poll_oneoff the guest was waiting in, if any: the guest
	// makes the same call again when it goes on, and then waits only for
	// what was left of its timeouts.
	Poll *PendingPoll
}

// PendingPoll is a poll_oneoff a capture interrupted.
type PendingPoll struct {
	// Subscriptions are the call's subscriptions as the guest wrote them;
	// a later call is the same one only if its own are identical.
	Subscriptions []byte
	// Deadlines holds, for each subscription, when its clock fires on the
	// guest's monotonic clock (nanoseconds; 0 for other subscriptions).
	Deadlines []uint64
}

// FDKind says what a descriptor is.
type FDKind uint8

const (
	FDStdin  = FDKind(kindStdin)
	FDStdout = FDKind(kindStdout)
	FDStderr = FDKind(kindStderr)
	FDFile   = FDKind(kindFile)
	FDDir    = FDKind(kindDir)
)

func (k FDKind) String() string {
	switch k {
	case FDStdin:
		return "stdin"
	case FDStdout:
		return "stdout"
	case FDStderr:
		return "stderr"
	case FDFile:
		return "file"
	case FDDir:
		return "dir"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// FDState is one descriptor.
type FDState struct {
	Kind             FDKind
	Preopen          int // index into Preopens; -1 for stdio
	IsPreopen        bool
	Path             string // relative to the preopen, slash-separated
	Access           int    // os.O_RDONLY, os.O_WRONLY or os.O_RDWR
	FDFlags          uint16
	RightsBase       uint64
	RightsInheriting uint64
	Offset           int64    // file position
	Dirents          []Dirent // fd_readdir listing in use, if any
}

// Dirent is one entry of a directory listing a guest is reading.
type Dirent struct {
	Name string
	Ino  uint64
	Type uint8
}

// State captures the System. The guest must not be running a WASI call.
func (s *System) State() (*State, error) {
	st := &State{
		Args:      append([]string(nil), s.args...),
		Env:       append([]string(nil), s.env...),
		Monotonic: s.monotonic(),
		StdinRead: s.stdinRead,
	}
	if p := s.pendingPoll; p != nil {
		st.Poll = &PendingPoll{Subscriptions: slices.Clone(p.Subscriptions), Deadlines: slices.Clone(p.Deadlines)}
	}
	for _, p := range s.pre {
		st.Preopens = append(st.Preopens, Preopen{HostDir: p.host, GuestPath: p.guest})
	}
	if s.rng != nil {
		b, err := s.rng.MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("random state: %w", err)
		}
		st.RNG = b
	}
	for fd, f := range s.fds {
		if f == nil {
			st.FDs = append(st.FDs, FDState{})
			continue
		}
		fs := FDState{
			Kind: FDKind(f.kind), Preopen: f.preopen, IsPreopen: f.isPreopen, Path: f.path,
			Access: f.access, FDFlags: f.fdflags, RightsBase: f.rightsBase, RightsInheriting: f.rightsInheriting,
		}
		if f.kind == kindFile {
			// A file is restored by reopening its path: if the path no
			// longer names the open file (deleted or replaced while open),
			// a restore would silently open something else.
			if err := s.checkIdentity(f); err != nil {
				return nil, fmt.Errorf("%w: fd %d (%s): %w", ErrUncapturable, fd, f.path, err)
			}
			pos, err := f.file.Seek(0, io.SeekCurrent)
			if err != nil {
				return nil, fmt.Errorf("fd %d (%s): offset: %w", fd, f.path, err)
			}
			fs.Offset = pos
		}
		for _, d := range f.dirents {
			fs.Dirents = append(fs.Dirents, Dirent{Name: d.name, Ino: d.ino, Type: d.ftype})
		}
		st.FDs = append(st.FDs, fs)
	}
	return st, nil
}

func (s *System) checkIdentity(f *fileDesc) error {
	open, err := f.file.Stat()
	if err != nil {
		return err
	}
	named, err := s.pre[f.preopen].root.Stat(f.path)
	if err != nil {
		return fmt.Errorf("the open file is no longer reachable by its path: %w", err)
	}
	if !os.SameFile(open, named) {
		return errors.New("the path now names a different file than the one open")
	}
	return nil
}

// MarshalBinary encodes the state, version first.
func (st *State) MarshalBinary() ([]byte, error) {
	var w enc.Writer
	w.Raw(stateMagic[:])
	w.Uvarint(StateVersion)
	w.Strings(st.Args)
	w.Strings(st.Env)
	w.Uvarint(uint64(len(st.Preopens)))
	for _, p := range st.Preopens {
		w.Str(p.GuestPath)
		w.Str(p.HostDir)
	}
	w.U64(st.Monotonic)
	w.BytesField(st.RNG)
	w.Uvarint(st.StdinRead)
	w.Uvarint(uint64(len(st.FDs)))
	for _, f := range st.FDs {
		w.U8(uint8(f.Kind))
		if f.Kind == 0 {
			continue
		}
		w.Varint(int64(f.Preopen))
		w.Bool(f.IsPreopen)
		w.Str(f.Path)
		w.U8(uint8(f.Access))
		w.Uvarint(uint64(f.FDFlags))
		w.U64(f.RightsBase)
		w.U64(f.RightsInheriting)
		w.Varint(f.Offset)
		w.Uvarint(uint64(len(f.Dirents)))
		for _, d := range f.Dirents {
			w.Str(d.Name)
			w.Uvarint(d.Ino)
			w.U8(d.Type)
		}
	}
	w.Bool(st.Poll != nil)
	if p := st.Poll; p != nil {
		w.BytesField(p.Subscriptions)
		for _, d := range p.Deadlines {
			w.U64(d)
		}
	}
	return w.Data(), nil
}

// UnmarshalBinary decodes and validates an encoded state. Input is
// untrusted: anything inconsistent is an error wrapping ErrBadState.
func (st *State) UnmarshalBinary(data []byte) error {
	r := enc.NewReader(data)
	if m := r.Raw(4); m == nil || [4]byte(m) != stateMagic {
		return fmt.Errorf("%w: not a tern WASI state", ErrBadState)
	}
	version := r.Uvarint()
	if r.Err() == nil && (version < 2 || version > StateVersion) {
		return fmt.Errorf("%w %d (this tern reads 2 to %d)", ErrStateVersion, version, StateVersion)
	}
	var out State
	out.Args = r.Strings()
	out.Env = r.Strings()
	np := r.Len(2)
	for i := 0; i < np; i++ {
		out.Preopens = append(out.Preopens, Preopen{GuestPath: r.Str(), HostDir: r.Str()})
	}
	out.Monotonic = r.U64()
	if rng := r.BytesField(); len(rng) > 0 {
		out.RNG = rng
	}
	out.StdinRead = r.Uvarint()
	nfd := r.Len(1)
	if nfd > maxFDs {
		r.Fail(fmt.Errorf("%d descriptors, at most %d", nfd, maxFDs))
	}
	for i := 0; i < nfd && r.Err() == nil; i++ {
		var f FDState
		f.Kind = FDKind(r.U8())
		if f.Kind == 0 {
			out.FDs = append(out.FDs, f)
			continue
		}
		f.Preopen = int(r.Varint())
		f.IsPreopen = r.Bool()
		f.Path = r.Str()
		f.Access = int(r.U8())
		flags := r.Uvarint()
		f.FDFlags = uint16(flags)
		f.RightsBase = r.U64()
		f.RightsInheriting = r.U64()
		f.Offset = r.Varint()
		nd := r.Len(3)
		for j := 0; j < nd; j++ {
			f.Dirents = append(f.Dirents, Dirent{Name: r.Str(), Ino: r.Uvarint(), Type: r.U8()})
		}
		if r.Err() == nil {
			if err := f.validate(i, len(out.Preopens), flags); err != nil {
				r.Fail(err)
			}
		}
		out.FDs = append(out.FDs, f)
	}
	// Version 2 had no pending poll.
	if version >= 3 && r.Bool() {
		p := &PendingPoll{Subscriptions: r.BytesField()}
		if n := len(p.Subscriptions); n == 0 || n%subscriptionSize != 0 {
			r.Fail(fmt.Errorf("pending poll_oneoff of %d bytes, not a whole number of subscriptions", n))
		}
		for range len(p.Subscriptions) / subscriptionSize {
			if r.Err() != nil {
				break
			}
			p.Deadlines = append(p.Deadlines, r.U64())
		}
		out.Poll = p
	}
	r.End()
	if err := r.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrBadState, err)
	}
	for _, e := range out.Env {
		if !validEnv(e) {
			return fmt.Errorf("%w: environment entry %q", ErrBadState, e)
		}
	}
	if out.RNG != nil {
		if err := new(mrand.ChaCha8).UnmarshalBinary(out.RNG); err != nil {
			return fmt.Errorf("%w: random state: %w", ErrBadState, err)
		}
	}
	*st = out
	return nil
}

func (f *FDState) validate(fd, npre int, flags uint64) error {
	if flags&^fdflagsAll != 0 {
		return fmt.Errorf("fd %d: unknown fdflags %#x", fd, flags)
	}
	switch f.Kind {
	case FDStdin, FDStdout, FDStderr:
		if f.Preopen != -1 || f.IsPreopen || f.Path != "" {
			return fmt.Errorf("fd %d: standard stream with a path", fd)
		}
		return nil
	case FDFile, FDDir:
	default:
		return fmt.Errorf("fd %d: unknown kind %d", fd, f.Kind)
	}
	if f.Preopen < 0 || f.Preopen >= npre {
		return fmt.Errorf("fd %d: preopen %d of %d", fd, f.Preopen, npre)
	}
	if p, e := cleanGuestPath(".", f.Path); e != ErrnoSuccess || p != f.Path {
		return fmt.Errorf("fd %d: path %q is not a clean path inside its preopen", fd, f.Path)
	}
	if f.Access != os.O_RDONLY && f.Access != os.O_WRONLY && f.Access != os.O_RDWR {
		return fmt.Errorf("fd %d: access mode %d", fd, f.Access)
	}
	if f.Offset < 0 {
		return fmt.Errorf("fd %d: negative offset", fd)
	}
	if f.IsPreopen && (f.Kind != FDDir || f.Path != ".") {
		return fmt.Errorf("fd %d: preopen that is not its directory", fd)
	}
	return nil
}

// RestoreOptions says how a state meets its new host.
type RestoreOptions struct {
	Stdio Stdio
	// HostDirs maps a preopen's guest path to the host directory to use
	// here; preopens not listed use the directory recorded in the state.
	HostDirs map[string]string
}

// Restore rebuilds a System from st: it opens the preopens, reopens every
// file at its recorded offset and continues the monotonic clock.
func Restore(st *State, opts RestoreOptions) (*System, error) {
	s := &System{
		args:      append([]string(nil), st.Args...),
		env:       append([]string(nil), st.Env...),
		clockBase: time.Now(),
		monoAt:    st.Monotonic,
		susp:      suspender{ch: make(chan struct{})},
		stdinRead: st.StdinRead,
	}
	if p := st.Poll; p != nil {
		s.pendingPoll = &PendingPoll{Subscriptions: slices.Clone(p.Subscriptions), Deadlines: slices.Clone(p.Deadlines)}
	}
	s.SetStdio(opts.Stdio)
	if st.RNG != nil {
		s.rng = new(mrand.ChaCha8)
		if err := s.rng.UnmarshalBinary(st.RNG); err != nil {
			return nil, fmt.Errorf("%w: random state: %w", ErrBadState, err)
		}
	}
	for _, p := range st.Preopens {
		host := p.HostDir
		if h, ok := opts.HostDirs[p.GuestPath]; ok {
			host = h
		}
		if err := s.addPreopen(host, p.GuestPath); err != nil {
			s.Close()
			return nil, err
		}
	}
	for fd, fs := range st.FDs {
		if fs.Kind == 0 {
			s.fds = append(s.fds, nil)
			continue
		}
		if err := fs.validate(fd, len(s.pre), uint64(fs.FDFlags)); err != nil {
			s.Close()
			return nil, fmt.Errorf("%w: %w", ErrBadState, err)
		}
		f := &fileDesc{
			kind: fdKind(fs.Kind), preopen: fs.Preopen, isPreopen: fs.IsPreopen, path: fs.Path,
			access: fs.Access, fdflags: fs.FDFlags, rightsBase: fs.RightsBase, rightsInheriting: fs.RightsInheriting,
		}
		for _, d := range fs.Dirents {
			f.dirents = append(f.dirents, dirent{name: d.Name, ino: d.Ino, ftype: d.Type})
		}
		s.fds = append(s.fds, f)
		if f.kind != kindFile {
			continue
		}
		file, err := s.pre[f.preopen].root.OpenFile(f.path, f.access, 0)
		if err == nil {
			_, err = file.Seek(fs.Offset, io.SeekStart)
			if err != nil {
				file.Close()
			}
		}
		if err != nil {
			err = fmt.Errorf("%w: fd %d (%s in %s): %w", ErrRestoreFile, fd, f.path, s.pre[f.preopen].guest, err)
			s.Close()
			return nil, err
		}
		f.file = file
	}
	return s, nil
}

// Adopt makes s the system o is — arguments, environment, preopens,
// descriptors, clocks, random source, pending poll — and leaves o with
// nothing to close. A process moved here live is instantiated on a blank
// system early, so that its memory can arrive straight into the instance,
// and takes on its restored WASI state when the rest of it has come. s
// keeps its own suspension machinery and block hook.
func (s *System) Adopt(o *System) {
	for _, f := range s.fds {
		if f != nil {
			f.close()
		}
	}
	for _, p := range s.pre {
		if p.fast != nil {
			p.fast.close()
		}
		p.root.Close()
	}
	s.args, s.env, s.pre, s.fds, s.stdio = o.args, o.env, o.pre, o.fds, o.stdio
	s.clockBase, s.monoAt, s.rng = o.clockBase, o.monoAt, o.rng
	s.stdinRead, s.pendingPoll = o.stdinRead, o.pendingPoll
	o.pre, o.fds = nil, nil
}
