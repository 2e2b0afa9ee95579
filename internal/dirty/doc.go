// Package dirty tells which pages of a region of this process's memory
// were written since the last time it was asked, from the kernel (Linux's
// userfaultfd write-protection in asynchronous mode, read and re-armed in
// one step by the PAGEMAP_SCAN ioctl), so that a round of a live migration
// costs what the process wrote, not what it holds. Where the kernel cannot
// say (other systems, older kernels), Track returns ErrUnsupported and the
// caller compares memory instead.
package dirty
