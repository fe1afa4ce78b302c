package planner

import (
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/shoalhq/shoal/internal/testsupport"
)

// The planner's own imports (not its tests') must give it no way to do I/O, read the clock
// or draw process randomness: rule 1 of docs/design.md.
func TestPlannerImportsNoIO(t *testing.T) {
	testsupport.PureImports{
		Glob:      "*.go",
		Allowed:   []string{"github.com/shoalhq/shoal/spec"},
		Forbidden: []string{"time", "math/rand", "math/rand/v2", "crypto/rand", "syscall", "unsafe", "io/ioutil", "io/fs", "runtime", "sync"},
		MinFiles:  1,
	}.Check(t)
}

// Nothing the planner depends on, however indirectly, may reach containerd, gossip, Git or
// the network (net/netip is only address values). (os itself cannot be kept out: fmt, and
// so spec, import it.)
func TestPlannerDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps failed (the go tool must be on PATH for this test): %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if !slices.Contains(deps, "github.com/shoalhq/shoal/spec") {
		t.Fatalf("go list -deps printed no spec dependency; output:\n%s", out)
	}
	forbidden := func(d string) bool {
		for _, prefix := range []string{"github.com/containerd/", "github.com/hashicorp/memberlist", "github.com/go-git/", "github.com/miekg/dns", "net/"} {
			if strings.HasPrefix(d, prefix) {
				return true
			}
		}
		return d == "net"
	}
	allowed := func(d string) bool { return d == "net/netip" } // address values: no I/O
	for _, d := range deps {
		if forbidden(d) && !allowed(d) {
			t.Errorf("the planner depends on %s", d)
		}
	}
}
