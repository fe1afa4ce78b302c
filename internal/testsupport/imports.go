package testsupport

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// PureImports are the rules of a package part that must be pure: what its non-test files
// matching Glob may import.
type PureImports struct {
	// Glob picks the files, in the test's directory ("*.go", "alloc*.go").
	Glob string
	// Allowed are the packages outside the standard library it may import.
	Allowed []string
	// Forbidden are standard packages that give I/O, the clock or randomness; every os/…
	// and net/… package is forbidden too, but net/netip (address values).
	Forbidden []string
	// MinFiles is how many files must have been checked, so that a wrong glob fails.
	MinFiles int
}

// Check fails t for every import the files break the rules with.
func (r PureImports) Check(t testing.TB) {
	t.Helper()
	files, err := filepath.Glob(r.Glob)
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
			case path == "net/netip" || slices.Contains(r.Allowed, path):
			case strings.Contains(top, "."):
				t.Errorf("%s imports %s: only the standard library and %v may be", f, path, r.Allowed)
			case slices.Contains(r.Forbidden, path) || top == "os" || top == "net":
				t.Errorf("%s imports %s, which gives I/O, time or randomness", f, path)
			}
		}
	}
	if checked < r.MinFiles {
		t.Fatalf("checked %d source files matching %s, want at least %d", checked, r.Glob, r.MinFiles)
	}
}
