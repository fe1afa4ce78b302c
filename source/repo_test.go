package source

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoalhq/shoal/internal/testsupport"
	"github.com/shoalhq/shoal/spec"
)

// fetchAndLoad fetches the followed ref and loads it, failing the test on any error.
func fetchAndLoad(t *testing.T, r *Repo) *spec.Desired {
	t.Helper()
	ctx := context.Background()
	rev, err := r.Fetch(ctx)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	d, diags, err := r.Load(ctx, rev)
	if err != nil {
		t.Fatalf("Load %s: %v\n%v", rev.Commit, err, diags)
	}
	return d
}

// cloneOnce opens a clone of src in state, fetches and loads its head, and closes it, as a
// daemon that ran once and stopped leaves it; it returns the closed Repo for its Dir.
func cloneOnce(t *testing.T, src Source, state string) *Repo {
	t.Helper()
	r, err := Open(context.Background(), src, state)
	if err != nil {
		t.Fatal(err)
	}
	fetchAndLoad(t, r)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	return r
}

func head(t *testing.T, r *Repo) string {
	t.Helper()
	h, err := r.Head(context.Background())
	if err != nil {
		t.Fatalf("Head: %v", err)
	}
	return h
}

func TestRepoFollowsNewCommits(t *testing.T) {
	up := newUpstream(t)
	c1 := up.Commit("first\n\nwith a body", map[string]string{"app.yaml": configMap("app", "v1")})
	r := openRepo(t, Source{URL: up.Bare, Branch: "main"}, t.TempDir())

	if got := head(t, r); got != c1 {
		t.Fatalf("Head = %s, want %s", got, c1)
	}
	d := fetchAndLoad(t, r)
	want := spec.Revision{
		Commit:  c1,
		Author:  testsupport.AuthorName + " <" + testsupport.AuthorEmail + ">",
		Message: "first",
		Time:    time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC),
	}
	if got := d.Revision; got.Commit != want.Commit || got.Author != want.Author ||
		got.Message != want.Message || !got.Time.Equal(want.Time) {
		t.Errorf("Revision = %+v, want %+v", got, want)
	}
	if v := configValue(d, "app"); v != "v1" {
		t.Errorf("app = %q, want v1", v)
	}

	c2 := up.Commit("second", map[string]string{"app.yaml": configMap("app", "v2"), "db.yaml": configMap("db", "x")})
	if got := head(t, r); got != c2 {
		t.Fatalf("Head after push = %s, want %s", got, c2)
	}
	d = fetchAndLoad(t, r)
	if d.Revision.Commit != c2 || configValue(d, "app") != "v2" || configValue(d, "db") != "x" {
		t.Errorf("after push: commit %s app=%q db=%q, want %s v2 x",
			d.Revision.Commit, configValue(d, "app"), configValue(d, "db"), c2)
	}
}

func TestRepoRefs(t *testing.T) {
	up := newUpstream(t)
	c1 := up.Commit("one", map[string]string{"app.yaml": configMap("app", "v1")})
	up.Git("tag", "-a", "-m", "release v1", "v1")
	up.Git("tag", "light")
	up.Git("push", "--quiet", "origin", "v1", "light")
	up.Git("checkout", "--quiet", "-b", "release")
	cRel := up.Commit("release", map[string]string{"app.yaml": configMap("app", "release")})
	up.Git("checkout", "--quiet", "main")
	cMain := up.Commit("two", map[string]string{"app.yaml": configMap("app", "v2")})

	for _, tc := range []struct {
		name       string
		src        Source
		wantCommit string
		wantValue  string
	}{
		{"default branch", Source{}, cMain, "v2"},
		{"branch", Source{Branch: "release"}, cRel, "release"},
		{"annotated tag", Source{Tag: "v1"}, c1, "v1"},
		{"lightweight tag", Source{Tag: "light"}, c1, "v1"},
		{"pinned commit", Source{Commit: c1}, c1, "v1"},
		{"pinned commit on a branch", Source{Branch: "main", Commit: strings.ToUpper(c1)}, c1, "v1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.src.URL = up.Bare
			r := openRepo(t, tc.src, t.TempDir())
			if got := head(t, r); got != tc.wantCommit {
				t.Errorf("Head = %s, want %s", got, tc.wantCommit)
			}
			d := fetchAndLoad(t, r)
			if d.Revision.Commit != tc.wantCommit || configValue(d, "app") != tc.wantValue {
				t.Errorf("loaded %s with app=%q, want %s with %q",
					d.Revision.Commit, configValue(d, "app"), tc.wantCommit, tc.wantValue)
			}
		})
	}
}

