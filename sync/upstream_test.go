package sync

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoalhq/shoal/spec"
)

// upstream is a real remote for tests: a bare repository and a working clone of it that
// commits and pushes with the git CLI.
type upstream struct {
	t    testing.TB
	bare string
	work string
}

// Commit authorship of every test commit; the committer date is set per commit.
const (
	testAuthorName  = "Ada Lovelace"
	testAuthorEmail = "ada@example.com"
)

func newUpstream(t testing.TB) *upstream {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatalf("the sync tests need the git CLI to build their repositories (apt-get install git): %v", err)
	}
	dir := t.TempDir()
	u := &upstream{t: t, bare: filepath.Join(dir, "remote.git"), work: filepath.Join(dir, "work")}
	runGit(t, dir, "init", "--quiet", "--bare", "--initial-branch=main", u.bare)
	runGit(t, dir, "clone", "--quiet", u.bare, u.work)
	return u
}

// commit writes files (an empty content deletes the file), commits them with msg and
// pushes the current branch; it returns the new commit.
func (u *upstream) commit(files map[string]string, msg string) string {
	u.t.Helper()
	for name, content := range files {
		p := filepath.Join(u.work, filepath.FromSlash(name))
		if content == "" {
			if err := os.Remove(p); err != nil {
				u.t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			u.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			u.t.Fatal(err)
		}
	}
	u.git("add", "--all")
	u.git("commit", "--quiet", "--allow-empty", "-m", msg)
	u.git("push", "--quiet", "--force", "origin", "HEAD")
	return u.git("rev-parse", "HEAD")
}

// git runs git in the working clone and returns its trimmed output.
func (u *upstream) git(args ...string) string {
	u.t.Helper()
	return runGit(u.t, u.work, args...)
}

func runGit(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	// Isolate from the machine's git configuration so that results do not depend on it.
	cmd.Env = append(os.Environ(),
		"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "HOME="+dir,
		"GIT_AUTHOR_NAME="+testAuthorName, "GIT_AUTHOR_EMAIL="+testAuthorEmail,
		"GIT_COMMITTER_NAME="+testAuthorName, "GIT_COMMITTER_EMAIL="+testAuthorEmail,
		"GIT_COMMITTER_DATE=2024-05-01T12:00:00Z", "GIT_AUTHOR_DATE=2024-05-01T12:00:00Z")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// configMap is a one-key ConfigMap manifest: the smallest valid object.
func configMap(name, value string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\ndata:\n  value: %q\n", name, value)
}

// brokenManifest fails to decode.
const brokenManifest = "apiVersion: v1\nkind: ConfigMap\nmetadata: [unclosed\n"

// openRepo opens src under stateDir and closes it when the test ends.
func openRepo(t testing.TB, src Source, stateDir string, opts ...Option) *Repo {
	t.Helper()
	r, err := Open(context.Background(), src, stateDir, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// configValue returns data.value of the named ConfigMap in the default namespace, or
// "<missing>".
func configValue(d *spec.Desired, name string) string {
	cm := d.Objects.ConfigMap(spec.DefaultNamespace, name)
	if cm == nil {
		return "<missing>"
	}
	return cm.Data["value"]
}

// logBuffer collects log lines for assertions.
func logBuffer() (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return slog.New(slog.NewTextHandler(&buf, nil)), &buf
}
