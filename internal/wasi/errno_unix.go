//go:build unix

package wasi

import "syscall"

var hostErrnos = map[syscall.Errno]Errno{
	syscall.E2BIG:        Errno2big,
	syscall.EACCES:       ErrnoAcces,
	syscall.EAGAIN:       ErrnoAgain,
	syscall.EBADF:        ErrnoBadf,
	syscall.EBUSY:        ErrnoBusy,
	syscall.EEXIST:       ErrnoExist,
	syscall.EFAULT:       ErrnoFault,
	syscall.EFBIG:        ErrnoFbig,
	syscall.EILSEQ:       ErrnoIlseq,
	syscall.EINTR:        ErrnoIntr,
	syscall.EINVAL:       ErrnoInval,
	syscall.EIO:          ErrnoIO,
	syscall.EISDIR:       ErrnoIsdir,
	syscall.ELOOP:        ErrnoLoop,
	syscall.EMFILE:       ErrnoMfile,
	syscall.EMLINK:       ErrnoMlink,
	syscall.ENAMETOOLONG: ErrnoNametoolong,
	syscall.ENFILE:       ErrnoNfile,
	syscall.ENODEV:       ErrnoNodev,
	syscall.ENOENT:       ErrnoNoent,
	syscall.ENOMEM:       ErrnoNomem,
	syscall.ENOSPC:       ErrnoNospc,
	syscall.ENOSYS:       ErrnoNosys,
	syscall.ENOTDIR:      ErrnoNotdir,
	syscall.ENOTEMPTY:    ErrnoNotempty,
	syscall.ENOTSOCK:     ErrnoNotsock,
	syscall.ENOTSUP:      ErrnoNotsup,
	syscall.ENOTTY:       ErrnoNotty,
	syscall.ENXIO:        ErrnoNxio,
	syscall.EOVERFLOW:    ErrnoOverflow,
	syscall.EPERM:        ErrnoPerm,
	syscall.EPIPE:        ErrnoPipe,
	syscall.ERANGE:       ErrnoRange,
	syscall.EROFS:        ErrnoRofs,
	syscall.ESPIPE:       ErrnoSpipe,
	syscall.ETIMEDOUT:    ErrnoTimedout,
	syscall.ETXTBSY:      ErrnoTxtbsy,
	syscall.EXDEV:        ErrnoXdev,
}

func hostErrno(e syscall.Errno) (Errno, bool) {
	w, ok := hostErrnos[e]
	return w, ok
}