func TestRepoFollowsMovedTag(t *testing.T) {
	up := newUpstream(t)
	up.Commit("one", map[string]string{"app.yaml": configMap("app", "v1")})
	up.Git("tag", "-a", "-m", "prod", "prod")
	up.Git("push", "--quiet", "origin", "prod")
	r := openRepo(t, Source{URL: up.Bare, Tag: "prod"}, t.TempDir())
	fetchAndLoad(t, r)

	c2 := up.Commit("two", map[string]string{"app.yaml": configMap("app", "v2")})
	up.Git("tag", "-f", "-a", "-m", "prod again", "prod")
	up.Git("push", "--quiet", "--force", "origin", "prod")
	if got := head(t, r); got != c2 {
		t.Fatalf("Head after moving the tag = %s, want %s", got, c2)
	}
	if d := fetchAndLoad(t, r); d.Revision.Commit != c2 || configValue(d, "app") != "v2" {
		t.Errorf("loaded %s app=%q, want %s v2", d.Revision.Commit, configValue(d, "app"), c2)
	}
}

func TestRepoPinNeedsNoRemoteOnceFetched(t *testing.T) {
	up := newUpstream(t)
	c1 := up.Commit("one", map[string]string{"app.yaml": configMap("app", "v1")})
	up.Commit("two", map[string]string{"app.yaml": configMap("app", "v2")})
	r := openRepo(t, Source{URL: up.Bare, Commit: c1}, t.TempDir())
	fetchAndLoad(t, r)

	if err := os.Rename(up.Bare, up.Bare+".gone"); err != nil {
		t.Fatal(err)
	}
	if got := head(t, r); got != c1 {
		t.Errorf("Head of a pin with the remote gone = %s, want %s", got, c1)
	}
	if d := fetchAndLoad(t, r); d.Revision.Commit != c1 {
		t.Errorf("Fetch of a pin with the remote gone = %s, want %s", d.Revision.Commit, c1)
	}
}

func TestRepoPinNotOnBranch(t *testing.T) {
	up := newUpstream(t)
	up.Commit("one", map[string]string{"app.yaml": configMap("app", "v1")})
	up.Git("checkout", "--quiet", "-b", "side")
	side := up.Commit("side", map[string]string{"app.yaml": configMap("app", "side")})

	r := openRepo(t, Source{URL: up.Bare, Branch: "main", Commit: side}, t.TempDir())
	_, err := r.Fetch(context.Background())
	if !errors.Is(err, ErrCommitNotFound) {
		t.Fatalf("Fetch of a pin that is not on main: %v, want ErrCommitNotFound", err)
	}
}

func TestRepoSubPath(t *testing.T) {
	up := newUpstream(t)
	up.Commit(

		"layout", map[string]string{
			"clusters/prod/app.yaml":     configMap("app", "prod"),
			"clusters/prod/nested/x.yml": configMap("nested", "yes"),
			"clusters/staging/app.yaml":  configMap("app", "staging"),
			"broken.yaml":                brokenManifest,
		})

	r := openRepo(t, Source{URL: up.Bare, Path: "clusters/prod/"}, t.TempDir())
	d := fetchAndLoad(t, r)
	if configValue(d, "app") != "prod" || configValue(d, "nested") != "yes" {
		t.Errorf("app=%q nested=%q, want prod yes", configValue(d, "app"), configValue(d, "nested"))
	}

	missing := openRepo(t, Source{URL: up.Bare, Path: "clusters/dev"}, t.TempDir())
	rev, err := missing.Fetch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := missing.Load(context.Background(), rev); !errors.Is(err, ErrPathNotFound) {
		t.Errorf("Load of a missing path: %v, want ErrPathNotFound", err)
	}
}

func TestRepoRejectsBrokenRevision(t *testing.T) {
	up := newUpstream(t)
	up.Commit("broken", map[string]string{"app.yaml": configMap("app", "v1"), "bad.yaml": brokenManifest})
	r := openRepo(t, Source{URL: up.Bare}, t.TempDir())
	rev, err := r.Fetch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	d, diags, err := r.Load(context.Background(), rev)
	if !errors.Is(err, ErrRevisionRejected) || d != nil {
		t.Fatalf("Load = %v, %v; want nil and ErrRevisionRejected", d, err)
	}
	if !diags.HasErrors() || diags.Errors()[0].File != "bad.yaml" {
		t.Errorf("diagnostics %v: want an error in bad.yaml", diags)
	}
}

