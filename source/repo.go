package source

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage/filesystem"

	"github.com/shoalhq/shoal/spec"
)

// Errors callers branch on. Each is wrapped with the details (URL, ref, commit).
var (
	// ErrRefNotFound: the remote has no such branch or tag (or no default branch).
	ErrRefNotFound = errors.New("source: ref not found on the remote")
	// ErrCommitNotFound: the commit is not in the clone (or, for a pin, not on the branch).
	ErrCommitNotFound = errors.New("source: commit not found")
	// ErrPathNotFound: the commit has no directory at Source.Path.
	ErrPathNotFound = errors.New("source: path not found in commit")
	// ErrRevisionRejected: the commit's manifests have errors; the diagnostics say which.
	ErrRevisionRejected = errors.New("source: revision rejected")
	// ErrCorrupt: the clone's object store could not be read. The next Fetch moves the
	// clone aside and clones afresh.
	ErrCorrupt = errors.New("source: local clone is damaged")
	// ErrLocked: another Repo, in this process or another, has the clone open.
	ErrLocked = errors.New("source: clone is in use")
	// ErrNotFetched: nothing has been fetched into the clone yet.
	ErrNotFetched = errors.New("source: nothing fetched yet")
)

// Repo is the local clone of one Source, kept under the state directory so that it
// survives restarts: a reopened Repo fetches only what is new. It is a bare repository;
// manifests are read from its object store, never checked out.
//
// The clone lives in stateDir/<hash of URL>, locked by stateDir/<hash>.lock. A clone
// found damaged is moved to stateDir/<hash>.corrupt (replacing an older one, so a
// flapping disk cannot fill the state directory) and cloned again.
//
// A Repo is not safe for concurrent use: one goroutine, normally its Poller's, owns it.
type Repo struct {
	acc      *access
	dir      string
	local    plumbing.ReferenceName // where the fetched target is kept in the clone
	lockFile *os.File
	git      *git.Repository
	remote   *git.Remote
	log      *slog.Logger
	loadOpts spec.LoadOptions
	maxBlob  int64
	// suspect is set when reading the clone failed; the next Fetch verifies it first.
	suspect bool
}

// Option configures Open.
type Option func(*Repo)

// WithLogger sets the logger for clone recovery and other notable events; the
// default is slog.Default().
func WithLogger(l *slog.Logger) Option { return func(r *Repo) { r.log = l } }

// WithLoadOptions sets the options passed to spec.Load.
func WithLoadOptions(o spec.LoadOptions) Option { return func(r *Repo) { r.loadOpts = o } }

// DefaultMaxBlobBytes is the largest file a revision may hold under Source.Path, manifest
// or not, unless WithMaxBlobBytes says otherwise.
const DefaultMaxBlobBytes = 16 << 20

// WithMaxBlobBytes sets the largest file a revision may hold under Source.Path: a larger
// one rejects the revision, found from the object's header before it is read.
func WithMaxBlobBytes(n int64) Option { return func(r *Repo) { r.maxBlob = n } }

// largeObjectBytes is the size above which the clone's objects are streamed from disk
// rather than read into memory whole.
const largeObjectBytes = 1 << 20

// blobSizer reads an object's size from its header; go-git's filesystem storage is one.
type blobSizer interface {
	EncodedObjectSize(plumbing.Hash) (int64, error)
}

