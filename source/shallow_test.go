package source

import (
	"context"
	"crypto/rand"
	"errors"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/shoalhq/shoal/spec"
)

// assertNotFetched fails when the clone holds commit: a depth-1 fetch brings the head only.
func assertNotFetched(t *testing.T, r *Repo, commit string) {
	t.Helper()
	if _, err := r.git.CommitObject(plumbing.NewHash(commit)); !errors.Is(err, plumbing.ErrObjectNotFound) {
		t.Errorf("the clone holds %s, an ancestor of the head (err %v): want only the head fetched", commit, err)
	}
}

// TestRepoFetchesOnlyTheHead: the agent needs one tree, so it fetches at depth 1, as Flux
// clones; then new commits, a force-push and a reopened clone still work.
func TestRepoFetchesOnlyTheHead(t *testing.T) {
	up := newUpstream(t)
	srv := newHTTPSRemote(t, filepath.Dir(up.Bare), "deploy", "s3cret")
	sources := map[string]Source{
		"file":  {URL: up.Bare},
		"https": {URL: srv.URL + "/" + filepath.Base(up.Bare), Auth: Auth{Username: "deploy", Password: "s3cret", InsecureSkipTLS: true}},
	}
	old := up.Commit("old", map[string]string{"big.yaml": configMap("big", strings.Repeat("x", 1<<20))})
	c1 := up.Commit("one", map[string]string{"big.yaml": "", "app.yaml": configMap("app", "v1")})
	for name, src := range sources {
		t.Run(name, func(t *testing.T) {
			state := t.TempDir()
			r := openRepo(t, src, state)
			if d := fetchAndLoad(t, r); d.Revision.Commit != c1 {
				t.Fatalf("loaded %s, want %s", d.Revision.Commit, c1)
			}
			assertNotFetched(t, r, old)
			if err := r.verify(context.Background()); err != nil {
				t.Fatalf("verify of a shallow clone: %v", err)
			}
		})
	}
	t.Run("incremental fetch and force-push", func(t *testing.T) {
		state, src := t.TempDir(), sources["file"]
		r := openRepo(t, src, state)
		fetchAndLoad(t, r)
		c2 := up.Commit("two", map[string]string{"app.yaml": configMap("app", "v2")})
		if d := fetchAndLoad(t, r); d.Revision.Commit != c2 || configValue(d, "app") != "v2" {
			t.Fatalf("after a new commit: %s app=%q, want %s v2", d.Revision.Commit, configValue(d, "app"), c2)
		}
		up.Git("reset", "--quiet", "--hard", c1)
		c3 := up.Commit("rewritten", map[string]string{"app.yaml": configMap("app", "v3")})
		if d := fetchAndLoad(t, r); d.Revision.Commit != c3 || configValue(d, "app") != "v3" {
			t.Fatalf("after a force-push: %s app=%q, want %s v3", d.Revision.Commit, configValue(d, "app"), c3)
		}
		r.Close()
		reopened := openRepo(t, src, state) // Open verifies the shallow clone
		if d := fetchAndLoad(t, reopened); d.Revision.Commit != c3 {
			t.Fatalf("reopened clone loaded %s, want %s", d.Revision.Commit, c3)
		}
		assertNotFetched(t, reopened, old)
	})
}

// TestRepoRefusesLargeBlobWithoutReadingIt: a revision with a file over the limit is
// rejected with the limit named, and its size comes from the object's header: loading the
// revision does not read the 32 MiB.
func TestRepoRefusesLargeBlobWithoutReadingIt(t *testing.T) {
	up := newUpstream(t)
	big := make([]byte, 32<<20)
	rand.Read(big) // incompressible, so that the pack holds it whole
	c := up.Commit("big", map[string]string{"app.yaml": configMap("app", "v1"), "big.yaml": string(big), "assets/logo.bin": string(big[:2<<20])})
	r := openRepo(t, Source{URL: up.Bare}, t.TempDir(), WithMaxBlobBytes(1<<20))
	rev, err := r.Fetch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, diags, err := r.Load(context.Background(), rev)
	runtime.ReadMemStats(&after)
	want := []string{
		"assets/logo.bin: file is 2097152 bytes, more than the limit of 1048576 for any file of the revision (max-blob-bytes)",
		"big.yaml: file is 33554432 bytes, more than the limit of 1048576 for any file of the revision (max-blob-bytes)",
	}
	if got := diagStrings(diags); !errors.Is(err, ErrRevisionRejected) || !slices.Equal(got, want) {
		t.Fatalf("Load %s: %v, diagnostics %q; want rejected with %q", c, err, got, want)
	}
	if read := after.TotalAlloc - before.TotalAlloc; read > 4<<20 {
		t.Errorf("Load allocated %d bytes: the large files were read", read)
	}
}

func diagStrings(ds spec.Diagnostics) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.String()
	}
	return out
}
