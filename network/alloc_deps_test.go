package network

import (
	"testing"

	"github.com/shoalhq/shoal/internal/testsupport"
)

// The allocators (alloc*.go) must be pure: only the standard library, and nothing in it
// that does I/O, reads the clock or draws randomness. net/netip is values only.
func TestAllocatorsImportNoIO(t *testing.T) {
	testsupport.PureImports{
		Glob:      "alloc*.go",
		Forbidden: []string{"time", "math/rand", "math/rand/v2", "crypto/rand", "syscall", "unsafe", "io", "io/ioutil", "io/fs", "runtime", "sync", "log", "log/slog", "context"},
		MinFiles:  4,
	}.Check(t)
}
