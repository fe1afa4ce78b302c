package spec_test

import (
	"flag"
	"fmt"
	"os"
	"path"
	"strings"
	"testing"

	"github.com/shoalhq/shoal/spec"
	"github.com/shoalhq/shoal/spec/kustomize"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files of testdata/corpus from what Load reports")

// corpusSets are the repositories of testdata/corpus, written in the style of real
// applications (the Kubernetes guestbook, Online Boutique, sock-shop, a monitoring
// stack, kubectl's own output, kustomize overlays) and of the mistakes people make.
// ok says whether the set must load without errors.
var corpusSets = []struct {
	dir string
	ok  bool
}{
	{"guestbook", true},
	{"boutique", true},
	{"sockshop", true},
	{"monitoring", true},
	{"kubectl-get", true},
	{"listjson", true},
	{"sidecars", true},
	{"services", true},
	{"volumes", false},
	{"missing-refs", false},
	{"mistakes", false},
	{"typos", false},
	{"yaml11", false},
	{"kustomize", true},
}

// TestCorpus loads every set (rendering kustomizations as the agent does) of testdata/corpus and compares what it loaded and every
// diagnostic with the set's golden file (testdata/corpus/SET.golden). Run
// `go test ./spec -run TestCorpus -update` to rewrite them, and read the diff.
func TestCorpus(t *testing.T) {
	for _, set := range corpusSets {
		t.Run(set.dir, func(t *testing.T) {
			got := corpusReport(t, path.Join("testdata/corpus", set.dir), set.ok)
			golden := path.Join("testdata/corpus", set.dir+".golden")
			if *updateGolden {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("%s differs from what Load reports now; got:\n%s", golden, got)
			}
		})
	}
}

// corpusReport loads dir and renders the objects it loaded, every diagnostic, and
// the grouped form a person reads.
func corpusReport(t *testing.T, dir string, ok bool) string {
	t.Helper()
	set, diags := spec.Load(os.DirFS(dir), spec.LoadOptions{Kustomizer: kustomize.Renderer{}})
	if ok && diags.HasErrors() {
		t.Errorf("%s must load without errors:\n%s", dir, diags.Error())
	}
	if !ok && !diags.HasErrors() {
		t.Errorf("%s must be refused, and loaded", dir)
	}
	var b strings.Builder
	b.WriteString("# objects\n")
	if set != nil {
		for _, o := range set.Objects() {
			k := o.Key()
			fmt.Fprintf(&b, "%s %s/%s (%s:%d)\n", k.Kind, k.Namespace, k.Name, o.Origin().File, o.Origin().Line)
		}
	}
	b.WriteString("# diagnostics (as -o json lists them)\n")
	for _, d := range diags {
		b.WriteString(d.String())
		b.WriteByte('\n')
	}
	b.WriteString("# grouped (as validate and plan print them)\n")
	for _, g := range diags.Grouped() {
		b.WriteString(g.String())
		b.WriteByte('\n')
	}
	return b.String()
}