// Open validates src and opens its clone under stateDir, creating an empty one if there
// is none. It does not touch the network: the first Fetch clones. A clone that cannot be
// read is moved aside (and logged) and replaced by an empty one. Close releases the clone.
func Open(ctx context.Context, src Source, stateDir string, opts ...Option) (*Repo, error) {
	acc, err := src.resolve()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, fmt.Errorf("source: state directory: %w", err)
	}
	sum := sha256.Sum256([]byte(src.URL))
	r := &Repo{
		acc:     acc,
		dir:     filepath.Join(stateDir, hex.EncodeToString(sum[:16])),
		local:   plumbing.ReferenceName("refs/shoal/" + strings.TrimPrefix(acc.target.String(), "refs/")),
		log:     slog.Default(),
		maxBlob: DefaultMaxBlobBytes,
	}
	for _, o := range opts {
		o(r)
	}
	if err := r.loadOpts.Validate(); err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	if r.maxBlob <= 0 {
		return nil, fmt.Errorf("source: the largest file allowed must be positive, not %d bytes", r.maxBlob)
	}
	if err := r.lock(); err != nil {
		return nil, err
	}
	if err := r.openClone(ctx); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// Dir is the directory of the clone.
func (r *Repo) Dir() string { return r.dir }

// Close releases the clone for another Repo. A closed Repo must not be used.
func (r *Repo) Close() error {
	r.closeStore()
	return r.lockFile.Close() // closing the descriptor drops the flock
}

// Head returns the commit the followed ref points to on the remote, asking only for
// the remote's refs (an ls-remote), never for objects. For a pinned Source it is the
// pin, without asking the remote at all.
func (r *Repo) Head(ctx context.Context) (string, error) {
	if !r.acc.pin.IsZero() {
		return r.acc.pin.String(), nil
	}
	refs, err := r.remote.ListContext(ctx, &git.ListOptions{
		Auth:            r.acc.auth,
		CABundle:        r.acc.caBundle,
		InsecureSkipTLS: r.acc.insecureTLS,
		PeelingOption:   git.AppendPeeled,
	})
	if err != nil {
		return "", r.remoteError("list refs of", err)
	}
	byName := make(map[plumbing.ReferenceName]*plumbing.Reference, len(refs))
	for _, ref := range refs {
		byName[ref.Name()] = ref
	}
	// An annotated tag names a tag object; its peeled entry names the commit.
	if peeled, ok := byName[r.acc.target+"^{}"]; ok {
		return peeled.Hash().String(), nil
	}
	ref, ok := byName[r.acc.target]
	if ok && ref.Type() == plumbing.SymbolicReference {
		ref, ok = byName[ref.Target()]
	}
	if !ok {
		return "", fmt.Errorf("%w: %s at %s", ErrRefNotFound, r.acc.target, r.acc.url)
	}
	return ref.Hash().String(), nil
}

// Fetch brings the followed ref's new objects into the clone, following rewritten
// history (a force-push or a moved tag replaces the old head), and returns the revision
// it now points to. A damaged clone is moved aside and cloned again, once per call.
//
// A Revision's Message is the commit's subject line, its Time the committer time.
func (r *Repo) Fetch(ctx context.Context) (spec.Revision, error) {
	if !r.acc.pin.IsZero() {
		if rev, err := r.revision(r.acc.pin); err == nil {
			return rev, nil // a pin never moves: once present, nothing to fetch
		}
	}
	if r.git == nil { // a recovery could not start a fresh clone: try again
		if err := r.openClone(ctx); err != nil {
			return spec.Revision{}, err
		}
	}
	if r.suspect {
		if err := r.verify(ctx); err != nil {
			if err := r.recover(err); err != nil {
				return spec.Revision{}, err
			}
		}
		r.suspect = false
	}
	err := r.fetch(ctx)
	// A failed fetch may be the remote's fault or the clone's (go-git reads the local
	// history to negotiate). Only a verification tells them apart.
	if err != nil && ctx.Err() == nil && !errors.Is(err, ErrRefNotFound) {
		if verr := r.verify(ctx); verr != nil {
			if rerr := r.recover(verr); rerr != nil {
				return spec.Revision{}, rerr
			}
			err = r.fetch(ctx)
		}
	}
	if err != nil {
		return spec.Revision{}, err
	}
	if !r.acc.pin.IsZero() {
		rev, err := r.revision(r.acc.pin)
		if err != nil {
			return spec.Revision{}, fmt.Errorf("%w: pinned %s is not on %s of %s", ErrCommitNotFound, r.acc.pin, r.acc.target, r.acc.url)
		}
		return rev, nil
	}
	return r.Fetched()
}

