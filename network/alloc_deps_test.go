package network

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The allocators (alloc*.go) must be pure: only the standard library, and nothing in it
// that does I/O, reads the clock or draws randomness. net/netip is values only.
func TestAllocatorsImportNoIO(t *testing.T) {
	forbidden := []string{"os", "net", "time", "math/rand", "math/rand/v2", "crypto/rand", "syscall", "unsafe", "io", "io/ioutil", "io/fs", "runtime", "sync", "log", "log/slog", "context"}
	files, err := filepath.Glob("alloc*.go")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		parsed, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for _, imp := range parsed.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			switch top := strings.SplitN(path, "/", 2)[0]; {
			case path == "net/netip":
			case strings.Contains(top, "."):
				t.Errorf("%s imports %s: the allocators may import only the standard library", f, path)
			case slices.Contains(forbidden, path) || strings.HasPrefix(path, "os/") || strings.HasPrefix(path, "net/"):
				t.Errorf("%s imports %s, which gives the allocators I/O, time or randomness", f, path)
			}
		}
	}
	if checked < 4 {
		t.Fatalf("checked %d allocator source files, want at least 4", checked)
	}
}
