package testsupport

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Authorship of every test commit.
const (
	AuthorName  = "Ada Lovelace"
	AuthorEmail = "ada@example.com"
)

// Repo is a real Git repository on branch main, driven by the git CLI as users drive
// theirs. The machine's and the user's git configuration are shut out, so results do not
// depend on them.
type Repo struct {
	// Dir is the working tree. Without a Bare remote, Shoal follows Dir itself.
	Dir string
	// Bare is the bare repository Commit pushes to (NewRemote), for tests of fetching from
	// a remote; empty for NewRepo.
	Bare string
	// Date, when set, is the author and committer date of every commit (RFC 3339), for
	// tests that want the same commit hashes on every run. Empty: the clock's time, for
	// tests that measure from the commit.
	Date string

	t testing.TB
}

// NewRepo makes an empty repository in t.TempDir().
func NewRepo(t testing.TB) *Repo {
	t.Helper()
	needGit(t)
	r := &Repo{t: t, Dir: t.TempDir()}
	r.Git("init", "--quiet", "--initial-branch=main")
	return r
}

// NewRemote makes an empty bare repository and a working clone of it; Commit pushes.
func NewRemote(t testing.TB) *Repo {
	t.Helper()
	needGit(t)
	dir := t.TempDir()
	r := &Repo{t: t, Dir: filepath.Join(dir, "work"), Bare: filepath.Join(dir, "remote.git")}
	r.run(dir, "init", "--quiet", "--bare", "--initial-branch=main", r.Bare)
	r.run(dir, "clone", "--quiet", r.Bare, r.Dir)
	return r
}

func needGit(t testing.TB) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatalf("this test needs the git CLI to build its repositories (apt-get install git): %v", err)
	}
}

// Commit writes files (slash-separated paths; an empty text deletes the file), commits
// them with msg even when nothing changed, pushes to Bare if there is one, and returns
// the new commit.
func (r *Repo) Commit(msg string, files map[string]string) string {
	r.t.Helper()
	for name, text := range files {
		p := filepath.Join(r.Dir, filepath.FromSlash(name))
		if text == "" {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				r.t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			r.t.Fatal(err)
		}
	}
	r.Git("add", "--all")
	r.Git("commit", "--quiet", "--allow-empty", "-m", msg)
	if r.Bare != "" {
		r.Git("push", "--quiet", "--force", "origin", "HEAD")
	}
	return r.Git("rev-parse", "HEAD")
}

// Git runs git in the working tree and returns its trimmed output; it fails the test
// with git's error output if git fails.
func (r *Repo) Git(args ...string) string {
	r.t.Helper()
	return r.run(r.Dir, args...)
}

func (r *Repo) run(dir string, args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "HOME="+dir,
		"GIT_AUTHOR_NAME="+AuthorName, "GIT_AUTHOR_EMAIL="+AuthorEmail,
		"GIT_COMMITTER_NAME="+AuthorName, "GIT_COMMITTER_EMAIL="+AuthorEmail)
	if r.Date != "" {
		cmd.Env = append(cmd.Env, "GIT_COMMITTER_DATE="+r.Date, "GIT_AUTHOR_DATE="+r.Date)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		r.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}
