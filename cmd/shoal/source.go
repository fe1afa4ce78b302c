package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"github.com/shoalhq/shoal/source"
	"github.com/shoalhq/shoal/spec"
)

// repoFlags are the Git source flags shared by validate, plan and agent.
type repoFlags struct {
	url, branch, path, rev string
	stateDir               string
	username, caFile       string
	sshKey, knownHosts     string
	limits                 limitFlags
}

// register adds the source flags to cmd. Secrets come from the environment only, so they
// never show in a process listing: SHOAL_GIT_PASSWORD, SHOAL_GIT_TOKEN.
func (f *repoFlags) register(cmd *cobra.Command, withBranch bool) {
	fl := cmd.Flags()
	fl.StringVar(&f.url, "repo", "", "Git repository: a path, file://, https:// or ssh:// URL, or user@host:path")
	if withBranch {
		fl.StringVar(&f.branch, "branch", "", "branch to follow (default: the remote's default branch)")
	}
	fl.StringVar(&f.path, "path", "", "manifest directory inside the repository (default: its root)")
	fl.StringVar(&f.stateDir, "state-dir", defaultCacheDir(), "where the clone is kept between runs")
	fl.StringVar(&f.username, "git-username", "", "HTTPS username (password from $SHOAL_GIT_PASSWORD, or a token from $SHOAL_GIT_TOKEN)")
	fl.StringVar(&f.caFile, "git-ca-file", "", "PEM bundle of CAs trusted for the HTTPS remote, besides the system's")
	fl.StringVar(&f.sshKey, "ssh-key", "", "private key file for an SSH remote")
	fl.StringVar(&f.knownHosts, "known-hosts", "", "known_hosts file for an SSH remote (default ~/.ssh/known_hosts); unknown host keys are refused")
	f.limits.register(fl)
}

// source turns the flags into a source.Source following branch (or the default branch).
//
// A local repository may be given as a relative path or as a directory inside its work
// tree: it becomes the absolute top of the work tree, and the subdirectory goes in front
// of --path, so that `shoal agent --repo .` means what it says even though the daemon
// itself accepts only absolute paths (its working directory is an accident).
func (f *repoFlags) source() source.Source {
	url, manifestPath := f.url, f.path
	if dir, ok := source.LocalPath(f.url); ok {
		if top, sub, err := source.FindLocal(dir); err == nil {
			if top != dir || sub != "." {
				url, manifestPath = top, path.Join(sub, f.path)
			}
		} else if abs, err := filepath.Abs(dir); err == nil {
			url = abs // not a repository yet: the source reports what is wrong with it
		}
	}
	return source.Source{
		URL:    url,
		Branch: f.branch,
		Path:   manifestPath,
		Auth: source.Auth{
			Username:       f.username,
			Password:       os.Getenv("SHOAL_GIT_PASSWORD"),
			Token:          os.Getenv("SHOAL_GIT_TOKEN"),
			CAFile:         f.caFile,
			SSHKeyFile:     f.sshKey,
			KnownHostsFile: f.knownHosts,
		},
	}
}

func defaultCacheDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "shoal-cache")
	}
	return filepath.Join(dir, "shoal")
}

// manifests is one side of a validation or a plan: what was loaded and from where.
type manifests struct {
	where    string
	revision *spec.Revision
	set      *spec.Set
	diags    spec.Diagnostics
}

var fullSHA = regexp.MustCompile(`^[0-9a-fA-F]{40}$`)

