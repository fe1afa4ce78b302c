package source

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/shoalhq/shoal/internal/testsupport"
)

// historyRepo is a real repository with a history to name revisions in: c1 (annotated
// tag v1) ← c2 (lightweight tag light) ← c3 on main, a branch feature off c2, their
// merge as HEAD, and a remote-tracking origin/main at c1.
func historyRepo(t *testing.T) *testsupport.Repo {
	t.Helper()
	repo := testsupport.NewRepo(t)
	repo.Date = "2024-05-01T12:00:00Z"
	repo.Commit("c1", map[string]string{"apps/app.yaml": configMap("app", "v1")})
	repo.Git("tag", "-a", "v1", "-m", "release 1")
	c2 := repo.Commit("c2", map[string]string{"apps/app.yaml": configMap("app", "v2")})
	repo.Git("tag", "light")
	repo.Git("checkout", "--quiet", "-b", "feature")
	repo.Commit("f1", map[string]string{"apps/feature.yaml": configMap("feature", "on")})
	repo.Git("checkout", "--quiet", "main")
	repo.Commit("c3", map[string]string{"apps/app.yaml": configMap("app", "v3")})
	repo.Git("merge", "--quiet", "--no-ff", "-m", "merge feature", "feature")
	repo.Git("update-ref", "refs/remotes/origin/main", repo.Git("rev-parse", "v1^{commit}"))
	_ = c2
	return repo
}

func openLocal(t *testing.T, dir string) *Local {
	t.Helper()
	l, err := OpenLocal(dir, "")
	if err != nil {
		t.Fatalf("OpenLocal(%s): %v", dir, err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// TestResolveReadsWhatGitRevParseReads checks each revision against git rev-parse itself.
func TestResolveReadsWhatGitRevParseReads(t *testing.T) {
	repo := historyRepo(t)
	l := openLocal(t, repo.Dir)
	c2 := repo.Git("rev-parse", "light")
	c1 := repo.Git("rev-parse", "v1^{commit}")
	for _, rev := range []string{
		"HEAD", "@", "HEAD~1", "HEAD^", "HEAD^1", "HEAD^2", "HEAD^^", "@~2", "HEAD~1^", "HEAD^0", "HEAD~0",
		"main", "refs/heads/main", "heads/main", "feature", "feature~1", "origin/main",
		"v1", "refs/tags/v1", "v1^{}", "v1^{commit}", "v1~0", "light", "light~1",
		c2[:7], c2[:4] + "^0", c1, strings.ToUpper(c1),
	} {
		want := repo.Git("rev-parse", "--verify", rev+"^{commit}")
		got, err := l.Resolve(rev)
		if err != nil || got.Commit != want {
			t.Errorf("Resolve(%q) = %q, %v; git rev-parse says %s", rev, got.Commit, err, want)
		}
	}
	if got, err := l.Resolve(""); err != nil || got.Commit != repo.Git("rev-parse", "HEAD") {
		t.Errorf(`Resolve("") = %q, %v; want HEAD`, got.Commit, err)
	}
	if got, _ := l.Resolve("light"); got.Message != "c2" || got.Author != testsupport.AuthorName+" <"+testsupport.AuthorEmail+">" {
		t.Errorf("revision of light: %+v", got)
	}
}

func TestResolveRefusesWhatItCannotRead(t *testing.T) {
	repo := historyRepo(t)
	l := openLocal(t, repo.Dir)
	c1 := repo.Git("rev-parse", "v1^{commit}")
	for _, tc := range []struct {
		rev  string
		want error
		msg  string
	}{
		{"nope", ErrRevisionNotFound, `revision "nope" not found in ` + repo.Dir + `: give a branch, tag, or commit (as git rev-parse accepts)`},
		{"nope~1", ErrRevisionNotFound, `revision "nope~1" not found in`},
		{"HEAD^3", ErrRevisionNotFound, "has 2 parent(s), so ^3 goes beyond the history"},
		{c1 + "~1", ErrRevisionNotFound, "has 0 parent(s)"},
		{"0000000000000000000000000000000000000000", ErrRevisionNotFound, "not found in"},
		{"abc", ErrRevisionNotFound, "not found in"}, // under 4 digits is no short SHA
		{"HEAD@{1}", ErrUnsupportedRevision, `"@{" is git rev-parse syntax Shoal does not read`},
		{"@{upstream}", ErrUnsupportedRevision, `"@{"`},
		{"main..feature", ErrUnsupportedRevision, `".."`},
		{"HEAD:apps/app.yaml", ErrUnsupportedRevision, `":"`},
		{"HEAD^{tree}", ErrUnsupportedRevision, "only ^{} and ^{commit}"},
		{"HEAD^{/c2}", ErrUnsupportedRevision, `"^{/"`},
	} {
		_, err := l.Resolve(tc.rev)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("Resolve(%q) = %v; want %v saying %q", tc.rev, err, tc.want, tc.msg)
		}
	}
}

// TestResolveRefusesAmbiguousShortSHA writes commits (with go-git, in-process) until two
// share their first four hex digits, as git refuses to pick one of them.
func TestResolveRefusesAmbiguousShortSHA(t *testing.T) {
	repo := historyRepo(t)
	g, err := git.PlainOpen(repo.Dir)
	if err != nil {
		t.Fatal(err)
	}
	head, err := g.CommitObject(plumbing.NewHash(repo.Git("rev-parse", "HEAD")))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]plumbing.Hash{}
	var a, b plumbing.Hash
	for i := 0; a.IsZero(); i++ {
		sig := object.Signature{Name: "t", Email: "t@example.com", When: time.Date(2024, 5, 1, 12, 0, i, 0, time.UTC)}
		c := &object.Commit{Author: sig, Committer: sig, Message: "dangling", TreeHash: head.TreeHash, ParentHashes: []plumbing.Hash{head.Hash}}
		obj := g.Storer.NewEncodedObject()
		if err := c.Encode(obj); err != nil {
			t.Fatal(err)
		}
		if _, err := g.Storer.SetEncodedObject(obj); err != nil {
			t.Fatal(err)
		}
		p := obj.Hash().String()[:minShortSHA]
		if other, ok := seen[p]; ok {
			a, b = other, obj.Hash()
		}
		seen[p] = obj.Hash()
	}
	shared := 0
	for shared < 40 && a.String()[shared] == b.String()[shared] {
		shared++
	}
	l := openLocal(t, repo.Dir)
	_, err = l.Resolve(a.String()[:shared])
	if !errors.Is(err, ErrAmbiguousRevision) || !strings.Contains(err.Error(), a.String()[:12]) || !strings.Contains(err.Error(), "give more digits") {
		t.Errorf("Resolve(%s), the prefix of %s and %s: %v; want ErrAmbiguousRevision naming both", a.String()[:shared], a, b, err)
	}
	// git agrees that it is ambiguous...
	cmd := exec.Command("git", "rev-parse", "--verify", "--quiet", a.String()[:shared]+"^{commit}")
	cmd.Dir = repo.Dir
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Errorf("git rev-parse resolved the ambiguous %s: %s", a.String()[:shared], out)
	}
	// ...and one more digit tells them apart.
	if got, err := l.Resolve(b.String()[:shared+1]); err != nil || got.Commit != b.String() {
		t.Errorf("Resolve(%s) = %q, %v; want %s", b.String()[:shared+1], got.Commit, err, b)
	}
}