func TestRepoFollowsForcePush(t *testing.T) {
	up := newUpstream(t)
	c1 := up.Commit("one", map[string]string{"app.yaml": configMap("app", "v1")})
	up.Commit("two", map[string]string{"app.yaml": configMap("app", "v2")})
	r := openRepo(t, Source{URL: up.Bare, Branch: "main"}, t.TempDir())
	fetchAndLoad(t, r)

	// Rewrite history: drop "two", commit something else on top of "one".
	up.Git("reset", "--quiet", "--hard", c1)
	c3 := up.Commit("three, rewritten", map[string]string{"app.yaml": configMap("app", "v3")})
	if d := fetchAndLoad(t, r); d.Revision.Commit != c3 || configValue(d, "app") != "v3" {
		t.Fatalf("after force-push loaded %s app=%q, want %s v3", d.Revision.Commit, configValue(d, "app"), c3)
	}

	// And back to an older commit, as a rollback by reset would.
	up.Git("reset", "--quiet", "--hard", c1)
	up.Git("push", "--quiet", "--force", "origin", "HEAD")
	if d := fetchAndLoad(t, r); d.Revision.Commit != c1 || configValue(d, "app") != "v1" {
		t.Errorf("after reset to %s loaded %s app=%q", c1, d.Revision.Commit, configValue(d, "app"))
	}
}

func TestRepoFollowsRevert(t *testing.T) {
	up := newUpstream(t)
	up.Commit("one", map[string]string{"app.yaml": configMap("app", "v1")})
	c2 := up.Commit("two", map[string]string{"app.yaml": configMap("app", "v2")})
	r := openRepo(t, Source{URL: up.Bare}, t.TempDir())
	if d := fetchAndLoad(t, r); configValue(d, "app") != "v2" {
		t.Fatalf("app = %q, want v2", configValue(d, "app"))
	}
	up.Git("revert", "--no-edit", c2)
	up.Git("push", "--quiet", "origin", "HEAD")
	reverted := up.Git("rev-parse", "HEAD")
	if d := fetchAndLoad(t, r); d.Revision.Commit != reverted || configValue(d, "app") != "v1" {
		t.Errorf("after revert loaded %s app=%q, want %s v1", d.Revision.Commit, configValue(d, "app"), reverted)
	}
}

func TestRepoMissingBranch(t *testing.T) {
	up := newUpstream(t)
	up.Commit("one", map[string]string{"app.yaml": configMap("app", "v1")})
	r := openRepo(t, Source{URL: up.Bare, Branch: "nope"}, t.TempDir())
	if _, err := r.Head(context.Background()); !errors.Is(err, ErrRefNotFound) || !strings.Contains(err.Error(), "refs/heads/nope") {
		t.Errorf("Head: %v, want ErrRefNotFound naming refs/heads/nope", err)
	}
	if _, err := r.Fetch(context.Background()); !errors.Is(err, ErrRefNotFound) {
		t.Errorf("Fetch: %v, want ErrRefNotFound", err)
	}
}

func TestRepoUnreachableRemote(t *testing.T) {
	for _, tc := range []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"missing path", func(t *testing.T) string { return filepath.Join(t.TempDir(), "nothing-here.git") }},
		{"closed port", func(t *testing.T) string { return "https://" + testsupport.FreeAddr(t) + "/repo.git" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := openRepo(t, Source{URL: tc.url(t)}, t.TempDir())
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if _, err := r.Head(ctx); err == nil {
				t.Error("Head of an unreachable remote succeeded")
			}
			if _, err := r.Fetch(ctx); err == nil {
				t.Error("Fetch of an unreachable remote succeeded")
			}
			if _, err := r.Fetched(); !errors.Is(err, ErrNotFetched) {
				t.Errorf("Fetched: %v, want ErrNotFetched", err)
			}
		})
	}
}