// loadManifests reads the directory in args when there is one, else the repository's
// revision rev (empty means HEAD of a local repository, the followed branch of a remote).
// Invalid manifests are not an error: they come back in diags. Errors are about reading.
func loadManifests(ctx context.Context, args []string, f repoFlags, rev string) (manifests, error) {
	if len(args) == 1 {
		dir := args[0]
		info, err := os.Stat(dir)
		if err != nil {
			return manifests{}, err
		}
		if !info.IsDir() {
			return manifests{}, fmt.Errorf("%s is not a directory", dir)
		}
		opts := f.limits.options()
		// Inside a work tree, a kustomization may use a base elsewhere in the repository.
		if top, sub, err := source.FindLocal(dir); err == nil && sub != "." {
			opts.Repository, opts.Path = os.DirFS(top), sub
		}
		set, diags := spec.Load(os.DirFS(dir), opts)
		return manifests{where: dir, set: set, diags: diags}, nil
	}
	if f.url == "" {
		return manifests{}, errors.New("give a directory or --repo URL")
	}
	if dir, ok := source.LocalPath(f.url); ok {
		return loadLocal(ctx, dir, f, cmp.Or(rev, f.branch))
	}
	return loadRemote(ctx, f, rev)
}

// loadLocal reads revision rev of the repository on this machine that dir is in, where it
// is: any revision git rev-parse reads (see source.Local.Resolve), with no clone.
func loadLocal(ctx context.Context, dir string, f repoFlags, rev string) (manifests, error) {
	repo, err := source.OpenLocal(dir, f.path, f.limits.repoOptions()...)
	if err != nil {
		return manifests{}, err
	}
	defer repo.Close()
	r, err := repo.Resolve(rev)
	if err != nil {
		return manifests{}, err
	}
	where := short(r.Commit)
	if name := cmp.Or(rev, "HEAD"); !strings.HasPrefix(r.Commit, strings.ToLower(name)) {
		where = fmt.Sprintf("%s (%s)", name, where)
	}
	desired, diags, err := repo.Load(ctx, r)
	if err != nil && !errors.Is(err, source.ErrRevisionRejected) {
		return manifests{}, err
	}
	m := manifests{where: where, revision: &r, diags: diags}
	if desired != nil {
		m.set = desired.Objects
	}
	return m, nil
}

// loadRemote fetches revision rev of a remote repository into the clone under the state
// directory and reads it. A remote is asked for refs only, as git fetch does, so rev is
// a branch, a tag or a full commit SHA; expressions over history need a local clone.
func loadRemote(ctx context.Context, f repoFlags, rev string) (manifests, error) {
	src := f.source()
	switch {
	case rev == "", rev == "HEAD": // the remote's HEAD: its default branch
	case fullSHA.MatchString(rev):
		src.Commit = rev
	case strings.ContainsAny(rev, "~^:@{}"):
		return manifests{}, fmt.Errorf("revision %q: a remote repository is asked for branches, tags and full commit SHAs only; for %s, give --repo a local clone (a path)", rev, rev)
	default:
		src.Branch = rev
	}
	m, err := loadRevision(ctx, src, f.stateDir, f.limits.repoOptions()...)
	if errors.Is(err, source.ErrRefNotFound) && rev != "" && src.Commit == "" {
		src.Branch, src.Tag = "", rev // not a branch: try it as a tag
		m, err = loadRevision(ctx, src, f.stateDir, f.limits.repoOptions()...)
		if errors.Is(err, source.ErrRefNotFound) {
			err = fmt.Errorf("%w (a remote is asked for branches and tags only: a short SHA needs a local clone)", source.RevisionNotFound(rev, f.url))
		}
	}
	return m, err
}

// loadRevision fetches src's revision into the clone under stateDir and loads it.
func loadRevision(ctx context.Context, src source.Source, stateDir string, opts ...source.Option) (manifests, error) {
	repo, err := source.Open(ctx, src, stateDir, opts...)
	if err != nil {
		return manifests{}, err
	}
	defer repo.Close()
	rev, err := repo.Fetch(ctx)
	if err != nil {
		return manifests{}, err
	}
	where := fmt.Sprintf("%s@%s", src.URL, short(rev.Commit))
	desired, diags, err := repo.Load(ctx, rev)
	if err != nil && !errors.Is(err, source.ErrRevisionRejected) {
		return manifests{}, err
	}
	m := manifests{where: where, revision: &rev, diags: diags}
	if desired != nil {
		m.set = desired.Objects
	}
	return m, nil
}

func short(commit string) string {
	if len(commit) > 12 {
		return commit[:12]
	}
	return commit
}