// Fetched returns the revision the clone last fetched for the followed ref (for a
// pinned Source, the pin once it is present), without touching the network.
func (r *Repo) Fetched() (spec.Revision, error) {
	if r.git == nil {
		return spec.Revision{}, r.noClone()
	}
	want := r.acc.pin
	if want.IsZero() {
		ref, err := r.git.Storer.Reference(r.local)
		if errors.Is(err, plumbing.ErrReferenceNotFound) {
			return spec.Revision{}, fmt.Errorf("%w: %s of %s", ErrNotFetched, r.acc.target, r.acc.url)
		}
		if err != nil {
			return spec.Revision{}, r.damaged(err)
		}
		want = ref.Hash()
	}
	rev, err := r.revision(want)
	if errors.Is(err, ErrCommitNotFound) && !r.acc.pin.IsZero() {
		return spec.Revision{}, fmt.Errorf("%w: pinned %s of %s", ErrNotFetched, r.acc.pin, r.acc.url)
	}
	return rev, err
}

// Load reads the manifests of rev's commit under Source.Path with spec.Load, straight
// from the clone's object store. A commit whose manifests have errors returns nil, the
// diagnostics and an error wrapping ErrRevisionRejected; otherwise the diagnostics hold
// only warnings. Other errors are about Git (ErrCommitNotFound, ErrPathNotFound,
// ErrCorrupt), not about the manifests.
func (r *Repo) Load(ctx context.Context, rev spec.Revision) (*spec.Desired, spec.Diagnostics, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	if !commitPattern.MatchString(rev.Commit) {
		return nil, nil, fmt.Errorf("%w: %q is not a commit SHA", ErrCommitNotFound, rev.Commit)
	}
	commit, err := r.commit(plumbing.NewHash(rev.Commit))
	if err != nil {
		return nil, nil, err
	}
	tree, err := commit.Tree()
	if err != nil {
		return nil, nil, r.damaged(fmt.Errorf("tree of %s: %w", commit.Hash, err))
	}
	opts := r.loadOpts
	sizer, _ := r.git.Storer.(blobSizer)
	var whole *treeFS // the whole commit, for kustomizations under the path that reach out of it
	if r.acc.path != "." {
		whole = newTreeFS(tree, commit.Committer.When, sizer)
		opts.Repository, opts.Path = whole, r.acc.path
		tree, err = tree.Tree(r.acc.path)
		if errors.Is(err, object.ErrDirectoryNotFound) {
			return nil, nil, fmt.Errorf("%w: %s in %s", ErrPathNotFound, r.acc.path, commit.Hash)
		}
		if err != nil {
			return nil, nil, r.damaged(fmt.Errorf("%s in %s: %w", r.acc.path, commit.Hash, err))
		}
	}
	if diags, err := r.checkBlobSizes(tree, sizer); err != nil || len(diags) > 0 {
		return nil, diags, cmp.Or(err, rejected(commit.Hash, diags))
	}
	fsys := newTreeFS(tree, commit.Committer.When, sizer)
	set, diags := spec.Load(fsys, opts)
	if fsys.storeErr != nil {
		return nil, nil, r.damaged(fsys.storeErr)
	}
	if whole != nil && whole.storeErr != nil {
		return nil, nil, r.damaged(whole.storeErr)
	}
	if set == nil || diags.HasErrors() {
		return nil, diags, rejected(commit.Hash, diags)
	}
	return &spec.Desired{Revision: revisionOf(commit), Objects: set}, diags, nil
}

