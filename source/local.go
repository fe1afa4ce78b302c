package source

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5"
)

// ErrNotARepository: a local path is neither a Git repository nor inside the work tree of one.
var ErrNotARepository = errors.New("source: not a git repository")

// Local is a repository on this machine read where it is, for `shoal validate` and
// `shoal plan`: no clone, no fetch, no lock. It can name any revision its history holds
// (Resolve) and load it (Load) with the limits a Repo applies.
type Local struct {
	repo *Repo // a Repo with no remote and no lock: its Load and commit reading serve both
	// Dir is the repository's directory: the top of its work tree, or the bare repository.
	Dir string
}

// LocalPath returns the directory a local repository URL names (a path, relative ones
// against the working directory, or a file:// URL), and false for a remote URL
// (https, ssh, user@host:path).
func LocalPath(url string) (string, bool) {
	if rest, ok := strings.CutPrefix(url, "file://"); ok {
		return rest, true
	}
	if url == "" || strings.Contains(url, "://") {
		return "", false
	}
	// git reads host:path as scp-like SSH unless a slash comes before the colon.
	colon, slash := strings.Index(url, ":"), strings.Index(url, "/")
	if colon >= 0 && (slash < 0 || colon < slash) {
		return "", false
	}
	return url, true
}

// OpenLocal opens the repository that dir names, as git finds it: dir may be a bare
// repository, the top of a work tree, any directory inside a work tree (the enclosing
// .git or bare repository is searched upwards) or a linked work tree (`git worktree
// add`). The manifests are read from manifestPath (slash-separated, relative) under the
// subdirectory of the work tree that dir names, as `git ls-tree REV` there lists it.
func OpenLocal(dir, manifestPath string, opts ...Option) (*Local, error) {
	g, top, sub, err := findLocal(dir)
	if err != nil {
		return nil, err
	}
	manifests := path.Join(sub, manifestPath)
	acc := &access{url: top, path: "."}
	if manifests != "." {
		if strings.HasPrefix(manifestPath, "/") || strings.HasPrefix(manifests, "../") || manifests == ".." {
			closeStorer(g)
			return nil, fmt.Errorf("%w: path %q: want a relative, slash-separated path inside the repository", ErrInvalidSource, manifestPath)
		}
		acc.path = manifests
	}
	r := &Repo{acc: acc, dir: top, git: g, log: slog.Default(), maxBlob: DefaultMaxBlobBytes}
	for _, o := range opts {
		o(r)
	}
	if err := r.loadOpts.Validate(); err != nil {
		closeStorer(g)
		return nil, fmt.Errorf("source: %w", err)
	}
	if r.maxBlob <= 0 {
		closeStorer(g)
		return nil, fmt.Errorf("source: the largest file allowed must be positive, not %d bytes", r.maxBlob)
	}
	return &Local{repo: r, Dir: top}, nil
}

// FindLocal returns the repository that the local directory dir belongs to, as git finds
// it (see OpenLocal): its absolute directory (the top of the work tree, or the bare
// repository) and the slash-separated subdirectory of the work tree that dir is ("." for the top).
func FindLocal(dir string) (top, sub string, err error) {
	g, top, sub, err := findLocal(dir)
	if err != nil {
		return "", "", err
	}
	closeStorer(g)
	return top, sub, nil
}

// closeStorer releases a repository's open files: read handles only, so nothing is lost if it fails.
func closeStorer(g *git.Repository) {
	if c, ok := g.Storer.(io.Closer); ok {
		_ = c.Close()
	}
}

func findLocal(dir string) (*git.Repository, string, string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, "", "", fmt.Errorf("source: %s: %w", dir, err)
	}
	if _, err := os.Stat(abs); err != nil {
		return nil, "", "", fmt.Errorf("source: repository %s: %w", dir, err)
	}
	root, err := discoverRepository(abs)
	if err != nil {
		return nil, "", "", fmt.Errorf("%w: %s", err, dir)
	}
	g, err := git.PlainOpenWithOptions(root, &git.PlainOpenOptions{EnableDotGitCommonDir: true})
	if err != nil {
		return nil, "", "", fmt.Errorf("source: open %s: %w", dir, err)
	}
	top, sub := root, "." // a bare repository: no work tree, no subdirectory
	if wt, err := g.Worktree(); err == nil {
		top = wt.Filesystem.Root()
		if rel, err := filepath.Rel(top, abs); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
			sub = filepath.ToSlash(rel)
		}
	}
	return g, top, sub, nil
}

// discoverRepository walks up from dir as git does: the first directory that holds a .git
// (a directory, or a file pointing to one as in linked work trees) or is itself a bare
// repository. go-git's DetectDotGit looks for .git only, so it would take a bare repository
// for a plain directory and keep climbing, into whatever repository encloses it.
func discoverRepository(dir string) (string, error) {
	for {
		if _, err := os.Lstat(filepath.Join(dir, git.GitDirName)); err == nil {
			return dir, nil
		}
		if isBareRepository(dir) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("%w (nor any of its parents)", ErrNotARepository)
		}
		dir = parent
	}
}

// isBareRepository is git's test of a Git directory: a HEAD file, objects/ and refs/.
func isBareRepository(dir string) bool {
	for name, wantDir := range map[string]bool{"HEAD": false, "objects": true, "refs": true} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.IsDir() != wantDir {
			return false
		}
	}
	return true
}

// Path is the manifest directory inside the repository that Load reads: "." for the root.
func (l *Local) Path() string { return l.repo.acc.path }

// Close releases the repository's files.
func (l *Local) Close() error {
	l.repo.closeStore()
	return nil
}
