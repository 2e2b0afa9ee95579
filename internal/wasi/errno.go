package wasi

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
)

// toErrno maps a host error to the WASI errno a guest should see.
func toErrno(err error) Errno {
	if err == nil {
		return ErrnoSuccess
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		if e, ok := hostErrno(errno); ok {
			return e
		}
	}
	if errors.Is(err, errNotSupported) {
		return ErrnoNotsup
	}
	if isEscape(err) {
		return ErrnoPerm
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return ErrnoNoent
	case errors.Is(err, fs.ErrExist):
		return ErrnoExist
	case errors.Is(err, fs.ErrPermission):
		return ErrnoAcces
	case errors.Is(err, fs.ErrClosed):
		return ErrnoBadf
	case errors.Is(err, fs.ErrInvalid):
		return ErrnoInval
	case errors.Is(err, os.ErrDeadlineExceeded):
		return ErrnoAgain
	}
	return ErrnoIO
}

// isEscape reports whether err is os.Root refusing a path that leaves it.
// os.Root does not export that error, so it is recognised by its text.
func isEscape(err error) bool {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if e.Error() == "path escapes from parent" {
			return true
		}
	}
	return false
}

// errNotSupported is an operation this host cannot perform; guests see ENOTSUP.
var errNotSupported = errors.New("operation not supported on this host")