// rejected is the error of a commit whose diagnostics reject it.
func rejected(commit plumbing.Hash, diags spec.Diagnostics) error {
	errs := diags.Errors()
	first := "spec.Load returned no objects"
	if len(errs) > 0 {
		first = errs[0].String()
	}
	return fmt.Errorf("%w: %s: %d error(s), first: %s", ErrRevisionRejected, commit, len(errs), first)
}

// checkBlobSizes reports every file under tree larger than the limit, from the sizes in
// the objects' headers, before anything reads them.
func (r *Repo) checkBlobSizes(tree *object.Tree, sizer blobSizer) (spec.Diagnostics, error) {
	if sizer == nil {
		return nil, nil // a storage that cannot tell sizes cheaply: spec's limits still hold
	}
	walker := object.NewTreeWalker(tree, true, nil)
	defer walker.Close()
	var diags spec.Diagnostics
	for {
		name, entry, err := walker.Next()
		if errors.Is(err, io.EOF) {
			return diags, nil
		}
		if err != nil {
			return nil, r.damaged(fmt.Errorf("walk tree %s: %w", tree.Hash, err))
		}
		if !entry.Mode.IsFile() {
			continue
		}
		size, err := sizer.EncodedObjectSize(entry.Hash)
		if err != nil {
			return nil, r.damaged(fmt.Errorf("size of %s: %w", name, err))
		}
		if size > r.maxBlob {
			diags = append(diags, spec.Diagnostic{Severity: spec.SeverityError, File: name,
				Message: fmt.Sprintf("file is %d bytes, more than the limit of %d for any file of the revision (max-blob-bytes)", size, r.maxBlob)})
		}
	}
}

// fetch runs one go-git fetch of the followed ref into r.local. The refspec forces the
// update, so rewritten history replaces the old head instead of being refused.
//
// Only the head commit is fetched (depth 1, as Flux clones): the agent reads one tree,
// never history, so a repository's past (a large file committed and removed years ago)
// costs neither bandwidth nor disk. A pinned commit may lie below the head, so a pinned
// Source fetches the whole branch.
func (r *Repo) fetch(ctx context.Context) error {
	depth := 1
	if !r.acc.pin.IsZero() {
		depth = 0
	}
	return r.fetchDepth(ctx, depth)
}

// FetchHistory fetches the branch with its last depth commits (0: all), for loading an
// earlier commit than the head.
func (r *Repo) FetchHistory(ctx context.Context, depth int) error {
	if r.git == nil {
		return r.noClone()
	}
	return r.fetchDepth(ctx, depth)
}

func (r *Repo) fetchDepth(ctx context.Context, depth int) error {
	err := r.remote.FetchContext(ctx, &git.FetchOptions{
		RefSpecs:        []config.RefSpec{r.refSpec()},
		Depth:           depth,
		Tags:            git.NoTags,
		Force:           true,
		Auth:            r.acc.auth,
		CABundle:        r.acc.caBundle,
		InsecureSkipTLS: r.acc.insecureTLS,
	})
	switch {
	case err == nil, errors.Is(err, git.NoErrAlreadyUpToDate):
		return nil
	case errors.Is(err, git.NoMatchingRefSpecError{}):
		return fmt.Errorf("%w: %s at %s", ErrRefNotFound, r.acc.target, r.acc.url)
	default:
		return r.remoteError("fetch "+r.acc.target.String()+" from", err)
	}
}

// remoteError wraps an error of talking to the remote. go-git reports refused
// credentials as "authentication required"; say plainly that ours were refused.
func (r *Repo) remoteError(op string, err error) error {
	if errors.Is(err, transport.ErrAuthenticationRequired) && r.acc.auth != nil {
		return fmt.Errorf("source: %s %s: the remote refused our credentials: %w", op, r.acc.url, err)
	}
	return fmt.Errorf("source: %s %s: %w", op, r.acc.url, err)
}

func (r *Repo) refSpec() config.RefSpec {
	return config.RefSpec("+" + r.acc.target.String() + ":" + r.local.String())
}