// A restarted daemon reopens its clone rather than cloning again: with the remote gone,
// the commit it fetched before the restart still loads.
func TestRepoReopensCloneAfterRestart(t *testing.T) {
	up := newUpstream(t)
	c1 := up.Commit("one", map[string]string{"app.yaml": configMap("app", "v1")})
	state := t.TempDir()
	src := Source{URL: up.Bare}
	first := cloneOnce(t, src, state)

	if err := os.Rename(up.Bare, up.Bare+".gone"); err != nil {
		t.Fatal(err)
	}
	logger, logs := logBuffer()
	again := openRepo(t, src, state, WithLogger(logger))
	if again.Dir() != first.Dir() {
		t.Fatalf("reopened at %s, first at %s", again.Dir(), first.Dir())
	}
	rev, err := again.Fetched()
	if err != nil || rev.Commit != c1 {
		t.Fatalf("Fetched after restart = %s, %v; want %s", rev.Commit, err, c1)
	}
	d, _, err := again.Load(context.Background(), rev)
	if err != nil || configValue(d, "app") != "v1" {
		t.Fatalf("Load after restart without remote: %v", err)
	}
	if _, err := again.Head(context.Background()); err == nil {
		t.Error("Head succeeded with the remote gone: the test does not test what it says")
	}
	if strings.Contains(logs.String(), "damaged") {
		t.Errorf("a healthy clone was treated as damaged:\n%s", logs)
	}
}

func TestRepoLocksClone(t *testing.T) {
	up := newUpstream(t)
	state := t.TempDir()
	r := openRepo(t, Source{URL: up.Bare}, state)
	if _, err := Open(context.Background(), Source{URL: up.Bare}, state); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	r.Close()
	openRepo(t, Source{URL: up.Bare}, state) // released by Close
}

func TestRepoRecoversDamagedClone(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir string)
	}{
		{"garbage config", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, "config"), "[core\x00garbage")
		}},
		{"packs deleted", func(t *testing.T, dir string) {
			for _, p := range globPacks(t, dir) {
				if err := os.Remove(p); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{"packs overwritten", func(t *testing.T, dir string) {
			for _, p := range globPacks(t, dir) {
				if strings.HasSuffix(p, ".pack") {
					scribble(t, p)
				}
			}
		}},
		{"emptied", func(t *testing.T, dir string) {
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := newUpstream(t)
			c1 := up.Commit("one", map[string]string{"app.yaml": configMap("app", "v1")})
			state := t.TempDir()
			src := Source{URL: up.Bare}
			first := cloneOnce(t, src, state)
			tc.damage(t, first.Dir())

			logger, logs := logBuffer()
			r := openRepo(t, src, state, WithLogger(logger))
			if d := fetchAndLoad(t, r); d.Revision.Commit != c1 || configValue(d, "app") != "v1" {
				t.Fatalf("after recovery loaded %s app=%q", d.Revision.Commit, configValue(d, "app"))
			}
			if !strings.Contains(logs.String(), "damaged") || !strings.Contains(logs.String(), r.Dir()+".corrupt") {
				t.Errorf("recovery was not logged with where the clone went:\n%s", logs)
			}
			if _, err := os.Stat(r.Dir() + ".corrupt"); err != nil {
				t.Errorf("damaged clone not kept aside: %v", err)
			}
		})
	}
}

// A clone damaged while open is noticed by Load and repaired by the next Fetch.
func TestRepoRepairsCloneDamagedWhileOpen(t *testing.T) {
	up := newUpstream(t)
	up.Commit("one", map[string]string{"app.yaml": configMap("app", strings.Repeat("v1", 2000))})
	logger, logs := logBuffer()
	r := openRepo(t, Source{URL: up.Bare}, t.TempDir(), WithLogger(logger))
	rev, err := r.Fetch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range globPacks(t, r.Dir()) {
		if strings.HasSuffix(p, ".pack") {
			scribble(t, p)
		}
	}
	if _, _, err := r.Load(context.Background(), rev); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Load from a damaged pack: %v, want ErrCorrupt", err)
	}
	if d := fetchAndLoad(t, r); d.Revision.Commit != rev.Commit {
		t.Fatalf("after repair loaded %s, want %s", d.Revision.Commit, rev.Commit)
	}
	if !strings.Contains(logs.String(), "damaged") {
		t.Errorf("repair was not logged:\n%s", logs)
	}
}

func globPacks(t *testing.T, dir string) []string {
	t.Helper()
	packs, err := filepath.Glob(filepath.Join(dir, "objects", "pack", "pack-*"))
	if err != nil || len(packs) == 0 {
		t.Fatalf("no packs in %s (%v): the damage would test nothing", dir, err)
	}
	return packs
}

// scribble overwrites everything after a pack's 12-byte header with garbage.
func scribble(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := 12; i < len(b)-20; i++ {
		b[i] ^= 0x5a
	}
	// Git writes objects read-only; only root may write them without making them writable.
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
