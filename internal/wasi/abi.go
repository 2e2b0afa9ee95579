package wasi

// Errno is a WASI preview1 error number.
type Errno uint16

// The WASI preview1 errno values tern returns.
const (
	ErrnoSuccess     Errno = 0
	Errno2big        Errno = 1
	ErrnoAcces       Errno = 2
	ErrnoAgain       Errno = 6
	ErrnoBadf        Errno = 8
	ErrnoBusy        Errno = 10
	ErrnoExist       Errno = 20
	ErrnoFault       Errno = 21
	ErrnoFbig        Errno = 22
	ErrnoIlseq       Errno = 25
	ErrnoIntr        Errno = 27
	ErrnoInval       Errno = 28
	ErrnoIO          Errno = 29
	ErrnoIsdir       Errno = 31
	ErrnoLoop        Errno = 32
	ErrnoMfile       Errno = 33
	ErrnoMlink       Errno = 34
	ErrnoNametoolong Errno = 37
	ErrnoNfile       Errno = 41
	ErrnoNodev       Errno = 43
	ErrnoNoent       Errno = 44
	ErrnoNomem       Errno = 48
	ErrnoNospc       Errno = 51
	ErrnoNosys       Errno = 52
	ErrnoNotdir      Errno = 54
	ErrnoNotempty    Errno = 55
	ErrnoNotsock     Errno = 57
	ErrnoNotsup      Errno = 58
	ErrnoNotty       Errno = 59
	ErrnoNxio        Errno = 60
	ErrnoOverflow    Errno = 61
	ErrnoPerm        Errno = 63
	ErrnoPipe        Errno = 64
	ErrnoRange       Errno = 68
	ErrnoRofs        Errno = 69
	ErrnoSpipe       Errno = 70
	ErrnoTimedout    Errno = 73
	ErrnoTxtbsy      Errno = 74
	ErrnoXdev        Errno = 75
	ErrnoNotcapable  Errno = 76
)

// File types.
const (
	filetypeUnknown         = 0
	filetypeBlockDevice     = 1
	filetypeCharacterDevice = 2
	filetypeDirectory       = 3
	filetypeRegularFile     = 4
	filetypeSocketDgram     = 5
	filetypeSocketStream    = 6
	filetypeSymbolicLink    = 7
)

// fdflags.
const (
	fdflagAppend   = 1 << 0
	fdflagDsync    = 1 << 1
	fdflagNonblock = 1 << 2
	fdflagRsync    = 1 << 3
	fdflagSync     = 1 << 4
	fdflagsAll     = fdflagAppend | fdflagDsync | fdflagNonblock | fdflagRsync | fdflagSync
)

// oflags.
const (
	oflagCreat     = 1 << 0
	oflagDirectory = 1 << 1
	oflagExcl      = 1 << 2
	oflagTrunc     = 1 << 3
)

const lookupSymlinkFollow = 1 << 0

// whence.
const (
	whenceSet = 0
	whenceCur = 1
	whenceEnd = 2
)

// fstflags.
const (
	fstflagAtim    = 1 << 0
	fstflagAtimNow = 1 << 1
	fstflagMtim    = 1 << 2
	fstflagMtimNow = 1 << 3
)

// Clock ids.
const (
	clockRealtime  = 0
	clockMonotonic = 1
)

// Rights.
const (
	rightFdDatasync           = 1 << 0
	rightFdRead               = 1 << 1
	rightFdSeek               = 1 << 2
	rightFdFdstatSetFlags     = 1 << 3
	rightFdSync               = 1 << 4
	rightFdTell               = 1 << 5
	rightFdWrite              = 1 << 6
	rightFdAdvise             = 1 << 7
	rightFdAllocate           = 1 << 8
	rightPathCreateDirectory  = 1 << 9
	rightPathCreateFile       = 1 << 10
	rightPathLinkSource       = 1 << 11
	rightPathLinkTarget       = 1 << 12
	rightPathOpen             = 1 << 13
	rightFdReaddir            = 1 << 14
	rightPathReadlink         = 1 << 15
	rightPathRenameSource     = 1 << 16
	rightPathRenameTarget     = 1 << 17
	rightPathFilestatGet      = 1 << 18
	rightPathFilestatSetSize  = 1 << 19
	rightPathFilestatSetTimes = 1 << 20
	rightFdFilestatGet        = 1 << 21
	rightFdFilestatSetSize    = 1 << 22
	rightFdFilestatSetTimes   = 1 << 23
	rightPathSymlink          = 1 << 24
	rightPathRemoveDirectory  = 1 << 25
	rightPathUnlinkFile       = 1 << 26
	rightPollFdReadwrite      = 1 << 27
	rightSockShutdown         = 1 << 28
	rightSockAccept           = 1 << 29

	rightsAll = 1<<30 - 1

	// Rights that make sense on a regular file.
	rightsFile = rightFdDatasync | rightFdRead | rightFdSeek | rightFdFdstatSetFlags |
		rightFdSync | rightFdTell | rightFdWrite | rightFdAdvise | rightFdAllocate |
		rightFdFilestatGet | rightFdFilestatSetSize | rightFdFilestatSetTimes | rightPollFdReadwrite

	// Rights that make sense on a directory.
	rightsDir = rightFdFdstatSetFlags | rightFdSync | rightFdAdvise | rightPathCreateDirectory |
		rightPathCreateFile | rightPathLinkSource | rightPathLinkTarget | rightPathOpen |
		rightFdReaddir | rightPathReadlink | rightPathRenameSource | rightPathRenameTarget |
		rightPathFilestatGet | rightPathFilestatSetSize | rightPathFilestatSetTimes |
		rightFdFilestatGet | rightFdFilestatSetTimes | rightPathSymlink |
		rightPathRemoveDirectory | rightPathUnlinkFile

	// Rights of the standard streams.
	rightsStdio = rightFdRead | rightFdWrite | rightFdFdstatSetFlags | rightFdFilestatGet | rightPollFdReadwrite
)

// Event and subscription types of poll_oneoff.
const (
	eventtypeClock   = 0
	eventtypeFdRead  = 1
	eventtypeFdWrite = 2

	subclockAbstime = 1 << 0
)
