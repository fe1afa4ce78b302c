package source

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/storer"

	"github.com/shoalhq/shoal/spec"
)

// Errors of Local.Resolve, each wrapped in a message that names the revision and the repository.
var (
	// ErrRevisionNotFound: the revision names nothing in the repository.
	ErrRevisionNotFound = errors.New("source: revision not found")
	// ErrAmbiguousRevision: a short SHA is the prefix of more than one commit.
	ErrAmbiguousRevision = errors.New("source: ambiguous revision")
	// ErrUnsupportedRevision: git rev-parse syntax that Shoal does not read (reflog, ranges, paths).
	ErrUnsupportedRevision = errors.New("source: unsupported revision syntax")
)

// revisionError is a revision problem worded for people, wrapping one of the sentinels above.
type revisionError struct {
	kind error
	msg  string
}

func (e *revisionError) Error() string { return e.msg }
func (e *revisionError) Unwrap() error { return e.kind }

// RevisionNotFound is the error for a revision that names nothing in the repository at where.
func RevisionNotFound(rev, where string) error {
	return &revisionError{ErrRevisionNotFound, fmt.Sprintf("revision %q not found in %s: give a branch, tag, or commit (as git rev-parse accepts)", rev, where)}
}

// minShortSHA is the fewest hex digits git accepts as an abbreviated object name.
const minShortSHA = 4

// revisionStep is one suffix of a revision: ~n (n-th first-parent ancestor) or ^n (n-th parent).
type revisionStep struct {
	op byte
	n  int
}

// Resolve returns the commit rev names, reading it as `git rev-parse` does: HEAD (also
// "@" and ""), a branch, a remote-tracking branch (origin/main), a tag (annotated ones
// peeled to their commit), any full ref name, a full or abbreviated commit SHA (at least
// 4 digits; one that several commits share is refused), followed by any number of ~N,
// ^N and ^{} / ^{commit} suffixes. Refs win over an abbreviated SHA of the same spelling,
// as in git. Reflog entries (HEAD@{1}), @{upstream}, ranges (a..b), ^{/text} and rev:path
// are refused with ErrUnsupportedRevision rather than read wrongly.
func (l *Local) Resolve(rev string) (spec.Revision, error) {
	if rev == "" {
		rev = "HEAD"
	}
	fail := func(kind error, format string, args ...any) (spec.Revision, error) {
		return spec.Revision{}, &revisionError{kind, fmt.Sprintf("revision %q: ", rev) + fmt.Sprintf(format, args...)}
	}
	for _, unsupported := range []string{"@{", "..", ":", "^{/", "^!", "^@", "^-"} {
		if strings.Contains(rev, unsupported) {
			return fail(ErrUnsupportedRevision, "%q is git rev-parse syntax Shoal does not read: give a branch, tag or commit, with ~N or ^N after it if need be", unsupported)
		}
	}
	base, suffix := rev, ""
	if i := strings.IndexAny(rev, "~^"); i >= 0 {
		base, suffix = rev[:i], rev[i:]
	}
	if base == "@" {
		base = "HEAD"
	}
	steps, err := parseRevisionSteps(suffix)
	if err != nil {
		return fail(ErrUnsupportedRevision, "%v", err)
	}
	hash, err := l.resolveBase(base)
	if err != nil {
		if errors.Is(err, ErrRevisionNotFound) {
			return spec.Revision{}, RevisionNotFound(rev, l.Dir)
		}
		return spec.Revision{}, err
	}
	commit, err := l.repo.commit(hash)
	if errors.Is(err, ErrCommitNotFound) {
		return fail(ErrRevisionNotFound, "%s is not a commit: %v", base, err)
	}
	if err != nil {
		return spec.Revision{}, err
	}
	for _, s := range steps {
		for range s.count() {
			parent := s.parent()
			if parent >= len(commit.ParentHashes) {
				return fail(ErrRevisionNotFound, "commit %s has %d parent(s), so %c%d goes beyond the history in %s", commit.Hash, len(commit.ParentHashes), s.op, s.n, l.Dir)
			}
			if commit, err = l.repo.commit(commit.ParentHashes[parent]); err != nil {
				return fail(ErrRevisionNotFound, "%v (a shallow clone lacks older history)", err)
			}
		}
	}
	return revisionOf(commit), nil
}

// count and parent say how a step walks: ~n takes the first parent n times; ^n takes the
// n-th parent once, and ^0 stays where it is.
func (s revisionStep) count() int {
	if s.op == '~' {
		return s.n
	}
	return min(s.n, 1)
}

func (s revisionStep) parent() int {
	if s.op == '~' {
		return 0
	}
	return s.n - 1
}

