package dirty

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The kernel's interface (linux/userfaultfd.h, linux/fs.h).
const (
	uffdAPI            = 0xAA
	uffdUserModeOnly   = 1
	uffdFeatureWPUnpop = 1 << 13
	uffdFeatureWPAsync = 1 << 15
	uffdioAPI          = 0xC018AA3F // _IOWR(0xAA, 0x3F, struct uffdio_api)
	uffdioRegister     = 0xC020AA00 // _IOWR(0xAA, 0x00, struct uffdio_register)
	uffdioUnregister   = 0x8010AA01 // _IOR(0xAA, 0x01, struct uffdio_range)
	uffdioWriteprotect = 0xC018AA06 // _IOWR(0xAA, 0x06, struct uffdio_writeprotect)
	uffdRegisterModeWP = 1 << 1
	uffdWriteprotectWP = 1 << 0
	pagemapScan        = 0xC0606610 // _IOWR('f', 16, struct pm_scan_arg)
	pmScanWPMatching   = 1 << 0
	pmScanCheckWPAsync = 1 << 1
	pageIsWritten      = 1 << 1
	pageRegionSize     = 24
	pmScanArgSize      = 96
	maxRegionsPerIoctl = 512
)

type uffdioAPIArg struct{ api, features, ioctls uint64 }
type uffdioRange struct{ start, len uint64 }
type uffdioRegisterArg struct {
	rng          uffdioRange
	mode, ioctls uint64
}
type uffdioWriteprotectArg struct {
	rng  uffdioRange
	mode uint64
}
type pmScanArg struct {
	size, flags, start, end, walkEnd, vec, vecLen, maxPages       uint64
	categoryInverted, categoryMask, categoryAnyofMask, returnMask uint64
}
type pageRegion struct{ start, end, categories uint64 }

// Tracker watches one region for writes.
type Tracker struct {
	uffd    int
	pagemap *os.File
	start   uintptr
	size    uintptr
	regions []pageRegion
}

// Track starts watching mem (whole system pages; its start page-aligned):
// writes from now on are reported by Written. mem must stay where it is
// (the caller checks with Covers).
func Track(mem []byte) (*Tracker, error) {
	osPage := uintptr(os.Getpagesize())
	if len(mem) == 0 || uintptr(unsafe.Pointer(&mem[0]))%osPage != 0 || uintptr(len(mem))%osPage != 0 {
		return nil, fmt.Errorf("%w: region not in whole system pages", ErrUnsupported)
	}
	fd, _, errno := unix.Syscall(unix.SYS_USERFAULTFD, unix.O_CLOEXEC|unix.O_NONBLOCK|uffdUserModeOnly, 0, 0)
	if errno != 0 {
		return nil, fmt.Errorf("%w: userfaultfd: %w", ErrUnsupported, errno)
	}
	t := &Tracker{uffd: int(fd), start: uintptr(unsafe.Pointer(&mem[0])), size: uintptr(len(mem))}
	api := uffdioAPIArg{api: uffdAPI, features: uffdFeatureWPAsync | uffdFeatureWPUnpop}
	if err := t.ioctl(uffdioAPI, unsafe.Pointer(&api)); err != nil {
		unix.Close(t.uffd)
		return nil, fmt.Errorf("%w: asynchronous write-protection: %w", ErrUnsupported, err)
	}
	reg := uffdioRegisterArg{rng: uffdioRange{uint64(t.start), uint64(t.size)}, mode: uffdRegisterModeWP}
	if err := t.ioctl(uffdioRegister, unsafe.Pointer(&reg)); err != nil {
		unix.Close(t.uffd)
		return nil, fmt.Errorf("%w: register: %w", ErrUnsupported, err)
	}
	wp := uffdioWriteprotectArg{rng: reg.rng, mode: uffdWriteprotectWP}
	if err := t.ioctl(uffdioWriteprotect, unsafe.Pointer(&wp)); err != nil {
		t.Close()
		return nil, fmt.Errorf("%w: write-protect: %w", ErrUnsupported, err)
	}
	pm, err := os.Open("/proc/self/pagemap")
	if err != nil {
		t.Close()
		return nil, fmt.Errorf("%w: %w", ErrUnsupported, err)
	}
	t.pagemap = pm
	t.regions = make([]pageRegion, maxRegionsPerIoctl)
	// Nothing has been written since the protection: a scan that says
	// otherwise means the kernel cannot be trusted here.
	if set, err := t.Written(int(osPage)); err != nil {
		t.Close()
		return nil, err
	} else {
		for i, w := range set {
			if w {
				t.Close()
				return nil, fmt.Errorf("%w: page %d reported written right after protection", ErrUnsupported, i)
			}
		}
	}
	return t, nil
}

func (t *Tracker) ioctl(req uintptr, arg unsafe.Pointer) error {
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(t.uffd), req, uintptr(arg)); errno != 0 {
		return errno
	}
	return nil
}

// Covers says whether mem is still the region tracked.
func (t *Tracker) Covers(mem []byte) bool {
	return len(mem) > 0 && uintptr(unsafe.Pointer(&mem[0])) == t.start && uintptr(len(mem)) == t.size
}

// Written reports, per page of pageSize bytes (a multiple of the system's),
// whether it was written since Track or the last Written, and protects
// those pages again in the same step, so that no write falls between the
// report and the re-arming.
func (t *Tracker) Written(pageSize int) ([]bool, error) {
	if pageSize <= 0 || uintptr(pageSize)%uintptr(os.Getpagesize()) != 0 || t.size%uintptr(pageSize) != 0 {
		return nil, fmt.Errorf("dirty: pages of %d bytes over %d", pageSize, t.size)
	}
	set := make([]bool, t.size/uintptr(pageSize))
	start, end := uint64(t.start), uint64(t.start+t.size)
	for start < end {
		arg := pmScanArg{
			size: pmScanArgSize, flags: pmScanWPMatching | pmScanCheckWPAsync,
			start: start, end: end,
			vec: uint64(uintptr(unsafe.Pointer(&t.regions[0]))), vecLen: uint64(len(t.regions)),
			categoryMask: pageIsWritten, returnMask: pageIsWritten,
		}
		n, _, errno := unix.Syscall(unix.SYS_IOCTL, t.pagemap.Fd(), pagemapScan, uintptr(unsafe.Pointer(&arg)))
		if errno != 0 {
			return nil, fmt.Errorf("dirty: scan: %w", errno)
		}
		for _, r := range t.regions[:n] {
			for p := (r.start - uint64(t.start)) / uint64(pageSize); p*uint64(pageSize)+uint64(t.start) < r.end; p++ {
				set[p] = true
			}
		}
		if arg.walkEnd <= start {
			return nil, fmt.Errorf("dirty: scan made no progress at %#x", start)
		}
		start = arg.walkEnd
	}
	return set, nil
}

// Close stops tracking.
func (t *Tracker) Close() error {
	rng := uffdioRange{uint64(t.start), uint64(t.size)}
	t.ioctl(uffdioUnregister, unsafe.Pointer(&rng))
	if t.pagemap != nil {
		t.pagemap.Close()
	}
	return unix.Close(t.uffd)
}
