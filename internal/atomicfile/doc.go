// Package atomicfile writes files so that a crash or a concurrent reader
// sees either the old contents or the new, never a truncated file: the
// bytes go to a temporary file in the same directory, which is renamed
// over the target.
package atomicfile