// revision peels hash (a commit or a tag) to its commit and describes it.
func (r *Repo) revision(hash plumbing.Hash) (spec.Revision, error) {
	commit, err := r.commit(hash)
	if err != nil {
		return spec.Revision{}, err
	}
	return revisionOf(commit), nil
}

// commit returns the commit hash names, peeling annotated tags.
func (r *Repo) commit(hash plumbing.Hash) (*object.Commit, error) {
	if r.git == nil {
		return nil, r.noClone()
	}
	for range 10 { // tags of tags are legal; cycles are not, but a bound costs nothing
		obj, err := r.git.Object(plumbing.AnyObject, hash)
		if errors.Is(err, plumbing.ErrObjectNotFound) {
			return nil, fmt.Errorf("%w: %s in %s", ErrCommitNotFound, hash, r.dir)
		}
		if err != nil {
			return nil, r.damaged(fmt.Errorf("object %s: %w", hash, err))
		}
		switch obj := obj.(type) {
		case *object.Commit:
			return obj, nil
		case *object.Tag:
			hash = obj.Target
		default:
			return nil, fmt.Errorf("%w: %s is a %s", ErrCommitNotFound, hash, obj.Type())
		}
	}
	return nil, fmt.Errorf("%w: %s: tags nested too deep", ErrCommitNotFound, hash)
}

// revisionOf describes a commit. Message is the subject (first line) only: it is shown
// in status lines and logs, where a whole message would sprawl.
func revisionOf(c *object.Commit) spec.Revision {
	subject, _, _ := strings.Cut(strings.TrimSpace(c.Message), "\n")
	return spec.Revision{
		Commit:  c.Hash.String(),
		Author:  fmt.Sprintf("%s <%s>", c.Author.Name, c.Author.Email),
		Message: strings.TrimSpace(subject),
		Time:    c.Committer.When,
	}
}

func (r *Repo) noClone() error {
	return fmt.Errorf("%w: no clone open at %s; the next Fetch starts one", ErrCorrupt, r.dir)
}

// damaged marks the clone for verification on the next Fetch and wraps err in ErrCorrupt.
func (r *Repo) damaged(err error) error {
	r.suspect = true
	return fmt.Errorf("%w (%s): %w", ErrCorrupt, r.dir, err)
}

func (r *Repo) lock() error {
	f, err := os.OpenFile(r.dir+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("source: lock clone: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("%w: %s", ErrLocked, r.dir)
		}
		return fmt.Errorf("source: lock clone %s: %w", r.dir, err)
	}
	r.lockFile = f
	return nil
}

// openClone opens the clone, or creates an empty one when there is none or the one
// there cannot be read.
func (r *Repo) openClone(ctx context.Context) error {
	if _, err := os.Stat(r.dir); errors.Is(err, os.ErrNotExist) {
		return r.initClone()
	}
	repo, err := git.Open(openStorage(r.dir), nil)
	if err == nil {
		r.setRepo(repo)
		err = r.verify(ctx)
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return r.recover(err)
	}
	return nil
}

func (r *Repo) initClone() error {
	if err := os.MkdirAll(r.dir, 0o700); err != nil {
		return fmt.Errorf("source: create clone %s: %w", r.dir, err)
	}
	repo, err := git.Init(openStorage(r.dir), nil)
	if err != nil {
		return fmt.Errorf("source: create clone %s: %w", r.dir, err)
	}
	r.setRepo(repo)
	return nil
}

// openStorage is the clone's object store, which streams large objects from disk
// instead of reading them into memory.
func openStorage(dir string) *filesystem.Storage {
	return filesystem.NewStorageWithOptions(osfs.New(dir), cache.NewObjectLRUDefault(),
		filesystem.Options{LargeObjectThreshold: largeObjectBytes})
}