func TestOpenLocalFindsTheRepositoryAsGitDoes(t *testing.T) {
	repo := historyRepo(t)
	ctx := context.Background()

	// A directory inside the work tree: the repository is the enclosing one, and the
	// manifests are read from that directory of each revision.
	l := openLocal(t, filepath.Join(repo.Dir, "apps"))
	if l.Dir != repo.Dir || l.Path() != "apps" {
		t.Errorf("OpenLocal(apps): Dir %q, Path %q; want %q, apps", l.Dir, l.Path(), repo.Dir)
	}
	rev, err := l.Resolve("HEAD~1")
	if err != nil {
		t.Fatal(err)
	}
	d, _, err := l.Load(ctx, rev)
	if err != nil || d.Objects.ConfigMap("default", "app") == nil || d.Objects.ConfigMap("default", "app").Data["value"] != "v3" {
		t.Fatalf("Load(HEAD~1) of apps: %v, %+v", err, d)
	}

	// A linked work tree sees its own HEAD and the main repository's refs.
	linked := filepath.Join(t.TempDir(), "linked")
	repo.Git("worktree", "add", "--quiet", linked, "feature")
	wt := openLocal(t, linked)
	head, err := wt.Resolve("HEAD")
	if err != nil || head.Commit != repo.Git("rev-parse", "feature") {
		t.Errorf("linked work tree HEAD = %q, %v; want feature", head.Commit, err)
	}
	if main, err := wt.Resolve("main"); err != nil || main.Commit != repo.Git("rev-parse", "main") {
		t.Errorf("main from the linked work tree = %q, %v", main.Commit, err)
	}

	// A bare repository is itself, even inside a work tree (go-git's DetectDotGit would
	// climb past it into the enclosing repository).
	bare := filepath.Join(repo.Dir, "apps", "mirror.git")
	repo.Git("clone", "--quiet", "--bare", repo.Dir, bare)
	for _, dir := range []string{bare, filepath.Join(bare, "refs", "heads")} {
		b := openLocal(t, dir)
		if head, err := b.Resolve("feature"); b.Dir != bare || b.Path() != "." || err != nil || head.Commit != repo.Git("rev-parse", "feature") {
			t.Errorf("OpenLocal(%s): Dir %q, Path %q, feature %q, %v; want the bare repository", dir, b.Dir, b.Path(), head.Commit, err)
		}
	}

	if _, err := OpenLocal(t.TempDir(), ""); !errors.Is(err, ErrNotARepository) {
		t.Errorf("OpenLocal of a plain directory: %v, want ErrNotARepository", err)
	}
	if _, err := OpenLocal(repo.Dir, "../outside"); !errors.Is(err, ErrInvalidSource) {
		t.Errorf("a path out of the repository: %v, want ErrInvalidSource", err)
	}
}

func TestLocalPath(t *testing.T) {
	for _, tc := range []struct {
		url, dir string
		local    bool
	}{
		{".", ".", true},
		{"../deploy", "../deploy", true},
		{"/srv/git/app", "/srv/git/app", true},
		{"file:///srv/git/app", "/srv/git/app", true},
		{"./odd:name", "./odd:name", true},
		{"https://example.com/app.git", "", false},
		{"ssh://git@example.com/app.git", "", false},
		{"git@example.com:team/app.git", "", false},
		{"example.com:app.git", "", false},
		{"", "", false},
	} {
		if dir, local := LocalPath(tc.url); dir != tc.dir || local != tc.local {
			t.Errorf("LocalPath(%q) = %q, %v; want %q, %v", tc.url, dir, local, tc.dir, tc.local)
		}
	}
}