// parseRevisionSteps reads the ~N, ^N, ^{} and ^{commit} suffixes of a revision; a
// missing N means 1. Every result is peeled to a commit anyway, so ^{} and ^{commit}
// change nothing.
func parseRevisionSteps(suffix string) ([]revisionStep, error) {
	var steps []revisionStep
	for suffix != "" {
		op := suffix[0]
		suffix = suffix[1:]
		if op != '~' && op != '^' {
			return nil, fmt.Errorf("%q after ~ or ^: want digits, ~ or ^", string(op))
		}
		if op == '^' && strings.HasPrefix(suffix, "{") {
			end := strings.IndexByte(suffix, '}')
			if end < 0 {
				return nil, errors.New("^{ without its closing }")
			}
			if peel := suffix[1:end]; peel != "" && peel != "commit" {
				return nil, fmt.Errorf("^{%s}: only ^{} and ^{commit} are read, as every revision names a commit", peel)
			}
			suffix = suffix[end+1:]
			continue
		}
		digits := len(suffix) - len(strings.TrimLeft(suffix, "0123456789"))
		n := 1
		if digits > 0 {
			var err error
			if n, err = strconv.Atoi(suffix[:digits]); err != nil || n > 1<<16 {
				return nil, fmt.Errorf("%c%s: too large", op, suffix[:digits])
			}
		}
		steps = append(steps, revisionStep{op: op, n: n})
		suffix = suffix[digits:]
	}
	return steps, nil
}

// pseudoRef is a ref name that lives at the top of the Git directory: HEAD, ORIG_HEAD, FETCH_HEAD, ….
var pseudoRef = regexp.MustCompile(`^[A-Z_]*HEAD$`)

// prefixLister finds the objects whose hashes start with some bytes; go-git's filesystem
// storage is one, reading pack indexes instead of every object.
type prefixLister interface {
	HashesWithPrefix(prefix []byte) ([]plumbing.Hash, error)
}

// resolveBase finds the object a revision without suffixes names: a full SHA, a ref by
// git's rules (HEAD, refs/…, tags, branches, remote-tracking branches), else an
// abbreviated SHA of a commit or tag.
func (l *Local) resolveBase(base string) (plumbing.Hash, error) {
	if base == "" {
		return plumbing.ZeroHash, ErrRevisionNotFound
	}
	st := l.repo.git.Storer
	if commitPattern.MatchString(base) {
		h := plumbing.NewHash(strings.ToLower(base))
		if _, err := st.EncodedObject(plumbing.AnyObject, h); err == nil {
			return h, nil
		}
	}
	for _, rule := range plumbing.RefRevParseRules {
		name := plumbing.ReferenceName(fmt.Sprintf(rule, base))
		if rule == "%s" && !strings.HasPrefix(base, "refs/") && !pseudoRef.MatchString(base) {
			continue // git looks in the Git directory itself only for these
		}
		if name != plumbing.HEAD && name.Validate() != nil {
			continue
		}
		ref, err := storer.ResolveReference(st, name)
		if err == nil {
			return ref.Hash(), nil
		}
		if !errors.Is(err, plumbing.ErrReferenceNotFound) {
			return plumbing.ZeroHash, l.repo.damaged(fmt.Errorf("ref %s: %w", name, err))
		}
	}
	return l.resolveShortSHA(base)
}

// resolveShortSHA finds the one commit (or tag of a commit) whose SHA starts with prefix.
func (l *Local) resolveShortSHA(prefix string) (plumbing.Hash, error) {
	prefix = strings.ToLower(prefix)
	lister, ok := l.repo.git.Storer.(prefixLister)
	if len(prefix) < minShortSHA || len(prefix) > 40 || strings.Trim(prefix, "0123456789abcdef") != "" || !ok {
		return plumbing.ZeroHash, ErrRevisionNotFound
	}
	even := make([]byte, len(prefix)/2)
	for i := range even {
		b, _ := strconv.ParseUint(prefix[2*i:2*i+2], 16, 8)
		even[i] = byte(b)
	}
	hashes, err := lister.HashesWithPrefix(even)
	if err != nil {
		return plumbing.ZeroHash, l.repo.damaged(fmt.Errorf("look up %s: %w", prefix, err))
	}
	var matches []plumbing.Hash
	for _, h := range hashes {
		if !strings.HasPrefix(h.String(), prefix) {
			continue // an odd-length prefix: the last digit was not in the byte search
		}
		if _, err := l.repo.commit(h); err == nil {
			matches = append(matches, h)
		}
	}
	switch len(matches) {
	case 0:
		return plumbing.ZeroHash, ErrRevisionNotFound
	case 1:
		return matches[0], nil
	}
	names := make([]string, len(matches))
	for i, h := range matches {
		names[i] = h.String()[:12]
	}
	return plumbing.ZeroHash, &revisionError{ErrAmbiguousRevision, fmt.Sprintf("short SHA %q is ambiguous in %s: it begins %d commits (%s); give more digits",
		prefix, l.Dir, len(matches), strings.Join(names, ", "))}
}

// Load reads the manifests of rev's commit as Repo.Load does, with the same limits.
func (l *Local) Load(ctx context.Context, rev spec.Revision) (*spec.Desired, spec.Diagnostics, error) {
	return l.repo.Load(ctx, rev)
}