// setRepo adopts an opened repository. The remote is built in memory rather than read
// from the clone's config, so a clone always fetches what the Source says.
func (r *Repo) setRepo(repo *git.Repository) {
	r.git = repo
	r.remote = git.NewRemote(repo.Storer, &config.RemoteConfig{
		Name:  "origin",
		URLs:  []string{r.acc.url},
		Fetch: []config.RefSpec{r.refSpec()},
	})
}

// recover moves a damaged clone aside and starts an empty one in its place. If that
// fails half-way, r.git is nil and the next Fetch tries again.
func (r *Repo) recover(cause error) error {
	aside := r.dir + ".corrupt"
	if err := os.RemoveAll(aside); err != nil {
		return fmt.Errorf("source: remove old %s: %w", aside, err)
	}
	if err := os.Rename(r.dir, aside); err != nil {
		return fmt.Errorf("source: move damaged clone aside: %w", err)
	}
	r.closeStore() // after the move: until then the damaged clone is all there is
	r.log.Warn("source: clone was damaged; moved it aside and cloning afresh",
		"url", r.acc.url, "dir", r.dir, "movedTo", aside, "cause", cause)
	r.suspect = false
	return r.initClone()
}

func (r *Repo) closeStore() {
	if r.git == nil {
		return
	}
	if c, ok := r.git.Storer.(io.Closer); ok {
		_ = c.Close() // only read handles: nothing is lost if closing fails
	}
	r.git = nil
}

// verify reads what Load and Fetch will need: for every ref of the clone, its commit,
// the whole tree of that commit with every blob, and every ancestor commit the clone
// holds (down to the shallow boundary of a depth-limited fetch). It is run on open and
// after failures, never on the hot path.
func (r *Repo) verify(ctx context.Context) error {
	refs, err := r.git.Storer.IterReferences()
	if err != nil {
		return fmt.Errorf("list refs: %w", err)
	}
	beyond, err := r.beyondShallow()
	if err != nil {
		return err
	}
	return refs.ForEach(func(ref *plumbing.Reference) error {
		if ref.Type() != plumbing.HashReference {
			return nil
		}
		commit, err := r.commit(ref.Hash())
		if err != nil {
			return fmt.Errorf("ref %s: %w", ref.Name(), err)
		}
		if err := readTree(commit); err != nil {
			return fmt.Errorf("ref %s: %w", ref.Name(), err)
		}
		err = object.NewCommitPreorderIter(commit, nil, beyond).ForEach(func(*object.Commit) error { return ctx.Err() })
		if err != nil && !errors.Is(err, storer.ErrStop) {
			return fmt.Errorf("history of %s: %w", ref.Name(), err)
		}
		return nil
	})
}

// beyondShallow lists the parents of the clone's shallow commits: a depth-limited fetch
// leaves them out, so a walk of the history must stop there.
func (r *Repo) beyondShallow() ([]plumbing.Hash, error) {
	shallow, err := r.git.Storer.Shallow()
	if err != nil {
		return nil, fmt.Errorf("read shallow commits: %w", err)
	}
	var parents []plumbing.Hash
	for _, h := range shallow {
		c, err := object.GetCommit(r.git.Storer, h)
		if err != nil {
			return nil, fmt.Errorf("shallow commit %s: %w", h, err)
		}
		parents = append(parents, c.ParentHashes...)
	}
	return parents, nil
}

// readTree reads every blob of a commit's tree to the end, so that a damaged pack
// shows up here rather than in the middle of a load.
func readTree(c *object.Commit) error {
	tree, err := c.Tree()
	if err != nil {
		return fmt.Errorf("tree of %s: %w", c.Hash, err)
	}
	return tree.Files().ForEach(func(f *object.File) error {
		rd, err := f.Reader()
		if err != nil {
			return fmt.Errorf("%s: %w", f.Name, err)
		}
		defer rd.Close()
		if _, err := io.Copy(io.Discard, rd); err != nil {
			return fmt.Errorf("%s: %w", f.Name, err)
		}
		return nil
	})
}
